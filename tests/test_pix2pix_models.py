"""pix2pix's U-Net generator and PatchGAN discriminator: shapes, conditions, noise, arch in JSON."""

from __future__ import annotations

import json

import pytest
import torch

from train.models.pix2pix import PatchDiscriminator, UNetGenerator, arch_kwargs, build, receptive_field


@pytest.mark.parametrize("size, patches", [(32, 6), (64, 6), (128, 14)])
def test_shapes_at_every_size(size, patches):
    arch = json.loads(json.dumps(arch_kwargs(size, c_dim=5, z_dim=4, ngf=8, ndf=8, aux=True)))   # via options.json
    G, D = build(arch)
    sketch = torch.rand(2, 1, size, size) * 2 - 1
    c = torch.eye(5)[:2]
    face = G(sketch, c, torch.randn(2, 4))
    assert face.shape == (2, 3, size, size) and face.min() >= -1 and face.max() <= 1
    adv, aux = D(sketch, face, c)
    assert adv.shape == (2, 1, patches, patches) and aux.shape == (2, 5)
    (adv.mean() + aux.mean()).backward()                 # gradients reach G through D
    assert all(p.grad is not None for p in G.parameters() if p.requires_grad)


def test_noise_and_tags_change_the_painting():
    torch.manual_seed(0)
    G = UNetGenerator(64, c_dim=3, z_dim=4, ngf=8).eval()
    sketch = torch.rand(1, 1, 64, 64) * 2 - 1
    c = torch.tensor([[1.0, 0, 0]])
    base = G(sketch, c, torch.zeros(1, 4))
    assert torch.equal(base, G(sketch, c))                # z defaults to zeros
    assert not torch.allclose(base, G(sketch, c, torch.randn(1, 4)))
    assert not torch.allclose(base, G(sketch, torch.tensor([[0, 1.0, 0]]), torch.zeros(1, 4)))
    with pytest.raises(ValueError, match="give c"):
        G(sketch)


def test_unconditional_without_noise_and_plain_discriminator():
    G = UNetGenerator(32, c_dim=0, z_dim=0, ngf=8, norm="instance", dropout=0)
    D = PatchDiscriminator(32, ndf=8)
    out = G(torch.zeros(3, 1, 32, 32))
    adv, aux = D(torch.zeros(3, 1, 32, 32), out)
    assert out.shape == (3, 3, 32, 32) and adv.shape == (3, 1, 6, 6) and aux is None


def test_pix2pix_layout_details():
    assert receptive_field(3) == 70 and receptive_field(2) == 34
    drop = [m for m in UNetGenerator(128, ngf=64).modules() if isinstance(m, torch.nn.Dropout)]
    assert len(drop) == 3                                 # the three innermost 512-channel decoders
    with pytest.raises(ValueError, match="size must be one of"):
        UNetGenerator(48)
    with pytest.raises(ValueError, match="norm must be"):
        PatchDiscriminator(64, norm="layer")


def test_noise_levels_give_the_noise_to_more_decoder_levels():
    """noise_levels > 1: z enters the outer decoder levels too, so it changes the painting there; 1 keeps
    the arch of the runs before it (nothing recorded)."""
    assert "noise_levels" not in arch_kwargs(32)["G"]
    torch.manual_seed(0)
    G = UNetGenerator(**arch_kwargs(32, 0, 4, 8, 8, noise_levels=5)["G"]).eval()
    assert G.up[4][1].in_channels == 8 * 2 + 4            # the outermost level: its skip and z
    sketch = torch.rand(2, 1, 32, 32) * 2 - 1
    z = torch.randn(2, 4)
    seen = []
    G.up[4].register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))   # before its ReLU
    G(sketch, None, z)
    assert torch.equal(seen[0][:, -4:], z[:, :, None, None].expand(-1, -1, 16, 16))   # z itself, at 16x16
    with pytest.raises(ValueError, match="noise_levels must be between 1 and 5"):
        UNetGenerator(**arch_kwargs(32, 0, 4, 8, 8, noise_levels=6)["G"])
