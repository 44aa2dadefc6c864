"""`train <model>` for every model of the registry, `train sample`, `train animate`: thin
wrappers over train.loop / train.runs. A model's command is made from TrainOptions' fields
(train.commands.option_params); it gathers its options into one TrainOptions (or, with
--resume, merges them into the run's own in `options.resume_options`), selects the faces
once, prints what it selected and calls `train()`."""

# no `from __future__ import annotations`: typer reads `sample`'s and `animate`'s annotations as written

import inspect
import json
import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from typer import _click          # typer vendors click: its parser raises these
from typer.main import get_command

from db import Catalog, CatalogError
from curate.conventions import DeviceOption, ProgressOption, make_console, n_option, old_spelling, out_option, \
    resolve_device
from curate.progress_lines import progress_display
from curate.text import visible

from train.animate import animate_run
from train.app import app, fail
from train.commands.option_params import given_options, options_from_cli, parameters
from train.conditions import ConditionError
from train.data import DataError, RareTagsError, select_faces
from train.losses import LOSSES
from train.loop import TrainingStopped, stopped_early, train
from train.options import TrainOptions, resume_options
from train.runs import RunError, load_run
from train.sampling import fixed_sample_rows, generate, write_pages
from train.sketch.drawing import DrawingError
from train.sketch.hint_tags import chosen_over
from train.sketch.paint import drawing_files, paint_drawings
from train.tag_counts import merged_counts, tag_counts_table


def print_selection(console, sel, source: str | None, min_per_tag: int) -> None:
    """What `train <model>` will train on: faces per tag, and every tag or face left out."""
    if not sel.counts:
        console.print(f"{len(sel.ids)} faces (no conditions)")
        return
    title = f"{len(sel.ids)} faces labelled by {source!r}" + (
        f" ({sel.unlabelled} left out: an attribute unlabelled)" if sel.unlabelled else "")
    notes = {t: f"left out (< --min-per-tag {min_per_tag}, or asked)" for tags in sel.left_out.values() for t in tags}
    console.print(tag_counts_table(title, {source: merged_counts(sel.counts, sel.left_out)}, notes))


def print_refused(console, error: RareTagsError, source: str | None) -> None:
    """The same table when tags are refused (here and in `train experiment`): every tag's faces,
    the refused ones marked."""
    notes = {t: f"too few (< --min-per-tag {error.min_per_tag})" for _, t in error.rare}
    console.print(tag_counts_table(f"faces labelled by {source!r}", {source: error.counts}, notes))


def parse_train_args(model: str, args: list[str]) -> tuple[dict, dict, set[str]]:
    """`train MODEL ARGS` read by that command's own parser without running it (what `train
    experiment` does with each run's options): every value under TrainOptions' names, the ones
    ARGS gave, and the parameter names written in ARGS. Raises ValueError naming the option."""
    command = get_command(app).commands[model]
    try:
        ctx = command.make_context(f"train {model}", list(args))
    except _click.ClickException as e:
        raise ValueError(e.format_message()) from e
    written = {p.name for p in command.params
               if getattr(ctx.get_parameter_source(p.name), "name", None) == "COMMANDLINE"}  # by name: see above
    return options_from_cli(model, ctx.params), given_options(ctx, model, ctx.params), written


def train_command(model: str, ctx: typer.Context, params: dict) -> None:
    """`train <model>`: a new run, or the one --resume names, trained to its end (run folder on stdout)."""
    main_process = os.environ.get("RANK", "0") == "0"     # under torchrun, rank 0 alone speaks
    console = make_console(stderr=True, quiet=not main_process)
    try:
        if params["resume"] is not None:
            run_dir = _resume_run(model, given_options(ctx, model, params), params, console)
        else:
            run_dir = _new_run(TrainOptions(**options_from_cli(model, params)), params, console)
    except TrainingStopped as e:
        fail(f"training stopped: {e}", code=1)
    except (DataError, RunError, CatalogError, ConditionError, ValueError) as e:
        fail(str(e))
    if run_dir is not None and main_process:       # None: a dry run
        typer.echo(str(run_dir))
    if run_dir is not None and stopped_early(run_dir):   # by Ctrl-C or SIGTERM: 130, as every command its user stops
        raise typer.Exit(130)


