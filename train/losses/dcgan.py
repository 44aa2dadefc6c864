"""DCGAN (Radford et al. 2015): unconditional, the adversarial term alone."""

from train.losses.base import Loss


class DCGAN(Loss):
    help = "Train an unconditional DCGAN (Radford et al.) on the catalog's faces."
