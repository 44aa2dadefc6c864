"""The `curate` typer app and the options its commands share.

Commands live in one module per idea (crop, labels, tagging, ...) and register
themselves on `app`; each builds a `db.Catalog` and calls the library.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

from db import Catalog, CatalogError
# the commands import these from here
from curate.conventions import DEFAULT_DB_PATH, CatalogErrors, DbOption, fail, make_app, make_console  # noqa: F401
from curate.progress_lines import progress_display

RayOption = Annotated[Optional[str], typer.Option(
    "--ray", metavar="auto|local|ADDRESS",
    help="Run the work on Ray (pip install -e '.[ray]'): auto = the cluster this machine belongs to, "
         "local = a Ray started here for this run, or the cluster's address. This process still writes "
         "the catalog. See the README for clusters.")]

app = make_app("Turn raw anime illustrations into a labelled face catalog.")


def open_catalog(path: Path, create: bool = True) -> Catalog:
    """Open the catalog or exit with a message naming the file."""
    try:
        return Catalog(path, create=create)
    except CatalogError as e:
        fail(str(e))


def progress_bar(show: bool = True):
    """The bar of `curate tag` and `curate calibrate-colors`, on stderr: a description, the count
    and a `rate` field the caller fills in (off a terminal: a plain line every 30 s)."""
    return progress_display(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[rate]}", markup=False), TimeRemainingColumn(),
                            console=make_console(stderr=True), disable=not show)