def _resume_run(model: str, given: dict, params: dict, console) -> Path | None:
    resume = params["resume"]
    run = load_run(resume)
    if run.model != model:
        fail(f"{resume} is a {run.model} run, not {model}: use `train {run.model} --resume {resume}`")
    opts, notes = resume_options(run.options, given)
    for note in notes:
        console.print(f"resuming with {note}", style="yellow")
    if params["dry_run"]:
        typer.echo(json.dumps(opts.to_dict(), indent=2))
        return None
    return train(opts, resume=resume, console=console)


def _new_run(opts: TrainOptions, params: dict, console) -> Path | None:
    dry_run = params["dry_run"]
    with Catalog(opts.catalog, create=False) as catalog:
        try:
            selected = select_faces(catalog, opts)
        except RareTagsError as e:
            print_refused(console, e, opts.labels)
            raise
        if dry_run:
            opts.catalog_fingerprint = catalog.content_fingerprint()
    print_selection(make_console() if dry_run else console, selected, opts.labels, opts.min_per_tag)
    if dry_run:   # the plan on stdout
        typer.echo(json.dumps(opts.to_dict(), indent=2))
        console.print("dry run: nothing written")
        return None
    return train(opts, console=console, selected=selected)


def _make_command(model: str):
    def command(ctx: typer.Context, **params) -> None:
        train_command(model, ctx, params)

    command.__signature__ = inspect.Signature(parameters(model))   # the options, from TrainOptions' fields
    command.__doc__ = LOSSES[model].help
    return command


for _model, _loss in LOSSES.items():
    app.command(name=_model, help=_loss.help)(_make_command(_model))


MAX_SAMPLES = 10_000       # images (or paintings per drawing) one `train sample` makes: beyond, memory runs out
DRAWINGS_PER_PAGE = 16     # rows of a --sketch grid per file: out.png, out-2.png ...
ROWS_PER_PAGE = 128        # rows of a face grid per file


@app.command()
def sample(
    run: Annotated[Path, typer.Argument(metavar="RUN", help="A run folder, or pretrained:NAME (a model shipped "
                                        "with the package).")],
    tags: Annotated[Optional[str], typer.Option(help="Comma-separated tags, e.g. \"blonde hair, blue eyes\"; "
                                                "groups left out are drawn from the training distribution. "
                                                "Without it, each row asks for one tag of the first exclusive "
                                                "group (hair colour), written beside the row.")] = None,
    sketch: Annotated[Optional[Path], typer.Option(help="Sketch models: a drawing (any size, grey or colour, white "
                                                   "or transparent paper; a whole figure is cropped to its face) "
                                                   "or a folder of drawings, each painted -n ways; "
                                                   f"{DRAWINGS_PER_PAGE} drawings a page (out.png, out-2.png "
                                                   "...).")] = None,
    hints: Annotated[Optional[Path], typer.Option(help="Sketch models trained with --hints: a picture of colour "
                                                  "hints laid over the drawing(s), transparent (or white) where "
                                                  "there is no hint; cut to each drawing's face as the drawing "
                                                  "is.")] = None,
    n: Annotated[Optional[int], n_option(f"Number of images [64; with --sketch: paintings per drawing, 8; at most "
                                         f"{MAX_SAMPLES:,}].")] = None,
    output: Annotated[Path, out_option("PNG grid to write (more pages: out-2.png, ...).")] = Path("samples.png"),
    columns: Annotated[Optional[int], typer.Option(help="Images per row (without --sketch) [8].")] = None,
    nrow: Annotated[Optional[int], typer.Option(hidden=True, help="Old name of --columns.")] = None,
    seed: Annotated[int, typer.Option(help="Noise seed.")] = 0,
    ema: Annotated[bool, typer.Option(help="Use the EMA generator.")] = True,
    device: DeviceOption = "auto",
    progress: ProgressOption = True,
) -> None:
    """Generate a grid of faces from a trained run, optionally with given tags (faces under 64 px are
    enlarged in the picture); a sketch model paints drawings (rows: drawings; columns: the sketch as the
    model sees it, then its paintings). Prints the files written."""
    console = make_console(stderr=True)
    if nrow is not None:
        old_spelling("--nrow", "--columns")   # as `curate stats` spells it
    columns = columns if columns is not None else nrow if nrow is not None else 8
    n = n if n is not None else (8 if sketch is not None else 64)
    if output.suffix.lower() != ".png":
        fail(f"{output}: write a .png file")
    if n < 1 or columns < 1:
        fail("-n and --columns must be at least 1")
    if n > MAX_SAMPLES:
        fail(f"-n {n:,}: at most {MAX_SAMPLES:,} images a call (run it again with another --seed for more)")
    try:
        r = load_run(run)
        device = resolve_device(device)
        if sketch is not None and r.sketch is None:
            fail(f"{run} is a {r.model} run, not a sketch model: --sketch needs a `train pix2pix` run")
        if hints is not None and sketch is None:
            fail("--hints colours a drawing: give --sketch too")
        if sketch is None and r.sketch is not None:
            fail(f"{run} is a sketch model ({r.model}): give --sketch FILE or a folder of drawings to paint")
        conditions, row_labels, title = _sample_conditions(r, run, tags, sketch, n, columns)
        if sketch is not None:
            images, row_labels, columns = _paint(r, sketch, conditions, n, seed, console, progress, hints)
            n, per_page = len(images) - len(row_labels), DRAWINGS_PER_PAGE
        else:
            G = r.generator(ema=ema, device=device, warn=lambda text: console.print(text, style="yellow"))
            images, _ = generate(r, n, conditions, seed=seed, G=G, device=device)
            per_page = ROWS_PER_PAGE
    except (RunError, ConditionError, DrawingError, ValueError) as e:
        fail(str(e))
    output.parent.mkdir(parents=True, exist_ok=True)
    written = write_pages(images, columns, output, per_page, row_labels, title)
    typer.echo(f"{n} images -> {', '.join(map(str, written))}")


