"""Networks only: the backbones (`--arch dcgan|resnet`) every model can use, built from plain
constructor arguments (`arch` in options.json) so a run folder rebuilds its own nets.
`pix2pix.py` holds the sketch-to-face U-Net and PatchGAN: not an `--arch` choice, but a family a
run's `arch` may name ("net": "pix2pix"), so `build` and `build_generator` make them too.

What a model needs of the nets (a condition in G, which heads D has) comes from its loss
class (train.losses); this package never asks which model it serves.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from train.models import dcgan, pix2pix, resnet
from train.models.heads import SIZES, n_stages  # noqa: F401  (re-exported)

ARCHS = {"dcgan": dcgan, "resnet": resnet}      # the backbones `--arch` chooses from
NETS = {**ARCHS, "pix2pix": pix2pix}           # every family a run's `arch` may name (sketch models: pix2pix)
SN_CHOICES = ("none", "d", "g", "both")


def arch_kwargs(arch: str, size: int, z_dim: int, ngf: int, ndf: int, deep: bool, sn: str, g_c_dim: int,
                d_norm: str, d_heads: dict) -> dict:
    """The constructor arguments of (G, D): everything needed to rebuild them.

    `g_c_dim`: condition size G takes (0: unconditional); `d_heads`: c_dim_in / aux_dim /
    proj_dim / proxy_dim / n_proxies as the loss wants them; `d_norm`: D's normalisation,
    dropped under spectral norm (its rescaling would undo the Lipschitz bound)."""
    sn_g, sn_d = sn in ("g", "both"), sn in ("d", "both")
    g = dict(net=arch, size=size, z_dim=z_dim, c_dim=g_c_dim, ngf=ngf, sn=sn_g)
    d = dict(net=arch, size=size, ndf=ndf, c_dim_in=0, aux_dim=0, sn=sn_d)
    d.update(d_heads)
    if arch == "dcgan":
        g["deep"] = d["deep"] = deep
        d["norm"] = "none" if sn_d else d_norm
    return {"G": g, "D": d}


def _construct(kind: str, kw: dict) -> tuple[nn.Module, object, bool]:
    kw = dict(kw)
    module = NETS[kw.pop("net", "dcgan")]        # run folders before --arch: DCGAN, no SN
    sn = kw.pop("sn", False)
    return getattr(module, kind)(**kw), module.init_weights, sn


def _finish(net: nn.Module, init, sn: bool) -> nn.Module:
    net.apply(init)
    if sn:
        add_spectral_norm(net)
    return net


def build_generator(kw: dict) -> nn.Module:
    return _finish(*_construct("Generator", kw))


def build_discriminator(kw: dict) -> nn.Module:
    return _finish(*_construct("Discriminator", kw))


def build(arch: dict) -> tuple[nn.Module, nn.Module]:
    """(G, D), initialised. Both are constructed before either is initialised: the order the
    global RNG has been drawn in since the first version, so a seed gives the same nets."""
    g, d = _construct("Generator", arch["G"]), _construct("Discriminator", arch["D"])
    return _finish(*g), _finish(*d)


def add_spectral_norm(net: nn.Module) -> None:
    """Spectral normalisation (Miyato et al. 2018) of every weight layer, torch's own: the weight is
    divided by its largest singular value, estimated by one power iteration per training forward
    pass; the iteration's vectors are buffers, so they are checkpointed (exact resume) and copied
    into the EMA generator with the other buffers."""
    exempt = {id(sub) for m in net.modules() if getattr(m, "no_spectral_norm", False) for sub in m.modules()}
    for m in list(net.modules()):
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)) and id(m) not in exempt:
            spectral_norm(m)
