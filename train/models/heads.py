"""What every discriminator puts on its last feature map, whatever its backbone.

- `adv`: the real/fake score.
- `aux` (ACGAN, ReACGAN): an auxiliary output: class logits, or embeddings for D2D-CE.
- `proj` (projection discriminator, Miyato & Koyama 2018): score += <c, V phi(x)>. With a
  one-hot c that is the inner product of the class embedding (row of V) and phi(x); with
  several groups and multi-hot tags it sums the embeddings of the tags c holds.
- `proxy` (ReACGAN, Kang et al. 2021): one learned embedding per tag, the class proxies.

A backbone gives `head(k, bias)`: a module mapping its last feature map to [N, k] (for
DCGAN a 4x4 convolution, for ResNet a sum pooling and a linear layer).
"""

from __future__ import annotations

import math

import torch
from torch import nn

SIZES = (32, 64, 128)


def n_stages(size: int) -> int:
    if size not in SIZES:
        raise ValueError(f"--size must be one of {SIZES}, not {size}")
    return int(math.log2(size)) - 2     # 4x4 -> size


class DiscriminatorHeads(nn.Module):
    def add_heads(self, head, aux_dim: int, proj_dim: int, proxy_dim: int, n_proxies: int) -> None:
        self.adv = head(1, True)
        self.aux = head(aux_dim, True) if aux_dim else None
        if proj_dim:          # only when used: old run folders have no such parameters
            self.proj = head(proj_dim, False)
        if proxy_dim:
            self.proxy = nn.Embedding(n_proxies, proxy_dim)

    def with_condition_maps(self, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        """CGAN: the condition as constant feature maps beside the image."""
        if not self.c_dim_in:
            return x
        return torch.cat([x, c.to(x.dtype)[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])], 1)

    def heads(self, h: torch.Tensor, c: torch.Tensor | None):
        adv = self.adv(h).flatten(1)[:, 0]
        if hasattr(self, "proj"):
            adv = adv + (self.proj(h).flatten(1).float() * c.float()).sum(1)
        aux = self.aux(h).flatten(1) if self.aux is not None else None
        return adv, aux


class SumPool(nn.Module):
    """Global sum pooling (SNGAN's D: a sum, not a mean, so the scale follows the map size)."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h.sum((2, 3))
