"""`train experiment` and `train runs`: thin wrappers over train.experiment / train.run_index.

`train experiment` reads each run spec ("MODEL:LABELS [train options]") with `train MODEL`'s own
parser, so every option means and is checked exactly as there (one definition: TrainOptions'
fields), gathers them into one Plan and calls train.experiment."""

from __future__ import annotations

import json
import shlex
import tomllib
from pathlib import Path
from typing import Annotated, Optional

import typer

from db import DEFAULT_DB, Catalog, CatalogError
from curate.conventions import DbOption, DryRunOption, JsonOption, ProgressOption, make_console, n_option, \
    out_option

from train.app import app, fail
from train.commands.eval import _judge_with_progress, _log, _print_eval, _print_scores, console, whole_epochs
from train.commands.train import parse_train_args, print_refused
from train.data import DataError, RareTagsError
from curate.taggers.classifier import JudgeError
from train.eval.metrics import WeightsError
from train.eval.report import ReportError
from train.estimate import EstimateStopped, estimate_plan
from train.experiment import (Configuration, ExperimentError, ExperimentStopped, Plan, catalog_changed, load_plan,
                              new_folder, run_experiment, save_plan, share_faces)
from train.losses import LOSSES
from train.loop import TrainingStopped
from train.options import RESUMABLE, TrainOptions
from train.plan_checks import check_plan_file, check_seed, movable_paths, refuse_paths, without_paths
from train.run_index import list_runs
from train.runs import RunError
from train.tag_counts import tag_counts_table

# Train options an experiment sets itself: refused inside a run spec or among the options for every run.
NOT_PER_RUN = {"labels": "write MODEL:LABELS", "seed": "give train experiment --seeds",
               "resume": "give train experiment --resume EXPERIMENT", "dry_run": "give train experiment --dry-run",
               "runs_dir": "runs go into the experiment folder", "db": "give train experiment --db",
               "progress": "give train experiment --progress/--no-progress",
               "cache_dir": "give train experiment --cache-dir (for every run)"}
# `train MODEL` defaults that an experiment changes (small and quick, and never refused for a rare tag)
EXPERIMENT_DEFAULTS = {"size": 32, "iters": 2000, "drop_rare": True}
DEFAULT_RUNS = "acgan:manual,acgan:animeface,cgan:manual"   # offline: animeface needs no download
PLAN_KEYS = ("runs", "seeds", "options", "name", "judge_labels", "judge", "n", "judge_epochs")
# --quick: a first look in minutes (steps, judge epochs, generated faces); options given explicitly win
QUICK = {"iters": 200, "judge_epochs": 2, "n": 500, "per_class": 100}


def split_specs(values: list[str]) -> list[str]:
    """--run values -> run specs: a value with options is one spec; one without ("acgan:manual,
    cgan:i2v") may list several, comma-separated."""
    out = []
    for value in values:
        value = value.strip()
        out += [value] if any(c.isspace() for c in value) else [v.strip() for v in value.split(",") if v.strip()]
    return out


