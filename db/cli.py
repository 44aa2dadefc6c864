"""What every command of `curate`, `train` and `label-app` shares, written once.

- `DbOption`: the catalog, `--db` or the `CURATE_DB` variable, default `./catalog.db`.
- `make_console()`: a Rich console that prints data as text. Names come from files and
  users ("cat ears [cosplay]", a source called "[/x]"), so markup is never interpreted:
  colour is given with `style=`, never written into the string.
- `fail()`: one red line on stderr, then exit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from .catalog import DEFAULT_DB

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
