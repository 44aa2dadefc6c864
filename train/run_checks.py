"""A run folder's options.json checked before anything is built from it: a folder from someone
else (or a damaged one) is refused in one line naming the file and the key, instead of a
traceback or a net so wide it asks for terabytes (`ngf: 100000`).

What is checked is what a Run reads to rebuild its generator and conditions: the model's name,
the image size, the noise size, the nets' constructor arguments (`arch`: each one's type from the
constructor's own default, sizes bounded) and the condition vocabulary. The other options are
checked by type and range when they become TrainOptions again (`TrainOptions.from_dict`, on a
resume): train.options cannot be imported here (it imports the losses, which read runs).
"""

from __future__ import annotations

import inspect
import math

from train.conditions import ConditionSpec
from train.models import NETS, SIZES

# upper bounds of the nets' sizes: far beyond any run of this tool, far below a net that fills the memory
WIDEST = 1024           # ngf, ndf
MOST_NOISE = 4096       # z_dim
MOST_UNITS = 4096       # any other whole number of the nets' arguments (conditions, heads, channels)
REQUIRED = ("model", "size", "z_dim", "arch")


class RunOptionsError(ValueError):
    """An options.json that cannot be a run of this tool."""


def _kind(value) -> str:
    return "a boolean" if isinstance(value, bool) else type(value).__name__


def _whole(value, key: str, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RunOptionsError(f"{key!r} is {_kind(value)} ({value!r}), not a whole number")
    if not low <= value <= high:
        raise RunOptionsError(f"{key!r} is {value}, outside {low}..{high}")


def _check_net(kind: str, args, where: str) -> None:
    """One net's constructor arguments: known names, each of its default's type, sizes bounded."""
    if not isinstance(args, dict):
        raise RunOptionsError(f"'arch.{where}' is {_kind(args)}, not a table of constructor arguments")
    net = args.get("net", "dcgan")
    if net not in NETS:
        raise RunOptionsError(f"'arch.{where}.net' is {net!r}, not one of {', '.join(NETS)}")
    params = inspect.signature(getattr(NETS[net], kind)).parameters
    for name, value in args.items():
        key = f"arch.{where}.{name}"
        if name in ("net", "sn"):
            if name == "sn" and not isinstance(value, bool):
                raise RunOptionsError(f"{key!r} is {_kind(value)}, not true or false")
            continue
        if name not in params:
            raise RunOptionsError(f"{key!r}: {NETS[net].__name__}.{kind} takes no {name!r}")
        default = params[name].default
        if name == "size":
            if value not in SIZES or isinstance(value, bool):
                raise RunOptionsError(f"{key!r} is {value!r}, not one of {', '.join(map(str, SIZES))}")
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise RunOptionsError(f"{key!r} is {_kind(value)} ({value!r}), not true or false")
        elif isinstance(default, int):
            high = WIDEST if name in ("ngf", "ndf") else MOST_NOISE if name == "z_dim" else MOST_UNITS
            _whole(value, key, 0, high)
        elif isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise RunOptionsError(f"{key!r} is {value!r}, not a number")
        elif isinstance(default, str) and not isinstance(value, str):
            raise RunOptionsError(f"{key!r} is {_kind(value)} ({value!r}), not text")


def check_run_options(options, path) -> None:
    """Raise RunOptionsError naming `path` and the key when options.json cannot be this tool's run."""
    try:
        if not isinstance(options, dict):
            raise RunOptionsError("not a table of options")
        for key in REQUIRED:
            if key not in options:
                raise RunOptionsError(f"lacks {key!r}: not a run of this tool")
        if not isinstance(options["model"], str):
            raise RunOptionsError(f"'model' is {_kind(options['model'])}, not a model's name")
        if options["size"] not in SIZES or isinstance(options["size"], bool):
            raise RunOptionsError(f"'size' is {options['size']!r}, not one of {', '.join(map(str, SIZES))}")
        _whole(options["z_dim"], "z_dim", 0, MOST_NOISE)
        arch = options["arch"]
        if not isinstance(arch, dict) or set(arch) != {"G", "D"}:
            raise RunOptionsError("'arch' is not the nets' constructor arguments ({\"G\": ..., \"D\": ...})")
        _check_net("Generator", arch["G"], "G")
        _check_net("Discriminator", arch["D"], "D")
        _check_conditions(options)
    except RunOptionsError as e:
        raise RunOptionsError(f"{path}: {e}") from None


def _check_conditions(options: dict) -> None:
    groups = options.get("conditions")
    if groups is None:
        return
    try:
        spec = ConditionSpec.from_json(groups, options.get("left_out"))
        if not all(isinstance(t, str) for t in spec.tags):
            raise TypeError("a tag that is not text")
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise RunOptionsError(f"'conditions' is not a condition vocabulary ({type(e).__name__}: {e})") from None
