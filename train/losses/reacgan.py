"""ReACGAN (Kang et al. 2021): ACGAN whose classifier is trained with the Data-to-Data
Cross-Entropy instead of softmax cross-entropy. D embeds each face (one normalised
embedding per exclusive group) and learns a proxy per tag; D2D-CE pulls a face's embedding
to its tag's proxy and pushes it from faces of OTHER tags in the batch, with margins, so
the classifier's gradients stay bounded and do not push every fake toward the most
typical face of its class (ACGAN's known failure, visible here as near-duplicates).
Independent tags keep ACGAN's sigmoid BCE. Hinge loss and spectral norm in D by default,
as in the paper."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from train.losses.acgan import ACGAN

EMBED = 128          # embedding size per exclusive group
TEMPERATURE = 0.5    # the paper's CIFAR/Tiny-ImageNet values
MARGIN = 0.98        # positive margin m_p; negatives count above 1 - m_p


def d2d_ce(embed: torch.Tensor, proxies: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Data-to-Data Cross-Entropy of embeddings [N, E] against their classes y, given the class
    proxies [K, E]: -log(e^{p_i} / (e^{p_i} + sum_{j: y_j != y_i} e^{n_ij})) with
    p_i = min(cos(f_i, v_{y_i}) - m_p, 0) / T and n_ij = max(cos(f_i, f_j) - (1 - m_p), 0) / T."""
    f, v = F.normalize(embed.float(), dim=1), F.normalize(proxies.float(), dim=1)
    pos = -F.relu(MARGIN - (f * v[y]).sum(1)) / TEMPERATURE
    neg = F.relu(f @ f.T - (1 - MARGIN)) / TEMPERATURE
    neg = neg.masked_fill(y[:, None] == y[None, :], float("-inf"))    # same class (and i itself): no negative
    return (torch.logsumexp(torch.cat([pos[:, None], neg], 1), 1) - pos).mean()


class ReACGAN(ACGAN):
    help = ("Train a ReACGAN: an ACGAN whose classifier learns with the Data-to-Data Cross-Entropy "
            "(Kang, Shin & Park 2021); hinge loss and spectral norm in D by default.")
    defaults = dict(ACGAN.defaults, loss="hinge", sn="d")

    @classmethod
    def d_heads(cls, spec):
        return {"aux_dim": sum(EMBED if g.exclusive else len(g.tags) for g in spec.groups),
                "proxy_dim": EMBED, "n_proxies": spec.dim}

    def classify(self, aux, target):
        loss, accs, at = aux.new_zeros((), dtype=torch.float32), [], 0
        proxies = self.D.proxy.weight
        for g, sl in self.spec.loss_slices():
            if g.exclusive:
                embed, y = aux[:, at:at + EMBED], target[:, sl].argmax(1)
                loss = loss + d2d_ce(embed, proxies[sl], y)
                with torch.no_grad():   # the nearest proxy is the predicted tag
                    cos = F.normalize(embed.float(), dim=1) @ F.normalize(proxies[sl].float(), dim=1).T
                    accs.append((cos.argmax(1) == y).float().mean().item())
                at += EMBED
            else:
                k = sl.stop - sl.start
                loss = loss + F.binary_cross_entropy_with_logits(aux[:, at:at + k].float(), target[:, sl])
                at += k
        return loss, sum(accs) / len(accs) if accs else float("nan")