def _sample_conditions(r, run: Path, tags, sketch, n: int, columns: int):
    """(conditions, row labels, title) of `train sample`: the tags asked, or one tag a row."""
    if tags:
        if r.spec is None or not r.conditional:
            fail(f"{run} is an unconditional {r.model} run: --tags needs a conditional run")
        return [r.spec.parse_tags(tags)], None, tags
    if r.conditional and sketch is None and (rows := fixed_sample_rows(r.spec)):
        group = next(g.name for g in r.spec.groups if g.exclusive)
        row_labels = [rows[i % len(rows)] for i in range((n + columns - 1) // columns)]
        return [{group: row_labels[i // columns]} for i in range(n)], row_labels, None
    return None, None, None


def _paint(r, sketch: Path, conditions, n: int, seed: int, console, show: bool, hints: Path | None = None):
    """Every drawing painted n ways, with a bar: (images, a row label per drawing, images per row)."""
    def say_hinted(path: Path, changes: dict) -> None:     # where hints and tags disagree, the hints decide
        console.print(visible(f"{path.name}: the hints chose {chosen_over(changes)}"), markup=False)

    files = drawing_files(sketch)
    warn = (lambda text: console.print(visible(text), style="yellow", markup=False)) if len(files) > 1 else None
    with progress_display(TextColumn("painting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          TimeRemainingColumn(), console=console,
                          disable=not show or len(files) < 2) as bar:   # one drawing: instant, no bar
        task = bar.add_task("painting drawings", total=len(files))   # a plain line's words; the bar shows "painting"
        used, images = paint_drawings(r, files, (conditions or [{}])[0], n, seed, warn, hints,
                                      on_drawing=lambda: bar.advance(task), on_hinted_tags=say_hinted)
    return images, [f.name for f in used], n + 1


@app.command()
def animate(
    run: Annotated[Path, typer.Argument(metavar="RUN", help="A run folder.")],
    output: Annotated[Optional[Path], out_option("Base name of the GIF and MP4 [RUN/progress].")] = None,
    fps: Annotated[float, typer.Option(help="Frames per second.")] = 4.0,
    mp4: Annotated[bool, typer.Option(help="Also write an MP4 (needs imageio-ffmpeg).")] = True,
) -> None:
    """A GIF (and MP4) of the run's sample grids, one frame per grid (per epoch by default)."""
    try:
        written = animate_run(load_run(run), output, fps=fps, mp4=mp4)
    except (RunError, ValueError) as e:
        fail(str(e))
    for path in written:
        typer.echo(str(path))
