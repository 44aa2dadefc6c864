"""What every command of `curate`, `train` and `label-app` shares, written once.

- `DbOption`: the catalog, `--db` or the `CURATE_DB` variable, default `./catalog.db`.
- `make_console()`: a Rich console that prints data as text. Names come from files and
  users ("cat ears [cosplay]", a source called "[/x]"), so markup is never interpreted:
  colour is given with `style=`, never written into the string.
- `fail()`: one red line on stderr, then exit.
- `CatalogErrors`: the command group class (`typer.Typer(cls=CatalogErrors)`): a CatalogError,
  or a SQLite error (a damaged or read-only catalog), anywhere in a command becomes one line.
- `did_you_mean()`: the closest known name, for "unknown ..." messages.
- The options every command spells the same way (README, "Conventions"): `n_option` (-n/--n),
  `out_option` (-o/--out), `JobsOption` (-j/--jobs), `DeviceOption` (--device, default auto,
  `resolve_device()` names the one used), `ProgressOption`, `JsonOption`, `DryRunOption`,
  `labels_option` (--labels: a label source a command READS) and `target_option` (--target: the
  label source a command WRITES).
- `make_app()`: a command group with -h, --version and shell completion.
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

from db.catalog import DEFAULT_DB, Catalog, CatalogError, explain

DEFAULT_DB_PATH = Path(DEFAULT_DB)

DbOption = Annotated[Path, typer.Option("--db", envvar="CURATE_DB",
                                        help="The catalog file (or set CURATE_DB).")]

CONTEXT = {"help_option_names": ["-h", "--help"]}


def n_option(help: str, **kw) -> typer.models.OptionInfo:
    """How many (faces, images, rows): -n or --n."""
    return typer.Option("-n", "--n", help=help, **kw)


def out_option(help: str, **kw) -> typer.models.OptionInfo:
    """The file or folder a command writes: -o or --out."""
    return typer.Option("-o", "--out", help=help, **kw)


def labels_option(help: str = "The label source read (manual, i2v, animeface, judge, any imported name).",
                  **kw) -> typer.models.OptionInfo:
    """A label source a command reads: --labels, on `curate` and `train` alike."""
    return typer.Option("--labels", help=help, **kw)


def target_option(help: str, **kw) -> typer.models.OptionInfo:
    """The label source a command writes its labels into: --target."""
    return typer.Option("--target", help=help, **kw)


def jobs_option(help: str = "Worker processes (0: one per core).", **kw) -> typer.models.OptionInfo:
    """How many processes work in parallel: -j or --jobs."""
    return typer.Option("-j", "--jobs", min=0, help=help, **kw)


JobsOption = Annotated[int, jobs_option()]
DeviceOption = Annotated[str, typer.Option("--device", help="auto (CUDA when present, else CPU), cpu, cuda, "
                                           "cuda:1 ...")]
ProgressOption = Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars (on stderr).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout instead of tables.")]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Print the plan on stdout; write nothing.")]


def resolve_device(name: str) -> str:
    """The device `--device NAME` means here: auto becomes cuda or cpu; a CUDA device this torch
    build cannot see is refused in one line."""
    import torch
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        fail(f"--device {name}: this torch build sees no CUDA GPU (use --device auto or cpu)")
    try:
        torch.device(name)
    except RuntimeError:
        fail(f"--device {name!r}: expected auto, cpu, cuda or cuda:N")
    return name


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version
        try:
            typer.echo(version("animeface-gan-study"))
        except PackageNotFoundError:
            typer.echo("animeface-gan-study (not installed)")
        raise typer.Exit()


VersionOption = Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                             help="Print the version and exit.")]


def make_app(help: str) -> typer.Typer:
    """A command group (`curate`, `train`) with -h/--help, --version, shell completion
    (--install-completion) and one-line errors for catalog problems."""
    app = typer.Typer(cls=CatalogErrors, rich_markup_mode=None, help=help, no_args_is_help=True,
                      context_settings=CONTEXT, pretty_exceptions_enable=False)

    @app.callback()
    def main(version: VersionOption = False) -> None:
        pass
    return app


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
        except Exception as e:   # typer's own click raises its NoSuchOption: matched by what it holds
            if getattr(e, "option_name", None) == "--source" and hasattr(e, "message"):   # older versions' word
                e.message = ("No such option: --source (a label source is --labels where a command reads it, "
                             "--target where it writes it)")
            raise


def did_you_mean(word: str, choices) -> str:
    """` (did you mean 'x'?)` with the known name closest to `word`, or "" when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
