"""The `train` typer app; command modules register themselves on it."""

from __future__ import annotations

import typer

app = typer.Typer(rich_markup_mode=None, help="Train and evaluate GANs on the catalog's labelled faces.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


def fail(message: str, code: int = 2) -> "typer.Exit":
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)
