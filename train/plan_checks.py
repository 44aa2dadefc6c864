"""A plan checked whole before anything runs: every key of a plan file (or an experiment's
plan.json) of its type and range, the seeds included, and no option in it that says where files
go. A plan is a file that may come from someone else: where the experiment writes (--cache-dir)
is the command line's to say, never the plan's. Each refusal is one line naming the key.
"""

from __future__ import annotations

from train.option_fields import cli_name, cli_of
from train.options import FIELDS, TrainOptions

MAX_SEED = 2 ** 32 - 1          # every RNG of the project takes it, with room for the seed + k it derives
MAX_N = 1_000_000               # generated faces per evaluation
MAX_JUDGE_EPOCHS = 1000
# the options that say where files go (the metadata's paths): given on the command line, never in a plan
PATH_FLAGS = {"--" + cli_name(f).replace("_", "-"): name for name, f in FIELDS.items() if cli_of(f).path}
# of them, those the command line gives for every run (not the catalog: --db; not --runs-dir: the experiment's)
MOVABLE = {flag: name for flag, name in PATH_FLAGS.items() if cli_of(FIELDS[name]).resumable and name != "catalog"}


class PlanError(ValueError):
    """A plan that is not of the right shape: one line naming the key."""


def check_seed(seed, where: str) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise PlanError(f"{where}: seed {seed!r} is not a whole number from 0 to {MAX_SEED}")
    return seed


def _text_or_list(value, key: str, where: str) -> None:
    if isinstance(value, str):
        return
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PlanError(f"{where}: {key!r} is {type(value).__name__}: write text or a list of texts")


def _whole(value, key: str, where: str, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise PlanError(f"{where}: {key!r} is {value!r}, not a whole number from {low} to {high}")


def check_plan_file(data: dict, where: str) -> None:
    """The keys of a plan file, each of its type and range (None: left out)."""
    for key in ("runs", "options"):
        if data.get(key) is not None:
            _text_or_list(data[key], key, where)
    for key in ("name", "judge_labels", "judge"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise PlanError(f"{where}: {key!r} is {type(data[key]).__name__}, not text")
    seeds = data.get("seeds")
    if seeds is not None and not isinstance(seeds, (str, int, list)) or isinstance(seeds, bool):
        raise PlanError(f"{where}: 'seeds' is {type(seeds).__name__}: write a list of whole numbers")
    for seed in seeds if isinstance(seeds, list) else [seeds] if isinstance(seeds, int) else []:
        check_seed(seed, f"{where}: 'seeds'")
    if data.get("n") is not None:
        _whole(data["n"], "n", where, 2, MAX_N)
    if data.get("judge_epochs") is not None:
        _whole(data["judge_epochs"], "judge_epochs", where, 1, MAX_JUDGE_EPOCHS)


def refuse_paths(args: list[str], where: str) -> None:
    """Options of a plan may not say where files go: refused, naming the option."""
    for arg in args:
        flag = arg.split("=", 1)[0]
        if flag in PATH_FLAGS:
            raise PlanError(f"{where} sets {flag}: a plan may not say where files go; give {flag} on the "
                            "command line")


def movable_paths(args: list[str]) -> dict:
    """The command line's options that say where every run's files go (`--cache-dir X` or
    `--cache-dir=X`), under TrainOptions' names: applied to the runs, never written in the plan."""
    found = {}
    for i, arg in enumerate(args):
        flag, eq, value = arg.partition("=")
        if flag in MOVABLE and (eq or i + 1 < len(args)):
            found[MOVABLE[flag]] = value if eq else args[i + 1]
    return found


def without_paths(args: list[str]) -> list[str]:
    """The options without those of `movable_paths`."""
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in MOVABLE:
            skip = True
        elif arg.split("=", 1)[0] not in MOVABLE:
            out.append(arg)
    return out


def check_saved_plan(plan, where: str) -> None:
    """An experiment's plan.json, read back: the seeds and sizes in range, every configuration's
    options of their types (as a run would take them), and none that says where files go."""
    for seed in plan.seeds if isinstance(plan.seeds, list) else [plan.seeds]:
        check_seed(seed, f"{where}: 'seeds'")
    _whole(plan.n, "n", where, 2, MAX_N)
    _whole(plan.per_class, "per_class", where, 1, MAX_N)
    _whole(plan.judge_epochs, "judge_epochs", where, 1, MAX_JUDGE_EPOCHS)
    _text_or_list(plan.train_args, "train_args", where)
    refuse_paths(list(plan.train_args), f"{where}: 'train_args'")
    for c in plan.configurations:
        if not isinstance(c.spec, str) or not isinstance(c.options, dict):
            raise PlanError(f"{where}: a configuration is not a spec and its options")
        for name in PATH_FLAGS.values():
            if name in c.options and name != "catalog" and c.options[name] != FIELDS[name].default:
                raise PlanError(f"{where}: configuration {c.spec!r} sets {name!r}: a plan may not say where "
                                f"files go; give --{cli_name(FIELDS[name]).replace('_', '-')} on the command line")
        try:
            TrainOptions.from_dict({**c.options, "seed": 0})
        except (ValueError, TypeError) as e:
            raise PlanError(f"{where}: configuration {c.spec!r}: {e}") from None
