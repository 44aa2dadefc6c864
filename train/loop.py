"""The training loop: data, schedule, logging, samples, checkpoints and stop conditions, for
every model. It never asks which model it trains: the model is its loss object
(train.losses), the networks come from the `arch` the loss asked for (train.models), one
step is train.step, and the run folder is train.runs.

Determinism: the data order, flips, noise, fake conditions and augmentations of step s are a
pure function of (seed, s, rank), so a run resumed from a checkpoint (weights, EMA,
optimisers, step) continues exactly as if it had never stopped.
"""

from __future__ import annotations

import copy
import signal
import time
from pathlib import Path

import torch

from db import Catalog

from train import runs
from train.data import DataError, load_training_set
from train.device import init_distributed, pick_device, pick_precision
from train.diagnostics import DiscriminatorWatch, mean_pairwise_distance
from train.losses import loss_class
from train.models import build
from train.options import TrainOptions
from train.sampling import labelled_grid, to_uint8
from train.step import Step, TrainingStopped

__all__ = ["train", "TrainingStopped"]


def step_generator(seed: int, index: int, rank: int) -> torch.Generator:
    """The RNG of one data step: independent of everything that came before it."""
    return torch.Generator().manual_seed((seed * 1_000_003 + index) * 1_009 + rank)


def load_data(opts: TrainOptions, selected, resuming: bool, console):
    """The training set (faces selected once: `selected` from the command, or here), and the
    catalog's fingerprint recorded (a resumed run on a changed catalog is warned about)."""
    with Catalog(opts.catalog, create=False) as catalog:
        fingerprint = catalog.content_fingerprint()
        if resuming and fingerprint != opts.catalog_fingerprint and console is not None:
            console.print(f"warning: {opts.catalog} changed since this run began (fingerprint "
                          f"{opts.catalog_fingerprint} -> {fingerprint}); resuming on the new content",
                          style="yellow", markup=False)
        opts.catalog_fingerprint = opts.catalog_fingerprint or fingerprint
        progress = make_progress(console) if (opts.progress and console is not None) else None
        if progress is not None:
            progress.start()
        try:
            return load_training_set(catalog, opts, progress, selected=selected)
        finally:
            if progress is not None:
                progress.stop()


