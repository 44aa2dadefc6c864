"""`train judge`, `train eval`, `train compare`: thin wrappers over curate.taggers.classifier / train.eval.score /
train.eval.report (`train experiment` and `train runs`: commands_experiment). `train eval` prints the
table every run gets, then what the run's model adds (its evaluation hook, train.eval.hooks)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from db import DEFAULT_DB, Catalog, CatalogError
from curate.progress_lines import progress_display
from curate.shared_files import shared_path
from curate.text import visible
from curate.conventions import (DbOption, DeviceOption, JsonOption, ProgressOption, labels_option, make_console,
                                n_option, out_option, resolve_device)

from train.app import app, fail
from curate.taggers.classifier import JudgeError, JudgeOptions, load_judge, train_judge
from train.eval.metrics import WeightsError
from train.eval.metrics import inception_weights as check_weights
from train.eval.report import ReportError, build_report
from train.eval.score import evaluation_of, score_run
from train.experiment import experiment_judge
from train import pretrained
from train.runs import RunError, load_run, safe_slug

console = make_console(stderr=True)
# The project's real hand drawings sit in ../shared beside a checkout: found from the working
# directory or, wherever the command runs, from this file's checkout.
def default_drawings() -> Path | None:
    """../shared/data/sketches beside the working directory or beside this checkout, if there."""
    found = shared_path("data", "sketches")
    return found if found is not None and found.is_dir() else None


def _log(message: str) -> None:
    console.print(message, style="dim")


def _tell(line: str) -> None:
    """The report's verdict and, loudly, its warnings (names in them shown as text: curate.text.visible)."""
    console.print(visible(line), style="bold red" if line.startswith("warning:") else "bold")


def _open(db: Path) -> Catalog:
    return Catalog(db, create=False)


def whole_epochs(value: float, flag: str) -> int:
    """The judge's epochs: a float-looking whole number (10.0) is taken, as the models' --epochs is a float;
    a fraction is refused (the judge keeps its best whole epoch)."""
    if value != int(value):
        fail(f"{flag} {value:g}: the judge trains whole epochs (the best on val is kept); write a whole number")
    return int(value)


def _judge_with_progress(catalog: Catalog, options: JudgeOptions, show: bool = True, device: str = "cpu"):
    with progress_display(TextColumn("judge"), BarColumn(), TextColumn("epoch {task.completed}/{task.total}"),
                          TextColumn("val acc. {task.fields[acc]}"), TimeElapsedColumn(), console=console,
                          disable=not show, line=lambda fields: f"val acc. {fields['acc']}") as bar:
        task = bar.add_task("judge", total=options.epochs, acc="–")
        return train_judge(catalog, options, device=device,
                           progress=lambda e, n, acc: bar.update(task, completed=e, acc=f"{acc:.1%}"))


def _print_scores(judge) -> None:
    table = Table(title=f"judge ({judge.options.source} labels) on the real test split")
    table.add_column("group")
    table.add_column("test accuracy", justify="right")
    table.add_column("faces", justify="right")
    table.add_column("worst tags")
    for group, s in judge.scores["test"].items():
        worst = sorted(s["per_tag"].items(), key=lambda kv: kv[1]["accuracy"])[:3]
        table.add_row(group, f"{s['accuracy']:.1%}", str(s["n"]),
                      ", ".join(f"{t} {v['accuracy']:.0%} (n={v['n']})" for t, v in worst))
    console.print(table)


def faces_text(counts: dict) -> str:
    """{'train': 945, 'val': 120, 'test': 130} -> "945 train, 120 val, 130 test faces"."""
    return ", ".join(f"{n} {split}" for split, n in counts.items()) + " faces"


