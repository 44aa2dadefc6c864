"""`train <model>` for every model of the registry, `train sample`, `train animate`: thin
wrappers over train.loop / train.runs. A command gathers its options into one TrainOptions
(or, with --resume, merges them into the run's own in `options.resume_options`), selects
the faces once, prints what it selected and calls `train()`."""

# no `from __future__ import annotations`: the options' help texts are built per model when defined

import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Optional

import typer

from db import Catalog, CatalogError
from curate.conventions import DEFAULT_DB_PATH, DbOption, DeviceOption, DryRunOption, ProgressOption, make_console, n_option, \
    labels_option, out_option, resolve_device

from train.app import app, fail
from train.conditions import ConditionError
from train.data import DataError, RareTagsError, select_faces
from train.losses import LOSSES
from train.options import TrainOptions, resume_options
from train.runs import RunError, load_run
from train.sampling import generate, labelled_grid
from train.tag_counts import merged_counts, tag_counts_table


SKETCH = LOSSES["pix2pix"].defaults      # the sketch model's own defaults, for the options' help


def _split_list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


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


def options_from_cli(model: str, p: dict) -> dict:
    """The command line's values under TrainOptions' names."""
    out = {k: v for k, v in p.items() if k not in ("db", "lr", "resume", "dry_run", "ctx")}
    out.update(model=model, catalog=str(p["db"] or DEFAULT_DB_PATH), attrs=_split_list(p["attrs"]),
               common=_split_list(p["common"]), lr_g=p["lr_g"] if p["lr_g"] is not None else p["lr"],
               lr_d=p["lr_d"] if p["lr_d"] is not None else p["lr"], runs_dir=str(p["runs_dir"]),
               cache_dir=str(p["cache_dir"]) if p["cache_dir"] else None, diffaug=p["diffaug"] or "")
    out["backbone"] = out.pop("arch")
    if p["attrs"] is None and LOSSES[model].takes_conditions(SimpleNamespace(labels=p["labels"])):
        out["attrs"] = ["hair_color", "eye_color"]
    return out


def given_options(ctx: typer.Context, model: str, p: dict) -> dict:
    """The options the user gave (command line or environment), under TrainOptions' names."""
    values = options_from_cli(model, p)
    given = {}
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name)     # typer vendors click: compare by name
        if source is None or source.name == "DEFAULT":
            continue
        names = {"db": ["catalog"], "lr": ["lr_g", "lr_d"], "arch": ["backbone"]}.get(param.name, [param.name])
        given.update({k: values[k] for k in names if k in values})
    return given


def parse_train_args(model: str, args: list[str]) -> tuple[dict, dict, set[str]]:
    """`train MODEL ARGS` read by that command's own parser without running it (what `train
    experiment` does with each run's options): every value under TrainOptions' names, the ones
    ARGS gave, and the parameter names written in ARGS. Raises ValueError naming the option."""
    from typer import _click          # typer vendors click: its parser raises these
    from typer.main import get_command

    command = get_command(app).commands[model]
    try:
        ctx = command.make_context(f"train {model}", list(args))
    except _click.ClickException as e:
        raise ValueError(e.format_message()) from e
    written = {p.name for p in command.params
               if getattr(ctx.get_parameter_source(p.name), "name", None) == "COMMANDLINE"}  # by name: see above
    return options_from_cli(model, ctx.params), given_options(ctx, model, ctx.params), written


