"""WGAN-GP (Gulrajani et al. 2017): a critic kept 1-Lipschitz by a gradient penalty on
interpolations between real and fake faces; layer norm instead of batch norm in the critic
(the penalty is per sample); Adam(1e-4, 0, 0.9) and 5 critic steps per generator step."""

from __future__ import annotations

import torch

from train.losses.base import Loss


class WGANGP(Loss):
    help = "Train an unconditional WGAN-GP (critic without batch norm, gradient penalty, n_critic steps)."
    d_norm = "layer"
    defaults = dict(Loss.defaults, loss="wasserstein", lr_g=1e-4, lr_d=1e-4, beta1=0.0, beta2=0.9, n_critic=5)
    lipschitz = True      # the penalty makes --loss wasserstein meaningful without --sn

    def d_extra(self, real, c_real, fake, c_fake, aux_real, gen, stats):
        alpha = torch.rand(len(real), 1, 1, 1, generator=gen).to(real.device)
        inter = (alpha * real + (1 - alpha) * fake.float()).requires_grad_(True)
        out, _ = self.run_D(inter, c_fake, gen)
        g, = torch.autograd.grad(out.float().sum(), inter, create_graph=True)
        gp = ((g.flatten(1).norm(dim=1) - 1) ** 2).mean()
        stats["gp"] = gp
        return self.opts.gp_weight * gp