@app.command()
def judge(
    db: DbOption = Path(DEFAULT_DB),
    labels: Annotated[str, labels_option("The label source it learns (its train split; scored on its test "
                                         "split).")] = "manual",
    out: Annotated[Optional[Path], out_option("Judge file [judges/<labels>.pt], the source's name made safe "
                                              "as a file name.")] = None,
    size: Annotated[int, typer.Option(help="Input size; generated faces are resized to it.")] = 32,
    epochs: Annotated[float, typer.Option(help="Passes over the train split, a whole number (10 or 10.0, as the "
                                          "models' --epochs is written; the best epoch on val is kept).")] = 10,
    width: Annotated[int, typer.Option(help="Channels of the first conv stage.")] = 16,
    batch: Annotated[int, typer.Option(help="Batch size.")] = 64,
    lr: Annotated[float, typer.Option(help="Peak learning rate (one-cycle).")] = 2e-3,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    device: DeviceOption = "auto",
    progress: ProgressOption = True,
    as_json: JsonOption = False,
) -> None:
    """Train the attribute classifier that scores generated faces; prints its real test accuracy (the ceiling)."""
    if size < 8 or epochs < 1 or width < 1 or batch < 2:
        fail("--size must be >= 8, --epochs and --width >= 1, --batch >= 2")
    epochs = whole_epochs(epochs, "--epochs")
    out = out or Path("judges") / f"{safe_slug(labels, 'labels')}.pt"    # a source name is never a path
    options = JudgeOptions(source=labels, size=size, width=width, epochs=epochs, batch=batch, lr=lr, seed=seed,
                           catalog=str(db))
    try:
        with _open(db) as catalog:
            j = _judge_with_progress(catalog, options, progress, resolve_device(device))
    except (JudgeError, CatalogError) as e:
        fail(str(e))
    j.save(out)
    if as_json:
        typer.echo(json.dumps({"judge": str(out), "labels": labels, "scores": j.scores}, indent=2, default=float))
        return
    _print_scores(j)
    console.print(f"{faces_text(j.scores['faces'])}, {j.scores['seconds']} s")
    for face_id, why in j.scores["set_aside"]:   # crops that do not decode: set aside as rejected, named
        console.print(f"face {face_id}: {visible(why)}: set aside as rejected", style="yellow")
    typer.echo(str(out))


def find_judge(run_dir: Path) -> tuple[Path, str]:
    """The judge `train eval RUN` uses without --judge: the run's experiment judge (the experiment
    folder holding the run, or the one its options.json names), else judges/manual.pt."""
    found = experiment_judge(load_run(run_dir))
    return found if found is not None else (Path("judges/manual.pt"), "the default: the run belongs to no "
                                                                      "experiment with a judge")


def _eval_one(run_dir: Path, judge_path: Path, db: Optional[Path], n: int, seed: int, per_class: int,
              inception_weights: Optional[Path], download: bool, show: bool = True, as_json: bool = False,
              drawings: Optional[Path] = None, device: str = "cpu") -> dict:
    run = load_run(run_dir)
    j = load_judge(judge_path)           # a missing or bad judge fails now, before anything else
    if inception_weights is not None:
        check_weights(inception_weights)    # a bad file fails now, not after generating
    db = db or Path(run.options.get("catalog") or j.options.catalog or DEFAULT_DB)
    # transient: each stage is printed whole by log(); the bar's last line, cut to the terminal's
    # width, would say it again cut short. Off a terminal no bar: the stages log() prints are the
    # progress (a plain progress line would say each of them twice)
    with _open(db) as catalog, progress_display(SpinnerColumn(), TextColumn("{task.description}", markup=False),
                                                TimeElapsedColumn(), console=console,
                                                disable=not show or not console.is_terminal, transient=True) as bar:
        stage = bar.add_task("evaluating", total=None)

        def log(message: str) -> None:   # each stage of the evaluation is a step of the bar
            _log(message)
            bar.update(stage, description=message)
        result = score_run(run_dir, judge_path, catalog, n=n, seed=seed, per_class=per_class,
                           inception_weights=inception_weights, download=download, log=log, drawings=drawings,
                           device=device)
    console.print(f"wrote {run.dir / 'eval.json'}")
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=float))
    else:
        _print_eval(result)
        print_details = evaluation_of(run).print_details
        if print_details is not None:
            print_details(console, result)
    return result


def _print_eval(r: dict) -> None:
    table = Table(title=f"{r['run']}: {r['n']} generated faces, seed {r['seed']}")
    table.add_column("metric")
    table.add_column("generated", justify="right")
    table.add_column("real (ceiling / floor)", justify="right")
    for group, s in r.get("judge_accuracy", {}).items():
        table.add_row(f"judge accuracy: {group}", f"{s['accuracy']:.1%}",
                      f"{r['judge']['test_accuracy'].get(group, float('nan')):.1%}")
    table.add_row("judge FID (vs real test)", f"{r['judge_fid']:.2f}", f"{r['floor']['judge_fid']:.2f}")
    table.add_row("judge KID ×100", f"{100 * r['judge_kid']:.3f}", f"{100 * r['floor']['judge_kid']:.3f}")
    pc = r.get("per_class") or {}
    if "mean_intra_fid" in pc:
        table.add_row(f"mean intra-FID ({pc['group']}, {len(pc['tags'])} tags)", f"{pc['mean_intra_fid']:.2f}", "")
    d = r["diversity"]
    table.add_row("near-duplicates", f"{d['fake']['near_duplicates']:.1%}", f"{d['real']['near_duplicates']:.1%}")
    table.add_row("mean pairwise distance", f"{d['fake']['mean_distance']:.2f}", f"{d['real']['mean_distance']:.2f}")
    inc = r["inception"]
    if "fid" in inc:
        table.add_row("Inception FID (vs real train)", f"{inc['fid']:.2f}", f"{inc['floor_fid']:.2f}")
    else:
        table.add_row("Inception FID", "skipped", "no weights")
    console.print(table)


