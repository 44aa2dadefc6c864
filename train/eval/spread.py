"""Runs grouped by configuration (their options but the seed), and what differs between
configurations by more than the spread over seeds.

A configuration is every option that changes what is trained (model, labels, size, budget,
nets, losses, augmentation), taken from each run's options.json, and the faces and classes it
trained on as the run recorded them (so `--drop-rare` by hand and an experiment's shared
`drop_tags` are one configuration when they left out the same tags); the seed and what only
says where or how it ran (device, precision, folders, logging) are left out. Runs made on
different machines, by `train experiment` or by hand, group together when they trained the
same thing.

The rule, written once here and stated in the report: per metric, the mean and the sample
standard deviation (n-1) over a configuration's seeds; two configurations differ by more
than the spread when both have at least 2 seeds and the intervals mean ± std do not overlap.
"""

from __future__ import annotations

import dataclasses
import json
import math

from train.losses import loss_class
from train.options import TrainOptions, flag, in_group

# Options that say where or how a run ran, not what it trained (the seed among them).
NOT_CONFIGURATION = in_group("run")
# rules whose outcome a run folder records (its faces and classes)
DATA_RULES = ("common", "same_faces", "min_per_tag", "drop_rare", "drop_tags")
RULE = ("mean ± sample standard deviation over seeds; two configurations differ by more than the spread when "
        "both have at least 2 seeds and their intervals mean ± std do not overlap")


def _field_default(f: dataclasses.Field):
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def settings(options: dict) -> dict:
    """A run's options but NOT_CONFIGURATION, with the defaults of today's code filled in for
    options an older run folder does not record."""
    model_defaults = loss_class(options["model"]).defaults
    out = {}
    for f in dataclasses.fields(TrainOptions):
        if f.name not in NOT_CONFIGURATION:
            out[f.name] = options.get(f.name, model_defaults.get(f.name, _field_default(f)))
    return out


def settings_key(options: dict) -> str:
    """The same options, the same key: how an experiment finds the run it planned."""
    return json.dumps(settings(options), sort_keys=True)


def configuration(options: dict) -> dict:
    """What a run trained: its settings, with the rules that select faces and tags replaced by
    the faces and classes they selected, where the run folder records them."""
    out = settings(options)
    if "faces" in options:
        for rule in DATA_RULES:
            del out[rule]
        out["faces"] = options["faces"]
        out["classes"] = [t for g in options.get("conditions") or [] for t in g["tags"]]
    return out


def configuration_key(options: dict) -> str:
    return json.dumps(configuration(options), sort_keys=True)


def option_text(key: str, value) -> str:
    """An option as `train` spells it; the faces a run trained on as a count."""
    if key == "faces":
        return f"{value} faces"
    if isinstance(value, bool):
        return flag(key) if value else "--no-" + flag(key)[2:]
    if isinstance(value, list):
        value = ",".join(map(str, value)) or "none"
    return f"{flag(key)} {'none' if value is None or value == '' else value}"


@dataclasses.dataclass
class Group:
    key: str
    options: dict                    # the configuration
    members: list[int]               # indices of its runs, in the order given
    seeds: list[int]
    name: str = ""


def applies(key: str, options: dict) -> bool:
    """An option the configuration sets: not None (the model's default, or an option of another
    model, as pix2pix's for a GAN painting from noise)."""
    return options.get(key) is not None


def at_default(key: str, options: dict) -> bool:
    """An option the configuration leaves at its model's default: `train MODEL` without it trains the same."""
    field = next((f for f in dataclasses.fields(TrainOptions) if f.name == key), None)
    if field is None:
        return False
    return options.get(key) == loss_class(options["model"]).defaults.get(key, _field_default(field))


def short_name(options: dict) -> str:
    """`model · labels` (or `model · unconditional`)."""
    return f"{options['model']} · {options.get('labels') or 'unconditional'}"


