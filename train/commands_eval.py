"""`train judge`, `train eval`, `train compare`, `train experiment`: thin wrappers over
train.judge / train.evaluate / train.report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from db import DEFAULT_DB, Catalog, CatalogError
from db.cli import DbOption, make_console

from .app import app, fail
from .judge import JudgeError, JudgeOptions, load_judge, train_judge
from .metrics import WeightsError
from .runs import RunError, load_run

console = make_console(stderr=True)


def _log(message: str) -> None:
    console.print(message, style="dim")


def _open(db: Path) -> Catalog:
    return Catalog(db, create=False)


def _judge_with_progress(catalog: Catalog, options: JudgeOptions, show: bool = True):
    with Progress(TextColumn("judge"), BarColumn(), TextColumn("epoch {task.completed}/{task.total}"),
                  TextColumn("val acc. {task.fields[acc]}"), TimeElapsedColumn(), console=console,
                  disable=not show) as bar:
        task = bar.add_task("judge", total=options.epochs, acc="–")
        return train_judge(catalog, options,
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


@app.command()
def judge(
    db: DbOption = Path(DEFAULT_DB),
    labels: Annotated[str, typer.Option(help="Label source to learn (its train split; scored on its test split).")]
    = "manual",
    out: Annotated[Optional[Path], typer.Option("-o", "--out", help="Judge file [judges/<labels>.pt].")] = None,
    size: Annotated[int, typer.Option(help="Input size; generated faces are resized to it.")] = 32,
    epochs: Annotated[int, typer.Option(help="Passes over the train split (the best epoch on val is kept).")] = 10,
    width: Annotated[int, typer.Option(help="Channels of the first conv stage.")] = 16,
    batch: Annotated[int, typer.Option(help="Batch size.")] = 64,
    lr: Annotated[float, typer.Option(help="Peak learning rate (one-cycle).")] = 2e-3,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    progress: Annotated[bool, typer.Option(help="Show the progress bar.")] = True,
) -> None:
    """Train the attribute classifier that scores generated faces; prints its real test accuracy (the ceiling)."""
    if size < 8 or epochs < 1 or width < 1 or batch < 2:
        fail("--size must be >= 8, --epochs and --width >= 1, --batch >= 2")
    out = out or Path("judges") / f"{labels}.pt"
    options = JudgeOptions(source=labels, size=size, width=width, epochs=epochs, batch=batch, lr=lr, seed=seed,
                           catalog=str(db))
    try:
        with _open(db) as catalog:
            j = _judge_with_progress(catalog, options, progress)
    except (JudgeError, CatalogError) as e:
        fail(str(e))
    j.save(out)
    _print_scores(j)
    console.print(f"{j.scores['faces']} faces, {j.scores['seconds']} s")
    typer.echo(str(out))


def _eval_one(run_dir: Path, judge_path: Path, db: Optional[Path], n: int, seed: int, per_class: int,
              inception_weights: Optional[Path], download: bool) -> dict:
    from .evaluate import evaluate_run, write_eval
    from .metrics import inception_weights as check_weights
    run = load_run(run_dir)
    j = load_judge(judge_path)
    if inception_weights is not None:
        check_weights(inception_weights)    # a bad file fails now, not after generating
    db = db or Path(run.options.get("catalog") or j.options.catalog or DEFAULT_DB)
    with _open(db) as catalog:
        result = evaluate_run(run, j, catalog, n=n, seed=seed, per_class=per_class,
                              inception_weights=inception_weights, download=download, log=_log)
    result["judge"]["path"] = str(judge_path)
    path = write_eval(run, result)
    _print_eval(result)
    console.print(f"wrote {path}")
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
    run: Annotated[Path, typer.Argument(help="Run folder (runs/NNNNN-...).")],
    judge_file: Annotated[Path, typer.Option("--judge", help="Judge file from `train judge`.")]
    = Path("judges/manual.pt"),
    db: Annotated[Optional[Path], typer.Option("--db", envvar="CURATE_DB",
                                               help="Catalog (or set CURATE_DB) [the run's own].")] = None,
    n: Annotated[int, typer.Option("--n", help="Generated faces.")] = 10000,
    per_class: Annotated[int, typer.Option(help="Generated faces per hair colour for intra-class FID.")] = 500,
    seed: Annotated[int, typer.Option(help="Seed of noise and conditions.")] = 0,
    inception_weights: Annotated[Optional[Path], typer.Option(help="InceptionV3 weights (torch-fidelity's .pth) "
                                                              "[torch-fidelity's download, cached]")] = None,
    download: Annotated[bool, typer.Option(help="Download Inception weights when not cached.")] = True,
) -> None:
    """Score a run's generator (judge accuracy, FID/KID, intra-class FID, diversity); writes RUN/eval.json."""
    if n < 2 or per_class < 2:
        fail("--n and --per-class must be at least 2")
    try:
        _eval_one(run, judge_file, db, n, seed, per_class, inception_weights, download)
    except (RunError, JudgeError, WeightsError, CatalogError, ValueError) as e:
        fail(str(e))


