"""What the loop watches besides the losses: gradient norms and directions, the spread of a
fixed batch of samples (mode collapse), and a discriminator that wins outright."""

from __future__ import annotations

import math
from collections import deque

import torch


def grad_norm(module: torch.nn.Module) -> float:
    norms = [p.grad.detach().float().norm() for p in module.parameters() if p.grad is not None]
    return torch.stack(norms).norm().item() if norms else 0.0


def flat_grad(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.detach().float().flatten() for p in module.parameters() if p.grad is not None])


def mean_pairwise_distance(images: torch.Tensor) -> float:
    """Mean L2 distance between the images of a batch, per pixel (RMS): falls toward 0 in mode collapse."""
    flat = images.float().flatten(1)
    return (torch.pdist(flat).mean() / math.sqrt(flat.shape[1])).item()


def discriminator_wins(d_real: float, d_fake: float, loss_g: float) -> bool:
    """The original study's failure, averaged over a window: D(x) -> 1, D(G(z)) -> 0, G loss exploding."""
    return d_real > 0.99 and d_fake < 0.01 and loss_g > 5


class DiscriminatorWatch:
    """D(x), D(G(z)) and G's loss over the last `window` steps; `add` returns a message the
    step the discriminator starts winning outright (the flag stays up while it does)."""

    def __init__(self, window: int):
        self.window = deque(maxlen=window)
        self.flagged = False

    def add(self, step: int, d_real: float, d_fake: float, loss_g: float) -> str | None:
        self.window.append((d_real, d_fake, loss_g))
        if len(self.window) < self.window.maxlen:
            return None
        mr, mf, mg = (sum(v) / len(self.window) for v in zip(*self.window))
        wins, was = discriminator_wins(mr, mf, mg), self.flagged
        self.flagged = wins
        if not wins or was:
            return None
        return (f"step {step}: the discriminator wins outright (D(x) {mr:.3f}, D(G(z)) {mf:.3f}, G loss {mg:.1f} "
                f"over {len(self.window)} steps): G gets no useful gradient; try a lower --lr-d, wgan-gp, or a "
                "smaller --ndf")