def _make_command(model: str):
    def command(
        ctx: typer.Context,
        db: DbOption = None,
        labels: Annotated[Optional[str], labels_option("The label source read (manual, i2v, animeface, any "
                                                       "imported name); unconditional models: which faces to "
                                                       "use.")] = None,
        attrs: Annotated[Optional[str], typer.Option(help="Tag groups to condition on, comma-separated "
                                                      "[conditional models: hair_color,eye_color].")] = None,
        min_prob: Annotated[Optional[float], typer.Option(help="Probabilistic sources: keep labels >= this.")] = None,
        common: Annotated[Optional[str], typer.Option(help="Keep only faces also labelled by these sources "
                                                       "(comma-separated): same faces across label sources.")] = None,
        min_per_tag: Annotated[int, typer.Option(help="Refuse tags with fewer faces than this.")] = 10,
        drop_rare: Annotated[bool, typer.Option(help="Leave rare tags (and their faces) out instead of "
                                                "refusing.")] = False,
        size: Annotated[int, typer.Option(help="Image size: 32, 64 or 128.")] = 64,
        iters: Annotated[Optional[int], typer.Option(help="Generator steps.")] = None,
        epochs: Annotated[Optional[float], typer.Option(help="Passes over the faces [default 10].")] = None,
        batch: Annotated[int, typer.Option(help="Batch size (over all processes).")] = 64,
        z_dim: Annotated[Optional[int], typer.Option(help="Noise dimensions [the model's: "
                                                     + str(LOSSES[model].defaults["z_dim"]) + "].")] = None,
        ngf: Annotated[int, typer.Option(help="Generator width.")] = 64,
        ndf: Annotated[int, typer.Option(help="Discriminator width.")] = 64,
        deep: Annotated[bool, typer.Option(help="Extra stride-1 conv per resolution (the study's "
                                           "'DCGAN with extra layers'; --arch dcgan only).")] = False,
        arch: Annotated[str, typer.Option(help="Network backbone: dcgan (the study's) or resnet (SNGAN-style "
                                          "residual blocks).")] = "dcgan",
        loss: Annotated[Optional[str], typer.Option(help="Adversarial loss: bce, hinge, or wasserstein (needs "
                                                    "--sn d or wgan-gp) [the model's: " + LOSSES[model].defaults["loss"]
                                                    + "].")] = None,
        sn: Annotated[Optional[str], typer.Option(help="Spectral normalisation in none, d, g or both nets [the "
                                                  "model's: " + LOSSES[model].defaults["sn"] + "].")] = None,
        diffaug: Annotated[Optional[str], typer.Option(help="DiffAugment policy applied to real and fake faces "
                                                       "before D: a subset of color,translation,cutout "
                                                       "[none].")] = None,
        lr: Annotated[Optional[float], typer.Option(help="Learning rate of both nets.")] = None,
        lr_g: Annotated[Optional[float], typer.Option(help="Generator learning rate.")] = None,
        lr_d: Annotated[Optional[float], typer.Option(help="Discriminator learning rate.")] = None,
        beta1: Annotated[Optional[float], typer.Option(help="Adam beta1.")] = None,
        beta2: Annotated[Optional[float], typer.Option(help="Adam beta2.")] = None,
        n_critic: Annotated[Optional[int], typer.Option(help="D steps per G step [wgan-gp: 5, else 1].")] = None,
        gp_weight: Annotated[float, typer.Option(help="WGAN-GP gradient penalty weight.")] = 10.0,
        aux_weight: Annotated[float, typer.Option(help="Auxiliary classifier loss weight (acgan, reacgan, "
                                                  "pix2pix with --labels).")] = 1.0,
        l1_weight: Annotated[Optional[float], typer.Option(help="pix2pix: weight of the L1 distance to the real "
                                                           "face [" + str(SKETCH["l1_weight"]) + "].")] = None,
        ms_weight: Annotated[Optional[float], typer.Option(help="pix2pix: weight of the mode-seeking term that "
                                                           "keeps the noise in use (MSGAN); 0 turns it off [" + str(SKETCH["ms_weight"]) + "].")]
        = None,
        tag_swap: Annotated[Optional[float], typer.Option(help="pix2pix with --labels: share of fakes painted "
                                                          "with another face's tags, so tags are followed "
                                                          "[" + str(SKETCH["tag_swap"]) + "].")] = None,
        sketch_aug: Annotated[Optional[bool], typer.Option("--sketch-aug/--no-sketch-aug", help="pix2pix: make "
                                                           "the training sketches look hand-drawn (line width, "
                                                           "pressure, gaps, jitter) [on].")] = None,
        ema_beta: Annotated[float, typer.Option(help="EMA decay of G per step.")] = 0.995,
        flip: Annotated[bool, typer.Option(help="Random horizontal flips.")] = True,
        seed: Annotated[int, typer.Option(help="Random seed (init, noise, data order).")] = 0,
        runs_dir: Annotated[Path, typer.Option(help="Where run folders go.")] = Path("runs"),
        cache_dir: Annotated[Optional[Path], typer.Option(help="Decoded-crop cache "
                                                          "[~/.cache/animeface-gan-study].")] = None,
        log_every: Annotated[int, typer.Option(help="metrics.csv row every N steps.")] = 50,
        diag_every: Annotated[int, typer.Option(help="Mode-collapse diagnostics every N steps.")] = 200,
        sample_every: Annotated[Optional[int], typer.Option(help="Sample grid every N steps "
                                                            "[once per epoch].")] = None,
        checkpoint_every: Annotated[int, typer.Option(help="Checkpoint every N steps.")] = 1000,
        device: DeviceOption = "auto",
        precision: Annotated[str, typer.Option(help="fp32, bf16 (autocast), or auto: bf16 where the GPU or "
                                               "CPU computes it natively (AVX512-BF16, AMX), else fp32.")] = "auto",
        tensorboard: Annotated[bool, typer.Option(help="Also log to TensorBoard (RUN/tensorboard).")] = False,
        wandb: Annotated[bool, typer.Option(help="Also log to Weights & Biases (offline unless "
                                            "WANDB_MODE=online).")] = False,
        resume: Annotated[Optional[Path], typer.Option(help="Continue this run folder exactly where its newest "
                                                       "checkpoint left off, with its own options (--iters sets a "
                                                       "new end; options that contradict the run are "
                                                       "refused).")] = None,
        dry_run: DryRunOption = False,
        progress: ProgressOption = True,
    ) -> None:
        params = dict(locals())
        from train.loop import TrainingStopped, stopped_early, train

        main_process = os.environ.get("RANK", "0") == "0"     # under torchrun, rank 0 alone speaks
        console = make_console(stderr=True, quiet=not main_process)
        try:
            if resume is not None:
                run = load_run(resume)
                if run.model != model:
                    fail(f"{resume} is a {run.model} run, not {model}: use `train {run.model} --resume {resume}`")
                opts, notes = resume_options(run.options, given_options(ctx, model, params))
                for note in notes:
                    console.print(f"resuming with {note}", style="yellow")
                if dry_run:
                    typer.echo(json.dumps(opts.to_dict(), indent=2))
                    return
                run_dir = train(opts, resume=resume, console=console)
            else:
                opts = TrainOptions(**options_from_cli(model, params))
                with Catalog(opts.catalog, create=False) as catalog:
                    try:
                        selected = select_faces(catalog, opts)
                    except RareTagsError as e:
                        print_refused(console, e, labels)
                        raise
                    if dry_run:
                        opts.catalog_fingerprint = catalog.content_fingerprint()
                print_selection(make_console() if dry_run else console, selected, labels, opts.min_per_tag)
                if dry_run:   # the plan on stdout
                    typer.echo(json.dumps(opts.to_dict(), indent=2))
                    console.print("dry run: nothing written")
                    return
                run_dir = train(opts, console=console, selected=selected)
        except TrainingStopped as e:
            fail(f"training stopped: {e}", code=1)
        except (DataError, RunError, CatalogError, ConditionError, ValueError) as e:
            fail(str(e))
        if main_process:
            typer.echo(str(run_dir))
        if stopped_early(run_dir):    # by Ctrl-C or SIGTERM: 130, as every command its user stops
            raise typer.Exit(130)

    command.__doc__ = LOSSES[model].help
    return command


