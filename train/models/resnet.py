"""SNGAN-style ResNet generator and discriminator (Miyato et al. 2018; Gulrajani et al. 2017).

- G: z -> linear -> 4x4 map -> one up-block per doubling (BN, ReLU, nearest x2, 3x3 conv,
  BN, ReLU, 3x3 conv, plus a 1x1 shortcut) -> BN, ReLU, 3x3 conv, tanh. A condition
  enters through conditional batch norm (gain and bias linear in c, as in BigGAN), which
  takes one-hot groups and multi-hot tags alike.
- D: one down-block per halving to 4x4 (the first without the leading ReLU), ReLU, then
  the shared heads on a global sum pooling. No normalisation layers: `--sn d` adds the
  Lipschitz constraint SNGAN trains it with.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from train.models.heads import DiscriminatorHeads, SumPool, n_stages


class CondBatchNorm(nn.Module):
    """Batch norm whose scale and shift are 1 + W_g c and W_b c (plain affine batch norm when c_dim = 0).
    W_g and W_b start at zero, so spectral norm (which would divide by their zero norm) leaves them."""

    no_spectral_norm = True

    def __init__(self, ch: int, c_dim: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(ch, affine=c_dim == 0)
        if c_dim:
            self.gain = nn.Linear(c_dim, ch, bias=False)
            self.bias = nn.Linear(c_dim, ch, bias=False)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        x = self.bn(x)
        if not hasattr(self, "gain"):
            return x
        c = c.to(x.dtype)
        return x * (1 + self.gain(c))[:, :, None, None] + self.bias(c)[:, :, None, None]


class UpBlock(nn.Module):
    def __init__(self, cin: int, cout: int, c_dim: int):
        super().__init__()
        self.bn1, self.bn2 = CondBatchNorm(cin, c_dim), CondBatchNorm(cout, c_dim)
        self.conv1, self.conv2 = nn.Conv2d(cin, cout, 3, 1, 1), nn.Conv2d(cout, cout, 3, 1, 1)
        self.skip = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, c)), scale_factor=2)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), c)))
        return h + self.skip(F.interpolate(x, scale_factor=2))


class DownBlock(nn.Module):
    def __init__(self, cin: int, cout: int, first: bool):
        super().__init__()
        self.first = first
        self.conv1, self.conv2 = nn.Conv2d(cin, cout, 3, 1, 1), nn.Conv2d(cout, cout, 3, 1, 1)
        self.skip = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.relu(self.conv1(x if self.first else F.relu(x))))
        skip = self.skip(F.avg_pool2d(x, 2)) if self.first else F.avg_pool2d(self.skip(x), 2)
        return F.avg_pool2d(h, 2) + skip


class Generator(nn.Module):
    def __init__(self, size: int = 64, z_dim: int = 100, c_dim: int = 0, ngf: int = 64):
        super().__init__()
        self.size, self.z_dim, self.c_dim = size, z_dim, c_dim
        stages = n_stages(size)
        ch = [ngf * 2 ** (stages - 1)] + [ngf * 2 ** (stages - 1 - i) for i in range(stages)]   # 4 4 2 1 x ngf
        self.linear = nn.Linear(z_dim, ch[0] * 16)
        self.blocks = nn.ModuleList(UpBlock(ch[i], ch[i + 1], c_dim) for i in range(stages))
        self.out = nn.Sequential(nn.BatchNorm2d(ch[-1]), nn.ReLU(True), nn.Conv2d(ch[-1], 3, 3, 1, 1), nn.Tanh())

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        x = self.linear(z).view(len(z), -1, 4, 4)
        for block in self.blocks:
            x = block(x, c if self.c_dim else None)
        return self.out(x)


class Discriminator(DiscriminatorHeads):
    """Returns (adversarial logit [N], auxiliary outputs [N, aux_dim] or None)."""

    def __init__(self, size: int = 64, ndf: int = 64, c_dim_in: int = 0, aux_dim: int = 0,
                 proj_dim: int = 0, proxy_dim: int = 0, n_proxies: int = 0):
        super().__init__()
        self.c_dim_in, self.aux_dim = c_dim_in, aux_dim
        stages = n_stages(size)
        ch = [3 + c_dim_in] + [ndf * 2 ** i for i in range(stages)]       # 64 128 256 (x ndf/64) for 32x32
        self.features = nn.Sequential(*[DownBlock(ch[i], ch[i + 1], first=i == 0) for i in range(stages)],
                                      nn.ReLU())
        self.add_heads(lambda k, bias: nn.Sequential(SumPool(), nn.Linear(ch[-1], k, bias=bias)), aux_dim,
                       proj_dim, proxy_dim, n_proxies)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None):
        return self.heads(self.features(self.with_condition_maps(x, c)), c)


def init_weights(m: nn.Module) -> None:
    """Xavier-uniform convolutions and linear layers (SNGAN); conditional gains and biases start at 0,
    so conditional batch norm starts as plain batch norm."""
    if isinstance(m, CondBatchNorm) and hasattr(m, "gain"):
        nn.init.zeros_(m.gain.weight)
        nn.init.zeros_(m.bias.weight)
    elif isinstance(m, (nn.Conv2d, nn.Linear)):
        nn.init.xavier_uniform_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Embedding):
        nn.init.xavier_uniform_(m.weight)
