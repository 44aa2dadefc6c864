"""`curate export`: the catalog's faces as files for training code that does not read SQLite."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from db import SPLITS, CatalogError

from curate.app import DEFAULT_DB_PATH, DbOption, app, fail, make_console, open_catalog
from curate.conventions import ProgressOption, labels_option, old_spelling, out_option, output_given, \
    overwrite_option
from curate.export import ALL_FACES, FORMATS, ExportOptions, ExportResult, export
from curate.progress_lines import progress_display
from curate.text import visible

console = make_console()
err_console = make_console(stderr=True)


@app.command("export")
def export_command(
    out_argument: Annotated[Optional[Path], typer.Argument(
        metavar="OUT", show_default=False, help="The folder to write, the older way (give -o OUT).")] = None,
    out: Annotated[Optional[Path], out_option("Folder to write (must be empty or missing).")] = None,
    format: Annotated[str, typer.Option("--format", "-f", help=f"One of: {', '.join(FORMATS)}.")]
    = "imagefolder",
    group: Annotated[Optional[str], typer.Option(help="Exclusive group the classes come from "
                                                 "(default: the first, hair_color).")] = None,
    source: Annotated[str, labels_option()] = "manual",
    split: Annotated[Optional[str], typer.Option("--split", help="Only this split: train, val or test.")] = None,
    unlabelled: Annotated[bool, typer.Option("--unlabelled", help="imagefolder: put faces without a label "
                                             "in OUT/_unlabelled/ instead of leaving them out.")] = False,
    overwrite: Annotated[bool, overwrite_option("Replace OUT if it is not empty (its old contents are "
                                                "deleted once the new export is complete).")] = False,
    force: Annotated[bool, typer.Option("--force", hidden=True, help="The old spelling of --overwrite.")] = False,
    shard_size: Annotated[int, typer.Option("--shard-size", help="webdataset: faces per tar shard.", min=1)]
    = 10_000,
    db: DbOption = DEFAULT_DB_PATH,
    show: ProgressOption = True,
) -> None:
    """Write ok faces as PNG files for training code that does not read the catalog.

    imagefolder: OUT/<tag>/<face_id>.png (torchvision ImageFolder); a tag that cannot name a
    folder as it is ("a/b", "..") gets a safe name, printed.
    dataset-json: StyleGAN2-ADA layout, OUT/00000/img00000000.png + dataset.json.
    csv: OUT/images/<face_id>.png + OUT/faces.csv (split, source path, box, labels); text cells
    a spreadsheet would run as formulas (=, +, -, @ first) get a ' before them.

    Crops that no longer decode are left out and named. OUT may be a symbolic link to a folder.
    A full disk stops the export with one line; no half-written OUT is left.
    webdataset: OUT/<split>-000000.tar ... (png + json labels + cls per face; pip install -e '.[export]').
    hf: a Hugging Face datasets folder, one split each, image + a column per tag group (load_from_disk).

    Example: curate export -o out/hair --format imagefolder --group hair_color --labels manual --split train
    """
    out = output_given(out_argument, out, "OUT", "curate export")
    if force:
        old_spelling("--force", "--overwrite")
    if format not in FORMATS:
        fail(f"--format must be one of {', '.join(FORMATS)}, not {format!r}")
    if split is not None and split not in SPLITS:
        fail(f"--split must be one of {', '.join(SPLITS)}, not {split!r}")
    options = ExportOptions(format=format, out=out, source=source, group=group, split=split,
                            unlabelled=unlabelled, force=overwrite or force, shard_size=shard_size)
    _print_result(_export_with_progress(db, options, show), options)


def _export_with_progress(db: Path, options: ExportOptions, show: bool) -> ExportResult:
    columns = (TextColumn("export", style="bold"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn())
    progress = progress_display(*columns, console=err_console, disable=not show)   # off a terminal: plain lines
    task: list[int] = []

    def step(done: int, total: int) -> None:   # the bar shows from the first face: an error before is one line
        if not task:
            progress.start()
            task.append(progress.add_task("export", total=total))
        progress.update(task[0], completed=done, total=total)
    catalog = open_catalog(db, create=False)
    try:
        return export(catalog, options, step)
    except CatalogError as e:
        fail(str(e))
    finally:
        progress.stop()
        catalog.close()


def _print_result(result: ExportResult, o: ExportOptions) -> None:
    """The summary; tags and reasons come from people and files: their control characters are
    shown as escapes (curate.text)."""
    sizes = ", ".join(f"{w}x{h}" for w, h in sorted(result.sizes))
    what = "faces without a label of " + visible(repr(o.source)) if o.format in ALL_FACES \
        else "faces without a label left out"
    console.print(f"{result.written} faces -> {visible(o.out)} ({o.format}; sizes {sizes or '-'}); "
                  f"{result.skipped_unlabelled} {what}")
    if result.per_class:
        console.print("  " + ", ".join(f"{visible(k)}: {v}" for k, v in sorted(result.per_class.items(),
                                                                                key=lambda kv: -kv[1])))
    for tag, folder in result.folders.items():
        console.print(f"  tag {visible(repr(tag))} is in folder {visible(repr(folder))} (a tag never names a "
                      f"folder as it is)")
    for face_id, why in result.broken[:10]:
        console.print(f"  left out face {face_id}: {visible(why)}", style="yellow")
    if len(result.broken) > 10:
        console.print(f"  ... and {len(result.broken) - 10} more broken crops", style="yellow")
    if o.format == "dataset-json" and len(result.sizes) > 1:
        console.print("warning: StyleGAN2-ADA needs every image the same size; these differ", style="yellow")