@app.command()
def compare(
    runs: Annotated[list[Path], typer.Argument(help="Evaluated run folders (each has eval.json).")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Report folder.")] = Path("report"),
    db: Annotated[Optional[Path], typer.Option("--db", envvar="CURATE_DB", help="Catalog for the label agreement "
                                                "section (or set CURATE_DB) [the first run's].")] = None,
    seed: Annotated[int, typer.Option(help="Noise seed of the sample grids.")] = 0,
) -> None:
    """Write OUT/index.html (self-contained) and OUT/report.md comparing evaluated runs."""
    from .report import ReportError, build_report
    try:
        first = load_run(runs[0])
        db = db or Path(first.options.get("catalog") or DEFAULT_DB)
        catalog = _open(db) if db.exists() else None
        try:
            page, md = build_report(runs, out, catalog=catalog, seed=seed, log=_log)
        finally:
            if catalog is not None:
                catalog.close()
    except (RunError, ReportError, CatalogError) as e:
        fail(str(e))
    console.print(f"wrote {md}")
    typer.echo(str(page))


def parse_run_specs(text: str) -> list[tuple[str, str]]:
    """"acgan:manual,cgan:manual" -> [("acgan", "manual"), ("cgan", "manual")]."""
    from .losses import MODELS
    out = []
    for item in [s.strip() for s in text.split(",") if s.strip()]:
        model, _, labels = item.partition(":")
        if model not in MODELS or not labels:
            raise ValueError(f"--runs item {item!r}: write MODEL:LABELS with MODEL one of {', '.join(MODELS)}")
        out.append((model, labels))
    if not out:
        raise ValueError("--runs names no run")
    return out


@app.command()
def experiment(
    db: DbOption = Path(DEFAULT_DB),
    runs: Annotated[str, typer.Option(help="MODEL:LABELS,... to train, each with the same budget and seed.")]
    = "acgan:manual,acgan:i2v,cgan:manual",
    judge_labels: Annotated[str, typer.Option(help="Label source of the judge.")] = "manual",
    judge_file: Annotated[Optional[Path], typer.Option("--judge", help="Reuse this judge instead of training "
                                                       "one.")] = None,
    size: Annotated[int, typer.Option(help="Image size.")] = 32,
    iters: Annotated[int, typer.Option(help="Generator steps per run (the shared budget).")] = 2000,
    batch: Annotated[int, typer.Option(help="Batch size.")] = 64,
    ngf: Annotated[int, typer.Option(help="Generator width.")] = 64,
    ndf: Annotated[int, typer.Option(help="Discriminator width.")] = 64,
    seed: Annotated[int, typer.Option(help="Seed of every run and of the evaluation.")] = 0,
    common: Annotated[bool, typer.Option(help="Train every run on the faces ALL the sources labelled.")] = True,
    drop_rare: Annotated[bool, typer.Option(help="Leave tags with < --min-per-tag faces out instead of "
                                            "refusing.")] = True,
    min_per_tag: Annotated[int, typer.Option(help="Fewest faces a tag needs to be trained on.")] = 10,
    n: Annotated[int, typer.Option("--n", help="Generated faces per evaluation.")] = 5000,
    runs_dir: Annotated[Path, typer.Option(help="Where run folders go.")] = Path("runs"),
    out: Annotated[Path, typer.Option("-o", "--out", help="Report folder.")] = Path("report"),
    inception_weights: Annotated[Optional[Path], typer.Option(help="InceptionV3 weights.")] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """The whole label-source experiment in one command: judge, train each run, eval each, compare."""
    from .loop import TrainingStopped, train
    from .options import TrainOptions
    try:
        specs = parse_run_specs(runs)
    except ValueError as e:
        fail(str(e))
    sources = sorted({labels for _, labels in specs})
    plan = {"db": str(db), "runs": specs, "size": size, "iters": iters, "batch": batch, "ngf": ngf, "ndf": ndf,
            "seed": seed,
            "common": sources if common else [], "n": n}
    console.print(f"experiment: {json.dumps(plan)}")
    try:
        with _open(db) as catalog:
            known = {r["source"] for r in catalog.label_sources()}
            missing = [s for s in sources + [judge_labels] if s not in known]
            if missing:
                fail(f"{db} has no labels from {', '.join(missing)} (known: {', '.join(sorted(known)) or 'none'})")
            if judge_file is None:
                judge_file = out / f"judge-{judge_labels}.pt"
                j = _judge_with_progress(catalog, JudgeOptions(source=judge_labels, size=size, seed=seed,
                                                               catalog=str(db)), progress)
                j.save(judge_file)
                _print_scores(j)
        run_dirs = []
        for model, labels in specs:
            opts = TrainOptions(model=model, catalog=str(db), labels=labels, attrs=["hair_color", "eye_color"],
                                common=[s for s in sources if s != labels] if common else [],
                                drop_rare=drop_rare, min_per_tag=min_per_tag, size=size, iters=iters, batch=batch, ngf=ngf, ndf=ndf, seed=seed,
                                log_every=max(1, min(50, iters // 40)), diag_every=max(1, min(200, iters // 10)),
                                runs_dir=str(runs_dir), progress=progress)
            console.print(f"training {model} on {labels!r} labels for {iters} steps")
            run_dirs.append(Path(train(opts, console=console)))
        for run_dir in run_dirs:
            _eval_one(run_dir, judge_file, db, n, seed, 500, inception_weights, True)
        from .report import build_report
        with _open(db) as catalog:
            page, _ = build_report(run_dirs, out, catalog=catalog, seed=seed, log=_log)
    except TrainingStopped as e:
        fail(f"training stopped: {e}", code=1)
    except (RunError, JudgeError, WeightsError, CatalogError, ValueError) as e:
        fail(str(e))
    typer.echo(str(page))
