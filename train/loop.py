"""The training loop: the schedule of a run, for every model, put together from its parts
(train.training): the run state, the batch sampler, the metrics collector, the run folder's
writer and the stop guard. It never asks which model it trains: the model is its loss object
(train.losses), the networks come from the `arch` the loss asked for (train.models), and one
step is train.step.

A run stops at its last step, on NaN/inf losses (TrainingStopped), or on Ctrl-C/SIGTERM after
the step in progress (stopped_early: the commands exit 130); it always leaves a checkpoint, and
a resumed run continues exactly, its metrics rows too (the checkpoint holds the running sums).
A write that fails (a full disk) stops it in one line (DiskFull), its last whole checkpoint kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from db import Catalog

from train import runs
from train.data import DataError, load_training_set, set_aside_text
from train.disk import WriteFailed
from train.device import init_distributed, pick_device, pick_precision
from train.losses import loss_class
from train.options import TrainOptions
from train.step import Step, TrainingStopped
from train.training.metrics_log import MetricsCollector
from train.training.progress import StepProgress, make_progress
from train.training.sampler import BatchSampler, Schedule
from train.training.signals import StopGuard
from train.training.state import RunState
from train.training.writers import DiskFull, RunWriter, SampleGrid

__all__ = ["train", "TrainingStopped", "stopped_early"]


@dataclass
class Training:
    """The parts of one training call, as train() put them together."""
    opts: TrainOptions
    schedule: Schedule
    state: RunState
    loss: object            # the model's loss (train.losses)
    grid: SampleGrid
    writer: RunWriter
    step: Step
    metrics: MetricsCollector
    device: torch.device


def train(opts: TrainOptions, resume: str | Path | None = None, console=None, selected=None):
    """Train a new run, or resume the run folder `resume` (whose options `opts` must be, as
    `options.resume_options` merges them); returns its folder. `selected`: the faces
    `data.select_faces` chose, when the caller already selected them. Ctrl-C or SIGTERM stops it
    after the step in progress, with a checkpoint to resume from."""
    world, rank = init_distributed()
    main = rank == 0
    console = console if main else None
    device = pick_device(opts.device)
    run, ckpt = resumed_run(resume, console)
    if opts.batch % world:
        raise DataError(f"--batch {opts.batch} is not divisible by the {world} processes")
    data = load_data(opts, selected, ckpt is not None, console)
    spec = data.spec
    if ckpt is not None and spec is not None and spec.to_json() != run.options.get("conditions"):
        spec = run.spec   # keep the vocabulary the run was built with
    schedule = Schedule.of(opts, len(data.face_ids), world)
    model = loss_class(opts.model)
    arch = model.arch(opts, spec)
    if ckpt is not None:
        refuse_other_data(run, data.meta, opts)
    if console is not None:
        console.print(schedule.describe(opts, device, world), markup=False)

    state = RunState.build(arch, opts)
    if ckpt is not None:
        state.load(ckpt, run.dir)
    state.to(device)
    opts.precision = pick_precision(opts.precision, device)   # options.json records what ran
    opts.device = str(device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=opts.precision == "bf16")

    resumed_at = state.step if ckpt is not None else None
    try:
        writer = RunWriter.open(main, run.dir if run is not None else None,
                                run_options(opts, arch, spec, data, world), opts, console, resumed_at, data)
    except WriteFailed as e:
        raise DiskFull.at(e, state.step, resumed_at, opts.model, run.dir if run is not None else None) from e
    loss = model(opts, spec, state.D, data.labels, device, data=data)
    state.attach_loss(loss, ckpt)
    one_step = Step(state.G, state.D, state.G_ema, state.opt_G, state.opt_D, loss,
                    BatchSampler(data, loss, schedule, opts, rank, device), opts, world, autocast)
    parts = Training(opts, schedule, state, loss, SampleGrid(loss, device), writer, one_step,
                     MetricsCollector(opts, schedule, state.step, loss.adv.probabilities), device)
    if ckpt is not None:
        restore_figures(parts, ckpt.get("metrics"))
    try:
        return run_all(parts, data, main, console, resumed_at)
    except WriteFailed as e:
        stop = DiskFull.at(e, state.step, writer.last_checkpoint, opts.model, writer.run_dir)
        writer.close_after(str(stop))
        raise stop from e


def run_all(t: Training, data, main: bool, console, resumed_at: int | None) -> Path | None:
    """The run from its first step (or the resumed one) to its end; returns its folder."""
    writer, state = t.writer, t.state
    if resumed_at is None:
        writer.real_sample_distance(data.images, t.schedule.faces)
    name = writer.run_dir.name if writer.run_dir is not None else ""
    with StopGuard(active=main) as guard, \
            StepProgress(console, t.opts.progress, name, t.schedule.total, state.step) as progress:
        if state.step == 0:
            writer.samples(0, t.grid, state.G_ema)
        stopped = run_steps(t, guard, progress)
    return finish(t, stopped)


def run_steps(t: Training, guard: StopGuard, progress: StepProgress) -> TrainingStopped | None:
    """Steps until the last one, or a stop request; returns the NaN stop, if that came."""
    opts, total, state = t.opts, t.schedule.total, t.state
    try:
        while state.step < total:
            log_now = (state.step + 1) % opts.log_every == 0 or state.step + 1 == total
            stats = t.step(state.step, log_now)
            state.step += 1
            step = state.step
            news = t.metrics.add(step, stats)
            if news:
                t.writer.message(news, style="bold red")
            if step % opts.diag_every == 0:
                t.metrics.diagnose(state.G, t.loss, t.device)
            row = t.metrics.row(step) if log_now and t.writer.writes else None   # rank 0 alone logs
            if row is not None:
                t.writer.row(row)
            progress.update(step, t.metrics.figures)
            if step % t.schedule.sample_every == 0 or step == total:
                t.writer.samples(step, t.grid, state.G_ema)
            if step % opts.checkpoint_every == 0 and step != total:
                t.writer.checkpoint(state, running_figures(t))
            if guard.stop_requested:
                break
    except TrainingStopped as e:
        return e
    return None


def finish(t: Training, stopped: TrainingStopped | None) -> Path | None:
    """The last checkpoint, and the run's end said (and, at its last step, the final generator)."""
    writer, step, total = t.writer, t.state.step, t.schedule.total
    path = writer.checkpoint(t.state, running_figures(t))
    if stopped is not None:
        writer.message(f"stopped: {stopped}; checkpoint {path} (the weights before the bad step). "
                       "Lower the learning rates or try wgan-gp.", style="bold red")
        writer.close()
        raise stopped
    if step >= total:
        writer.final_generator(t.state)
        writer.message(f"done: {step} steps in {t.metrics.seconds():.0f} s; {writer.run_dir}", style="green")
    else:
        writer.message(f"stopped at step {step} of {total}; checkpoint {path}. Continue with "
                       f"`train {t.opts.model} --resume {writer.run_dir}`", style="yellow")
    writer.close()
    return writer.run_dir