for _model, _loss in LOSSES.items():
    app.command(name=_model, help=_loss.help)(_make_command(_model))


@app.command()
def sample(
    run: Annotated[Path, typer.Argument(help="A run folder.")],
    tags: Annotated[Optional[str], typer.Option(help="Comma-separated tags, e.g. \"blonde hair, blue eyes\"; "
                                                "groups left out are drawn from the training distribution. "
                                                "Without it, each row asks for one tag of the first exclusive "
                                                "group (hair colour), written beside the row.")] = None,
    sketch: Annotated[Optional[Path], typer.Option(help="Sketch models: a drawing (any size, grey or colour, white "
                                                   "or transparent paper; a whole figure is cropped to its face) "
                                                   "or a folder of drawings, each painted -n ways.")] = None,
    n: Annotated[Optional[int], n_option("Number of images [64; with --sketch: paintings per drawing, 8].")] = None,
    output: Annotated[Path, out_option("PNG grid to write.")] = Path("samples.png"),
    nrow: Annotated[int, typer.Option(help="Images per row (without --sketch).")] = 8,
    seed: Annotated[int, typer.Option(help="Noise seed.")] = 0,
    ema: Annotated[bool, typer.Option(help="Use the EMA generator.")] = True,
    device: DeviceOption = "auto",
) -> None:
    """Generate a grid of faces from a trained run, optionally with given tags (faces under 64 px are
    enlarged in the picture); a sketch model paints drawings (rows: drawings; columns: the sketch as the
    model sees it, then its paintings)."""
    from train.sampling import fixed_sample_rows

    from train.sketch.drawing import DrawingError

    console = make_console(stderr=True)
    n = n if n is not None else (8 if sketch is not None else 64)
    if output.suffix.lower() != ".png":
        fail(f"{output}: write a .png file")
    if n < 1 or nrow < 1:
        fail("-n and --nrow must be at least 1")
    try:
        r = load_run(run)
        device = resolve_device(device)
        if sketch is not None and r.sketch is None:
            fail(f"{run} is a {r.model} run, not a sketch model: --sketch needs a `train pix2pix` run")
        if sketch is None and r.sketch is not None:
            fail(f"{run} is a sketch model ({r.model}): give --sketch FILE or a folder of drawings to paint")
        conditions, row_labels, title = None, None, None
        if tags:
            if r.spec is None or not r.conditional:
                fail(f"{run} is an unconditional {r.model} run: --tags needs a conditional run")
            conditions, title = [r.spec.parse_tags(tags)], tags
        elif r.conditional and sketch is None and (rows := fixed_sample_rows(r.spec)):
            group = next(g.name for g in r.spec.groups if g.exclusive)
            row_labels = [rows[i % len(rows)] for i in range((n + nrow - 1) // nrow)]
            conditions = [{group: row_labels[i // nrow]} for i in range(n)]
        if sketch is not None:
            from train.sketch.paint import drawing_files, paint_drawings
            files = drawing_files(sketch)
            warn = (lambda text: console.print(text, style="yellow", markup=False)) if len(files) > 1 else None
            used, images = paint_drawings(r, files, (conditions or [{}])[0], n, seed, warn)
            n, nrow = n * len(used), n + 1
            row_labels = [f.name for f in used]
        else:
            G = r.generator(ema=ema, device=device, warn=lambda text: console.print(text, style="yellow"))
            images, _ = generate(r, n, conditions, seed=seed, G=G, device=device)
    except (RunError, ConditionError, DrawingError, ValueError) as e:
        fail(str(e))
    output.parent.mkdir(parents=True, exist_ok=True)
    labelled_grid(images, nrow, row_labels, title).save(output)
    typer.echo(f"{n} images -> {output}")


@app.command()
def animate(
    run: Annotated[Path, typer.Argument(help="A run folder.")],
    output: Annotated[Optional[Path], out_option("Base name of the GIF and MP4 [RUN/progress].")] = None,
    fps: Annotated[float, typer.Option(help="Frames per second.")] = 4.0,
    mp4: Annotated[bool, typer.Option(help="Also write an MP4 (needs imageio-ffmpeg).")] = True,
) -> None:
    """A GIF (and MP4) of the run's sample grids, one frame per grid (per epoch by default)."""
    from train.animate import animate_run

    try:
        written = animate_run(load_run(run), output, fps=fps, mp4=mp4)
    except (RunError, ValueError) as e:
        fail(str(e))
    for path in written:
        typer.echo(str(path))
