"""What every command of `curate`, `train` and `label-app` shares, written once. Every start-up
imports this module, so it imports neither torch nor the UI.

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
  label source a command WRITES), `overwrite_option` (--overwrite: replace an existing output);
  `old_spelling()` says on stderr that an old spelling of an option still works, and its new one;
  `output_given()`: -o/--out, or the older positional output of `export` and `labels export`.
- `make_app()`: a command group with -h, --version and shell completion.
- `load_lazily()`: the group imports a command's module only when that command runs (or shows
  its help), from a table command name -> module in each program's cli.py; `load_all()` imports
  every module of the table (the whole app, as tests walk it).
"""

from __future__ import annotations

import difflib
import importlib
import io
import sqlite3
import sys
from pathlib import Path
from typing import Annotated

import click
import typer
import typer.main
from rich.console import Console
from typer.core import TyperGroup

from db.base import did_you_mean  # noqa: F401 (the CLI's; written once, below the catalog's errors)
from db.catalog import DEFAULT_DB, Catalog, CatalogError, explain
from curate.text import visible

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


def overwrite_option(help: str, **kw) -> typer.models.OptionInfo:
    """Replace an output that exists already: --overwrite (train's word too; never --force)."""
    return typer.Option("--overwrite", help=help, **kw)


def old_spelling(old: str, new: str) -> None:
    """One line on stderr: `old` still works for this release, `new` is its name now."""
    typer.secho(f"note: {old} is now spelled {new}; {old} still works in this release only", err=True,
                fg=typer.colors.YELLOW)


def output_given(positional: Path | None, out: Path | None, metavar: str, command: str) -> Path:
    """The output a command writes, given as -o/--out or, the older way, as a positional argument
    (it still works in this release, with a note)."""
    if positional is not None and out is not None:
        fail(f"{metavar} given twice ({positional} and -o {out}): give it once, as -o {metavar}")
    if positional is not None:
        old_spelling(f"`{command} {metavar}`", f"`{command} -o {metavar}`")
        return positional
    if out is None:
        fail(f"give the output to write: {command} -o {metavar}")
    return out


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
    """Print `error: message` in red on stderr and exit (callers fail before writing anything). The
    message often quotes a file or face name: its control characters are shown, never obeyed, and
    it stays one line (curate/text.py)."""
    typer.secho(f"error: {visible(message)}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


class CatalogErrors(TyperGroup):
    """Runs the command; a CatalogError or SQLite error that reaches here is one line, not a
    traceback (a damaged page is found by whichever query reads it first). A usage error (a
    missing argument, an unknown option) ends in `error: ...` as `fail()` writes it, not click's
    `Error: ...`."""

    def make_context(self, *args, **kwargs) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except Exception as e:   # `curate --nope`: the group's own options
            _say_error_as_fail_does(e)
            raise

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
            _say_error_as_fail_does(e)
            raise


def _say_error_as_fail_does(e: Exception) -> None:
    """Make a click usage error (typer's own click: matched by what it holds) print its last line
    as `error: ...` instead of `Error: ...`; the usage lines above it stay."""
    show = getattr(e, "show", None)
    if not (callable(show) and hasattr(e, "format_message") and hasattr(e, "exit_code")) or "show" in vars(e):
        return

    def show_lowercase(file=None) -> None:
        text = io.StringIO()
        show(text)
        written = text.getvalue()
        head, sep, tail = written.rpartition("Error: ")
        click.echo(head + ("error: " if sep else "") + tail, file=file or sys.stderr, nl=False)
    e.show = show_lowercase


class LazyCommands(CatalogErrors):
    """A command group that imports a command's module only when the command is looked up: to run
    it, show its help or complete it. `modules` (command name -> module, in the order --help lists
    them) and `app` (the Typer the modules register their commands on) are set by `load_lazily`.
    Each command module imports what it needs at its top; this keeps `--version` and one command's
    start-up from paying for every other command's imports (torch among them)."""

    app: typer.Typer
    modules: dict[str, str] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.modules) + [name for name in super().list_commands(ctx) if name not in self.modules]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in self.modules:
            importlib.import_module(self.modules[name])   # registers its commands on `app`
            self.commands.update(typer.main.get_command(self.app).commands)
        return super().get_command(ctx, name)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        try:
            return super().resolve_command(ctx, args)
        except Exception as e:   # typer's own click's UsageError: matched by what it holds, as above
            message = getattr(e, "message", None)
            if self.suggest_commands and args and isinstance(message, str) and message.startswith("No such command") \
                    and "Did you mean" not in message:   # typer suggests among the commands loaded so far
                close = difflib.get_close_matches(args[0], self.list_commands(ctx))
                if close:
                    e.message = f"{message.rstrip('.')}. Did you mean {', '.join(repr(m) for m in close)}?"
            raise


def load_lazily(app: typer.Typer, modules: dict[str, str]) -> None:
    """Make `app` (from make_app) a LazyCommands group over `modules`: command name -> the module
    that registers it."""
    app.info.cls = type("LazyCommands", (LazyCommands,), {"app": app, "modules": modules})


def load_all(modules: dict[str, str]) -> None:
    """Import every module of the table: the app then holds every command, as before it was lazy."""
    for module in dict.fromkeys(modules.values()):
        importlib.import_module(module)


def app_with_every_command(app: typer.Typer, modules: dict[str, str], module_name: str):
    """A cli module's `__getattr__`: `<cli>.app` is `app` with every command module imported
    (what the tests walk); the entry point itself stays lazy."""
    def __getattr__(name: str):
        if name == "app":
            load_all(modules)
            return app
        raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
    return __getattr__
