"""The base of every model's loss (stylegan2-ada's `loss.py` split): what G is given, what D
sees, and the two objectives. The training step calls only `fake_inputs`, `d_loss` and
`g_loss`, so it never asks which model it trains.

A model is a subclass that says, in class attributes, what it is (`conditional`,
`d_condition`, `needs_sketch`, its defaults, its own options) and, through `d_heads` (or all of `arch`), which
nets it needs; it adds its own terms in `d_extra` / `d_fake_extra` / `g_extra`. Terms every
model's D step may take from the options, watching D's scores (`--lecam`, `--ada`), are
train.losses.d_score_terms'; what they keep from step to step is the loss's `state_dict`,
which checkpoints hold.

The loop hands every model the same things: the real batch (faces, their label vectors and,
for models that need them, the pictures aligned with each face, such as its sketch, flipped
with it) through `real_condition`; the fixed inputs of the sample grid (`grid_inputs`,
arranged by `grid_picture`) and of the diagnostics (`diagnostics`). A model that paints
sketches overrides these; the loop never asks which model it trains.

Evaluation does not ask either: `evaluation` is the model's hook (train.eval.hooks), its scorer,
what `train eval` prints and what `train compare` shows of its runs.
"""

from __future__ import annotations

import torch

from train.augment import POLICIES
from train.conditions import ConditionSpec
from train.diagnostics import mean_pairwise_distance
from train.eval.hooks import GENERIC_EVALUATION
from train.models import arch_kwargs
from train.sampling import fixed_sample_inputs, fixed_sample_rows
from train.losses.adversarial import ADVERSARIAL
from train.losses.d_score_terms import augmentation, score_terms


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
    evaluation = GENERIC_EVALUATION   # how `train eval` scores its runs, `train compare` shows them
    needs_sketch = False    # G's input is a drawing of the face (sketch-to-face models): the data carry it
    own_nets = False        # the model brings its own nets: --arch and --deep do not apply
    d_norm = "batch"        # D's normalisation where spectral norm does not replace it
    lipschitz = False       # the loss itself keeps D Lipschitz (a gradient penalty): wasserstein is sound
    diffaug_policies = POLICIES   # the DiffAugment policies that make sense for the model
    # options a model sets when the command line leaves them out (the study's values)
    defaults = dict(loss="bce", sn="none", lr_g=2e-4, lr_d=2e-4, beta1=0.5, beta2=0.999, n_critic=1, z_dim=100)
    # options of this model alone (name: train.option_fields.model_option), spliced into TrainOptions:
    # offered by every `train <model>` command, refused for the models that do not declare them
    options: dict = {}
    options_are_for = ""    # who takes them, for that refusal ("sketch models (pix2pix)")

    @classmethod
    def check_options(cls, opts) -> None:
        """Raise ValueError naming an option of this model whose value makes no sense."""

    @classmethod
    def takes_conditions(cls, opts) -> bool:
        """Whether a run with these options conditions G on tags (the data then carry label vectors)."""
        return cls.conditional

    @classmethod
    def d_heads(cls, spec: ConditionSpec | None) -> dict:
        """D's extra constructor arguments (c_dim_in, aux_dim, proj_dim, proxy_dim, n_proxies)."""
        return {}

    @classmethod
    def arch(cls, opts, spec: ConditionSpec | None) -> dict:
        """The nets' constructor arguments (options.json's `arch`): the `--arch` backbone by default."""
        return arch_kwargs(opts.backbone, opts.size, opts.z_dim, opts.ngf, opts.ndf, opts.deep, opts.sn,
                           spec.dim if cls.conditional else 0, cls.d_norm, cls.d_heads(spec))

    def __init__(self, opts, spec: ConditionSpec | None, D: torch.nn.Module, labels: torch.Tensor | None,
                 device: torch.device, data=None):
        """`data`: the run's training set (train.data.TrainingSet), for models that need more of it
        than the label vectors (held-out sketches for the sample grid)."""
        self.opts, self.spec, self.D, self.labels, self.device = opts, spec, D, labels, device
        self.adv = ADVERSARIAL[opts.loss]
        self.augment = augmentation(opts, device)      # DiffAugment, or with --ada adaptive
        self.score_terms = score_terms(opts, self.augment, device)   # --lecam, --ada's signal

    def state_dict(self) -> dict:
        """What the loss itself keeps from step to step (LeCam's anchors, ADA's probability), for
        the checkpoint (train.training.state); {} for most runs."""
        return {name: term.state_dict() for name, term in self.score_terms.items()}

    def load_state_dict(self, saved: dict) -> None:
        for name, term in self.score_terms.items():
            if name in saved:
                term.load_state_dict(saved[name])

    def real_condition(self, labels: torch.Tensor | None, aligned: torch.Tensor | None, gen: torch.Generator):
        """What conditions the real batch, as `fake_inputs`, `d_loss` and `g_loss` receive it: the
        label vectors. `aligned`: pictures aligned with the faces (a sketch model's sketches, float
        in [-1, 1], flipped with the faces), None for the other models."""
        return labels

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

    def grid_picture(self, fakes: torch.Tensor) -> torch.Tensor:
        """The grid's tiles (uint8 [K, 3, S, S], row by row) from G's outputs for `grid_inputs`."""
        return fakes

    def diagnostics(self, G, on_device) -> dict:
        """Figures of G in eval mode for metrics.csv every `diag_every` steps: the spread of a fixed
        batch (falls toward 0 in mode collapse). `on_device(args)` moves G's arguments."""
        return {"sample_distance": mean_pairwise_distance(G(*on_device(self.diversity_inputs())))}

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
        adv_f, aux_f = self.run_D(fake, c_fake, gen)
        stats = {"d_real": self.adv.shown(adv_r), "d_fake": self.adv.shown(adv_f)}
        loss = self.adv.d(adv_r, adv_f) + self.d_extra(real, c_real, fake, c_fake, aux_r, gen, stats)
        loss = loss + self.d_fake_extra(c_fake, aux_f, stats)
        for term in self.score_terms.values():
            loss = loss + term.d_term(adv_r, adv_f, stats)
        return loss, stats

    def g_loss(self, fake, c_fake, gen) -> tuple[torch.Tensor, dict]:
        adv_f, aux_f = self.run_D(fake, c_fake, gen)
        stats: dict = {}
        return self.adv.g(adv_f) + self.g_extra(c_fake, aux_f, stats), stats

    def d_extra(self, real, c_real, fake, c_fake, aux_real, gen, stats: dict) -> torch.Tensor | float:
        """The model's own D terms (auxiliary classifier, gradient penalty); `stats` takes its metrics."""
        return 0.0

    def d_fake_extra(self, c_fake, aux_fake, stats: dict) -> torch.Tensor | float:
        """The model's own D terms on the fakes' auxiliary output (TAC-GAN's twin classifier)."""
        return 0.0

    def g_extra(self, c_fake, aux_fake, stats: dict) -> torch.Tensor | float:
        return 0.0
