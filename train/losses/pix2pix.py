"""pix2pix (Isola et al. 2017): a sketch -> face, with optional tags and noise.

G is the U-Net, D the PatchGAN that judges (sketch, face[, tags]) pairs (train/models/pix2pix.py).
G's loss is pix2pix's: adversarial + `l1_weight` x L1 to the real face of the sketch. Three
additions make it fit this study:

- tags (`--labels S --attrs ...`): G and D take them as maps, and D has an auxiliary classifier
  (ACGAN's term, `aux_weight`). A face's own sketch nearly gives its hair colour away, so G
  could learn to ignore the tags; a share `tag_swap` of the fakes is therefore painted with
  the tags of another training face (drawn as `fake_conditions` draws them, so tags co-occur as
  they do on real faces). Those have no L1 target: only D and its classifier judge them;
- noise: pix2pix's G learns to ignore its noise (the authors say so and rely on dropout). The
  mode-seeking term of MSGAN (Mao et al. 2019) keeps it in use: the second half of the fakes
  repeats the first half's sketches and tags with other noise, and G is rewarded for the
  distance between the two paintings per unit of noise distance, `ms_weight / (ratio + eps)`;
- sketch augmentation (train/sketch/augment.py) makes the XDoG sketches look hand-drawn, drawn
  from the step's generator, so a resumed run stays exact;
- colour hints (`--hints`, Zhang et al. 2017; train/sketch/hints.py): G also takes a few colour
  patches sampled from the real face, and a mask saying where. Fakes painted with another face's
  tags get none: the real face's colours would contradict the tags they follow. Where hints and
  tags disagree G is taught to follow the hints (it does at the hinted places, not yet over the
  whole face: BENCHMARKS.md): a share `tag_conflict` of the hinted fakes that keep their face is
  given another face's tags as input, while the L1 target, the hints and D's judgement stay with
  their own face, so G learns to paint what the hints say when the tags say otherwise. It is what
  costs tag accuracy in a hinted model (64x64, judge hair 91% / 90% / 87% at 0 / 0.2 / 0.6, 94%
  without hints; the hints' hair seen against other tags 17% / 22% / 30%). At use the painter
  also lets the hints choose the tags they speak for (train/sketch/hint_tags.py): with share 0
  the judge then sees the hints' hair in 30% of those paintings, with 0.6 in 36%, and with hints
  placed on the hair 31% / 48% against the asked hair's 24% / 18%: share 0 keeps the tags and still
  lets hints on the hair win, so the shipped model is trained with it (BENCHMARKS.md "The hints
  decide the tags they speak for", "Hints placed where a user places them"). The few
  hinted pixels weigh little in the whole face's L1, so G's loss also has `hint_weight` x the L1
  distance to the hint colours at the hinted places (the patches' means): without it G followed
  hints only loosely in a few thousand steps (the test sketches' colour error at the hints 1.2x lower
  with them than without, at step 1,000 of a 64x64 run);
- line consistency (`line_weight`, train/sketch/soft_lines.py): the L1 distance between the soft
  XDoG line art of each fake and of the real face whose sketch it was painted from, with the
  run's own XDoG parameters. The mode-seeking term pushes two paintings apart edges and all; this
  keeps the lines where the sketch put them while the noise changes colours and light. It applies
  where the L1 term does (own tags, both noises of a pair): XDoG sees luminance, so a face's lines
  carry its colours (dark hair draws other edges than blonde), and asked for of fakes with other
  tags it pulled them to the real face's colours (64x64, 4,000 steps, every fake: judge hair
  accuracy with asked tags 78% at weight 30 and 60% at 100, against 88.5% without, on val). Where
  L1 applies, weight 30 brought the val sketches' fidelity from 7.6% of the way to the floor
  (-0.4%) with hair accuracy 87.0% (K0, shipped until share 0 replaced it; BENCHMARKS.md "Line consistency").

The real condition is a `Paired` (sketch, tags); the fakes' adds the L1 targets, which fakes
keep their own tags, the noise and how many of them are mode-seeking pairs.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from curate.lineart import XDoGParams, params_from_json
from train.diagnostics import mean_pairwise_distance
from train.models import pix2pix as nets
from train.option_fields import model_option
from train.sketch.augment import SketchAugment
from train.sketch.hints import sample_hints
from train.sketch.soft_lines import line_consistency
from train.sketch.hooks import SKETCH_EVALUATION
from train.losses.acgan import aux_accuracy, aux_loss
from train.losses.base import Loss, fake_conditions

MS_EPS = 1e-5          # MSGAN's
GRID_ROWS = 8          # held-out sketches in the sample grids
GRID_NOISES = 6        # paintings per sketch in an unconditional run's grids
DIVERSITY_NOISES = 8   # paintings per sketch for noise_spread


class Paired(NamedTuple):
    sketch: torch.Tensor                   # [N, 1, S, S] in [-1, 1], paper +1
    tags: torch.Tensor | None              # [N, c_dim]
    target: torch.Tensor | None = None     # fakes: the real face each one's sketch was made from
    own: torch.Tensor | None = None        # fakes: bool [N], painted with the target's own tags (L1 applies)
    z: torch.Tensor | None = None          # fakes: their noise
    pairs: int = 0                         # fakes: the last `pairs` repeat the first `pairs` with other noise
    hints: torch.Tensor | None = None      # fakes of a --hints run: the hint channels G was given


class Pix2Pix(Loss):
    help = ("Train pix2pix (Isola et al. 2017): sketch (+ tags with --labels) -> face, U-Net and PatchGAN, "
            "L1 + adversarial, noise kept in use by a mode-seeking term (needs `curate sketch`).")
    needs_sketch = True
    evaluation = SKETCH_EVALUATION  # scored on test sketches and hand drawings (train/sketch/hooks.py)
    own_nets = True
    d_condition = True
    diffaug_policies = ("color",)   # translation and cutout would move the face away from its sketch
    defaults = dict(Loss.defaults, z_dim=8, l1_weight=100.0, ms_weight=0.1, tag_swap=0.3, sketch_aug=True,
                    hints=False, tag_conflict=0.2, noise_levels=1, hint_weight=10.0,
                    line_weight=0.0)
    options = {
        # L1 between the painting and the real face
        "l1_weight": model_option("float | None", f"pix2pix: weight of the L1 distance to the real face "
                                  f"[{defaults['l1_weight']}]."),
        # the mode-seeking term (MSGAN) that keeps the noise in use
        "ms_weight": model_option("float | None", f"pix2pix: weight of the mode-seeking term that keeps the noise "
                                  f"in use (MSGAN); 0 turns it off [{defaults['ms_weight']}]."),
        # share of fakes painted with other faces' tags (no L1 for them)
        "tag_swap": model_option("float | None", f"pix2pix with --labels: share of fakes painted with another "
                                 f"face's tags, so tags are followed [{defaults['tag_swap']}]."),
        # hand-drawn-like augmentation of the training sketches
        "sketch_aug": model_option("bool | None", "pix2pix: make the training sketches look hand-drawn (line "
                                   "width, pressure, gaps, jitter) [on].", group="data"),
        # colour hints beside the sketch (off: the runs before them stay as they were)
        "hints": model_option("bool | None", "pix2pix: G also takes colour hints (a few colour points sampled "
                              "from the real face in training; the user's strokes at use, `train sample "
                              "--hints`) [off].", group="nets"),
        # how far into the U-Net's decoder the noise goes (train/models/pix2pix.py)
        "noise_levels": model_option("int | None", "pix2pix: decoder levels of G that receive the noise, from the "
                                     "bottleneck out (more: the noise reaches the colours and details) [1].",
                                     group="nets"),
        # hinted fakes given other tags but kept to their face: taught to follow the hints over the tags
        "tag_conflict": model_option("float | None", f"pix2pix --hints --labels: share of hinted fakes given "
                                     f"another face's tags while painting their own face, so that G learns to follow "
                                     f"the hints where tags disagree; paid for in tag accuracy (0: tags decide) "
                                     f"[{defaults['tag_conflict']}]."),
        # the hinted places' own L1 term
        "hint_weight": model_option("float | None", f"pix2pix --hints: weight of the L1 distance to the hint "
                                    f"colours at the hinted places, beside the whole face's "
                                    f"[{defaults['hint_weight']}]."),
        # the line art of fakes kept to their face's (0: the runs before it stay as they were)
        "line_weight": model_option("float | None", f"pix2pix: weight of the L1 distance between the XDoG line "
                                    f"art of each painting (own tags) and of its real face, so the noise changes "
                                    f"colours, not lines [{defaults['line_weight']}]."),
    }
    options_are_for = "sketch models (pix2pix)"

    @classmethod
    def check_options(cls, opts) -> None:
        for name in ("l1_weight", "ms_weight", "hint_weight", "line_weight"):
            if getattr(opts, name) < 0:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 0")
        for name in ("tag_swap", "tag_conflict"):
            if not 0 <= getattr(opts, name) <= 1:
                raise ValueError(f"--{name.replace('_', '-')} is a share: between 0 and 1")
        levels = opts.size.bit_length() - 1            # the U-Net goes down to 1x1
        if not 1 <= opts.noise_levels <= levels:
            raise ValueError(f"--noise-levels must be between 1 and {levels} (the decoder's levels at {opts.size}x"
                             f"{opts.size}), not {opts.noise_levels}")
        if opts.noise_levels > 1 and not opts.z_dim:
            raise ValueError("--noise-levels needs noise: not with --z-dim 0")

    @classmethod
    def takes_conditions(cls, opts) -> bool:
        return opts.labels is not None       # --labels makes it conditional; without: sketch only

    @classmethod
    def arch(cls, opts, spec) -> dict:
        c_dim = spec.dim if spec is not None else 0
        sn_g, sn_d = opts.sn in ("g", "both"), opts.sn in ("d", "both")
        aux = c_dim > 0 and opts.aux_weight > 0     # D does not see the tags it must tell: ACGAN's classifier
        # with noise, no dropout (as BicycleGAN's G): two paintings of a sketch would differ by their dropout
        # masks, the mode-seeking term was met that way, and G ignored z (noise_spread 0.006 at 32x32)
        arch = nets.arch_kwargs(opts.size, c_dim, opts.z_dim, opts.ngf, opts.ndf, aux=aux, condition_d=not aux,
                                dropout=0.0 if opts.z_dim else 0.5, hints=bool(opts.hints),
                                noise_levels=opts.noise_levels)
        arch["G"].update(net="pix2pix", sn=sn_g)
        arch["D"].update(net="pix2pix", sn=sn_d, **({"norm": "none"} if sn_d else {}))
        return arch

    def __init__(self, opts, spec, D, labels, device, data=None):
        super().__init__(opts, spec, D, labels, device, data)
        self.conditional = spec is not None
        self.sketch_augment = SketchAugment() if opts.sketch_aug else None
        self.held_out = data.held_out if data is not None else None
        sketch = data.meta.get("sketch") if data is not None else None
        self.line_params = params_from_json(sketch["params"])[1] if sketch else XDoGParams()

    # -- what G and D are given ---------------------------------------------------------

    def real_condition(self, labels, aligned, gen) -> Paired:
        sketch = self.sketch_augment(aligned, gen) if self.sketch_augment is not None else aligned
        return Paired(sketch, labels)

    def fake_inputs(self, gen, real, c_real: Paired):
        m = len(real)
        pairs = m // 2 if self.opts.ms_weight > 0 and self.opts.z_dim > 0 else 0
        first = m - pairs
        src = torch.cat([torch.arange(first), torch.arange(pairs)]).to(real.device)
        own = torch.ones(first, dtype=torch.bool)
        tags = c_real.tags
        if self.conditional:
            swap = torch.rand(first, generator=gen) < self.opts.tag_swap
            other = fake_conditions(self.labels, first, gen).to(self.device)
            own = ~swap
            tags = torch.where(swap.to(self.device)[:, None], other, tags[:first])[src.cpu()]
        z = torch.randn(m, self.opts.z_dim, generator=gen).to(self.device)
        sketch = c_real.sketch[src]
        paired = Paired(sketch, tags, real[src], own[src.cpu()].to(self.device), z, pairs)
        if not self.opts.hints:
            return (sketch, tags, z), paired
        hints = sample_hints(real[:first], gen) * own.to(self.device)[:, None, None, None]   # swapped: none
        g_tags = tags
        if self.conditional and self.opts.tag_conflict > 0:   # hints win: other tags in, own face out
            hinted = hints[:, 3].flatten(1).amax(1).cpu() > 0
            conflict = hinted & (torch.rand(first, generator=gen) < self.opts.tag_conflict)
            g_tags = torch.where(conflict.to(self.device)[:, None], other, tags[:first])[src.cpu()]
        hints = hints[src]
        return (sketch, g_tags, z, hints), paired._replace(hints=hints)

    def run_D(self, x, c: Paired, gen):
        return self.D(c.sketch, self.augment(x, gen), c.tags)

    # -- the objectives -----------------------------------------------------------------

    def d_extra(self, real, c_real, fake, c_fake, aux_real, gen, stats):
        if aux_real is None:
            return 0.0
        loss = aux_loss(self.spec, aux_real, c_real.tags)
        stats["aux_loss_real"], stats["aux_acc_real"] = loss, aux_accuracy(self.spec, aux_real.detach().float(),
                                                                           c_real.tags)
        return self.opts.aux_weight * loss

    def g_loss(self, fake, c: Paired, gen):
        adv, aux = self.run_D(fake, c, gen)
        loss = self.adv.g(adv)
        err = (fake.float() - c.target).abs().mean((1, 2, 3))
        own = c.own.float()
        l1 = (err * own).sum() / own.sum().clamp(min=1)
        loss = loss + self.opts.l1_weight * l1
        stats = {"l1": l1.detach()}
        if c.hints is not None and self.opts.hint_weight > 0:
            mask = c.hints[:, 3:]
            if mask.any():    # the hint colours are the patches' means: 0 where the face matches them there
                hint_l1 = ((fake.float() - c.hints[:, :3]).abs() * mask).sum() / (mask.sum() * 3)
                loss = loss + self.opts.hint_weight * hint_l1
                stats["hint_l1"] = hint_l1.detach()
        if self.opts.line_weight > 0:      # where L1 applies: a face's lines carry its colours (docstring)
            lines = (line_consistency(fake, c.target, self.line_params) * own).sum() / own.sum().clamp(min=1)
            loss = loss + self.opts.line_weight * lines
            stats["line_l1"] = lines.detach()
        if aux is not None:
            loss = loss + self.opts.aux_weight * aux_loss(self.spec, aux, c.tags)
            stats["aux_acc_fake"] = aux_accuracy(self.spec, aux.detach().float(), c.tags)
        if c.pairs:
            a, b = slice(0, c.pairs), slice(len(fake) - c.pairs, len(fake))
            ratio = (fake[a].float() - fake[b].float()).abs().mean() / (c.z[a] - c.z[b]).abs().mean()
            loss = loss + self.opts.ms_weight / (ratio + MS_EPS)
            stats["mode_seeking"] = ratio.detach()
        return loss, stats

    # -- sample grids and diagnostics -----------------------------------------------------

    def _rows(self, k: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The held-out sketches (float) and their tags, each repeated k times in a row."""
        h = self.held_out
        sketch = (h.sketches[:GRID_ROWS].float() / 127.5 - 1).repeat_interleave(k, 0)
        tags = h.labels[:GRID_ROWS].repeat_interleave(k, 0) if self.conditional else None
        return sketch, tags

    def grid_inputs(self):
        """Rows: held-out sketches. Columns (beside the sketch and its real face, added by
        `grid_picture`): unconditional, GRID_NOISES noises; conditional, the face's own tags, then
        each tag of the first exclusive group (hair colour) in place of its own."""
        gen = torch.Generator().manual_seed(self.opts.seed + 7)
        first = next((g for g in self.spec.groups if g.exclusive), None) if self.conditional else None
        k = 1 + len(first.tags) if first is not None else GRID_NOISES
        sketch, tags = self._rows(k)
        if first is not None:
            tags = tags.clone()
            for j, tag in enumerate(first.tags):
                at = torch.arange(len(tags)) % k == j + 1
                tags[at, first.offset:first.offset + len(first.tags)] = 0
                tags[at, first.offset + j] = 1
        z = torch.randn(k, self.opts.z_dim, generator=gen).repeat(len(sketch) // k, 1)
        self.grid_k = k
        return (sketch, tags, z), k + 2

    def grid_row_labels(self):
        return None          # rows are held-out sketches, shown in the first column

    def grid_picture(self, fakes):
        rows = len(fakes) // self.grid_k
        sketch = self.held_out.sketches[:rows].expand(-1, 3, -1, -1)
        return torch.cat([sketch[:, None], self.held_out.images[:rows, None],
                          fakes.view(rows, self.grid_k, *fakes.shape[1:])], 1).flatten(0, 1)

    def diversity_inputs(self, m: int = 64):
        k = DIVERSITY_NOISES
        sketch, tags = self._rows(k)
        gen = torch.Generator().manual_seed(self.opts.seed + 11)
        return sketch, tags, torch.randn(len(sketch), self.opts.z_dim, generator=gen)

    def diagnostics(self, G, on_device) -> dict:
        """sample_distance over all paintings; noise_spread: the same within each sketch's paintings
        (0 when G ignores its noise; MSGAN's term keeps it up)."""
        x = G(*on_device(self.diversity_inputs())).float()
        per_sketch = x.view(-1, DIVERSITY_NOISES, *x.shape[1:])
        return {"sample_distance": mean_pairwise_distance(x),
                "noise_spread": sum(mean_pairwise_distance(p) for p in per_sketch) / len(per_sketch)}