def train(opts: TrainOptions, resume: str | Path | None = None, console=None, stop_after: int | None = None,
          return_state: bool = False, selected=None):
    """Train a new run, or resume the run folder `resume` (whose options `opts` must be, as
    `options.resume_options` merges them). Returns its folder (and, with return_state, the final
    state dict of this process). `selected`: the faces `data.select_faces` chose, when the
    caller already selected them. `stop_after` stops after that many steps of this call with a
    checkpoint (tests; the run is then resumable)."""
    world, rank = init_distributed()
    main = rank == 0
    console = console if main else None
    warn = (lambda text: console.print(text, style="yellow", markup=False)) if console is not None else print
    device = pick_device(opts.device)
    run_dir, ckpt = None, None
    if resume is not None:
        run = runs.load_run(resume)
        run_dir, (_, ckpt) = run.dir, run.load_latest(warn=warn)
    if opts.batch % world:
        raise DataError(f"--batch {opts.batch} is not divisible by the {world} processes")
    data = load_data(opts, selected, ckpt is not None, console)
    spec = data.spec
    if ckpt is not None and spec is not None and spec.to_json() != run.options.get("conditions"):
        spec = run.spec   # keep the vocabulary the run was built with
    n = len(data.face_ids)
    per_rank = opts.batch // world
    steps_per_epoch = max(1, n // opts.batch)
    batch = min(opts.batch, n)
    total = opts.iters if opts.iters is not None else \
        max(1, round((opts.epochs or 10) * steps_per_epoch / opts.n_critic))
    model = loss_class(opts.model)
    arch = model.arch(opts, spec)
    if ckpt is not None:
        for key, value in data.meta.items():     # e.g. the line art's parameters: the run's, or refuse
            if run.options.get(key) != value:
                raise DataError(f"{run_dir} was trained on {key} {run.options.get(key)}, but {opts.catalog} now "
                                f"has {value}: resuming would change its data")
    if main and console is not None:
        console.print(f"{n} faces, {steps_per_epoch} batches of {batch} per epoch, {total} generator steps "
                      f"({total * opts.n_critic / steps_per_epoch:.1f} epochs) on {device}"
                      + (f", {world} processes" if world > 1 else ""), markup=False)

    torch.manual_seed(opts.seed)
    G, D = build(arch)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    opt_G = torch.optim.Adam(G.parameters(), lr=opts.lr_g, betas=(opts.beta1, opts.beta2))
    opt_D = torch.optim.Adam(D.parameters(), lr=opts.lr_d, betas=(opts.beta1, opts.beta2))
    start = 0
    if ckpt is not None:
        try:
            for net, key in ((G, "G"), (D, "D"), (G_ema, "G_ema"), (opt_G, "opt_G"), (opt_D, "opt_D")):
                net.load_state_dict(ckpt[key])
        except (RuntimeError, ValueError, KeyError) as e:
            raise runs.RunError(f"checkpoint of {run_dir} does not fit the run's options: {e}") from e
        start = int(ckpt["step"])
        runs.restore_rng(ckpt["rng"])
    # NHWC suits both cuDNN and oneDNN's convolutions (on 2 CPU cores: +9% images/s at 64x64)
    mf = torch.channels_last
    G.to(device, memory_format=mf)
    D.to(device, memory_format=mf)
    G_ema.to(device)
    for opt in (opt_G, opt_D):   # optimiser state follows the parameters
        for state in opt.state.values():
            for k, v in state.items():
                if torch.is_tensor(v) and k != "step":
                    state[k] = v.to(device)
    opts.precision = pick_precision(opts.precision, device)   # options.json records what ran
    opts.device = str(device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=opts.precision == "bf16")

    # -- the run folder (rank 0 writes; others only compute) --
    options_json = {**opts.to_dict(), "arch": arch, "conditions": spec.to_json() if spec is not None else None,
                    "faces": n, "tag_counts": data.counts, "left_out": data.left_out,
                    "unlabelled_faces": data.dropped, "world_size": world, **data.meta}
    logger = None
    if main:
        run_dir = run_dir or runs.new_run_dir(opts.runs_dir, opts.model, opts.labels)
        runs.write_options(run_dir, options_json)
        logger = runs.RunLogger(run_dir, options_json, console, start if ckpt is not None else None)
        logger.message(("resumed at step %d" % start) if ckpt is not None else f"new run {run_dir}")
        if ckpt is None and (data.left_out or data.dropped):
            logger.message(left_out_text(data.left_out, data.dropped), style="yellow")

    images, labels = data.images, data.labels   # uint8 on CPU; batches move as uint8 (4x less to copy)
    aligned = data.aligned                      # pictures aligned with the faces (sketches), or None
    loss = model(opts, spec, D, labels, device, data=data)
    grid_args, grid_cols = loss.grid_inputs()
    grid_rows = loss.grid_row_labels()
    sample_every = opts.sample_every or max(1, round(steps_per_epoch / opts.n_critic))
    if logger is not None and ckpt is None:
        real = images[torch.randperm(n, generator=torch.Generator().manual_seed(1))[:64]]
        logger.message(f"sample distance of 64 real faces: {mean_pairwise_distance(real / 127.5 - 1):.4f} "
                       "(the generator's falls far below this in mode collapse)")

    def run_state(step: int) -> dict:
        return {"format": 2, "step": step, "G": G.state_dict(), "D": D.state_dict(), "G_ema": G_ema.state_dict(),
                "opt_G": opt_G.state_dict(), "opt_D": opt_D.state_dict(), "rng": runs.rng_state(),
                "options": options_json}

    def save_checkpoint(step: int) -> Path | None:
        return runs.save_checkpoint(run_dir, run_state(step), opts.keep_checkpoints) if main else None

    def on_device(args: tuple, start: int = 0, stop: int | None = None) -> tuple:
        """G's arguments (tensors or None), rows start:stop, on the run's device."""
        return tuple(None if a is None else a[start:stop].to(device) for a in args)

    @torch.no_grad()
    def save_samples(step: int) -> None:
        if not main:
            return
        x = torch.cat([G_ema(*on_device(grid_args, i, i + 128)).float().cpu()
                       for i in range(0, len(grid_args[0]), 128)])
        path = run_dir / "samples" / f"{step:06d}.png"
        labelled_grid(loss.grid_picture(to_uint8(x)), grid_cols, grid_rows).save(path)
        logger.image(path, step)

    def data_batch(index: int):
        """Images (float, flipped), their condition (labels, and whatever the model makes of the
        aligned pictures) and the RNG of data step `index` for this rank."""
        epoch, i = divmod(index, steps_per_epoch)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(opts.seed * 7919 + epoch))
        idx = perm[i * batch:(i + 1) * batch][rank * per_rank:(rank + 1) * per_rank] if batch == opts.batch \
            else perm[:batch]
        gen = step_generator(opts.seed, index, rank)
        x = images[idx].to(device, non_blocking=True).float().div_(127.5).sub_(1)
        a = aligned[idx].to(device, non_blocking=True).float().div_(127.5).sub_(1) if aligned is not None else None
        if opts.flip:
            flip = (torch.rand(len(idx), generator=gen) < 0.5).to(device)[:, None, None, None]
            x = torch.where(flip, x.flip(3), x)
            a = torch.where(flip, a.flip(3), a) if a is not None else None
        x = x.contiguous(memory_format=mf)
        y = labels[idx].to(device) if labels is not None else None
        return x, loss.real_condition(y, a, gen), gen

    train_step = Step(G, D, G_ema, opt_G, opt_D, loss, data_batch, opts, world, autocast)

    # -- Ctrl-C: finish the step, then checkpoint --
    interrupted = []
    old_handler = None
    if main:
        def on_sigint(signum, frame):
            if interrupted:
                raise KeyboardInterrupt
            interrupted.append(True)
        try:
            old_handler = signal.signal(signal.SIGINT, on_sigint)
        except ValueError:     # not the main thread
            old_handler = None

    acc: dict[str, list[float]] = {}
    d_wins = DiscriminatorWatch(opts.dwin_window)
    t_last, imgs_last = time.perf_counter(), 0
    t0 = time.perf_counter()
    progress = make_progress(console, metrics=True) if (main and opts.progress and console is not None) else None
    task = progress.add_task(run_dir.name, total=total, completed=start, ips=0.0, ld=0.0, lg=0.0) \
        if progress else None
    if progress is not None:
        progress.start()
    if start == 0:
        save_samples(0)
    step = start
    stopped = None
    try:
        while step < total:
            log_now = (step + 1) % opts.log_every == 0 or step + 1 == total
            stats = train_step(step, log_now)
            step += 1
            for key, v in stats.items():
                acc.setdefault(key, []).append(v.item() if torch.is_tensor(v) else v)
            if loss.adv.probabilities:      # scores read as P(real): watch for a D that wins outright
                news = d_wins.add(step, acc["d_real"][-1], acc["d_fake"][-1], acc["loss_g"][-1])
                if news and logger is not None:
                    logger.message(news, style="bold red")
            if step % opts.diag_every == 0:
                with torch.no_grad():
                    G.eval()
                    acc.update({k: [v] for k, v in loss.diagnostics(G, on_device).items()})
                    G.train()
            if main and (log_now or step == total):
                now = time.perf_counter()
                imgs = (step - start) * opts.batch * opts.n_critic
                ips = (imgs - imgs_last) / max(now - t_last, 1e-9)
                t_last, imgs_last = now, imgs
                row = {"step": step, "epoch": round(step * opts.n_critic / steps_per_epoch, 3),
                       "kimg": round(step * opts.batch * opts.n_critic / 1000, 3),
                       "seconds": round(now - t0, 2), "images_per_s": round(ips, 1),
                       "d_wins": int(d_wins.flagged)}
                row.update({key: round(sum(vs) / len(vs), 5) for key, vs in acc.items()})
                acc = {}
                logger.row(row)
                if progress is not None:
                    progress.update(task, ips=ips, ld=row["loss_d"], lg=row["loss_g"])
            if progress is not None:
                progress.update(task, completed=step)
            if step % sample_every == 0 or step == total:
                save_samples(step)
            if step % opts.checkpoint_every == 0 and step != total:
                save_checkpoint(step)
            if interrupted or (stop_after is not None and step - start >= stop_after):
                break
    except TrainingStopped as e:
        stopped = e
    finally:
        if progress is not None:
            progress.stop()
        if old_handler is not None:
            signal.signal(signal.SIGINT, old_handler)
    path = save_checkpoint(step)
    if stopped is not None:
        if logger is not None:
            logger.message(f"stopped: {stopped}; checkpoint {path} (the weights before the bad step). "
                           "Lower the learning rates or try wgan-gp.", style="bold red")
            logger.close()
        raise stopped
    if main:
        if step >= total:
            runs.save_final_generator(run_dir, arch["G"], G_ema.state_dict())
            logger.message(f"done: {step} steps in {time.perf_counter() - t0:.0f} s; {run_dir}", style="green")
        else:
            logger.message(f"stopped at step {step} of {total}; checkpoint {path}. Continue with "
                           f"`train {opts.model} --resume {run_dir}`", style="yellow")
        logger.close()
    return (run_dir, run_state(step)) if return_state else run_dir


def left_out_text(left_out: dict[str, dict[str, int]], unlabelled: int) -> str:
    """One line on what a run does not train on (console and log.txt)."""
    parts = [f"{group} {tag!r} ({n} faces)" for group, tags in left_out.items() for tag, n in tags.items()]
    text = ("left out: " + ", ".join(parts) + " (with their faces, for exclusive groups)") if parts else ""
    if unlabelled:
        text += ("; " if text else "left out: ") + f"{unlabelled} faces lacking a label of an exclusive group"
    return text


def make_progress(console, metrics: bool = False):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = [TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn()]
    if metrics:
        columns += [TextColumn("{task.fields[ips]:.0f} img/s  D {task.fields[ld]:.3f}  G {task.fields[lg]:.3f}")]
    return Progress(*columns, console=console, transient=False)
