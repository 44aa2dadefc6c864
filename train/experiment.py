"""`train experiment`: configurations, each trained once per seed with the same budget, faces and
classes, scored by one judge and compared in one report; an interrupted experiment resumes.

The experiment folder, `experiments/NNNNN-<name>/`:

    plan.json   what the experiment is: the catalog, the seeds, every configuration (its run
                spec as written and its full training options), the options given for every run,
                the judge, the evaluation settings, and what was decided once for all runs (the
                tags left out, the faces); `train experiment --resume FOLDER` reads it
    judge.pt    the judge that scores every run (absent when the plan names a judge file)
    runs/       one run folder per configuration and seed, as `train` makes them
    report/     index.html, report.md, summary.json and pictures, rebuilt from scratch each time
                the experiment completes: never mixed with an older report

Resuming: a run whose folder holds its final generator is reused; one with a checkpoint is
resumed exactly (as `train MODEL --resume`); one without a checkpoint is started again; the
rest are trained. A run is matched to its configuration and seed by its options.json
(train.eval.spread.settings). Evaluations made with the experiment's judge and settings after
the run's last step are reused.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from db import Catalog

from train.data import RareTagsError, select_faces
from train.eval.evaluate import read_eval
from train.eval.score import score_run
from curate.taggers.classifier import JudgeOptions
from train.loop import train
from train.options import TrainOptions, resume_options
from train.plan_checks import PlanError, check_saved_plan
from train.eval.report import build_report
from train.run_index import steps
from train.runs import Run, RunError, load_run, numbered_dir, read_json, safe_slug
from train.eval.spread import settings_key
from train.tag_counts import merged_counts

PLAN, JUDGE, RUNS, REPORT = "plan.json", "judge.pt", "runs", "report"
PLAN_FORMAT = 1


class ExperimentError(Exception):
    """A plan that cannot run, or a folder that is not an experiment."""


class ExperimentStopped(Exception):
    """A run stopped before its last step (Ctrl-C): the experiment can be resumed."""


@dataclass
class Configuration:
    spec: str                  # as written: "cgan-pd:manual --diffaug translation,cutout"
    options: dict              # every TrainOptions value but the seed (and the run folder's place)


@dataclass
class Plan:
    catalog: str
    configurations: list[Configuration]
    seeds: list[int]
    name: str = "experiment"
    train_args: list[str] = field(default_factory=list)   # the train options given for every run
    judge_labels: str = "manual"
    judge_file: str | None = None        # a judge given by the user; None: the folder's judge.pt
    n: int = 5000                        # generated faces per evaluation
    per_class: int = 500
    judge_epochs: int = 10               # the judge's training (plans before --judge-epochs: 10)
    eval_seed: int = 0
    inception_weights: str | None = None
    shared: dict = field(default_factory=dict)   # decided once for every run: tags left out, faces

    def to_json(self) -> dict:
        return {"format": PLAN_FORMAT, **asdict(self)}

    @classmethod
    def from_json(cls, data: dict, where: str) -> "Plan":
        if not isinstance(data, dict) or data.get("format") != PLAN_FORMAT:
            raise ExperimentError(f"{where} is not an experiment plan of this program (format {PLAN_FORMAT})")
        try:
            data = {k: v for k, v in data.items() if k != "format"}
            data["configurations"] = [Configuration(**c) for c in data["configurations"]]
            return cls(**data)
        except (KeyError, TypeError) as e:
            raise ExperimentError(f"{where} is not a complete experiment plan ({e})") from e

    def run_options(self, config: Configuration, seed: int, folder: Path, overrides: dict) -> TrainOptions:
        """The options of one run: its configuration's, this seed, in this folder."""
        return TrainOptions.from_dict({**config.options, **overrides, "seed": seed, "runs_dir": str(folder / RUNS),
                                       "experiment": str(folder)})


# -- the same faces and classes for every run ---------------------------------------------------------

