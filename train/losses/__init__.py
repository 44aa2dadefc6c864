"""Every model's loss, by name: the registry the options, the command line and the loop read.

Adding a model is one new file here (a `Loss` subclass: its attributes, its D heads, its
extra terms) and one entry below; the loop and the step do not change.
"""

from __future__ import annotations

from .acgan import ACGAN
from .adversarial import ADVERSARIAL, LOSS_CHOICES  # noqa: F401  (re-exported)
from .base import Loss, fake_conditions  # noqa: F401  (re-exported)
from .cgan import CGAN
from .dcgan import DCGAN
from .pix2pix import Pix2Pix
from .projection import ProjectionCGAN
from .reacgan import ReACGAN
from .wgan_gp import WGANGP

LOSSES: dict[str, type[Loss]] = {
    "dcgan": DCGAN,
    "wgan-gp": WGANGP,
    "cgan": CGAN,
    "acgan": ACGAN,
    "cgan-pd": ProjectionCGAN,
    "reacgan": ReACGAN,
    "pix2pix": Pix2Pix,
}
MODELS = tuple(LOSSES)


def loss_class(model: str) -> type[Loss]:
    if model not in LOSSES:
        raise ValueError(f"unknown model {model!r}; one of {', '.join(MODELS)}")
    return LOSSES[model]
