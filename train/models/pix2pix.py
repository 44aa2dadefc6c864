"""pix2pix's networks (Isola et al. 2017) for sketch -> face, with tag conditions and noise.

- `UNetGenerator`: the encoder-decoder with skip connections of pix2pix's `unet_256`, sized
  for 32, 64 and 128 (it goes down to 1x1: 5, 6 or 7 levels). Its input is the sketch
  [N, 1, S, S] (paper +1, ink -1), plus, as constant maps beside it, the tag condition
  vector c [N, c_dim]; c and a noise vector z [N, z_dim] are given to the bottleneck. pix2pix's
  authors found that a generator learns to ignore noise and relied on dropout; BicycleGAN
  (Zhu et al. 2017) and MSGAN (Mao et al. 2019) get several paintings of one sketch by feeding
  z to the net and adding a diversity term to the loss (the trainer's business). z is not
  given at the input by default (`noise_at_input`): there its per-sample constant maps
  dominate the first batch norm's statistics, and on the shared faces at 32x32 the L1 error
  after 200 steps stayed at 0.34 instead of 0.29 without noise; at the bottleneck it costs
  nothing (0.29). Dropout (0.5 in the innermost decoder levels, as pix2pix) stays as a
  regulariser. At the bottleneck alone z reaches the outer levels only through the 1x1 code,
  while the skip connections carry the sketch there untouched, so one sketch is painted nearly
  one way (two noises 0.15 RMS apart at 64x64); `noise_levels` > 1 gives z to that many decoder
  levels from the bottleneck out (BicycleGAN's "add to all" idea, on the decoder side). With
  `hint_channels` (4: `train pix2pix --hints`, train/sketch/hints.py) G also takes colour hints
  beside the sketch (RGB where hinted, and a mask); none given: no hint anywhere.
- `PatchDiscriminator`: the 70x70 PatchGAN (3 stride-2 layers, then two stride-1 ones;
  receptive field 70 px; 2 stride-2 layers at 32x32, receptive field 34). It judges the pair
  (sketch, face), concatenated, optionally with the tags as constant maps; it returns one
  logit per patch [N, 1, h, w] and, with `aux_dim`, auxiliary tag logits [N, aux_dim] from
  its pooled features (ACGAN-style), as the discriminators of `train.models` return (adv, aux).

Constructor arguments are plain numbers and strings (`arch_kwargs` -> options.json's `arch`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from train.models.dcgan import init_weights

SIZES = (32, 64, 128)


def _norm(kind: str, ch: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(ch)
    if kind == "instance":
        return nn.InstanceNorm2d(ch, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be batch, instance or none, not {kind!r}")


def _maps(v: torch.Tensor | None, like: torch.Tensor) -> list[torch.Tensor]:
    """A vector [N, k] as k constant maps the size of `like` (nothing for None or k = 0)."""
    if v is None or v.shape[1] == 0:
        return []
    return [v.to(like.dtype)[:, :, None, None].expand(-1, -1, like.shape[2], like.shape[3])]


class UNetGenerator(nn.Module):
    """G(sketch, c, z, hints) -> face [N, 3, S, S] in [-1, 1]."""

    def __init__(self, size: int = 64, in_channels: int = 1, c_dim: int = 0, z_dim: int = 8, ngf: int = 64,
                 max_mult: int = 8, norm: str = "batch", dropout: float = 0.5, noise_at_input: bool = False,
                 hint_channels: int = 0, noise_levels: int = 1):
        super().__init__()
        if size not in SIZES:
            raise ValueError(f"size must be one of {SIZES}, not {size}")
        self.size, self.in_channels, self.c_dim, self.z_dim = size, in_channels, c_dim, z_dim
        self.noise_at_input, self.hint_channels = noise_at_input, hint_channels
        levels = int(math.log2(size))                       # down to 1x1
        if not 1 <= noise_levels <= levels:
            raise ValueError(f"noise_levels must be between 1 and {levels} at {size}x{size}, not {noise_levels}")
        self.noise_levels = noise_levels
        ch = [ngf * min(2 ** i, max_mult) for i in range(levels)]
        extra = c_dim + z_dim
        self.down = nn.ModuleList()
        for i in range(levels):
            cin = in_channels + hint_channels + (extra if noise_at_input else c_dim) if i == 0 else ch[i - 1]
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2, True)]
            layers.append(nn.Conv2d(cin, ch[i], 4, 2, 1, bias=norm != "batch" or i in (0, levels - 1)))
            if 0 < i < levels - 1:                          # no norm on the first and the 1x1 level
                layers.append(_norm(norm, ch[i]))
            self.down.append(nn.Sequential(*layers))
        self.up = nn.ModuleList()
        for i in reversed(range(levels)):
            # the innermost level also receives c and z again; the others their skip connection, and z
            # for the `noise_levels` innermost
            cin = ch[i] + extra if i == levels - 1 else ch[i] * 2 + (z_dim if levels - 1 - i < noise_levels else 0)
            cout = 3 if i == 0 else ch[i - 1]
            layers = [nn.ReLU(True), nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=i == 0 or norm != "batch")]
            if i == 0:
                layers.append(nn.Tanh())
            else:
                layers.append(_norm(norm, cout))
                if dropout and levels - 1 - i < 3 and ch[i - 1] == ngf * max_mult:   # pix2pix: innermost 3
                    layers.append(nn.Dropout(dropout))
            self.up.append(nn.Sequential(*layers))

    def forward(self, sketch: torch.Tensor, c: torch.Tensor | None = None, z: torch.Tensor | None = None,
                hints: torch.Tensor | None = None) -> torch.Tensor:
        """z None: zeros (the net's middle painting); c is required when c_dim > 0; hints None: no hint
        anywhere (a generator trained without hints refuses them)."""
        n = sketch.shape[0]
        if self.c_dim and c is None:
            raise ValueError(f"this generator is conditioned on {self.c_dim} tag values: give c")
        if self.z_dim and z is None:
            z = sketch.new_zeros(n, self.z_dim)
        cz = torch.cat([v.to(sketch.dtype) for v in (c, z) if v is not None and v.shape[1]], 1) \
            if self.c_dim + self.z_dim else None
        h = torch.cat([sketch, *self._hints(hints, sketch), *_maps(cz if self.noise_at_input else c, sketch)], 1)
        skips = []
        for block in self.down:
            h = block(h)
            skips.append(h)
        for i, block in enumerate(self.up):
            if i == 0:
                h = torch.cat([h, *_maps(cz, h)], 1)
            else:
                h = torch.cat([h, skips[-1 - i], *(_maps(z, h) if i < self.noise_levels else [])], 1)
            h = block(h)
        return h

    def _hints(self, hints: torch.Tensor | None, sketch: torch.Tensor) -> list[torch.Tensor]:
        if not self.hint_channels:
            if hints is not None:
                raise ValueError("this generator was trained without colour hints (train pix2pix --hints)")
            return []
        if hints is None:
            return [sketch.new_zeros(sketch.shape[0], self.hint_channels, *sketch.shape[2:])]
        return [hints.to(sketch.dtype)]


class PatchDiscriminator(nn.Module):
    """D(sketch, face, c) -> (patch logits [N, 1, h, w], auxiliary logits [N, aux_dim] or None)."""

    def __init__(self, size: int = 64, in_channels: int = 1, c_dim_in: int = 0, aux_dim: int = 0, ndf: int = 64,
                 n_layers: int | None = None, norm: str = "batch"):
        super().__init__()
        if size not in SIZES:
            raise ValueError(f"size must be one of {SIZES}, not {size}")
        self.c_dim_in, self.aux_dim = c_dim_in, aux_dim
        n_layers = n_layers if n_layers is not None else (2 if size == 32 else 3)
        self.n_layers = n_layers
        layers: list[nn.Module] = [nn.Conv2d(in_channels + 3 + c_dim_in, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        ch = ndf
        for i in range(1, n_layers + 1):
            out = ndf * min(2 ** i, 8)
            stride = 2 if i < n_layers else 1
            layers += [nn.Conv2d(ch, out, 4, stride, 1, bias=norm != "batch"), _norm(norm, out),
                       nn.LeakyReLU(0.2, True)]
            ch = out
        self.features = nn.Sequential(*layers)
        self.adv = nn.Conv2d(ch, 1, 4, 1, 1)
        self.aux = nn.Linear(ch, aux_dim) if aux_dim else None

    def forward(self, sketch: torch.Tensor, face: torch.Tensor, c: torch.Tensor | None = None):
        x = torch.cat([sketch.to(face.dtype), face, *(_maps(c, face) if self.c_dim_in else [])], 1)
        h = self.features(x)
        aux = self.aux(h.mean((2, 3))) if self.aux is not None else None
        return self.adv(h), aux


def receptive_field(n_layers: int) -> int:
    """Pixels one patch logit sees: 4x4 kernels, n_layers stride-2 convs then two stride-1."""
    rf = 1
    for stride in reversed([2] * n_layers + [1, 1]):
        rf = rf * stride + (4 - stride)
    return rf


def arch_kwargs(size: int, c_dim: int = 0, z_dim: int = 8, ngf: int = 64, ndf: int = 64, aux: bool = False,
                condition_d: bool = True, norm: str = "batch", dropout: float = 0.5,
                noise_at_input: bool = False, hints: bool = False, noise_levels: int = 1) -> dict:
    """The constructor arguments of (G, D): everything needed to rebuild them (options.json `arch`).
    `aux`: D also predicts the tags (ACGAN-style); `condition_d`: D sees the tags as maps; `hints`: G
    takes colour hints; `noise_levels`: decoder levels given z (hints and noise_levels recorded only when
    used, so the runs before them keep their arch)."""
    g = dict(size=size, in_channels=1, c_dim=c_dim, z_dim=z_dim, ngf=ngf, max_mult=8, norm=norm, dropout=dropout,
             noise_at_input=noise_at_input, **({"hint_channels": 4} if hints else {}),
             **({"noise_levels": noise_levels} if noise_levels != 1 and z_dim else {}))
    d = dict(size=size, in_channels=1, c_dim_in=c_dim if condition_d else 0, aux_dim=c_dim if aux else 0,
             ndf=ndf, n_layers=2 if size == 32 else 3, norm=norm)
    return {"G": g, "D": d}


# the names train.models builds every family's nets by (a run's `arch` with "net": "pix2pix")
Generator, Discriminator = UNetGenerator, PatchDiscriminator


def build(arch: dict) -> tuple[UNetGenerator, PatchDiscriminator]:
    """Networks from `arch_kwargs`, with pix2pix's N(0, 0.02) initialisation."""
    G, D = UNetGenerator(**arch["G"]), PatchDiscriminator(**arch["D"])
    G.apply(init_weights)
    D.apply(init_weights)
    return G, D
