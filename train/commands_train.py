"""`train dcgan|wgan-gp|cgan|acgan`, `train sample`, `train animate`: thin wrappers over train.loop / train.runs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from db import DEFAULT_DB, Catalog, CatalogError

from .app import app, fail
from .conditions import ConditionError
from .data import DataError, select_faces
from .options import TrainOptions
from .runs import RunError, generate, image_grid, load_run

HELP = {
    "dcgan": "Train an unconditional DCGAN (Radford et al.) on the catalog's faces.",
    "wgan-gp": "Train an unconditional WGAN-GP (critic without batch norm, gradient penalty, n_critic steps).",
    "cgan": "Train a conditional GAN: the tags are fed to G and D.",
    "acgan": "Train an ACGAN: D has an auxiliary classifier head for the tags.",
}


def _split_list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _print_counts(console: Console, counts: dict, n: int, dropped: int, source: str | None) -> None:
    if not counts:
        console.print(f"{n} faces (no conditions)")
        return
    table = Table(title=f"{n} faces labelled by {source!r}" + (f" ({dropped} left out: an attribute unlabelled)"
                                                               if dropped else ""))
    table.add_column("group")
    table.add_column("tag")
    table.add_column("faces", justify="right")
    for group, tags in counts.items():
        for tag, k in sorted(tags.items(), key=lambda kv: -kv[1]):
            table.add_row(group, tag, str(k))
    console.print(table)


def _make_command(model: str):
    def command(
        db: Annotated[Path, typer.Option("--db", help="The catalog file.")] = Path(DEFAULT_DB),
        labels: Annotated[Optional[str], typer.Option(help="Label source (manual, i2v, animeface, any imported "
                                                       "name); unconditional models: which faces to use.")] = None,
        attrs: Annotated[Optional[str], typer.Option(help="Tag groups to condition on, comma-separated "
                                                      "[default for cgan/acgan: hair_color,eye_color].")] = None,
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
        z_dim: Annotated[int, typer.Option(help="Noise dimensions.")] = 100,
        ngf: Annotated[int, typer.Option(help="Generator width.")] = 64,
        ndf: Annotated[int, typer.Option(help="Discriminator width.")] = 64,
        deep: Annotated[bool, typer.Option(help="Extra stride-1 conv per resolution (the study's "
                                           "'DCGAN with extra layers').")] = False,
        lr: Annotated[Optional[float], typer.Option(help="Learning rate of both nets.")] = None,
        lr_g: Annotated[Optional[float], typer.Option(help="Generator learning rate.")] = None,
        lr_d: Annotated[Optional[float], typer.Option(help="Discriminator learning rate.")] = None,
        beta1: Annotated[Optional[float], typer.Option(help="Adam beta1.")] = None,
        beta2: Annotated[Optional[float], typer.Option(help="Adam beta2.")] = None,
        n_critic: Annotated[Optional[int], typer.Option(help="D steps per G step [wgan-gp: 5, else 1].")] = None,
        gp_weight: Annotated[float, typer.Option(help="WGAN-GP gradient penalty weight.")] = 10.0,
        aux_weight: Annotated[float, typer.Option(help="ACGAN auxiliary loss weight.")] = 1.0,
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
        device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:1 ...")] = "auto",
        precision: Annotated[str, typer.Option(help="fp32, bf16 (autocast), or auto: bf16 where the GPU or "
                                               "CPU computes it natively (AVX512-BF16, AMX), else fp32.")] = "auto",
        tensorboard: Annotated[bool, typer.Option(help="Also log to TensorBoard (RUN/tensorboard).")] = False,
        wandb: Annotated[bool, typer.Option(help="Also log to Weights & Biases (offline unless "
                                            "WANDB_MODE=online).")] = False,
        resume: Annotated[Optional[Path], typer.Option(help="Continue this run folder exactly where its "
                                                       "newest checkpoint left off (--iters sets a new end).")] = None,
        dry_run: Annotated[bool, typer.Option(help="Print the options and dataset counts; write nothing.")] = False,
        progress: Annotated[bool, typer.Option(help="Show the progress bar.")] = True,
    ) -> None:
        from .loop import TrainingStopped, train

        main_process = os.environ.get("RANK", "0") == "0"     # under torchrun, rank 0 alone speaks
        console = Console(stderr=True, quiet=not main_process, soft_wrap=True)
        try:
            if resume is not None:
                run = load_run(resume)
                if run.model != model:
                    fail(f"{resume} is a {run.model} run, not {model}: use `train {run.model} --resume {resume}`")
                opts = TrainOptions.from_dict({**run.options, "iters": iters, "device": device, "progress": progress})
                if dry_run:
                    console.print_json(json.dumps(run.options))
                    return
                run_dir = train(opts, resume=resume, console=console)
            else:
                conditional = model in ("cgan", "acgan")
                opts = TrainOptions(
                    model=model, catalog=str(db), labels=labels,
                    attrs=_split_list(attrs) if attrs is not None else (["hair_color", "eye_color"] if conditional
                                                                        else []),
                    min_prob=min_prob, common=_split_list(common), min_per_tag=min_per_tag, drop_rare=drop_rare,
                    size=size, iters=iters, epochs=epochs, batch=batch, z_dim=z_dim, ngf=ngf, ndf=ndf, deep=deep,
                    lr_g=lr_g if lr_g is not None else lr, lr_d=lr_d if lr_d is not None else lr,
                    beta1=beta1, beta2=beta2, n_critic=n_critic, gp_weight=gp_weight, aux_weight=aux_weight,
                    ema_beta=ema_beta, flip=flip, seed=seed, runs_dir=str(runs_dir),
                    cache_dir=str(cache_dir) if cache_dir else None, log_every=log_every, diag_every=diag_every,
                    sample_every=sample_every, checkpoint_every=checkpoint_every, device=device, precision=precision,
                    tensorboard=tensorboard, wandb=wandb, progress=progress)
                with Catalog(db, create=False) as catalog:
                    ids, _, _, counts, dropped = select_faces(catalog, opts)
                    if dry_run:
                        from db.training import content_fingerprint
                        opts.catalog_fingerprint = content_fingerprint(catalog)
                _print_counts(console, counts, len(ids), dropped, labels)
                if dry_run:
                    console.print_json(json.dumps(opts.to_dict()))
                    console.print("dry run: nothing written")
                    return
                run_dir = train(opts, console=console)
        except TrainingStopped as e:
            fail(f"training stopped: {e}", code=1)
        except (DataError, RunError, CatalogError, ConditionError, ValueError) as e:
            fail(str(e))
        if main_process:
            typer.echo(str(run_dir))

    command.__doc__ = HELP[model]
    return command


for _model in HELP:
    app.command(name=_model, help=HELP[_model])(_make_command(_model))


@app.command()
def sample(
    run: Annotated[Path, typer.Argument(help="A run folder.")],
    tags: Annotated[Optional[str], typer.Option(help="Comma-separated tags, e.g. \"blonde hair, blue eyes\"; "
                                                "groups left out are drawn from the training distribution.")] = None,
    n: Annotated[int, typer.Option("-n", help="Number of images.")] = 64,
    output: Annotated[Path, typer.Option("-o", "--output", help="PNG grid to write.")] = Path("samples.png"),
    nrow: Annotated[int, typer.Option(help="Images per row.")] = 8,
    seed: Annotated[int, typer.Option(help="Noise seed.")] = 0,
    ema: Annotated[bool, typer.Option(help="Use the EMA generator.")] = True,
    device: Annotated[str, typer.Option(help="cpu, cuda ...")] = "cpu",
) -> None:
    """Generate a grid of faces from a trained run, optionally with given tags."""
    from PIL import Image

    try:
        r = load_run(run)
        conditions = None
        if tags:
            if r.spec is None or not r.conditional:
                fail(f"{run} is an unconditional {r.model} run: --tags needs a cgan or acgan run")
            conditions = [r.spec.parse_tags(tags)]
        if n < 1:
            fail("-n must be at least 1")
        images, _ = generate(r, n, conditions, seed=seed, ema=ema, device=device)
    except (RunError, ConditionError, ValueError) as e:
        fail(str(e))
    if output.suffix.lower() != ".png":
        fail(f"{output}: write a .png file")
    output.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image_grid(images, nrow)).save(output)
    typer.echo(f"{n} images -> {output}")


@app.command()
def animate(
    run: Annotated[Path, typer.Argument(help="A run folder.")],
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Base name of the GIF and MP4 "
                                                   "[RUN/progress].")] = None,
    fps: Annotated[float, typer.Option(help="Frames per second.")] = 4.0,
    mp4: Annotated[bool, typer.Option(help="Also write an MP4 (needs imageio-ffmpeg).")] = True,
) -> None:
    """A GIF (and MP4) of the run's sample grids, one frame per grid (per epoch by default)."""
    from .animate import animate_run

    try:
        written = animate_run(load_run(run), output, fps=fps, mp4=mp4)
    except (RunError, ValueError) as e:
        fail(str(e))
    for path in written:
        typer.echo(str(path))
