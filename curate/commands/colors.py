"""`curate calibrate-colors`: the animeface tagger's colour palette, fitted on labelled faces."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from db import CatalogError

from curate.app import DEFAULT_DB_PATH, DbOption, app, fail, make_console, open_catalog, progress_bar
from curate.conventions import ProgressOption, jobs_option, labels_option, out_option
from curate.taggers.calibration import calibrate, held_out_accuracy
from curate.taggers.colors import DEFAULT_PALETTE, Palette

console = make_console()


@app.command("calibrate-colors")
def calibrate_colors(
    out: Annotated[Path, out_option("Palette JSON to write.")],
    db: DbOption = DEFAULT_DB_PATH,
    source: Annotated[str, labels_option("Label source to calibrate on.")] = "manual",
    split: Annotated[str, typer.Option(help="train, val, test or all.")] = "train",
    min_faces: Annotated[int, typer.Option(min=2, help="Colours with fewer labelled faces are left out.")] = 10,
    current: Annotated[Optional[Path], typer.Option(help="The palette to compare with [the embedded one].")]
    = None,
    workers: Annotated[int, jobs_option()] = 0,
    progress: ProgressOption = True,
) -> None:
    """Fit the animeface colour palette on labelled faces, and print its accuracy on the held-out test
    split beside the current palette's (then: curate tag --palette OUT --target animeface-v2).

    Example: curate calibrate-colors -o palette.json -j 2
    """
    if split not in ("train", "val", "test", "all"):
        fail(f"--split must be train, val, test or all, not {split!r}")
    try:
        old = Palette.load(current or DEFAULT_PALETTE)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        fail(f"--current {current}: not a colour palette ({e})")
    catalog = open_catalog(db, create=False)
    with progress_bar(progress) as bar:
        task = bar.add_task("calibrating", total=None, rate="")
        try:
            palette, info = calibrate(catalog, source, None if split == "all" else split,
                                      lambda n, total: bar.update(task, advance=n, total=total), min_faces, workers)
        except (CatalogError, ValueError) as e:
            fail(str(e))
        held_out = None
        if split in ("train", "val"):
            check = bar.add_task("held-out test split", total=None, rate="")
            held_out = held_out_accuracy(catalog, {"current": old, "new": palette}, source, "test", workers,
                                         lambda n, total: bar.update(check, advance=n, total=total))
    palette.save(out)
    console.print(f"palette of {sum(len(m.tags) for m in palette.groups.values())} colours from {info['found']} "
                  f"of {info['faces']} faces (animeface found no face in the rest) -> {out}")
    if held_out is None or not held_out["found"]:
        console.print(f"no held-out accuracy: {source!r} labels no test face animeface finds "
                      f"(calibrate on --split train after `curate split`)")
        return
    t = Table("group", f"current ({current or 'embedded'})", f"new ({out})",
              title=f"accuracy against {source} on {held_out['found']} test faces "
                    f"(of {held_out['faces']}; animeface finds no face in the rest)")
    for group in palette.groups:
        cells = []
        for name in ("current", "new"):
            right, n = held_out["accuracy"][name].get(group, (0, 0))
            cells.append(f"{right / n:.1%} ({right}/{n})" if n else "-")
        t.add_row(group, *cells)
    console.print(t)
