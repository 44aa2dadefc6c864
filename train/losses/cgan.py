"""CGAN (Mirza & Osindero 2014): the condition is given to G (beside z) and to D (as constant
feature maps beside the image)."""

from train.losses.base import Loss


class CGAN(Loss):
    help = "Train a conditional GAN: the tags are fed to G and D."
    conditional = True
    d_condition = True

    @classmethod
    def d_heads(cls, spec):
        return {"c_dim_in": spec.dim}
