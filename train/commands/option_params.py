"""`train <model>`'s command-line options, made from TrainOptions' fields (their metadata:
train.option_fields), and the command line's values turned back into TrainOptions' names.

The command line differs from the options in a few ways, all read from the metadata: lists
are written comma-separated, folders are Paths, some flags are spelled otherwise (--arch,
--db), shared flags come from curate.conventions, and an option whose command-line default
is None takes the field's default. Besides the options, the command has --lr (both learning
rates at once), --resume and --dry-run.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Optional

import typer

from curate import conventions
from train.losses import LOSSES
from train.option_fields import cli_name, cli_of
from train.options import TrainOptions

DEFAULT_ATTRS = ["hair_color", "eye_color"]     # conditional models, when --attrs is left out
SHORTHANDS = {"lr": ("lr_g", "lr_d")}           # one flag for several options: given ones win
LR = Annotated[Optional[float], typer.Option(help="Learning rate of both nets.")]
RESUME = Annotated[Optional[Path], typer.Option(help="Continue this run folder exactly where its newest checkpoint "
                                                "left off, with its own options (--iters sets a new end; options "
                                                "that contradict the run are refused).")]
HINTS = typing.get_type_hints(TrainOptions)      # the fields' types, evaluated


def shown_fields() -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(TrainOptions) if cli_of(f).shown]


def _field_default(f: dataclasses.Field):
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _annotated(f: dataclasses.Field, hint, model_defaults: dict) -> tuple:
    """(annotation, default) of the command-line parameter of one option."""
    meta = cli_of(f)
    if meta.convention:
        return getattr(conventions, meta.convention), None if meta.unset else f.default
    listed = typing.get_origin(hint) is list                    # written comma-separated
    optional = not listed and type(None) in typing.get_args(hint)
    if meta.path:
        base = Path
    elif listed:
        base = str
    else:
        base = next(a for a in typing.get_args(hint) if a is not type(None)) if optional else hint
    unset = meta.unset or optional or listed
    spelt = cli_name(f).replace("_", "-")
    decls = [f"--{spelt}/--no-{spelt}"] if unset and base is bool else []   # typer spells only plain bools so
    info = typer.Option(*decls, help=meta.help.format_map(model_defaults))
    if unset:
        return Annotated[Optional[base], info], None
    return Annotated[base, info], Path(f.default) if meta.path else f.default


def parameters(model: str) -> list[inspect.Parameter]:
    """The parameters of `train <model>` in --help's order: the options in TrainOptions' order,
    --lr before the learning rates it sets, --resume and --dry-run before --progress."""
    def param(name, annotation, default):
        return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)

    out = [param("ctx", typer.Context, inspect.Parameter.empty)]
    for f in shown_fields():
        if f.name == "lr_g":
            out.append(param("lr", LR, None))
        if f.name == "progress":
            out += [param("resume", RESUME, None), param("dry_run", conventions.DryRunOption, False)]
        out.append(param(cli_name(f), *_annotated(f, HINTS[f.name], LOSSES[model].defaults)))
    return out


def _split_list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def options_from_cli(model: str, p: dict) -> dict:
    """The command line's values under TrainOptions' names."""
    out = {"model": model}
    for f in shown_fields():
        value = p[cli_name(f)]
        if value is None:
            value = _field_default(f)
        elif typing.get_origin(HINTS[f.name]) is list:
            value = _split_list(value)
        elif cli_of(f).path:
            value = str(value)
        out[f.name] = value
    for short, names in SHORTHANDS.items():
        out.update({name: p[short] for name in names if p[name] is None})
    if p["attrs"] is None and LOSSES[model].takes_conditions(SimpleNamespace(labels=p["labels"])):
        out["attrs"] = list(DEFAULT_ATTRS)
    return out


def given_options(ctx: typer.Context, model: str, p: dict) -> dict:
    """The options the user gave (command line or environment), under TrainOptions' names."""
    values = options_from_cli(model, p)
    names = {**{cli_name(f): (f.name,) for f in shown_fields()}, **SHORTHANDS}
    given = {}
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name)     # typer vendors click: compare by name
        if source is None or source.name == "DEFAULT":
            continue
        given.update({k: values[k] for k in names.get(param.name, (param.name,)) if k in values})
    return given