def share_faces(catalog: Catalog, plan: Plan) -> None:
    """Make every configuration train on the same faces and classes, whatever its label source:
    each is given the other sources as `common` with `same_faces` (a face every source labels with
    every exclusive group), and one set of tags to leave out for all (`drop_tags`): a tag too rare
    in any source is left out of every run, until no source has a rare tag left. Records the
    outcome in `plan.shared`. Raises RareTagsError (with `.source`) where a run may not drop tags,
    ExperimentError where the runs would still differ."""
    sources = list(dict.fromkeys(c.options["labels"] for c in plan.configurations if c.options.get("labels")))
    for c in plan.configurations:
        c.options.update(common=[s for s in sources if s != c.options.get("labels")], same_faces=True)
    drop: set[str] = set()
    while True:
        selections = []
        for c in plan.configurations:
            try:
                selections.append(select_faces(catalog, TrainOptions.from_dict({**c.options,
                                                                                "drop_tags": sorted(drop)})))
            except RareTagsError as e:
                e.source = c.options.get("labels")
                raise
        more = drop | {t for s in selections for tags in s.left_out.values() for t in tags}
        if more == drop:
            break
        drop = more
    sizes = {c.spec: len(s.ids) for c, s in zip(plan.configurations, selections)}
    if len(set(sizes.values())) > 1 or len({tuple(s.ids) for s in selections}) > 1:
        raise ExperimentError("the runs of an experiment train on the same faces, but these select different ones: "
                              + ", ".join(f"{spec!r} {n}" for spec, n in sizes.items()) + " (give every run the "
                              "same --attrs and --min-prob; unconditional models train on every face a source labels)")
    for c in plan.configurations:
        c.options["drop_tags"] = sorted(drop)
    per_source = {}
    for c, s in zip(plan.configurations, selections):
        per_source.setdefault(c.options.get("labels") or "-", merged_counts(s.counts, s.left_out))
    plan.shared = {"faces": len(selections[0].ids), "drop_tags": sorted(drop), "counts": per_source,
                   "unlabelled_faces": max(s.unlabelled for s in selections),
                   "catalog_fingerprint": catalog.content_fingerprint()}


def catalog_changed(plan: Plan) -> str | None:
    """Why the runs still to train may not see the faces the finished ones saw, or None."""
    with Catalog(plan.catalog, create=False) as catalog:
        now = catalog.content_fingerprint()
    then = plan.shared.get("catalog_fingerprint")
    return (f"{plan.catalog} changed since the experiment began (fingerprint {then} -> {now}): runs trained from "
            f"now on read its new content") if then and now != then else None


# -- the folder ----------------------------------------------------------------------------------

def new_folder(root: str | Path, name: str) -> Path:
    return numbered_dir(root, lambda number: f"{number:05d}-{safe_slug(name, 'experiment')}")


def save_plan(folder: Path, plan: Plan) -> None:
    tmp = folder / (PLAN + ".part")
    tmp.write_text(json.dumps(plan.to_json(), indent=2))
    tmp.replace(folder / PLAN)


def load_plan(folder: str | Path) -> Plan:
    """The experiment's plan.json, checked whole (train.plan_checks) before anything runs."""
    path = Path(folder) / PLAN
    try:
        data = read_json(path, f"{folder} is not an experiment folder (no {PLAN})", ExperimentError)
    except RecursionError:
        raise ExperimentError(f"{path} is nested too deeply to be an experiment plan") from None
    plan = Plan.from_json(data, str(path))
    try:
        check_saved_plan(plan, str(path))
    except PlanError as e:
        raise ExperimentError(str(e)) from None
    return plan


def judge_path(folder: Path, plan: Plan) -> Path:
    return Path(plan.judge_file) if plan.judge_file else folder / JUDGE


def experiment_judge(run: Run) -> tuple[Path, str] | None:
    """The judge of the experiment a run belongs to: the folder that holds it, or the one its
    options.json names. (path, which experiment) or None."""
    folders = [run.dir.parent.parent] + ([Path(run.options["experiment"])] if run.options.get("experiment") else [])
    for folder in folders:
        try:
            plan = load_plan(folder)
        except ExperimentError:
            continue
        path = judge_path(folder, plan)
        if path.is_file():
            return path, f"the judge of experiment {folder}"
    return None


# -- running it ----------------------------------------------------------------------------------