@app.command(name="eval")
def eval_(
    run: Annotated[Path, typer.Argument(metavar="RUN", help="Run folder (runs/NNNNN-...), or pretrained:NAME (a "
                                        "model shipped with the package).")],
    judge_file: Annotated[Optional[Path], typer.Option("--judge", help="Judge file from `train judge` [the "
                                                       "judge of the run's experiment, else judges/manual.pt].")]
    = None,
    db: Annotated[Optional[Path], typer.Option("--db", envvar="CURATE_DB",
                                               help="Catalog (or set CURATE_DB) [the run's own].")] = None,
    n: Annotated[int, n_option("Generated faces.")] = 10000,
    per_class: Annotated[int, typer.Option(help="Generated faces per hair colour for intra-class FID.")] = 500,
    seed: Annotated[int, typer.Option(help="Seed of noise and conditions.")] = 0,
    inception_weights: Annotated[Optional[Path], typer.Option(help="InceptionV3 weights (torch-fidelity's .pth) "
                                                              "[the cached download, see --download]")] = None,
    download: Annotated[bool, typer.Option(help="Download the Inception weights (once, into torch's cache) and, "
                                           "for sketch runs, the LBP anime-face cascade, when not cached; without "
                                           "them Inception FID/KID (and the cascade's face count) is skipped.")]
    = False,
    progress: ProgressOption = True,
    as_json: JsonOption = False,
    drawings: Annotated[Optional[Path], typer.Option(help="Sketch runs: a folder of real hand drawings to paint "
                                                     "and score too [../shared/data/sketches when it "
                                                     "exists].")] = None,
    device: DeviceOption = "auto",
) -> None:
    """Score a run's generator (judge accuracy, FID/KID, intra-class FID, diversity); writes RUN/eval.json.
    A sketch run (pix2pix) is scored on the test split's sketches instead: fidelity to the sketch
    between a floor and a ceiling, realism, tags, noise, and hand drawings (--drawings)."""
    if n < 2 or per_class < 2:
        fail("--n and --per-class must be at least 2")
    if drawings is None:
        drawings = default_drawings()
    try:
        if pretrained.is_pretrained(run):
            copy = pretrained.working_copy(run, Path("runs"))
            console.print(f"{visible(str(run))} is evaluated in a copy, {copy} (the package's folder is never "
                          "written)", markup=False)
            run = copy
        if judge_file is None:
            judge_file, why = find_judge(run)
            console.print(f"judge: {judge_file} ({why})")
        _eval_one(run, judge_file, db, n, seed, per_class, inception_weights, download, progress, as_json, drawings,
                  resolve_device(device))
    except (RunError, JudgeError, WeightsError, CatalogError, ValueError, pretrained.PretrainedError) as e:
        fail(str(e))


@app.command()
def compare(
    runs: Annotated[list[Path], typer.Argument(metavar="RUNS", help="Evaluated run folders (each has eval.json).")],
    out: Annotated[Path, out_option("Report folder (new or empty).")] = Path("report"),
    db: Annotated[Optional[Path], typer.Option("--db", envvar="CURATE_DB", help="Catalog for the label agreement "
                                                "section (or set CURATE_DB) [the first run's].")] = None,
    seed: Annotated[int, typer.Option(help="Noise seed of the sample grids.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Empty OUT first when it holds an older report (only report "
                                            "files: anything else there is refused).")] = False,
) -> None:
    """Write OUT/index.html (self-contained) and OUT/report.md comparing evaluated runs.

    Runs are grouped by configuration (their options but the seed): one row per configuration
    with the mean ± sample std of every metric over its seeds, the pairs of configurations whose
    intervals mean ± std do not overlap (differences larger than the spread), and every run's
    own row below. OUT must be new or empty (an older report is never mixed in): --overwrite
    empties it first."""
    try:
        first = load_run(runs[0])
        db = db or Path(first.options.get("catalog") or DEFAULT_DB)
        catalog = _open(db) if db.exists() else None
        try:
            page, md = build_report(runs, out, catalog=catalog, seed=seed, log=_log, overwrite=overwrite,
                                    tell=_tell)
        finally:
            if catalog is not None:
                catalog.close()
    except (RunError, ReportError, CatalogError) as e:
        fail(str(e))
    console.print(f"wrote {md}")
    typer.echo(str(page))
