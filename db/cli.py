"""What every command of `curate`, `train` and `label-app` shares, written once.

- `DbOption`: the catalog, `--db` or the `CURATE_DB` variable, default `./catalog.db`.
- `make_console()`: a Rich console that prints data as text. Names come from files and
  users ("cat ears [cosplay]", a source called "[/x]"), so markup is never interpreted:
  colour is given with `style=`, never written into the string.
- `fail()`: one red line on stderr, then exit.
- `CatalogErrors`: the command group class (`typer.Typer(cls=CatalogErrors)`): a CatalogError,
  or a SQLite error (a damaged or read-only catalog), anywhere in a command becomes one line.
- `did_you_mean()`: the closest known name, for "unknown ..." messages.
"""

from __future__ import annotations

import difflib
import sqlite3
from pathlib import Path
from typing import Annotated

import click
import typer
from rich.console import Console
from typer.core import TyperGroup

from .catalog import DEFAULT_DB, Catalog, CatalogError, explain

DEFAULT_DB_PATH = Path(DEFAULT_DB)

DbOption = Annotated[Path, typer.Option("--db", envvar="CURATE_DB",
                                        help="The catalog file (or set CURATE_DB).")]


def make_console(stderr: bool = False, quiet: bool = False) -> Console:
    """A console for human output: no markup, no syntax highlighting, no emoji codes, and long
    lines never folded (a path split across lines cannot be copied or grepped)."""
    return Console(stderr=stderr, quiet=quiet, soft_wrap=True, markup=False, highlight=False, emoji=False)


def fail(message: str, code: int = 2) -> "typer.Exit":
    """Print `error: message` in red on stderr and exit (callers fail before writing anything)."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


class CatalogErrors(TyperGroup):
    """Runs the command; a CatalogError or SQLite error that reaches here is one line, not a
    traceback (a damaged page is found by whichever query reads it first)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except CatalogError as e:
            fail(str(e))
        except sqlite3.DatabaseError as e:
            fail(str(explain(Catalog.last_opened, e)))


def did_you_mean(word: str, choices) -> str:
    """` (did you mean 'x'?)` with the known name closest to `word`, or "" when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
