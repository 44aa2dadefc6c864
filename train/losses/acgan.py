"""ACGAN (Odena et al. 2017): G takes the condition; D sees only the image and has an
auxiliary classifier head, trained on real faces and, through G, asked to recognise the
condition in the fakes. Softmax cross-entropy per exclusive group, sigmoid BCE per
independent tag, weighted by `--aux-weight`."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from train.losses.base import Loss


def aux_loss(spec, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy per exclusive group, sigmoid BCE for independent tags."""
    loss = logits.new_zeros((), dtype=torch.float32)
    for g, sl in spec.loss_slices():
        if g.exclusive:
            loss = loss + F.cross_entropy(logits[:, sl].float(), target[:, sl].argmax(1))
        else:
            loss = loss + F.binary_cross_entropy_with_logits(logits[:, sl].float(), target[:, sl])
    return loss


def aux_accuracy(spec, logits: torch.Tensor, target: torch.Tensor) -> float:
    """Mean over exclusive groups of argmax accuracy (NaN without exclusive groups)."""
    accs = [(logits[:, sl].argmax(1) == target[:, sl].argmax(1)).float().mean().item()
            for g, sl in spec.loss_slices() if g.exclusive]
    return sum(accs) / len(accs) if accs else float("nan")


class ACGAN(Loss):
    help = "Train an ACGAN: D has an auxiliary classifier head for the tags."
    conditional = True

    @classmethod
    def d_heads(cls, spec):
        return {"aux_dim": spec.dim}

    def classify(self, aux: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, float]:
        """(auxiliary loss, accuracy) of D's auxiliary output against the conditions."""
        return aux_loss(self.spec, aux, target), aux_accuracy(self.spec, aux.detach().float(), target)

    def d_extra(self, real, c_real, fake, c_fake, aux_real, gen, stats):
        loss, stats["aux_acc_real"] = self.classify(aux_real, c_real)
        stats["aux_loss_real"] = loss
        return self.opts.aux_weight * loss

    def g_extra(self, c_fake, aux_fake, stats):
        loss, stats["aux_acc_fake"] = self.classify(aux_fake, c_fake)
        return self.opts.aux_weight * loss
