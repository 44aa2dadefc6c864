"""The adversarial terms every model shares (`--loss`), on raw D scores, in fp32.

- bce: the original GAN's, with the non-saturating generator loss (Goodfellow et al. 2014).
- hinge: D max(0, 1 - D(x)) + max(0, 1 + D(G(z))), G -D(G(z)) (Lim & Ye 2017; Miyato et al. 2018).
- wasserstein: D D(G(z)) - D(x), G -D(G(z)) (Arjovsky et al. 2017): only meaningful when D is
  kept Lipschitz, by a gradient penalty (wgan-gp) or spectral norm (`--sn d`); the options
  refuse it otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Adversarial:
    name: str
    d: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]    # (scores on real, on fake) -> D loss
    g: Callable[[torch.Tensor], torch.Tensor]                  # scores on fake -> G loss
    probabilities: bool     # scores read as logits of P(real): metrics show sigmoid means (D(x), D(G(z)))

    def shown(self, scores: torch.Tensor) -> torch.Tensor:
        """What metrics.csv calls d_real / d_fake: mean probability, or mean raw score."""
        s = scores.detach().float()
        return (torch.sigmoid(s) if self.probabilities else s).mean()


ADVERSARIAL = {
    "bce": Adversarial("bce", lambda r, f: F.softplus(-r.float()).mean() + F.softplus(f.float()).mean(),
                       lambda f: F.softplus(-f.float()).mean(), True),
    "hinge": Adversarial("hinge", lambda r, f: F.relu(1 - r.float()).mean() + F.relu(1 + f.float()).mean(),
                         lambda f: -f.float().mean(), False),
    "wasserstein": Adversarial("wasserstein", lambda r, f: f.float().mean() - r.float().mean(),
                               lambda f: -f.float().mean(), False),
}
LOSS_CHOICES = tuple(ADVERSARIAL)
