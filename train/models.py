"""DCGAN-style generator and discriminator, shared by the four models.

- DCGAN (Radford et al. 2015): transposed-conv G with batch norm, strided-conv D.
- WGAN-GP (Gulrajani et al. 2017): same G; the critic has no batch norm (the gradient
  penalty is per sample), layer norm in its place.
- CGAN (Mirza & Osindero 2014): the condition is concatenated to z in G and fed to D
  as constant feature maps beside the image.
- ACGAN (Odena et al. 2017): G as CGAN; D sees only the image and has an auxiliary
  classifier head predicting the condition.

`deep=True` adds a stride-1 3x3 conv (+norm, activation) at every resolution of both
nets: the "DCGAN with extra layers" of the original study.
"""

from __future__ import annotations

import math

import torch
from torch import nn

MODELS = ("dcgan", "wgan-gp", "cgan", "acgan")
SIZES = (32, 64, 128)


def n_stages(size: int) -> int:
    if size not in SIZES:
        raise ValueError(f"--size must be one of {SIZES}, not {size}")
    return int(math.log2(size)) - 2     # 4x4 -> size


class Generator(nn.Module):
    def __init__(self, size: int = 64, z_dim: int = 100, c_dim: int = 0, ngf: int = 64, deep: bool = False):
        super().__init__()
        self.size, self.z_dim, self.c_dim = size, z_dim, c_dim
        stages = n_stages(size)
        ch = [ngf * 2 ** (stages - 1 - i) for i in range(stages)]   # e.g. 512 256 128 64 for 64x64
        layers: list[nn.Module] = [nn.ConvTranspose2d(z_dim + c_dim, ch[0], 4, 1, 0, bias=False),
                                   nn.BatchNorm2d(ch[0]), nn.ReLU(True)]
        for i in range(stages):
            if deep:
                layers += [nn.Conv2d(ch[i], ch[i], 3, 1, 1, bias=False), nn.BatchNorm2d(ch[i]), nn.ReLU(True)]
            if i + 1 < stages:
                layers += [nn.ConvTranspose2d(ch[i], ch[i + 1], 4, 2, 1, bias=False),
                           nn.BatchNorm2d(ch[i + 1]), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(ch[-1], 3, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        x = z if c is None or self.c_dim == 0 else torch.cat([z, c.to(z.dtype)], 1)
        return self.net(x[:, :, None, None])


class Discriminator(nn.Module):
    """Returns (adversarial logit [N], auxiliary logits [N, aux_dim] or None)."""

    def __init__(self, size: int = 64, ndf: int = 64, c_dim_in: int = 0, aux_dim: int = 0,
                 norm: str = "batch", deep: bool = False):
        super().__init__()
        self.c_dim_in, self.aux_dim = c_dim_in, aux_dim
        stages = n_stages(size)
        ch = [ndf * 2 ** i for i in range(stages)]      # 64 128 256 512 for 64x64

        def norm_layer(c: int, res: int) -> nn.Module:
            return nn.BatchNorm2d(c) if norm == "batch" else nn.GroupNorm(1, c) if norm == "layer" else nn.Identity()

        act = lambda: nn.LeakyReLU(0.2, True)  # noqa: E731
        layers: list[nn.Module] = [nn.Conv2d(3 + c_dim_in, ch[0], 4, 2, 1, bias=False), act()]
        res = size // 2
        for i in range(stages):
            if deep:
                layers += [nn.Conv2d(ch[i], ch[i], 3, 1, 1, bias=False), norm_layer(ch[i], res), act()]
            if i + 1 < stages:
                layers += [nn.Conv2d(ch[i], ch[i + 1], 4, 2, 1, bias=False), norm_layer(ch[i + 1], res // 2), act()]
                res //= 2
        self.features = nn.Sequential(*layers)
        self.adv = nn.Conv2d(ch[-1], 1, 4, 1, 0)
        self.aux = nn.Conv2d(ch[-1], aux_dim, 4, 1, 0) if aux_dim else None

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None):
        if self.c_dim_in:
            x = torch.cat([x, c.to(x.dtype)[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])], 1)
        h = self.features(x)
        adv = self.adv(h).flatten(1)[:, 0]
        aux = self.aux(h).flatten(1) if self.aux is not None else None
        return adv, aux


def init_weights(m: nn.Module) -> None:
    """DCGAN init: N(0, 0.02) convs, N(1, 0.02) norm scales."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def arch_kwargs(model: str, size: int, z_dim: int, c_dim: int, ngf: int, ndf: int, deep: bool) -> dict:
    """The constructor arguments of (G, D) for a model: everything needed to rebuild them."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; one of {', '.join(MODELS)}")
    conditional_g = model in ("cgan", "acgan")
    g = dict(size=size, z_dim=z_dim, c_dim=c_dim if conditional_g else 0, ngf=ngf, deep=deep)
    d = dict(size=size, ndf=ndf, c_dim_in=c_dim if model == "cgan" else 0,
             aux_dim=c_dim if model == "acgan" else 0,
             norm="layer" if model == "wgan-gp" else "batch", deep=deep)
    return {"G": g, "D": d}


def build(model: str, size: int, z_dim: int, c_dim: int, ngf: int, ndf: int, deep: bool,
          ) -> tuple[Generator, Discriminator]:
    kw = arch_kwargs(model, size, z_dim, c_dim, ngf, ndf, deep)
    G, D = Generator(**kw["G"]), Discriminator(**kw["D"])
    G.apply(init_weights)
    D.apply(init_weights)
    return G, D
