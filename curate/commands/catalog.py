"""Catalog commands: labels import/export/sources, split, stats, vocab (export: commands/export.py)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Annotated, Iterator, Optional

import typer
from rich.table import Column, Table

from db import SPLITS, Catalog, CatalogError

from curate.app import DEFAULT_DB_PATH, DbOption, app, fail, make_console, open_catalog
from curate.conventions import JsonOption, labels_option, n_option, old_spelling, out_option, output_given, \
    target_option
from curate.labels_io import export_labels, import_labels
from curate.derive import KINDS as DERIVED_KINDS
from curate.sheet import contact_sheet, pick_faces
from curate.text import visible

console = make_console()
err_console = make_console(stderr=True)

labels_app = typer.Typer(rich_markup_mode=None,
                         help="Label files in and out: import a CSV, export one, list sources.", no_args_is_help=True)
vocab_app = typer.Typer(rich_markup_mode=None, help="The attribute vocabulary: groups and their tags.",
                        no_args_is_help=True)
app.add_typer(labels_app, name="labels")
app.add_typer(vocab_app, name="vocab")

LabelsOption = Annotated[str, labels_option()]
SplitOption = Annotated[Optional[str], typer.Option("--split", help="Only this split: train, val or test.")]


@contextlib.contextmanager
def _catalog(db: Path, create: bool = False) -> Iterator[Catalog]:
    """Open the catalog; turn a CatalogError anywhere inside into a one-line error."""
    catalog = open_catalog(db, create=create)
    try:
        yield catalog
    except CatalogError as e:
        fail(str(e))
    finally:
        catalog.close()


# -- labels -----------------------------------------------------------------

@labels_app.command("import")
def labels_import(
    csv_file: Annotated[Path, typer.Argument(metavar="CSV", help="file,<group or tag>... (wide) or "
                                             "file,tag[,value] (long).")],
    source: Annotated[str, target_option("The label source the rows are written into.")] = "manual",
    annotator: Annotated[Optional[str], typer.Option(help="Who made these labels.")] = None,
    skip_unmatched: Annotated[bool, typer.Option("--skip-unmatched", help="Skip rows whose file is not in "
                                                 "the catalog instead of refusing the whole file.")] = False,
    db: DbOption = DEFAULT_DB_PATH,
) -> None:
    """Import a label CSV as events of the --target source, all or nothing.

    `file` is matched to faces through their source path: an absolute path as it
    is; a relative one against the CSV's folder, else as the one source path ending
    with it (a bare name: the one file of that name). Labels equal to the source's
    current ones are skipped, so importing a file twice adds nothing; two rows giving
    one face different labels of one group are refused, naming both rows. One
    leading ' of a cell is removed (spreadsheet-safe exports add it).

    Example: curate labels import faces/labels.csv --target manual --annotator anna
    """
    if not csv_file.is_file():
        fail(f"{csv_file}: no such file")
    with _catalog(db) as catalog:
        r = import_labels(catalog, csv_file, source, annotator, skip_unmatched)
    console.print(f"{r.path}: {r.rows} rows, {r.matched} matched, {len(r.unmatched)} unmatched; "
                  f"{r.written} labels written to source {source!r}, {r.unchanged} already current")
    for rowno, file in r.unmatched[:10]:
        console.print(f"  unmatched: row {rowno}: {visible(file)}")
    if len(r.unmatched) > 10:
        console.print(f"  ... and {len(r.unmatched) - 10} more")


@labels_app.command("export")
def labels_export(
    out_argument: Annotated[Optional[Path], typer.Argument(
        metavar="OUT.csv", show_default=False, help="The CSV file to write, the older way (give -o OUT.csv).")] = None,
    out: Annotated[Optional[Path], out_option("CSV file to write.")] = None,
    source: LabelsOption = "manual",
    long: Annotated[bool, typer.Option("--long", help="One row per label (face_id,file,tag,value) instead "
                                       "of one per face; keeps the probabilities of exclusive groups.")] = False,
    db: DbOption = DEFAULT_DB_PATH,
) -> None:
    """Write the --labels source's current labels to a CSV that `curate labels import` reads back.

    Spreadsheet-safe: a text cell that begins with =, +, -, @, a tab or a carriage return (a
    formula to a spreadsheet), or with a quote, gets a ' before it; import removes it again.

    Example: curate labels export -o manual.csv --labels manual
    """
    out = output_given(out_argument, out, "OUT.csv", "curate labels export")
    if out.is_dir():
        fail(f"{out} is a folder: give a file name such as {out / 'labels.csv'}")
    with _catalog(db) as catalog:
        n = export_labels(catalog, out, source, long_form=long)
    console.print(f"{n} rows of source {source!r} -> {out}")


@labels_app.command("sources")
def labels_sources(db: DbOption = DEFAULT_DB_PATH, as_json: JsonOption = False) -> None:
    """List the label sources with their event, face and annotator counts."""
    with _catalog(db) as catalog:
        rows = catalog.label_sources()
    if as_json:
        print(json.dumps([dict(r) for r in rows], indent=2))
        return
    if not rows:
        console.print("no labels yet (curate labels import, curate tag, or the labelling app)")
        return
    # names are folded, never cut, and their control characters shown as escapes
    t = Table(Column("source", overflow="fold"), "events", "faces labelled", "tried, no result",
              Column("annotators", overflow="fold"))
    for r in rows:
        t.add_row(visible(r["source"]), str(r["events"]), str(r["faces"]), str(r["tried_without_result"]),
                  visible(r["annotators"] or ""))
    console.print(t)


# -- split ------------------------------------------------------------------

@app.command()
def split(
    val: Annotated[float, typer.Option(help="Fraction of faces for validation.")] = 0.05,
    test: Annotated[float, typer.Option(help="Fraction of faces for test.")] = 0.05,
    seed: Annotated[int, typer.Option(help="Same seed + same faces = same splits.")] = 0,
    labels: Annotated[Optional[str], labels_option("Keep each class of this label source's first exclusive "
                                                   "group (hair colour) in proportion.")] = None,
    stratify: Annotated[Optional[str], typer.Option(hidden=True, help="The old spelling of --labels.")] = None,
    reassign: Annotated[bool, typer.Option("--reassign", help="Forget existing splits and draw all anew "
                                           "(otherwise faces that have a split keep it).")] = False,
    db: DbOption = DEFAULT_DB_PATH,
) -> None:
    """Give every ok face without a split one of train/val/test.

    A face's split depends only on the seed and its content hash, so adding faces
    never moves the ones already split.

    Example: curate split --val 0.05 --test 0.05 --seed 0 --labels manual
    """
    if stratify is not None:
        old_spelling("--stratify", "--labels")
        if labels is not None and labels != stratify:
            fail(f"--labels {labels} and --stratify {stratify}: give one (--labels)")
        labels = stratify
    for name, v in (("--val", val), ("--test", test)):
        if not 0 <= v < 1:
            fail(f"{name} {v:g} must be a fraction in [0, 1)")
    if val + test >= 1:
        fail(f"--val {val:g} + --test {test:g} leave nothing for train")
    with _catalog(db) as catalog:
        assigned = catalog.assign_splits(val, test, seed=seed, stratify=labels, reassign=reassign)
        totals = catalog.split_counts()
    now = sum(assigned.values())
    t = Table("split", "assigned now", "total", title=f"splits (seed {seed}"
              + (f", stratified by {visible(labels)}" if labels else "") + ")")
    ok = sum(totals.values())
    for s in SPLITS:
        t.add_row(s, str(assigned[s]), f"{totals[s]} ({totals[s] / ok:.1%})" if ok else "0")
    console.print(t)
    if not ok:
        console.print("the catalog has no ok faces yet: nothing to split", style="yellow")
    elif not now:
        console.print("every ok face already had a split (pass --reassign to draw anew)")


# -- stats ------------------------------------------------------------------

@app.command()
def stats(
    as_json: JsonOption = False,
    sheet: Annotated[Optional[Path], typer.Option(help="Also write a contact sheet PNG of faces.")] = None,
    status: Annotated[str, typer.Option(help="Faces on the sheet: ok, duplicate or rejected.")] = "ok",
    n: Annotated[int, n_option("Faces on the sheet (spread over the catalog).", min=1)] = 64,
    columns: Annotated[int, typer.Option(help="Tiles per row of the sheet.", min=1)] = 8,
    tile: Annotated[int, typer.Option(help="Tile size in pixels (crops are scaled to fit).", min=8)] = 96,
    kind: Annotated[str, typer.Option(help="What the sheet shows of each face: crop, sketch (from `curate "
                                      "sketch`), or several side by side: crop,sketch.")] = "crop",
    db: DbOption = DEFAULT_DB_PATH,
) -> None:
    """Summarise the catalog: sources, faces, splits, label sources and tag counts.

    Examples: curate stats --sheet rejected.png --status rejected -n 32;
    curate stats --sheet sketches.png --kind sketch
    """
    if status not in ("ok", "duplicate", "rejected"):
        fail(f"--status must be ok, duplicate or rejected, not {status!r}")
    kinds = tuple(k.strip() for k in kind.split(",") if k.strip())
    known = ("crop", *DERIVED_KINDS)
    if not kinds or any(k not in known for k in kinds):
        fail(f"--kind {kind!r}: give one or more of {', '.join(known)}, separated by commas")
    if sheet is not None and sheet.suffix.lower() != ".png":
        fail(f"--sheet {sheet}: give a .png file name")
    with _catalog(db) as catalog:
        s = catalog.stats()
        s["derived"] = {k: catalog.derived_summary(k) for k in DERIVED_KINDS}
        shown = 0
        if sheet is not None:
            faces = pick_faces(catalog, n, status, kinds=kinds)
            if not faces:
                missing = [k for k in kinds if k != "crop"]
                needs = f" and a {' and '.join(missing)} (run `curate {missing[0]}`)" if missing else ""
                fail(f"no faces with status {status!r}{needs} for --sheet {sheet}")
            shown = contact_sheet(catalog, sheet, faces=faces, n=n, columns=columns, tile=tile, status=status,
                                  captions=_captions(catalog, faces) if status != "ok" else None, kinds=kinds)
    if as_json:
        print(json.dumps(s, indent=2))
    else:
        _print_stats(s)
    if sheet is not None:
        (err_console if as_json else console).print(f"contact sheet of {shown} {status} faces -> {sheet}")


def _captions(catalog: Catalog, faces: list[int]) -> dict[int, str]:
    """Say why a face was set aside: the face it duplicates, or the reason it was rejected."""
    out = {}
    for fid in faces:
        f = catalog.face(fid)
        out[fid] = f"{fid} = {f['duplicate_of']}" if f["duplicate_of"] else f"{fid} {f['reason'] or ''}".strip()
    return out


def _print_stats(s: dict) -> None:
    mb = s["catalog_bytes"] / 1e6
    console.print(f"{visible(s['path'])} (schema {s['schema_version']}, crops {mb:.1f} MB)")
    if not s["sources"] and not s["faces"]:
        console.print("empty catalog: run `curate crop FOLDER` or `curate import FOLDER --no-detect`")
        return
    t = Table("sources", "n", title="sources by status")
    for k, v in sorted(s["sources"].items()):
        t.add_row(k, str(v))
    console.print(t)
    if s["source_errors"]:
        t = Table("error", "n", title="top source errors")
        for r in s["source_errors"]:
            t.add_row(visible(r["message"] or ""), str(r["n"]))
        console.print(t)
    t = Table("faces", "n", title="faces")
    for k, v in sorted(s["faces"].items()):
        t.add_row(k, str(v))
    for k, v in sorted(s["rejected"].items(), key=lambda kv: -kv[1])[:10]:
        t.add_row(f"  rejected: {visible(k)}", str(v))
    for k, v in sorted(s["detectors"].items()):
        t.add_row(f"  detector {visible(k)}", str(v))
    for k, v in s["sizes"].items():
        t.add_row(f"  ok size {k}", str(v))
    console.print(t)
    t = Table("split", "ok faces", title="splits")
    for k, v in s["splits"].items():
        t.add_row(k, str(v))
    console.print(t)
    if s["label_sources"]:
        t = Table("label source", "events", "faces", "annotators", title="label sources")
        for r in s["label_sources"]:
            t.add_row(visible(r["source"]), str(r["events"]), str(r["faces"]), visible(r["annotators"] or ""))
        console.print(t)
        sources = [r["source"] for r in s["label_sources"]]
        counts = {(r["source"], r["tag"]): r["n"] for r in s["tag_counts"]}
        tags = sorted({r["tag"] for r in s["tag_counts"]}, key=lambda tag: -max(
            counts.get((src, tag), 0) for src in sources))
        t = Table("tag", *map(visible, sources), title="faces per current tag (probability >= 0.5)")
        for tag in tags:
            t.add_row(visible(tag), *[str(counts.get((src, tag), "")) for src in sources])
        console.print(t)
    rows = [(kind, r) for kind, summary in s.get("derived", {}).items() for r in summary]
    if rows:
        t = Table("kind", "method", "parameters", "images", "errors", title="derived images (curate sketch)")
        for kind, r in rows:
            t.add_row(kind, visible(r["method"]), r["params_hash"], str(r["images"]), str(r["errors"]))
        console.print(t)


# -- vocab ------------------------------------------------------------------

@vocab_app.command("list")
def vocab_list(db: DbOption = DEFAULT_DB_PATH, as_json: JsonOption = False) -> None:
    """Show the groups and their tags, in order (the class index of a tag is its place)."""
    with _catalog(db) as catalog:
        groups = catalog.groups()
    if as_json:
        print(json.dumps([{"group": g["name"], "exclusive": bool(g["exclusive"]), "tags": list(g["tags"])}
                          for g in groups], indent=2))
        return
    t = Table("group", "kind", "tags")
    for g in groups:
        t.add_row(visible(g["name"]), "exclusive" if g["exclusive"] else "independent",
                  ", ".join(f"{i}:{visible(tag)}" for i, tag in enumerate(g["tags"])) or "-")
    console.print(t)


@vocab_app.command("add")
def vocab_add(
    tag: Annotated[str, typer.Argument(metavar="TAG", help="The new tag, spelled as illustration2vec spells it.")],
    group: Annotated[str, typer.Option("--group", "-g", help="The group it joins.")],
    db: DbOption = DEFAULT_DB_PATH,
) -> None:
    """Add a tag to a group (it goes last, so existing class indices stay).

    Example: curate vocab add "hime cut" --group hair_style
    """
    with _catalog(db, create=True) as catalog:
        catalog.add_tag(tag, group)
    console.print(f"added {tag.strip()!r} to {group}")


@vocab_app.command("add-group")
def vocab_add_group(
    group: Annotated[str, typer.Argument(metavar="GROUP", help="The new group's name, e.g. accessories.")],
    exclusive: Annotated[Optional[bool], typer.Option("--exclusive/--independent", help="Exclusive: one tag "
                                                      "per face; independent: any number.")] = None,
    db: DbOption = DEFAULT_DB_PATH,
) -> None:
    """Add an empty tag group; then `curate vocab add TAG --group G`.

    Example: curate vocab add-group skin_color --exclusive
    """
    if exclusive is None:
        fail("say --exclusive (one tag per face) or --independent (any number)")
    if not group.strip() or group.strip() in ("file", "face_id", "tag", "value"):
        fail(f"{group!r} cannot name a group (label CSVs use it as a column)")
    with _catalog(db, create=True) as catalog:
        catalog.add_group(group.strip(), exclusive)
    console.print(f"added {'exclusive' if exclusive else 'independent'} group {group.strip()!r}")


@vocab_app.command("remove")
def vocab_remove(
    tag: Annotated[str, typer.Argument(metavar="TAG", help="Tag to remove (only while no label uses it).")],
    db: DbOption = DEFAULT_DB_PATH,
) -> None:
    """Remove a tag no label event uses (history is never deleted)."""
    with _catalog(db) as catalog:
        catalog.remove_tag(tag)
    console.print(f"removed {tag!r}")
