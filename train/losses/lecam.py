"""LeCam regularisation (Tseng et al., "Regularizing Generative Adversarial Networks under
Limited Data", CVPR 2021): D's outputs on real and fake faces are kept near two anchors, the
moving averages of D's mean output on fakes (alpha_F) and on reals (alpha_R), so D cannot push
them apart without bound on a few thousand faces. Added to D's loss with `--lecam WEIGHT`:

    R_LC = E_x[ relu(D(x) - alpha_F)^2 ] + E_z[ relu(alpha_R - D(G(z)))^2 ]

the paper's R_LC in the form of its official code (google/lecam-gan) and StudioGAN: only the
side past the other kind's anchor is penalised. The anchors are exponential moving averages
with decay 0.99 (the paper's), zero-debiased as the official code's are (the average from 0
divided by 1 - 0.99^t), so the first steps are not pulled toward a score of 0.

They are part of the run: checkpoints keep them (`state_dict`) and a resumed run continues from
them. Under torchrun every process averages the same global means, so all keep the same anchors.

Not for `--loss wasserstein` (train.losses.d_score_terms refuses it): the paper's analysis (the
regularised objective minimises a LeCam divergence) is for bounded, logit-like scores, and a
Wasserstein critic's scores are an unbounded distance estimate defined up to a constant, which
anchors to a moving average would only fight (the gradient penalty already bounds it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from train.device import process_count, sum_over_processes

DECAY = 0.99     # the paper's EMA decay of the anchors


class LeCam:
    """`d_term(scores on real, on fake, stats)`: the weighted regulariser, anchors updated first
    (as the official code does: this batch counts in the anchors it is held to)."""

    def __init__(self, weight: float, device: torch.device):
        self.weight, self.device = weight, device
        self.biased = torch.zeros(2, device=device)   # the moving averages of [D(real), D(fake)] from 0
        self.updates = 0

    @property
    def anchors(self) -> torch.Tensor:
        """[alpha_R, alpha_F]: the moving averages, debiased."""
        return self.biased / (1 - DECAY ** max(self.updates, 1))

    def update(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        means = torch.stack([real.detach().float().mean(), fake.detach().float().mean()])
        means = sum_over_processes(means) / process_count()
        self.biased = DECAY * self.biased + (1 - DECAY) * means
        self.updates += 1
        return self.anchors

    def d_term(self, real: torch.Tensor, fake: torch.Tensor, stats: dict) -> torch.Tensor:
        alpha_r, alpha_f = self.update(real, fake)
        reg = F.relu(real.float() - alpha_f).pow(2).mean() + F.relu(alpha_r - fake.float()).pow(2).mean()
        stats["lecam"] = reg.detach()
        return self.weight * reg

    def state_dict(self) -> dict:
        return {"biased": self.biased.detach().cpu(), "updates": self.updates}

    def load_state_dict(self, saved: dict) -> None:
        self.biased = saved["biased"].to(self.device, torch.float32)
        self.updates = int(saved["updates"])
