"""One training step, the same for every model: `n_critic` discriminator updates, one generator
update, the EMA of G. What the losses are, and what G and D are given, is the loss object's
business (train.losses); this module only runs it: autocast, the backward passes, gradients
averaged over processes, the non-finite check, the optimiser steps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from train.diagnostics import flat_grad, grad_norm


class TrainingStopped(Exception):
    """NaN/inf losses: the run stopped with a checkpoint."""


def all_reduce_grads(module: torch.nn.Module, world: int) -> None:
    """Average gradients over processes (what DistributedDataParallel does after backward)."""
    import torch.distributed as dist

    grads = [p.grad for p in module.parameters() if p.grad is not None]
    flat = torch.cat([g.flatten() for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


class Step:
    """`step(index, log_now)` trains one generator step and returns its figures.

    `batch(i)` gives data step i's real images, their conditions and the step's RNG, a pure
    function of (seed, i, rank): noise, fake conditions, penalties and augmentations all draw
    from it, so a resumed run continues exactly.
    """

    def __init__(self, G, D, G_ema, opt_G, opt_D, loss, batch, opts, world: int, autocast):
        self.G, self.D, self.G_ema, self.opt_G, self.opt_D = G, D, G_ema, opt_G, opt_D
        self.loss, self.batch, self.opts, self.world, self.autocast = loss, batch, opts, world, autocast
        self.ema_params, self.g_params = list(G_ema.parameters()), [p.detach() for p in G.parameters()]
        self.prev_grad = None

    def __call__(self, step: int, log_now: bool) -> dict:
        n = self.opts.n_critic
        reuse = n == 1       # one D step: its fakes serve G's step too (one G forward saved)
        for k in range(n):
            real, c_real, gen = self.batch(step * n + k)
            g_args, c_fake = self.loss.fake_inputs(gen, real, c_real)
            with self.autocast:
                with torch.set_grad_enabled(reuse):
                    fake = self.G(*g_args)
                loss_d, stats = self.loss.d_loss(real, c_real, fake.detach(), c_fake, gen)
            self.update(self.D, self.opt_D, loss_d, f"discriminator loss is {{}} at step {step}",
                        stats if log_now and k == n - 1 else None, "grad_norm_d")
        if not reuse:
            g_args, c_fake = self.loss.fake_inputs(gen, real, c_real)
        self.D.requires_grad_(False)     # G's backward pass needs no weight gradients of D
        with self.autocast:
            if not reuse:
                fake = self.G(*g_args)
            loss_g, g_stats = self.loss.g_loss(fake, c_fake, gen)
        self.D.requires_grad_(True)
        stats.update(g_stats)
        self.update(self.G, self.opt_G, loss_g, f"generator loss is {{}} at step {step}",
                    stats if log_now else None, "grad_norm_g", lambda: self.grad_cosine(step, stats))
        self.update_ema(step)
        stats.update(loss_d=loss_d, loss_g=loss_g)
        return stats

    def update(self, net, opt, loss, stop_message: str, stats: dict | None, norm_key: str, before_step=None):
        if not torch.isfinite(loss):
            raise TrainingStopped(stop_message.format(loss.item()))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.world > 1:
            all_reduce_grads(net, self.world)
        if before_step is not None:
            before_step()
        if stats is not None:
            stats[norm_key] = grad_norm(net)
        opt.step()

    def grad_cosine(self, step: int, stats: dict) -> None:
        """Cosine of successive generator gradients, every `diag_every` steps (near 1: G keeps
        pushing one way, as in mode collapse)."""
        every = self.opts.diag_every
        diag_now = (step + 1) % every == 0
        if diag_now or (step + 2) % every == 0:
            grad_now = flat_grad(self.G)
            if diag_now and self.prev_grad is not None:
                stats["grad_cosine"] = F.cosine_similarity(grad_now, self.prev_grad, dim=0)
            self.prev_grad = grad_now if not diag_now else None

    @torch.no_grad()
    def update_ema(self, step: int) -> None:
        """EMA of G's weights, ramped up so early samples are not stuck at the init; buffers (batch
        norm statistics, spectral norm's power-iteration vectors) are copied."""
        beta = min(self.opts.ema_beta, (1 + step) / (10 + step))
        torch._foreach_lerp_(self.ema_params, self.g_params, 1 - beta)
        for be, b in zip(self.G_ema.buffers(), self.G.buffers()):
            be.copy_(b)
