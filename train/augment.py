"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training"):
the same random, differentiable transformations applied to real AND fake images before D, in
D's steps and in G's, so D cannot memorise a few thousand faces and G still gets gradients
through the augmentation. The policies and magnitudes are the paper's:

- color: brightness +U(-0.5, 0.5), saturation xU(0, 2), contrast xU(0.5, 1.5)
- translation: shifts of up to 1/8 of the image, zero-padded
- cutout: a zeroed square of half the image side at a random place

Every random number comes from the step's generator, so a run stays a pure function of
(seed, step, rank) and resumes exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

POLICIES = ("color", "translation", "cutout")


def parse_policy(text: str | None) -> list[str]:
    names = [p.strip() for p in (text or "").split(",") if p.strip()]
    unknown = [p for p in names if p not in POLICIES]
    if unknown:
        raise ValueError(f"--diffaug: unknown {', '.join(map(repr, unknown))}; use a comma-separated subset "
                         f"of {','.join(POLICIES)}")
    return names


def _rand(gen: torch.Generator, x: torch.Tensor, *shape: int) -> torch.Tensor:
    return torch.rand(len(x), *shape, generator=gen).to(x.device, x.dtype)


def color(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    x = x + (_rand(gen, x, 1, 1, 1) - 0.5)
    mean = x.mean(1, keepdim=True)
    x = (x - mean) * (_rand(gen, x, 1, 1, 1) * 2) + mean
    mean = x.mean((1, 2, 3), keepdim=True)
    return (x - mean) * (_rand(gen, x, 1, 1, 1) + 0.5) + mean


def translation(x: torch.Tensor, gen: torch.Generator, ratio: float = 0.125) -> torch.Tensor:
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (n, 1, 1), generator=gen).to(x.device)
    dx = torch.randint(-sw, sw + 1, (n, 1, 1), generator=gen).to(x.device)
    b, gy, gx = torch.meshgrid(torch.arange(n, device=x.device), torch.arange(h, device=x.device),
                               torch.arange(w, device=x.device), indexing="ij")
    gy = (gy + dy + 1).clamp(0, h + 1)
    gx = (gx + dx + 1).clamp(0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)
    return padded[b, gy, gx].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, gen: torch.Generator, ratio: float = 0.5) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), generator=gen).to(x.device) - ch // 2
    left = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), generator=gen).to(x.device) - cw // 2
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    inside = (ys >= top) & (ys < top + ch) & (xs >= left) & (xs < left + cw)
    return x * (~inside).to(x.dtype)[:, None]


FUNCTIONS = {"color": color, "translation": translation, "cutout": cutout}


class DiffAugment:
    """`DiffAugment("translation,cutout")(x, gen)`; the empty policy returns x untouched."""

    def __init__(self, policy: str | None):
        self.functions = [FUNCTIONS[p] for p in parse_policy(policy)]

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        for f in self.functions:
            x = f(x, gen)
        return x.contiguous(memory_format=torch.channels_last) if self.functions else x
