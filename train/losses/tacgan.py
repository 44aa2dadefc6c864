"""TAC-GAN (Gong et al., "Twin Auxiliary Classifiers GAN", NeurIPS 2019): ACGAN plus a twin
classifier C^mi on D's features that learns the tags of FAKE faces only.

ACGAN's G minimises the main classifier's cross-entropy on its fakes, which (the paper's analysis)
also minimises the conditional entropy H(c | G(z, c)): G is pulled toward faces whose tags are
easiest to read, few and alike. The twin estimates the fakes' own class posterior; G maximising
the twin's cross-entropy cancels that entropy term, so the objective becomes a divergence
between the real and fake class-conditional distributions:

    D:  CE(C(x_real), c)          + CE(C^mi(G(z, c)), c)      (the twin: fakes only)
    G:  CE(C(G(z, c)), c)         - CE(C^mi(G(z, c)), c)

both weighted by `--aux-weight`, as StudioGAN's TACGAN does. The two classifiers share D's
features: one auxiliary head of twice the tags' width whose first half is C and second half
C^mi (two linear maps of the same features, so no net changes and every backbone has it).
Softmax cross-entropy per exclusive group, sigmoid BCE per independent tag, as for ACGAN.
"""

from __future__ import annotations

import torch

from train.losses.acgan import ACGAN, aux_accuracy, aux_loss


class TACGAN(ACGAN):
    help = ("Train a TAC-GAN (Gong et al. 2019): an ACGAN with a twin classifier learnt on fakes, so G is not "
            "pulled toward easily classified, alike faces.")

    @classmethod
    def d_heads(cls, spec):
        return {"aux_dim": 2 * spec.dim}      # [main classifier C | twin classifier C^mi]

    def main(self, aux: torch.Tensor) -> torch.Tensor:
        return aux[:, :self.spec.dim]

    def twin(self, aux: torch.Tensor) -> torch.Tensor:
        return aux[:, self.spec.dim:]

    def d_extra(self, real, c_real, fake, c_fake, aux_real, gen, stats):
        return super().d_extra(real, c_real, fake, c_fake, self.main(aux_real), gen, stats)

    def d_fake_extra(self, c_fake, aux_fake, stats):
        """The twin learns the fakes' tags: its only data (D's twin term on reals is none)."""
        loss = aux_loss(self.spec, self.twin(aux_fake), c_fake)
        stats["twin_loss_fake"] = loss.detach()
        return self.opts.aux_weight * loss

    def g_extra(self, c_fake, aux_fake, stats):
        twin = self.twin(aux_fake)
        stats["twin_acc_fake"] = aux_accuracy(self.spec, twin.detach().float(), c_fake)
        return super().g_extra(c_fake, self.main(aux_fake), stats) \
            - self.opts.aux_weight * aux_loss(self.spec, twin, c_fake)