def find_run(opts: TrainOptions) -> Run | None:
    """The run folder under opts.runs_dir trained with these options and seed: the furthest along."""
    runs_dir, key = Path(opts.runs_dir), settings_key(opts.to_dict())
    found = []
    for path in sorted(runs_dir.iterdir()) if runs_dir.is_dir() else []:
        try:
            run = load_run(path)
        except RunError:
            continue
        if run.options.get("seed") == opts.seed and settings_key(run.options) == key:
            found.append(run)
    return max(found, key=lambda r: ((r.dir / "G_ema.pt").exists(), steps(r)[0]), default=None)


def train_or_resume(opts: TrainOptions, overrides: dict, console) -> Path:
    """One run of the plan: reused when finished, resumed exactly when interrupted, else trained."""
    say = (lambda text: console.print(text, markup=False)) if console is not None else print
    run = find_run(opts)
    if run is not None:
        done, total = steps(run)
        if (run.dir / "G_ema.pt").exists() and done >= total:
            say(f"{run.dir.name}: finished before ({done} steps), reused")
            return run.dir
        if run.checkpoints():
            say(f"{run.dir.name}: resuming at step {done} of {total}")
            resumed, _ = resume_options(run.options, overrides)
            run_dir = train(resumed, resume=run.dir, console=console)
        else:
            say(f"{run.dir.name}: stopped before its first checkpoint; training it again")
            shutil.rmtree(run.dir)
            run = None
    if run is None:
        say(f"training {opts.model} on {opts.labels!r} labels, seed {opts.seed}, {opts.iters or opts.epochs} "
            f"{'steps' if opts.iters else 'epochs'}")
        run_dir = train(opts, console=console)
    run_dir = Path(run_dir)
    if not (run_dir / "G_ema.pt").exists():
        done, total = steps(load_run(run_dir))
        raise ExperimentStopped(f"{run_dir} stopped at step {done} of {total}")
    return run_dir


def evaluation_is_current(run_dir: Path, judge: Path, plan: Plan) -> bool:
    ev = read_eval(run_dir)
    if ev is None or ev.get("n") != plan.n or ev.get("seed") != plan.eval_seed:
        return False
    try:
        same_judge = Path(ev["judge"].get("path", "")).resolve() == judge.resolve()
    except OSError:
        return False
    return same_judge and (run_dir / "eval.json").stat().st_mtime >= (run_dir / "G_ema.pt").stat().st_mtime


def run_experiment(folder: Path, plan: Plan, console=None, train_judge=None, on_eval=None, log=print,
                   overrides: dict | None = None) -> Path:
    """Judge, every run (seed by seed), every evaluation, then the report; returns the report page.
    `train_judge(catalog, JudgeOptions)` trains the judge (with a progress bar in the CLI);
    `on_eval(result)` shows an evaluation; `overrides`: where and how runs run (device, precision,
    progress)."""
    overrides = overrides or {}
    judge = judge_path(folder, plan)
    with Catalog(plan.catalog, create=False) as catalog:
        if not judge.exists():
            if plan.judge_file:
                raise ExperimentError(f"no judge at {judge} (train one with `train judge`)")
            size = plan.configurations[0].options["size"]
            train_judge(catalog, JudgeOptions(source=plan.judge_labels, size=size, seed=plan.eval_seed,
                                              epochs=plan.judge_epochs, catalog=plan.catalog)).save(judge)
    run_dirs = [train_or_resume(plan.run_options(config, seed, folder, overrides), overrides, console)
                for seed in plan.seeds for config in plan.configurations]
    with Catalog(plan.catalog, create=False) as catalog:
        for run_dir in run_dirs:
            if evaluation_is_current(run_dir, judge, plan):
                log(f"{run_dir.name}: evaluated before with this judge, kept")
                continue
            result = score_run(run_dir, judge, catalog, n=plan.n, seed=plan.eval_seed, per_class=plan.per_class,
                               inception_weights=plan.inception_weights, log=log)
            if on_eval is not None:
                on_eval(result)
        page, _ = build_report(run_dirs, folder / REPORT, catalog=catalog, seed=plan.eval_seed, log=log,
                               overwrite=True)
    return page
