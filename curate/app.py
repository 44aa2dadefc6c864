"""The `curate` typer app and the options its commands share.

Commands live in one module per idea (crop, labels, tagging, ...) and register
themselves on `app`; each builds a `db.Catalog` and calls the library.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from db import DEFAULT_DB, Catalog, CatalogError

app = typer.Typer(rich_markup_mode=None, help="Turn raw anime illustrations into a labelled face catalog.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

DbOption = Annotated[Path, typer.Option("--db", help="The catalog file (created when missing).",
                                        envvar="CURATE_DB")]
DEFAULT_DB_PATH = Path(DEFAULT_DB)


def open_catalog(path: Path, create: bool = True) -> Catalog:
    """Open the catalog or exit with a message naming the file."""
    try:
        return Catalog(path, create=create)
    except CatalogError as e:
        fail(str(e))


def fail(message: str, code: int = 2) -> "typer.Exit":
    """Print a one-line error to stderr and exit (nothing half-written: callers fail before writing)."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)