def parse_spec(spec: str, shared: list[str], catalog: str, progress: bool):
    """One run spec -> (its TrainOptions values without the seed). Raises ValueError naming it."""
    try:
        head, *args = shlex.split(spec)
    except ValueError as e:
        raise ValueError(f"--run {spec!r}: {e}") from e
    model, _, labels = head.partition(":")
    if model not in LOSSES or not labels:
        raise ValueError(f"--run {spec!r}: start it with MODEL:LABELS, MODEL one of {', '.join(LOSSES)}")
    try:
        parse_train_args(model, shared)
    except ValueError as e:
        raise ValueError(f"{e} (among the train options for every run)") from e
    try:
        values, given, written = parse_train_args(model, shared + args)
    except ValueError as e:
        raise ValueError(f"--run {spec!r}: {e}") from e
    for name in sorted(written & set(NOT_PER_RUN)):
        raise ValueError(f"--run {spec!r}: --{name.replace('_', '-')} is the experiment's: {NOT_PER_RUN[name]}")
    for key, value in EXPERIMENT_DEFAULTS.items():
        if key not in given and not (key == "iters" and "epochs" in given):
            values[key] = value
    if values["iters"] is not None:       # a metrics row and diagnostics a few times even in short runs
        values["log_every"] = given.get("log_every", max(1, min(50, values["iters"] // 40)))
        values["diag_every"] = given.get("diag_every", max(1, min(200, values["iters"] // 10)))
    values.update(labels=labels, catalog=catalog, progress=progress)
    try:
        options = TrainOptions(**values).to_dict()
    except ValueError as e:
        raise ValueError(f"--run {spec!r}: {e}") from e
    options.pop("seed")
    return Configuration(spec, options)


def read_plan_file(path: Path) -> dict:
    """A plan file (JSON, or TOML by its suffix) with the keys of PLAN_KEYS; or an experiment's
    plan.json, to repeat that experiment."""
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(path.read_text())
        else:
            data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"--plan {path}: no such file") from None
    except (ValueError, UnicodeDecodeError) as e:       # JSON and TOML errors are ValueErrors
        raise ValueError(f"--plan {path}: not a valid plan file ({e})") from e
    except RecursionError:
        raise ValueError(f"--plan {path}: nested too deeply to be a plan") from None
    if not isinstance(data, dict):
        raise ValueError(f"--plan {path}: not a table of {', '.join(PLAN_KEYS)}")
    if "configurations" in data:           # an experiment's own plan.json
        configurations = data["configurations"]
        if not isinstance(configurations, list) or not all(isinstance(c, dict) for c in configurations):
            raise ValueError(f"--plan {path}: 'configurations' is not a list of configurations")
        data = {"runs": [c.get("spec") for c in configurations], "seeds": data.get("seeds"),
                "options": data.get("train_args", []), "name": data.get("name"),
                "judge_labels": data.get("judge_labels"), "judge": data.get("judge_file"), "n": data.get("n"),
                "judge_epochs": data.get("judge_epochs")}
    unknown = [k for k in data if k not in PLAN_KEYS]
    if unknown:
        raise ValueError(f"--plan {path}: unknown key {unknown[0]!r} (known: {', '.join(PLAN_KEYS)})")
    check_plan_file(data, f"--plan {path}")
    runs = data.get("runs") or []
    for spec in [runs] if isinstance(runs, str) else runs:
        refuse_paths(spec.split(), f"--plan {path}: run {spec!r}")
    options = data.get("options") or []
    refuse_paths(options.split() if isinstance(options, str) else options, f"--plan {path}: 'options'")
    return data


def parse_seeds(text) -> list[int]:
    items = text if isinstance(text, list) else str(text).split(",")
    try:
        seeds = [int(str(s).strip()) for s in items if str(s).strip()]
    except ValueError:
        raise ValueError(f"--seeds {text!r}: write whole numbers, comma-separated (e.g. 0,1,2)") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds {text!r}: give at least one seed, each once")
    for seed in seeds:
        check_seed(seed, "--seeds")
    return seeds


def _given(ctx: typer.Context, name: str) -> bool:
    return getattr(ctx.get_parameter_source(name), "name", None) == "COMMANDLINE"   # typer vendors click


def _print_shared(plan) -> None:
    shared = plan.shared
    left_out = set(shared.get("drop_tags", []))
    sources = ", ".join(repr(s) for s in shared.get("counts", {}))
    console.print(tag_counts_table(f"{shared.get('faces')} faces for every run (labelled alike by {sources})",
                                   shared.get("counts", {}),
                                   {t: "left out of every run" for t in left_out}))
    if left_out:
        console.print(f"left out of every run (too few faces in some source): {', '.join(sorted(left_out))}",
                      style="yellow")
    if shared.get("unlabelled_faces"):
        console.print(f"left out of every run: {shared['unlabelled_faces']} faces that not every source labels "
                      f"with every exclusive group", style="yellow")
    console.print(f"{len(plan.configurations)} configurations x {len(plan.seeds)} seed(s) "
                  f"({', '.join(map(str, plan.seeds))}):")
    for c in plan.configurations:
        console.print(f"  {c.spec}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def experiment(
    ctx: typer.Context,
    db: DbOption = Path(DEFAULT_DB),
    run: Annotated[Optional[list[str]], typer.Option("--run", "--runs", help="A run spec: \"MODEL:LABELS [train "
                                                     "options]\", repeat it for more; runs without options may "
                                                     "be listed comma-separated. [" + DEFAULT_RUNS + "]")] = None,
    plan_file: Annotated[Optional[Path], typer.Option("--plan", help="A plan file (JSON or TOML) with runs, "
                                                      "seeds, options, name, judge_labels, judge, n; or an "
                                                      "experiment's plan.json to repeat it.")] = None,
    seeds: Annotated[Optional[str], typer.Option(help="Seeds, comma-separated: every run spec is trained once "
                                                 "per seed [0].")] = None,
    judge_labels: Annotated[Optional[str], typer.Option(help="Label source of the judge [manual].")] = None,
    judge_file: Annotated[Optional[Path], typer.Option("--judge", help="Score with this judge file instead of "
                                                       "training one into the experiment.")] = None,
    n: Annotated[Optional[int], n_option("Generated faces per evaluation [5000].")] = None,
    name: Annotated[Optional[str], typer.Option(help="Name of the experiment folder [its models].")] = None,
    out: Annotated[Optional[Path], out_option("The experiment folder to create [experiments/NNNNN-NAME].")]
    = None,
    resume: Annotated[Optional[Path], typer.Option(help="Continue this experiment folder: finished runs are "
                                                   "reused, interrupted ones resumed exactly, the rest "
                                                   "trained.")] = None,
    inception_weights: Annotated[Optional[Path], typer.Option(help="InceptionV3 weights.")] = None,
    judge_epochs: Annotated[Optional[float], typer.Option(min=1, max=1000, help="Epochs of the judge's "
                                                          "training, a whole number [10].")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="A first look in minutes: --iters "
                                        f"{QUICK['iters']} --judge-epochs {QUICK['judge_epochs']} -n {QUICK['n']} "
                                        f"and {QUICK['per_class']} faces per class in the evaluation; options "
                                        "given explicitly win.")] = False,
    progress: ProgressOption = True,
    dry_run: DryRunOption = False,
) -> None:
    """The whole study in one command: a judge, every run spec once per seed, each evaluated, one report.

    \b
    A run spec is a model, a label source and, optionally, `train MODEL`
    options for that run alone:
      train experiment --seeds 0,1,2 --size 32 --iters 4000 \\
        --run acgan:manual \\
        --run "acgan:manual --diffaug translation,cutout" \\
        --run "cgan-pd:manual --diffaug translation,cutout"

    \b
    Every other option (--size, --iters, --device, --deep, --precision,
    --diffaug, --sn, --loss ...) is a `train MODEL` option for every run, read
    and checked as `train MODEL` does (see `train acgan --help`); a run's own
    options win. Experiment defaults: --size 32 --iters 2000 --drop-rare.

    Every run trains on the same faces and classes: the faces every label source labels alike, and a tag too
    rare in any source is left out of every run (printed, and recorded in each run's options.json and
    log.txt). Everything goes into a new folder experiments/NNNNN-NAME (plan.json, judge.pt, runs/,
    report/); --resume FOLDER continues it (finished runs reused, interrupted ones resumed exactly) and
    rebuilds the report from scratch. --plan FILE reads the runs, seeds and options from a JSON or TOML
    file, or repeats an experiment from its plan.json."""
    folder = resume
    try:
        if resume is not None:
            plan, overrides = _resumed_plan(ctx, resume, seeds, db, progress)
        else:
            judge_epochs = whole_epochs(judge_epochs, "--judge-epochs") if judge_epochs is not None else None
            asked = dict(plan_file=plan_file, run=run, seeds=seeds, judge_labels=judge_labels, judge_file=judge_file,
                         n=n, name=name, inception_weights=inception_weights, judge_epochs=judge_epochs, quick=quick)
            plan, overrides = _new_plan(ctx, asked, db, progress)
        _print_shared(plan)
        if resume is None:        # a resumed one reuses what is done: the whole plan's time would mislead
            console.print(str(estimate_plan(plan, overrides)), markup=False)
        if dry_run:
            typer.echo(json.dumps(plan.to_json(), indent=2))
            return
        if folder is None:
            if out is not None and out.exists() and any(out.iterdir()):
                hint = f": continue it with --resume {out}" if (out / "plan.json").exists() else ""
                raise ValueError(f"{out} is not empty{hint}; an experiment starts in a new or empty folder")
            folder = out or new_folder("experiments", plan.name)
            folder.mkdir(parents=True, exist_ok=True)
        save_plan(folder, plan)
        console.print(f"experiment folder: {folder}")
        page = run_experiment(folder, plan, console=console,
                              train_judge=lambda cat, opts: _trained_judge(cat, opts, progress),
                              on_eval=_print_eval, log=_log, overrides=overrides)
    except RareTagsError as e:
        print_refused(console, e, e.source)
        fail(f"{e.source!r}: {e}")
    except ExperimentStopped as e:
        fail(f"{e}; continue with `train experiment --resume {folder}`", code=130)   # stopped by its user
    except EstimateStopped as e:
        fail(str(e), code=130)
    except TrainingStopped as e:
        fail(f"training stopped: {e}", code=1)
    except (ExperimentError, RunError, JudgeError, WeightsError, CatalogError, ReportError, DataError,
            ValueError) as e:
        fail(str(e))
    typer.echo(str(page))


def _resumed_plan(ctx: typer.Context, folder: Path, seeds: Optional[str], db: Path, progress: bool):
    """The plan of the experiment in `folder`, with what this command may change: where and how runs
    run (the overrides), more or other seeds, the catalog's path. Anything else is refused."""
    plan = load_plan(folder)
    clash = [f"--{p.replace('_file', '').replace('_', '-')}" for p in
             ("run", "plan_file", "judge_labels", "judge_file", "n", "name", "out", "inception_weights",
              "judge_epochs", "quick")
             if _given(ctx, p)]
    _, given, written = parse_train_args(plan.configurations[0].options["model"], list(ctx.args))
    clash += [f"--{w.replace('_', '-')}" for w in sorted(written) if w not in RESUMABLE or w in ("iters", "epochs")]
    if clash:
        raise ValueError(f"an experiment keeps its plan ({folder / 'plan.json'}): {', '.join(clash)} cannot change "
                         f"it (--seeds, --db, --device, --precision, --progress can). Start a new one with --plan "
                         f"{folder / 'plan.json'}")
    overrides = {k: v for k, v in given.items() if k in RESUMABLE and k != "catalog"}
    overrides["progress"] = progress
    if seeds is not None:
        plan.seeds = parse_seeds(seeds)
    if _given(ctx, "db"):
        plan.catalog = str(db)
    if (why := catalog_changed(plan)) is not None:
        console.print(f"warning: {why}", style="yellow")
    return plan, overrides


def _new_plan(ctx: typer.Context, asked: dict, db: Path, progress: bool):
    """A plan from the command line (and a plan file), every run spec read by its model's parser,
    with the faces and tags shared by every run decided on the catalog; and the options that say
    where every run's files go (--cache-dir), applied to the runs, never written in the plan."""
    from_file = read_plan_file(asked["plan_file"]) if asked["plan_file"] else {}
    options = from_file.get("options", [])
    shared = (shlex.split(options) if isinstance(options, str) else list(options)) + without_paths(list(ctx.args))
    quick = asked["quick"]
    if quick and not any(a.split("=")[0] in ("--iters", "--epochs") for a in shared):
        shared = ["--iters", str(QUICK["iters"])] + shared      # first: a run spec's own --iters wins
    configurations = [parse_spec(spec, shared, str(db), progress)
                      for spec in split_specs(asked["run"] or from_file.get("runs") or [DEFAULT_RUNS])]
    seen: dict[str, str] = {}
    for c in configurations:
        same = seen.setdefault(json.dumps(c.options, sort_keys=True), c.spec)
        if same != c.spec:
            raise ValueError(f"--run {same!r} and --run {c.spec!r} are the same configuration")
    judge = asked["judge_file"] or from_file.get("judge")
    seeds, name = asked["seeds"], asked["name"]
    plan = Plan(catalog=str(db), configurations=configurations,
                seeds=parse_seeds(seeds if seeds is not None else from_file.get("seeds", "0")),
                name=name or from_file.get("name") or "-".join(dict.fromkeys(c.options["model"]
                                                                             for c in configurations)),
                train_args=shared, judge_labels=asked["judge_labels"] or from_file.get("judge_labels") or "manual",
                judge_file=str(judge) if judge else None,
                n=asked["n"] or from_file.get("n") or (QUICK["n"] if quick else 5000),
                per_class=QUICK["per_class"] if quick else 500,
                judge_epochs=asked["judge_epochs"] or from_file.get("judge_epochs") or (
                    QUICK["judge_epochs"] if quick else 10),
                inception_weights=str(asked["inception_weights"]) if asked["inception_weights"] else None)
    if plan.n < 2:
        raise ValueError("-n must be at least 2")
    with Catalog(db, create=False) as catalog:
        known = {r["source"] for r in catalog.label_sources()}
        if plan.judge_file is None and plan.judge_labels not in known:
            raise ValueError(f"{db} has no labels from {plan.judge_labels!r} for the judge (known: "
                             f"{', '.join(sorted(known)) or 'none'})")
        share_faces(catalog, plan)
    return plan, movable_paths(list(ctx.args))


def _trained_judge(catalog, options, progress: bool):
    judge = _judge_with_progress(catalog, options, progress)
    _print_scores(judge)
    return judge


@app.command(name="runs")
def runs_(
    runs_dir: Annotated[Path, typer.Option(help="Where to look for run folders (also in subfolders, so "
                                           "`experiments` lists every experiment's runs).")] = Path("runs"),
    as_json: JsonOption = False,
) -> None:
    """List run folders: model, labels, seed, the options that depart from the defaults, steps done of
    total, and the judge's figures when the run was evaluated."""
    if not runs_dir.is_dir():
        fail(f"{runs_dir}: no such folder")
    rows, problems = list_runs(runs_dir)
    for line in problems:
        console.print(f"skipped {line}", style="yellow")      # stderr: the list itself goes to stdout
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    out = make_console()      # two lines a run: readable in 80 columns, nothing cut
    out.print(f"{len(rows)} runs in {runs_dir}")
    for r in rows:
        acc = ", ".join(f"{g} {100 * a:.1f}%" for g, a in (r["judge_accuracy"] or {}).items())
        figures = (f"judge acc. {acc}, judge FID {r['judge_fid']:.2f}" if r["judge_fid"] is not None
                   else "not evaluated")
        steps = f"{r['steps']}/{r['total_steps']} steps" + ("" if r["status"] == "done" else f" ({r['status']})")
        out.print(r["name"], style="bold")
        out.print(f"  {r['model']}:{r['labels'] or '-'}  seed {r['seed']}  {r['size']} px  {steps}  {figures}")
        if r["options"]:
            out.print(f"  {r['options']}")
