"""What a run writes into its folder (train.runs has the layout): options.json, log.txt and
metrics.csv through the run's logger, sample grids, checkpoints and the final generator.

Only rank 0 writes: on the other processes a RunWriter has no folder and does nothing.
"""

from __future__ import annotations

from pathlib import Path

import torch

from train import runs
from train.diagnostics import mean_pairwise_distance
from train.disk import WriteFailed, write_whole
from train.sampling import labelled_grid, to_uint8
from train.training.sampler import on_device


class SampleGrid:
    """The run's sample grid: fixed inputs (noise, conditions, sketches) the model chose, drawn by
    the EMA generator; columns and row labels as the model lays them out."""

    def __init__(self, loss, device: torch.device):
        self.loss, self.device = loss, device
        self.args, self.cols = loss.grid_inputs()
        self.rows = loss.grid_row_labels()

    @torch.no_grad()
    def draw(self, G_ema):
        x = torch.cat([G_ema(*on_device(self.device, self.args, i, i + 128)).float().cpu()
                       for i in range(0, len(self.args[0]), 128)])
        return labelled_grid(self.loss.grid_picture(to_uint8(x)), self.cols, self.rows)


class RunWriter:
    """The run folder's writer: `open` it (new or resumed), then messages, rows, samples and
    checkpoints as the loop goes."""

    def __init__(self, run_dir: Path | None, logger: runs.RunLogger | None, options: dict, keep: int,
                 last_checkpoint: int | None = None):
        self.run_dir, self.logger, self.options, self.keep = run_dir, logger, options, keep
        self.last_checkpoint = last_checkpoint      # the step of the newest whole checkpoint on the disk

    @classmethod
    def open(cls, main: bool, run_dir: Path | None, options: dict, opts, console, resumed_at: int | None,
             data) -> "RunWriter":
        """Rank 0: the run's folder (a new one unless resuming), its options.json and logger, and
        the first lines of its log. Other ranks: a writer that writes nothing."""
        if not main:
            return cls(run_dir, None, options, opts.keep_checkpoints)
        run_dir = run_dir or runs.new_run_dir(opts.runs_dir, opts.model, opts.labels)
        runs.write_options(run_dir, options)
        writer = cls(run_dir, runs.RunLogger(run_dir, options, console, resumed_at), options, opts.keep_checkpoints,
                     resumed_at)
        writer.message(("resumed at step %d" % resumed_at) if resumed_at is not None else f"new run {run_dir}")
        if resumed_at is None and (data.left_out or data.dropped):
            writer.message(left_out_text(data.left_out, data.dropped), style="yellow")
        return writer

    def real_sample_distance(self, images: torch.Tensor, n: int) -> None:
        """The diversity of 64 real faces: what the generator's sample distance compares with."""
        if self.logger is None:
            return
        real = images[torch.randperm(n, generator=torch.Generator().manual_seed(1))[:64]]
        self.message(f"sample distance of 64 real faces: {mean_pairwise_distance(real / 127.5 - 1):.4f} "
                     "(the generator's falls far below this in mode collapse)")

    @property
    def writes(self) -> bool:
        """Rank 0's writer (the others write nothing)."""
        return self.logger is not None

    def message(self, text: str, style: str = "") -> None:
        if self.logger is not None:
            self.logger.message(text, style=style)

    def row(self, row: dict) -> None:
        if self.logger is not None:
            self.logger.row(row)

    def samples(self, step: int, grid: SampleGrid, G_ema) -> None:
        if self.logger is None:
            return
        path = self.run_dir / "samples" / f"{step:06d}.png"
        picture = grid.draw(G_ema)
        write_whole(path, lambda f: picture.save(f, format="PNG"))
        self.logger.image(path, step)

    def checkpoint(self, state, metrics: dict | None = None) -> Path | None:
        """A checkpoint of `state`, with the metrics collector's running figures (`metrics`) so the
        first row after a resume is the row the run would have written."""
        if self.logger is None:
            return None
        ckpt = state.checkpoint(self.options)
        if metrics is not None:
            ckpt["metrics"] = metrics
        path = runs.save_checkpoint(self.run_dir, ckpt, self.keep)
        self.last_checkpoint = state.step
        return path

    def final_generator(self, state) -> None:
        if self.logger is not None:
            runs.save_final_generator(self.run_dir, self.options["arch"]["G"], state.G_ema.state_dict())

    def close(self) -> None:
        if self.logger is not None:
            self.logger.close()

    def close_after(self, failed: str) -> None:
        """Close after a failed write: its line in log.txt if it still fits, nothing raised."""
        if self.logger is None:
            return
        try:
            self.logger.message(failed, echo=False)     # the command says it, once
        except WriteFailed:
            pass
        self.logger.close()


class DiskFull(runs.RunError):
    """A write failed while training (a full disk, most often): the run stopped there, its last
    whole checkpoint is kept. Said in one line by the commands (as every RunError)."""

    @classmethod
    def at(cls, failed: WriteFailed, step: int, last_checkpoint: int | None, model: str,
           run_dir: Path | None) -> "DiskFull":
        if last_checkpoint is None:
            return cls(f"{failed}: the run stopped at step {step}, before its first checkpoint; free space "
                       "and start it again")
        return cls(f"{failed}: the run stopped at step {step}; the last good checkpoint is step {last_checkpoint}; "
                   f"free space and run `train {model} --resume {run_dir}`")


def left_out_text(left_out: dict[str, dict[str, int]], unlabelled: int) -> str:
    """One line on what a run does not train on (console and log.txt)."""
    parts = [f"{group} {tag!r} ({n} faces)" for group, tags in left_out.items() for tag, n in tags.items()]
    text = ("left out: " + ", ".join(parts) + " (with their faces, for exclusive groups)") if parts else ""
    if unlabelled:
        text += ("; " if text else "left out: ") + f"{unlabelled} faces lacking a label of an exclusive group"
    return text
