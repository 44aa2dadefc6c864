"""The figures of a run as it trains: every step's stats summed until the next metrics.csv row
(losses, D scores, gradient norms), the model's diagnostics every `diag_every` steps,
throughput, and the watch on a discriminator that wins outright.
"""

from __future__ import annotations

import time
from functools import partial

import torch

from train.diagnostics import DiscriminatorWatch
from train.training.sampler import on_device


class MetricsCollector:
    """`add` each step's stats; `row(step)` averages what came since the last row."""

    def __init__(self, opts, schedule, start: int, watch_discriminator: bool):
        self.opts, self.schedule, self.start = opts, schedule, start
        self.watch_discriminator = watch_discriminator   # scores read as P(real): a D that wins is flagged
        self.sums: dict[str, list[float]] = {}
        self.d_wins = DiscriminatorWatch(opts.dwin_window)
        self.t0 = self.t_last = time.perf_counter()
        self.images_last = 0
        self.images_per_s = 0.0     # at the last row, unrounded
        self.last_losses = (0.0, 0.0)   # D's and G's at the last row

    def add(self, step: int, stats: dict) -> str | None:
        """One step's figures (tensors read here: the one sync of a step); returns the news of a
        discriminator that starts winning outright."""
        for key, v in stats.items():
            self.sums.setdefault(key, []).append(v.item() if torch.is_tensor(v) else v)
        if not self.watch_discriminator:
            return None
        return self.d_wins.add(step, self.sums["d_real"][-1], self.sums["d_fake"][-1], self.sums["loss_g"][-1])

    @torch.no_grad()
    def diagnose(self, G, loss, device: torch.device) -> None:
        """The model's diagnostics (sample distance ...), measured now on G in eval mode: they
        replace whatever was summed."""
        G.eval()
        self.sums.update({k: [v] for k, v in loss.diagnostics(G, partial(on_device, device)).items()})
        G.train()

    def row(self, step: int) -> dict:
        """A metrics.csv row at `step`, with the images per second since the last one."""
        opts, now = self.opts, time.perf_counter()
        images = (step - self.start) * opts.batch * opts.n_critic
        ips = (images - self.images_last) / max(now - self.t_last, 1e-9)
        self.t_last, self.images_last, self.images_per_s = now, images, ips
        row = {"step": step, "epoch": round(step * opts.n_critic / self.schedule.steps_per_epoch, 3),
               "kimg": round(step * opts.batch * opts.n_critic / 1000, 3),
               "seconds": round(now - self.t0, 2), "images_per_s": round(ips, 1),
               "d_wins": int(self.d_wins.flagged)}
        row.update({key: round(sum(vs) / len(vs), 5) for key, vs in self.sums.items()})
        self.last_losses = (self.mean("loss_d"), self.mean("loss_g"))
        self.sums = {}
        return row

    def mean(self, key: str) -> float:
        vs = self.sums.get(key)
        return sum(vs) / len(vs) if vs else 0.0

    def figures(self, step: int) -> tuple[float, float, float]:
        """(images/s, D loss, G loss) for the progress bar at any step: since the last row, or the
        last row's right after it, so real figures show from the first step on."""
        if "loss_d" not in self.sums:
            return self.images_per_s, *self.last_losses
        images = (step - self.start) * self.opts.batch * self.opts.n_critic
        ips = (images - self.images_last) / max(time.perf_counter() - self.t_last, 1e-9)
        return ips, self.mean("loss_d"), self.mean("loss_g")

    def state(self) -> dict:
        """What the next row needs of the steps before it (a checkpoint holds it, plain values):
        the figures summed since the last row, and the discriminator watch's window."""
        return {"sums": {k: list(vs) for k, vs in self.sums.items()},
                "d_wins": {"window": [list(w) for w in self.d_wins.window], "flagged": self.d_wins.flagged}}

    def restore(self, saved: dict | None) -> None:
        """The state() a checkpoint held: the first row after a resume averages the same steps as
        the run's without the stop. Checkpoints written before it had none: nothing restored."""
        if not saved:
            return
        self.sums = {k: list(vs) for k, vs in saved["sums"].items()}
        self.d_wins.window.extend(tuple(w) for w in saved["d_wins"]["window"])
        self.d_wins.flagged = bool(saved["d_wins"]["flagged"])

    def seconds(self) -> float:
        return time.perf_counter() - self.t0
