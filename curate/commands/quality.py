"""`curate suspects` and `curate tag --tagger judge`: label quality from a model trained on your labels."""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from db import CatalogError
from curate.conventions import labels_option, make_console, n_option

from curate.app import DEFAULT_DB_PATH, DbOption, app, fail, open_catalog

console = make_console()


def tag_with_judge(db: Path, opts, show: bool = True) -> None:
    """The `curate tag --tagger judge` branch: cross-fit, write, print what happened."""
    from curate.taggers.judge import cross_fit
    catalog = open_catalog(db, create=False)
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=make_console(stderr=True), disable=not show)
    task = []

    def step(n: int, total: int) -> None:   # the bar starts once the input is checked: errors stay one line
        if not task:
            bar.start()
            task.append(bar.add_task(f"judge on {opts.source!r}: {opts.folds} folds x {opts.epochs} epochs",
                                     total=total))
        bar.update(task[0], advance=n, total=total)
    try:
        summary = cross_fit(catalog, opts, step)
    except CatalogError as e:
        fail(str(e))
    finally:
        bar.stop()
    if summary.skipped:
        console.print(f"{summary.version} was written before ({opts.source!r} labels unchanged): nothing to do "
                      f"(--retag writes it again)")
        return
    accuracy = ", ".join(f"{g} {a:.1%}" for g, a in summary.accuracy.items())
    console.print(f"{opts.target}: {summary.events} label events by {summary.version} in {summary.seconds:.0f} s; "
                  f"{summary.labelled} labelled faces cross-fitted ({opts.folds} folds; held-out accuracy "
                  f"against {opts.source}: {accuracy}), {summary.unlabelled} unlabelled faces from a model on all.")
    console.print(f"next: curate suspects --labels {opts.source} --judge {opts.target}")


@app.command()
def suspects(
    db: DbOption = DEFAULT_DB_PATH,
    source: Annotated[str, labels_option("The label source to check, e.g. manual.")] = "manual",
    group: Annotated[Optional[str], typer.Option(help="One exclusive group (default: every group the judge "
                                                 "scored), e.g. hair_color.")] = None,
    judge: Annotated[str, typer.Option(help="The source `curate tag --tagger judge` wrote.")] = "judge",
    n: Annotated[int, n_option("Suspects shown in the table and on the sheet.", min=1)] = 200,
    csv_path: Annotated[Optional[Path], typer.Option("--csv", help="Write every suspect to this CSV.")] = None,
    sheet: Annotated[Optional[Path], typer.Option(help="A contact sheet of the top suspects, both labels "
                                                  "under each face.")] = None,
    compare: Annotated[Optional[str], typer.Option(help="Other sources whose confident disagreement also makes "
                                                   "a suspect, comma-separated, or 'none' (default: every "
                                                   "other source).")] = None,
    min_confidence: Annotated[float, typer.Option(min=0, max=1, help="...from this confidence.")] = 0.8,
    rank: Annotated[str, typer.Option(help="self_confidence or normalized_margin.")] = "self_confidence",
) -> None:
    """Faces whose label is likely wrong: confident learning on the judge tagger's held-out probabilities.

    Needs `curate tag --tagger judge --labels SOURCE` first. Changes nothing in the catalog:
    fix the faces in `label-app` (queue order "likely label errors first").

    Examples: curate suspects --sheet suspects.png;  curate suspects --group hair_color --csv suspects.csv
    """
    from curate.quality.suspects import find_suspects

    catalog = open_catalog(db, create=False)
    others = None if compare is None else [] if compare.strip() == "none" else \
        [c.strip() for c in compare.split(",") if c.strip()]
    for other in others or []:
        try:
            catalog.require_label_source(other)
        except CatalogError as e:
            fail(f"--compare: {e}")
    started = time.perf_counter()
    try:
        rows = find_suspects(catalog, source, group, judge, others, min_confidence, rank)
    except CatalogError as e:
        fail(str(e))
    labelled = len(catalog.labelled_faces(source, split=None))
    _say_if_stale(catalog, source, judge)
    table = Table(title=f"{min(n, len(rows))} of {len(rows)} suspects, most likely wrong first")
    for name in ("face", "group", f"{source} (p)", "likely (p)", "reason"):
        table.add_column(name, overflow="fold")   # wrapped, never cut: ids and tags stay whole
    for s in rows[:n]:
        table.add_row(str(s.face_id), s.group, f"{s.given} {s.p_given:.2f}", f"{s.likely} {s.p_likely:.2f}",
                      "; ".join(s.reasons))
    console.print(table)
    by_group: dict[str, list[int]] = {}
    for s in rows:
        c = by_group.setdefault(s.group, [0, 0])
        c[0 if s.flagged else 1] += 1
    for g, (flagged, other) in by_group.items():
        console.print(f"{g}: {flagged} flagged by confident learning, {other} more where another source "
                      f"disagrees confidently")
    console.print(f"{len({s.face_id for s in rows})} of {labelled} faces {source} labelled are suspects "
                  f"({time.perf_counter() - started:.1f} s); nothing was changed.")
    if csv_path:
        write_csv(catalog, rows, csv_path, source)
        console.print(f"every suspect -> {csv_path}")
    if sheet and rows:
        shown = write_sheet(catalog, rows[:n], sheet)
        console.print(f"contact sheet of {shown} faces ({source} label > likely label) -> {sheet}")


def write_sheet(catalog, rows, path: Path) -> int:
    """A contact sheet of these suspects: "given > likely" and "#id group p(likely)" under each face."""
    from curate.sheet import contact_sheet
    captions = {s.face_id: f"{_short(s.given)} > {_short(s.likely)}\n#{s.face_id} {s.group.split('_')[0]} "
                           f"{s.p_likely:.2f}" for s in reversed(rows)}   # a face twice: its first row
    faces = list(dict.fromkeys(s.face_id for s in rows))
    return contact_sheet(catalog, path, faces=faces, n=len(faces), captions=captions)


def _say_if_stale(catalog, source: str, judge: str) -> None:
    now = catalog.labels_fingerprint(source)
    versions = catalog.distribution_versions(judge)
    if any(catalog.tagger_version(v).get("labels_fingerprint") != now for v in versions):
        console.print(f"note: {source}'s labels changed since {judge} learned them; rerun "
                      f"`curate tag --tagger judge --labels {source}` to refresh", style="yellow")


def _short(tag: str) -> str:
    return tag.removesuffix(" hair").removesuffix(" eyes")


def write_csv(catalog, rows, path: Path, source: str) -> None:
    paths = {f["id"]: f["source_path"] for f in catalog.iter_faces(status="ok", with_image=False)}
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["face_id", "file", "group", source, "likely", "p_likely", f"p_{source}", "label_quality",
                    "confident_learning", "reasons"])
        for s in rows:
            w.writerow([s.face_id, paths.get(s.face_id, ""), s.group, s.given, s.likely, f"{s.p_likely:.4f}",
                        f"{s.p_given:.4f}", f"{s.score:.4f}", int(s.flagged), "; ".join(s.reasons)])
