"""`curate agree` and `curate suspects`: how far label sources agree, and which labels are likely wrong."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Column, Table

from db import CatalogError

from curate.app import DEFAULT_DB_PATH, DbOption, app, fail, make_console, open_catalog
from curate.conventions import JsonOption, labels_option, n_option, old_spelling
from curate.quality.agreement import agreement, plot_confusions, worst_disagreements
from curate.quality.suspects import WEAK_BELOW, WEAK_TIMES_CHANCE, find_suspects, judge_strength
from curate.sheet import contact_sheet
from curate.text import visible

console = make_console()
err_console = make_console(stderr=True)


@app.command()
def suspects(
    db: DbOption = DEFAULT_DB_PATH,
    source: Annotated[str, labels_option("The label source to check, e.g. manual.")] = "manual",
    group: Annotated[Optional[str], typer.Option(help="One exclusive group (default: every group the judge "
                                                 "scored), e.g. hair_color.")] = None,
    judge_source: Annotated[str, typer.Option("--judge-source", help="The label source `curate tag --tagger "
                                              "judge` wrote (--judge names a judge FILE in `train`).")] = "judge",
    old_judge: Annotated[Optional[str], typer.Option("--judge", hidden=True,
                                                     help="The old spelling of --judge-source.")] = None,
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
    judge = judge_source
    if old_judge is not None:
        old_spelling("--judge", "--judge-source")
        judge = old_judge
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
    strength = judge_strength(catalog, source, group, judge)
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
    _say_how_strong(strength, source, judge)   # last, where it is read: on a weak judge the list is noise
    if csv_path:
        write_csv(catalog, rows, csv_path, source)
        console.print(f"every suspect -> {csv_path}")
    if sheet and rows:
        shown = write_sheet(catalog, rows[:n], sheet)
        console.print(f"contact sheet of {shown} faces ({source} label > likely label) -> {sheet}")


def write_sheet(catalog, rows, path: Path) -> int:
    """A contact sheet of these suspects: "given > likely" and "#id group p(likely)" under each face."""
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


def _say_how_strong(strength: list, source: str, judge: str) -> None:
    """The judge's held-out accuracy per group, and a warning where it is too weak for its
    suspects to be trusted (they are then mostly its own mistakes)."""
    if not strength:
        return
    console.print(f"{visible(judge)} on held-out faces, against {visible(source)}: " + ", ".join(
        f"{visible(s.group)} {s.accuracy:.1%} (always the commonest tag: {s.chance:.1%})" for s in strength))
    for s in (s for s in strength if s.weak):
        below = f"below {WEAK_BELOW:.0%}" if s.accuracy < WEAK_BELOW else \
            f"below {WEAK_TIMES_CHANCE:g}x the {s.chance:.1%} of always naming the commonest tag"
        console.print(f"warning: {visible(judge)} is too weak to trust on {visible(s.group)} ({s.accuracy:.1%} held "
                      f"out, {below}); most of its {visible(s.group)} suspects are likely its own mistakes. Label more faces "
                      f"or train it longer (curate tag --tagger judge --labels {visible(source)} --epochs 30)",
                      style="yellow")


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


def _table(*columns: str, title: str) -> Table:
    """A table that wraps a long cell rather than cut it."""
    t = Table(title=title)
    for c in columns:
        t.add_column(c, overflow="fold")
    return t


@app.command()
def agree(
    a: Annotated[str, typer.Argument(metavar="A", help="Reference label source, e.g. manual.")],
    b: Annotated[str, typer.Argument(metavar="B", help="Source compared with it, e.g. i2v or animeface.")],
    db: DbOption = DEFAULT_DB_PATH,
    split: Annotated[Optional[str], typer.Option(help="Only faces of this split (train/val/test).")] = None,
    worst: Annotated[int, typer.Option(min=0, help="List the N most confident disagreements.")] = 0,
    png: Annotated[Optional[Path], typer.Option(help="Write the confusion matrices as a PNG.")] = None,
    per_tag: Annotated[bool, typer.Option(help="Per-tag recall/precision tables.")] = True,
    as_json: JsonOption = False,
) -> None:
    """How far apart two label sources are: accuracy, Cohen's kappa, confusion per group and tag.

    The face ids of --worst are what `curate show FACE` shows.
    """
    catalog = open_catalog(db, create=False)
    try:
        result = agreement(catalog, a, b, split)
    except CatalogError as e:
        fail(str(e))
    worst_rows = worst_disagreements(catalog, a, b, worst, split) if worst else []
    if as_json:
        print(json.dumps({"a": a, "b": b, "split": split, "faces_a": result.faces_a, "faces_b": result.faces_b,
                          "faces_both": result.faces_both,
                          "groups": [{"group": g.group, "exclusive": g.exclusive, "faces": g.n,
                                      "accuracy": g.accuracy, "kappa": g.kappa, "tags": g.tags,
                                      "confusion": g.confusion.tolist(), "per_tag": g.per_tag()}
                                     for g in result.groups],
                          "worst": worst_rows}, indent=2, default=float))
    else:
        _print_agreement(result, a, b, split, per_tag)
    if png:
        try:
            (err_console if as_json else console).print(f"confusion matrices -> {plot_confusions(result, png)}")
        except CatalogError as e:
            fail(str(e))
    if worst_rows and not as_json:
        t = _table("face", "split", "key", a, b, "confidence", title=f"{worst} most confident disagreements")
        for r in worst_rows:
            t.add_row(str(r["face_id"]), str(r["split"]), r["key"], f"{r['tag_a']} ({r['value_a']:.2f})",
                      f"{r['tag_b']} ({r['value_b']:.2f})", f"{r['confidence']:.2f}")
        console.print(t)
        console.print("look at one: curate show FACE (-o face.png writes its crop)")


def _print_agreement(result, a: str, b: str, split: str | None, per_tag: bool) -> None:
    console.print(f"{a}: {result.faces_a} faces, {b}: {result.faces_b}, both: {result.faces_both}"
                  + (f" ({split} split)" if split else ""))
    summary = _table("group / tag", "faces", "accuracy", "kappa", title=f"{a} vs {b}")
    for g in result.groups:
        summary.add_row(g.group, str(g.n), f"{g.accuracy:.1%}", f"{g.kappa:.3f}")
    console.print(summary)
    if not per_tag:
        return
    for g in result.groups:
        if not g.exclusive:
            continue
        t = _table("tag", f"faces ({a})", f"faces ({b})", "recall", "precision", title=g.group)
        for r in g.per_tag():
            t.add_row(r["tag"], str(r["a"]), str(r["b"]), f"{r['recall']:.1%}", f"{r['precision']:.1%}")
        console.print(t)
        console.print(confusion_table(g, a, b))


def confusion_table(g, a: str, b: str) -> Table:
    """Rows: `a`'s tags, whole and numbered; columns: `b`'s, by those numbers. Thirteen hair colours
    fit 80 columns so, and no name is cut ("pin" for pink hair) or shortened past recognising."""
    cm = Table(Column("", overflow="fold"), *[Column(str(i), justify="right") for i in range(1, len(g.tags) + 1)],
               title=f"{visible(g.group)} confusion (rows {visible(a)}, columns {visible(b)}: the tags by the "
                     f"rows' numbers)", box=None, padding=(0, 1, 0, 0))
    for i, (tag, row) in enumerate(zip(g.tags, g.confusion), start=1):
        cm.add_row(f"{i:>{len(str(len(g.tags)))}} {visible(tag)}", *[str(v) if v else "." for v in row])
    return cm