def running_figures(t: Training) -> dict:
    """What the next metrics row needs of the steps before a checkpoint: the collector's sums and
    the generator's gradient kept for the next gradient cosine (train.step)."""
    return {**t.metrics.state(), "prev_grad": t.step.prev_grad}


def restore_figures(t: Training, saved: dict | None) -> None:
    """running_figures() from a checkpoint: the first row after a resume is the one the run would
    have written without the stop (checkpoints written before had none: the row then averages
    only the steps since the resume)."""
    if not saved:
        return
    t.metrics.restore(saved)
    grad = saved.get("prev_grad")
    t.step.prev_grad = grad.to(t.device) if grad is not None else None


def stopped_early(run_dir: str | Path | None) -> bool:
    """Whether the run train() returned stopped before its last step (Ctrl-C or SIGTERM, with a
    checkpoint to resume from): the commands then exit 130, as every command stopped by its user."""
    if run_dir is None:      # (another torchrun rank's: rank 0 alone has the folder)
        return False
    run = runs.load_run(run_dir)
    newest = run.latest_checkpoint()
    return newest is None or not newest.stem.isdigit() or int(newest.stem) < run.total_steps


def resumed_run(resume: str | Path | None, console) -> tuple[runs.Run | None, dict | None]:
    """The run being resumed and its newest readable checkpoint; (None, None) for a new run."""
    if resume is None:
        return None, None
    warn = (lambda text: console.print(text, style="yellow", markup=False)) if console is not None else print
    run = runs.load_run(resume)
    _, ckpt = run.load_latest(warn=warn)
    return run, ckpt


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
            data = load_training_set(catalog, opts, progress, selected=selected)
        finally:
            if progress is not None:
                progress.stop()
    if data.set_aside and console is not None:
        console.print(set_aside_text(data.set_aside), style="yellow", markup=False)
    return data


def refuse_other_data(run: runs.Run, meta: dict, opts: TrainOptions) -> None:
    """A resumed run trains on the data it began with: e.g. the line art's parameters are the run's."""
    for key, value in meta.items():
        if run.options.get(key) != value:
            raise DataError(f"{run.dir} was trained on {key} {run.options.get(key)}, but {opts.catalog} now "
                            f"has {value}: resuming would change its data")


def run_options(opts: TrainOptions, arch: dict, spec, data, world: int) -> dict:
    """options.json: every option, the nets' arch, the condition vocabulary and what the data was."""
    return {**opts.to_dict(), "arch": arch, "conditions": spec.to_json() if spec is not None else None,
            "faces": len(data.face_ids), "tag_counts": data.counts, "left_out": data.left_out,
            "unlabelled_faces": data.dropped, "world_size": world, **data.meta}
