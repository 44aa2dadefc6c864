"""DCGAN-style generator and discriminator (Radford et al. 2015): the study's networks.

- G: transposed convolutions with batch norm; a condition is concatenated to z (CGAN,
  ACGAN: Mirza & Osindero 2014, Odena et al. 2017).
- D: strided convolutions; batch norm, layer norm (the WGAN-GP critic: the gradient
  penalty is per sample) or none (under spectral norm, which its scale would undo).

`deep=True` adds a stride-1 3x3 conv (+norm, activation) at every resolution of both
nets: the "DCGAN with extra layers" of the original study. Parameter names are those of
the first version, so every run folder written since still loads.
"""

from __future__ import annotations

import torch
from torch import nn

from train.models.heads import DiscriminatorHeads, n_stages


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


class Discriminator(DiscriminatorHeads):
    """Returns (adversarial logit [N], auxiliary outputs [N, aux_dim] or None)."""

    def __init__(self, size: int = 64, ndf: int = 64, c_dim_in: int = 0, aux_dim: int = 0,
                 norm: str = "batch", deep: bool = False, proj_dim: int = 0, proxy_dim: int = 0,
                 n_proxies: int = 0):
        super().__init__()
        self.c_dim_in, self.aux_dim = c_dim_in, aux_dim
        stages = n_stages(size)
        ch = [ndf * 2 ** i for i in range(stages)]      # 64 128 256 512 for 64x64

        def norm_layer(c: int) -> nn.Module:
            return nn.BatchNorm2d(c) if norm == "batch" else nn.GroupNorm(1, c) if norm == "layer" else nn.Identity()

        act = lambda: nn.LeakyReLU(0.2, True)  # noqa: E731
        layers: list[nn.Module] = [nn.Conv2d(3 + c_dim_in, ch[0], 4, 2, 1, bias=False), act()]
        for i in range(stages):
            if deep:
                layers += [nn.Conv2d(ch[i], ch[i], 3, 1, 1, bias=False), norm_layer(ch[i]), act()]
            if i + 1 < stages:
                layers += [nn.Conv2d(ch[i], ch[i + 1], 4, 2, 1, bias=False), norm_layer(ch[i + 1]), act()]
        self.features = nn.Sequential(*layers)
        # a 4x4 convolution over the last 4x4 map: a linear function of all its features
        self.add_heads(lambda k, bias: nn.Conv2d(ch[-1], k, 4, 1, 0, bias=bias), aux_dim, proj_dim,
                       proxy_dim, n_proxies)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None):
        return self.heads(self.features(self.with_condition_maps(x, c)), c)


def init_weights(m: nn.Module) -> None:
    """DCGAN init: N(0, 0.02) convs, N(1, 0.02) norm scales."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Embedding):
        nn.init.normal_(m.weight, 0.0, 0.02)
