"""The base of every model's loss (stylegan2-ada's `loss.py` split): what G is given, what D
sees, and the two objectives. The training step calls only `fake_inputs`, `d_loss` and
`g_loss`, so it never asks which model it trains.

A model is a subclass that says, in class attributes, what it is (`conditional`,
`d_condition`, `needs_sketch`, its defaults) and, through `d_heads`, which heads its
discriminator needs; it adds its own terms in `d_extra` / `g_extra`.
"""

from __future__ import annotations

import torch

from ..augment import DiffAugment
from ..conditions import ConditionSpec
from ..sampling import fixed_sample_inputs, fixed_sample_rows
from .adversarial import ADVERSARIAL


def fake_conditions(labels: torch.Tensor, m: int, gen: torch.Generator) -> torch.Tensor:
    """Conditions for m fakes: the label vectors of random training faces. So each group comes at
    its share and each independent tag at its frequency, AND tags co-occur as they do on real
    faces. Drawn group by group instead, fakes carry combinations real faces rarely have (green
    hair with red eyes), which a CGAN discriminator, seeing c, learns to reject whatever the image:
    on the shared faces it then won outright (judge hair accuracy 53% -> 70% after 600 steps)."""
    return labels[torch.randint(len(labels), (m,), generator=gen)]


class Loss:
    help = ""
    conditional = False     # G takes a condition; the data carry label vectors
    d_condition = False     # D is given the condition too (as input maps or by projection)
    needs_sketch = False    # G's input is a drawing of the face (sketch-to-face models)
    d_norm = "batch"        # D's normalisation where spectral norm does not replace it
    lipschitz = False       # the loss itself keeps D Lipschitz (a gradient penalty): wasserstein is sound
    # options a model sets when the command line leaves them out (the study's values)
    defaults = dict(loss="bce", sn="none", lr_g=2e-4, lr_d=2e-4, beta1=0.5, beta2=0.999, n_critic=1)

    @classmethod
    def d_heads(cls, spec: ConditionSpec | None) -> dict:
        """D's extra constructor arguments (c_dim_in, aux_dim, proj_dim, proxy_dim, n_proxies)."""
        return {}

    def __init__(self, opts, spec: ConditionSpec | None, D: torch.nn.Module, labels: torch.Tensor | None,
                 device: torch.device):
        self.opts, self.spec, self.D, self.labels, self.device = opts, spec, D, labels, device
        self.adv = ADVERSARIAL[opts.loss]
        self.augment = DiffAugment(opts.diffaug)

    def fake_inputs(self, gen: torch.Generator, real: torch.Tensor, c_real) -> tuple[tuple, torch.Tensor | None]:
        """(G's arguments, the fakes' condition) for a batch of fakes beside the real batch, drawn
        from `gen`: noise, and conditions as the training faces carry them."""
        m = len(real)
        z = torch.randn(m, self.opts.z_dim, generator=gen).to(self.device)
        c = fake_conditions(self.labels, m, gen).to(self.device) if self.conditional else None
        return (z, c), c

    def grid_inputs(self) -> tuple[tuple, int]:
        """G's arguments for the sample grids the run writes (the same at every step), and the
        grid's columns: rows = the tags of the first exclusive group."""
        z, c, cols = fixed_sample_inputs(self.opts.z_dim, self.opts.seed, self.spec if self.conditional else None)
        return (z, c), cols

    def grid_row_labels(self) -> list[str] | None:
        """What each row of those grids asks for, written beside it (None: rows mean nothing)."""
        return fixed_sample_rows(self.spec if self.conditional else None)

    def diversity_inputs(self, m: int = 64) -> tuple:
        """G's arguments for the fixed batch whose spread metrics.csv follows (mode collapse)."""
        gen = torch.Generator().manual_seed(self.opts.seed + 11)
        z = torch.randn(m, self.opts.z_dim, generator=gen)
        return z, self.spec.sample_tensor(m, torch.Generator().manual_seed(self.opts.seed + 11)) \
            if self.conditional else None

    def run_D(self, x: torch.Tensor, c: torch.Tensor | None, gen: torch.Generator):
        """D on (augmented) images: (score [N], auxiliary output or None)."""
        return self.D(self.augment(x, gen), c if self.d_condition else None)

    def d_loss(self, real, c_real, fake, c_fake, gen) -> tuple[torch.Tensor, dict]:
        adv_r, aux_r = self.run_D(real, c_real, gen)
        adv_f, _ = self.run_D(fake, c_fake, gen)
        stats = {"d_real": self.adv.shown(adv_r), "d_fake": self.adv.shown(adv_f)}
        loss = self.adv.d(adv_r, adv_f) + self.d_extra(real, c_real, fake, c_fake, aux_r, gen, stats)
        return loss, stats

    def g_loss(self, fake, c_fake, gen) -> tuple[torch.Tensor, dict]:
        adv_f, aux_f = self.run_D(fake, c_fake, gen)
        stats: dict = {}
        return self.adv.g(adv_f) + self.g_extra(c_fake, aux_f, stats), stats

    def d_extra(self, real, c_real, fake, c_fake, aux_real, gen, stats: dict) -> torch.Tensor | float:
        """The model's own D terms (auxiliary classifier, gradient penalty); `stats` takes its metrics."""
        return 0.0

    def g_extra(self, c_fake, aux_fake, stats: dict) -> torch.Tensor | float:
        return 0.0
