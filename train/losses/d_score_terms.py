"""What every model's D step may add that reads D's scores on the real and the fake batch, beside
the adversarial terms: LeCam's regulariser (`--lecam`, train.losses.lecam) and adaptive
augmentation's overfitting signal (`--ada`, train.adaptive_augment). Each is a `d_term(scores on
real, on fake, stats)` that returns what it adds to D's loss and keeps its own state, which the
checkpoint holds (`state_dict` / `load_state_dict`): the model's loss gathers them
(`Loss.score_terms`), so neither the step nor the loop knows they exist.

`check_options` refuses what makes no sense, in one line, and gives `--ada` its default policy.
"""

from __future__ import annotations

import torch

from train.adaptive_augment import AdaptiveAugment
from train.augment import DiffAugment
from train.losses.lecam import LeCam

ADA_POLICY = ("translation", "cutout")     # --ada without --diffaug: DiffAugment's choice for a few faces
ADA_KIMG = 500.0                           # the paper's: p can go from 0 to 1 in 500k images


def augmentation(opts, device: torch.device):
    """D's augmentation: DiffAugment, applied to every image, or with --ada to each with ADA's p."""
    if opts.ada is None:
        return DiffAugment(opts.diffaug)
    return AdaptiveAugment(opts.diffaug, opts.ada, opts.ada_kimg, device)


def score_terms(opts, augment, device: torch.device) -> dict:
    """The terms a run's D step adds, by the name its checkpoint keeps their state under."""
    from_lecam = {"lecam": LeCam(opts.lecam, device)} if opts.lecam else {}
    return {**from_lecam, **({"ada": augment} if isinstance(augment, AdaptiveAugment) else {})}


def check_options(opts, model) -> None:
    """Raise ValueError (one line) for --lecam / --ada values or combinations that make no sense;
    fill --ada's defaults (--diffaug, --ada-kimg) where the command line left them out.
    `model`: the run's loss class."""
    if opts.lecam < 0:
        raise ValueError("--lecam must be >= 0 (0: off)")
    if opts.lecam and opts.loss == "wasserstein":
        # LeCam's analysis is for bounded, logit-like scores; a critic's are a distance up to a constant
        raise ValueError("--lecam anchors logit-like D scores (bce, hinge); a Wasserstein critic's scores are "
                         "defined up to a constant: use --loss hinge or bce, or leave --lecam out")
    if opts.ada is None:
        if opts.ada_kimg is not None:
            raise ValueError("--ada-kimg sets how fast --ada moves its probability: give --ada too")
        return
    if not 0 < opts.ada < 1:
        raise ValueError(f"--ada is the target of E[sign(D(real))]: between 0 and 1 (the paper's 0.6), not {opts.ada}")
    if opts.loss == "wasserstein":
        # ADA reads sign(D(x)) as "D says real"; a critic's sign means nothing (its scores shift freely)
        raise ValueError("--ada reads the sign of D's score on reals, which a Wasserstein critic's scores do "
                         "not have: use --loss hinge or bce, or --diffaug alone")
    opts.ada_kimg = ADA_KIMG if opts.ada_kimg is None else opts.ada_kimg
    if opts.ada_kimg <= 0:
        raise ValueError("--ada-kimg must be > 0")
    if not opts.diffaug:
        fits = [p for p in ADA_POLICY if p in model.diffaug_policies] or list(model.diffaug_policies)
        opts.diffaug = ",".join(fits)