def full_options(options: dict) -> str:
    """Every option the configuration sets, as `train` spells them (none left unset)."""
    return " ".join(option_text(k, v) for k, v in options.items()
                    if k not in ("model", "labels", "classes") and applies(k, options))


def group_runs(options: list[dict]) -> list[Group]:
    """Runs with the same configuration, in order of first appearance; each named by its model,
    label source and the options that differ between the groups where it sets them away from its
    model's defaults (as `train MODEL` would be given them: `tacgan`, not `tacgan --lecam 0.0`)."""
    groups: dict[str, Group] = {}
    for i, opts in enumerate(options):
        key = configuration_key(opts)
        g = groups.setdefault(key, Group(key, configuration(opts), [], []))
        g.members.append(i)
        g.seeds.append(int(opts.get("seed", 0)))
    out = list(groups.values())
    differing = [k for k in out[0].options if k not in ("model", "labels")
                 and len({json.dumps(g.options[k]) for g in out}) > 1] if out else []
    every_class = [t for g in out for t in g.options.get("classes", [])]
    for g in out:
        words = [option_text(k, g.options[k]) for k in differing
                 if k != "classes" and applies(k, g.options) and not at_default(k, g.options)]
        if "classes" in differing:
            missing = [t for t in dict.fromkeys(every_class) if t not in g.options["classes"]]
            words.append(f"without {', '.join(missing)}" if missing else "every class")
        g.name = " ".join([short_name(g.options)] + words)
    return out


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None for one value)."""
    m = sum(values) / len(values)
    if len(values) < 2:
        return m, None
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def beyond_spread(a: list[float], b: list[float]) -> bool:
    """The rule: both have >= 2 values and the intervals mean ± std do not overlap."""
    if len(a) < 2 or len(b) < 2:
        return False
    (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
    return ma + sa < mb - sb or mb + sb < ma - sa


def seed_values(groups: list[Group], per_run: list[list[tuple[str, float | None, str]]]
                ) -> list[dict[str, list[float]]]:
    """Per group: metric -> the finite values of its seeds (`per_run`: each run's (metric, value, kind))."""
    names = [name for name, _, _ in per_run[0]]
    return [{m: [v for v in (dict((n, v) for n, v, _ in per_run[i]).get(m) for i in g.members)
                 if v is not None and math.isfinite(v)] for m in names} for g in groups]


def summarise(groups: list[Group], per_run: list[list[tuple[str, float | None, str]]], fmt
              ) -> tuple[list[list[str]], list[list[str]]]:
    """The table of configurations (mean ± std per metric, `*` where it differs from the first
    configuration by more than the spread) and the list of every pair that does. `per_run`:
    each run's (metric, value, kind); `fmt(value, kind)` writes a figure."""
    names = [name for name, _, _ in per_run[0]]
    kinds = {name: kind for name, _, kind in per_run[0]}
    values = seed_values(groups, per_run)
    table = [["configuration", "seeds"] + names]
    for k, (g, vals) in enumerate(zip(groups, values)):
        row = [g.name, f"{len(g.members)} ({','.join(map(str, g.seeds))})"]
        for m in names:
            if not vals[m]:
                row.append("–")
                continue
            mean, std = mean_std(vals[m])
            cell = fmt(mean, kinds[m]) + (f" ± {fmt(std, kinds[m])}" if std is not None else "")
            row.append(cell + (" *" if k and beyond_spread(vals[m], values[0][m]) else ""))
        table.append(row)
    pairs = [["metric", "lower", "higher"]]
    for m in names:
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                a, b = values[i][m], values[j][m]
                if beyond_spread(a, b):
                    lo, hi = (i, j) if mean_std(a)[0] < mean_std(b)[0] else (j, i)
                    pairs.append([m] + [f"{groups[k].name} ({fmt(mean_std(values[k][m])[0], kinds[m])})"
                                        for k in (lo, hi)])
    return table, pairs
