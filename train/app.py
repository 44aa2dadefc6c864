"""The `train` typer app; command modules register themselves on it."""

from __future__ import annotations

import typer

from db.cli import fail  # noqa: F401  (the commands import it from here)

app = typer.Typer(rich_markup_mode=None, help="Train and evaluate GANs on the catalog's labelled faces.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
