"""Adaptive augmentation (Karras et al., "Training Generative Adversarial Networks with Limited
Data", NeurIPS 2020, ADA): the DiffAugment policy (train.augment) applied to each image with a
probability p that the run tunes from D's overfitting signal, instead of to every image.

The signal is the paper's overfitting heuristic r_t = E[sign(D(x_real))]: near 0 while D cannot tell
reals from fakes, near 1 when it has memorised the training faces. Every INTERVAL D steps
(the paper's 4), p moves by sign(r_t - target) * (images in those steps) / (ada_kimg * 1000),
clamped to [0, 1]: with `--ada-kimg 500`, the paper's, p can go from 0 to 1 in 500k images.
p starts at 0.

Like DiffAugment it is used on reals and fakes, in D's steps and in G's, and it always draws
the same random numbers whatever p is (the transformed batch, then one uniform per image), so a
run stays a pure function of (seed, step, rank) and, with p, r_t's running sums and the step
count in the checkpoint (`state_dict`), resumes exactly. Under torchrun the sums are added over
the processes before p moves, so every process keeps the same p.
"""

from __future__ import annotations

import torch

from train.augment import DiffAugment
from train.device import process_count, sum_over_processes

INTERVAL = 4      # D steps between adjustments (the paper's ada_interval)


class AdaptiveAugment:
    """`AdaptiveAugment(policy, target, kimg, device)(x, gen)`; `d_term` reads D's scores on the
    reals of each D step (the training loss's hook for terms that watch D's scores)."""

    def __init__(self, policy: str, target: float, kimg: float, device: torch.device):
        self.diffaug = DiffAugment(policy)
        self.target, self.kimg, self.device = target, kimg, device
        self.p = torch.zeros((), device=device)
        self.signs = torch.zeros(2, device=device)     # sum of sign(D(real)), and how many, since the last move
        self.steps = 0                                  # D steps since the last move
        self.images = 0                                 # reals those steps saw, over all processes

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        augmented = self.diffaug(x, gen)
        chosen = torch.rand(len(x), generator=gen).to(x.device) < self.p
        return torch.where(chosen[:, None, None, None], augmented, x).contiguous(memory_format=torch.channels_last)

    def d_term(self, real: torch.Tensor, fake: torch.Tensor, stats: dict) -> float:
        """Counts the signs of D's scores on this step's reals; every INTERVAL steps, moves p."""
        signs = real.detach().float().sign()
        stats["ada_p"], stats["ada_rt"] = self.p, signs.mean()
        self.signs = self.signs + torch.stack([signs.sum(), torch.tensor(float(signs.numel()), device=signs.device)])
        self.steps += 1
        self.images += len(real) * process_count()
        if self.steps == INTERVAL:
            self.adjust()
        return 0.0

    def adjust(self) -> None:
        total, count = sum_over_processes(self.signs)
        r_t = total / count
        self.p = (self.p + torch.sign(r_t - self.target) * self.images / (self.kimg * 1000)).clamp(0, 1)
        self.signs, self.steps, self.images = torch.zeros_like(self.signs), 0, 0

    def state_dict(self) -> dict:
        return {"p": self.p.detach().cpu(), "signs": self.signs.detach().cpu(), "steps": self.steps,
                "images": self.images}

    def load_state_dict(self, saved: dict) -> None:
        self.p = saved["p"].to(self.device)
        self.signs = saved["signs"].to(self.device)
        self.steps, self.images = int(saved["steps"]), int(saved["images"])
