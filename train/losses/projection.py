"""CGAN with a projection discriminator (Miyato & Koyama 2018): D's score is
psi(phi(x)) + <c, V phi(x)>, the inner product of the condition's embedding with D's
features, instead of the condition concatenated to the input. With the hinge loss and
spectral normalisation in D (the paper's setting) by default."""

from train.losses.base import Loss


class ProjectionCGAN(Loss):
    help = ("Train a conditional GAN with a projection discriminator (Miyato & Koyama 2018): "
            "hinge loss and spectral norm in D by default.")
    conditional = True
    d_condition = True
    defaults = dict(Loss.defaults, loss="hinge", sn="d")

    @classmethod
    def d_heads(cls, spec):
        return {"proj_dim": spec.dim}
