"""Which faces each data step trains on, and how: the run's schedule (batches per epoch, steps
in all), the batches themselves, and G's inputs moved to the device.

Determinism: the data order, flips and the step's RNG (noise, fake conditions, augmentations
draw from it) of data step s are a pure function of (seed, s, rank), so a run resumed from a
checkpoint continues exactly as if it had never stopped.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def step_generator(seed: int, index: int, rank: int) -> torch.Generator:
    """The RNG of one data step: independent of everything that came before it."""
    return torch.Generator().manual_seed((seed * 1_000_003 + index) * 1_009 + rank)


def on_device(device: torch.device, args: tuple, start: int = 0, stop: int | None = None) -> tuple:
    """G's arguments (tensors or None), rows start:stop, on the run's device."""
    return tuple(None if a is None else a[start:stop].to(device) for a in args)


@dataclass(frozen=True)
class Schedule:
    """The run's arithmetic: `total` generator steps of `n_critic` data steps each."""
    faces: int
    batch: int              # faces per data step over all processes (all the faces, when fewer than --batch)
    per_rank: int           # --batch / processes
    full: bool              # batch == --batch (else every process takes all the faces)
    steps_per_epoch: int    # data steps
    total: int              # generator steps
    sample_every: int

    @classmethod
    def of(cls, opts, faces: int, world: int) -> "Schedule":
        steps_per_epoch = max(1, faces // opts.batch)
        total = opts.iters if opts.iters is not None else \
            max(1, round((opts.epochs or 10) * steps_per_epoch / opts.n_critic))
        batch = min(opts.batch, faces)
        return cls(faces, batch, opts.batch // world, batch == opts.batch, steps_per_epoch, total,
                   opts.sample_every or max(1, round(steps_per_epoch / opts.n_critic)))

    def describe(self, opts, device, world: int) -> str:
        return (f"{self.faces} faces, {self.steps_per_epoch} batches of {self.batch} per epoch, {self.total} "
                f"generator steps ({self.total * opts.n_critic / self.steps_per_epoch:.1f} epochs) on {device}"
                + (f", {world} processes" if world > 1 else ""))


class BatchSampler:
    """`sampler(index)`: data step `index`'s real images (float in [-1, 1], flipped, NHWC on the
    device), their condition (labels, and whatever the model makes of the aligned pictures) and
    the step's RNG, for this process."""

    def __init__(self, data, loss, schedule: Schedule, opts, rank: int, device: torch.device):
        self.images, self.labels = data.images, data.labels   # uint8 on CPU: batches move as uint8 (4x less)
        self.aligned = data.aligned                           # pictures aligned with the faces (sketches), or None
        self.loss, self.schedule, self.rank, self.device = loss, schedule, rank, device
        self.seed, self.flip = opts.seed, opts.flip

    def indices(self, index: int) -> torch.Tensor:
        """The faces of data step `index` on this process: one shuffle per epoch, cut in batches."""
        s = self.schedule
        epoch, i = divmod(index, s.steps_per_epoch)
        perm = torch.randperm(s.faces, generator=torch.Generator().manual_seed(self.seed * 7919 + epoch))
        if not s.full:
            return perm[:s.batch]
        return perm[i * s.batch:(i + 1) * s.batch][self.rank * s.per_rank:(self.rank + 1) * s.per_rank]

    def __call__(self, index: int):
        idx = self.indices(index)
        gen = step_generator(self.seed, index, self.rank)
        x = self.to_float(self.images[idx])
        a = self.to_float(self.aligned[idx]) if self.aligned is not None else None
        if self.flip:
            flip = (torch.rand(len(idx), generator=gen) < 0.5).to(self.device)[:, None, None, None]
            x = torch.where(flip, x.flip(3), x)
            a = torch.where(flip, a.flip(3), a) if a is not None else None
        x = x.contiguous(memory_format=torch.channels_last)
        y = self.labels[idx].to(self.device) if self.labels is not None else None
        return x, self.loss.real_condition(y, a, gen), gen

    def to_float(self, pictures: torch.Tensor) -> torch.Tensor:
        return pictures.to(self.device, non_blocking=True).float().div_(127.5).sub_(1)
