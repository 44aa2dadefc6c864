"""How a training option is declared, once: a dataclass field whose metadata says how the
command line offers it (help text, flag, group, whether a resume may change it).

`TrainOptions` (train.options) is made of such fields, and so are the options one model
declares on its loss class (`Loss.options`, e.g. pix2pix's L1 weight). From them follow
`train <model> --help`, the options' defaults, options.json, what a resumed run may change,
and the options `train experiment` reads per run spec (train.commands.option_params).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

# The groups of options: the faces trained on, the nets, the objective and how it is optimised,
# and "run": where and how a run runs, not what it trains (two runs that differ only there are
# one configuration, train.eval.spread).
GROUPS = ("data", "nets", "optimiser", "run")


@dataclass(frozen=True)
class Cli:
    """How the command line offers an option. `help` may name a model's default as {name}
    (`--z-dim`'s "[the model's: {z_dim}]"), filled per `train <model>` command."""
    help: str
    group: str
    flag: str = ""            # the command line's name when not the field's (backbone: --arch)
    convention: str = ""      # a shared option of curate.conventions used as it is (DbOption, ...)
    path: bool = False        # the command line reads a Path; the options keep its text
    unset: bool = False       # the command line's default is None (the help says what it means)
    resumable: bool = False   # a resumed run may change it (where and how it runs, where it ends)
    shown: bool = True        # False: recorded in options.json, never on the command line


@dataclass(frozen=True)
class ModelOption:
    """An option one model declares on its loss class: its type and field (default None: the
    model's `defaults` fill it; given to another model, it is refused)."""
    type: str
    field: dataclasses.Field


def option(default: Any = None, help: str = "", group: str = "run", *, factory=None, **kw) -> dataclasses.Field:
    """A TrainOptions field; `shown=False` for what a run or an experiment sets itself."""
    if group not in GROUPS:
        raise ValueError(f"option group {group!r}: one of {', '.join(GROUPS)}")
    extra = {"default_factory": factory} if factory is not None else {"default": default}
    return dataclasses.field(metadata={"cli": Cli(help=help, group=group, **kw)}, **extra)


def model_option(type: str, help: str, group: str = "optimiser") -> ModelOption:
    return ModelOption(type, option(None, help, group))


def cli_of(f: dataclasses.Field) -> Cli:
    return f.metadata["cli"]


def cli_name(f: dataclasses.Field) -> str:
    """The command line's parameter name of a field (backbone: arch)."""
    return cli_of(f).flag or f.name
