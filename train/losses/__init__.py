"""Every model's loss, by name: the registry the options, the command line and the loop read.

Adding a model is one new file here (a `Loss` subclass: its attributes, its D heads, its
extra terms, the options of its own in `options`) and one entry below; the loop, the step and
the command line do not change.
"""

from __future__ import annotations

from train.losses.acgan import ACGAN
from train.losses.adversarial import ADVERSARIAL, LOSS_CHOICES  # noqa: F401  (re-exported)
from train.losses.base import Loss, fake_conditions  # noqa: F401  (re-exported)
from train.losses.cgan import CGAN
from train.losses.dcgan import DCGAN
from train.losses.pix2pix import Pix2Pix
from train.losses.projection import ProjectionCGAN
from train.losses.reacgan import ReACGAN
from train.losses.tacgan import TACGAN
from train.losses.wgan_gp import WGANGP

LOSSES: dict[str, type[Loss]] = {
    "dcgan": DCGAN,
    "wgan-gp": WGANGP,
    "cgan": CGAN,
    "acgan": ACGAN,
    "cgan-pd": ProjectionCGAN,
    "reacgan": ReACGAN,
    "tacgan": TACGAN,
    "pix2pix": Pix2Pix,
}
MODELS = tuple(LOSSES)


def loss_class(model: str) -> type[Loss]:
    if model not in LOSSES:
        raise ValueError(f"unknown model {model!r}; one of {', '.join(MODELS)}")
    return LOSSES[model]
