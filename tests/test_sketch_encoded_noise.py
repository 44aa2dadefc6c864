"""BicycleGAN's encoded noise (`train pix2pix --kl-weight`): the fakes that keep their face get the
noise the encoder reads from it, L1 applies to those only, random noise must be read back."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from train.losses.pix2pix import Pix2Pix
from train.models import build_discriminator
from train.models.pix2pix import UNetGenerator, arch_kwargs
from train.runs import load_run
from train.sketch.paint import generator, paint_batch
from train.loop import train

from test_pix2pix import options, sketch_catalog  # noqa: F401  (a fixture)


def loss_and_batch(catalog, tmp_path, **kw):
    """A Pix2Pix loss with its generator (the tiny catalog's spec), and a batch of 8 different faces."""
    opts = options(catalog, tmp_path, **{"iters": 1, "batch": 8, "kl_weight": 0.1, **kw})
    spec = load_run(train(opts)).spec
    arch = Pix2Pix.arch(opts, spec)
    G = UNetGenerator(**{k: v for k, v in arch["G"].items() if k not in ("net", "sn")})
    labels = spec.sample_tensor(32, torch.Generator().manual_seed(0))
    loss = Pix2Pix(opts, spec, build_discriminator(arch["D"]), labels, torch.device("cpu"), G=G)
    real = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(2)) * 2 - 1
    c_real = loss.real_condition(labels[:8], torch.ones(8, 1, 32, 32), torch.Generator().manual_seed(0))
    return loss, G, real, c_real


def test_the_arch_carries_an_encoder_only_when_asked(tmp_path):
    assert "encoder" not in arch_kwargs(32)["G"]          # the runs before it keep their arch
    assert arch_kwargs(32, encoder=True)["G"]["encoder"] is True
    assert UNetGenerator(**arch_kwargs(32)["G"]).encoder is None
    with pytest.raises(ValueError, match="--kl-weight encodes the noise"):
        Pix2Pix.check_options(options("catalog.db", tmp_path, kl_weight=0.1, z_dim=0))


def test_the_fakes_that_keep_their_face_get_its_encoded_noise(sketch_catalog, tmp_path):  # noqa: F811
    """The first half's fakes with their own tags are painted with mu + sigma * eps of their real face;
    the others (other tags, the mode-seeking partners) keep their random noise."""
    loss, G, real, c_real = loss_and_batch(sketch_catalog, tmp_path, tag_swap=0.5, ms_weight=0.5)
    (_, _, z), paired = loss.fake_inputs(torch.Generator().manual_seed(1), real, c_real)
    (_, _, eps), _ = loss_random_noise(loss, real, c_real)
    first = len(real) - paired.pairs
    encoded = paired.encoded
    assert encoded[:first].equal(paired.own[:first]) and not encoded[first:].any()
    assert encoded.any() and not encoded.all()
    mu, logvar = G.encoder(real[:first])
    expected = mu + (0.5 * logvar).exp() * eps[:first]
    assert torch.allclose(z[:first][encoded[:first]], expected[encoded[:first]], atol=1e-6)
    assert torch.equal(z[~encoded], eps[~encoded])
    assert torch.equal(paired.z, z)


def loss_random_noise(loss, real, c_real):
    """The same draw without the encoder: the random noise (eps) every fake was given."""
    encoder, loss.encoder = loss.encoder, None
    try:
        return loss.fake_inputs(torch.Generator().manual_seed(1), real, c_real)
    finally:
        loss.encoder = encoder


def test_l1_applies_to_the_encoded_fakes_only_and_trains_the_encoder(sketch_catalog, tmp_path):  # noqa: F811
    loss, G, real, c_real = loss_and_batch(sketch_catalog, tmp_path, tag_swap=0.0, ms_weight=0.5)
    args, paired = loss.fake_inputs(torch.Generator().manual_seed(1), real, c_real)
    assert paired.own.all() and not paired.encoded.all()        # own tags all; the partners are not encoded
    fake = G(*args) + (~paired.encoded).float()[:, None, None, None]   # the random-noise fakes far off
    total, stats = loss.g_loss(fake, paired, torch.Generator().manual_seed(0))
    err = (fake.float() - paired.target).abs().mean((1, 2, 3))
    assert stats["l1"].item() == pytest.approx(err[paired.encoded].mean().item(), rel=1e-5)
    assert stats["l1"].item() < err.mean().item() - 0.2
    assert stats["kl"] > 0 and "latent_l1" in stats
    total.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in G.encoder.parameters())


def test_reading_the_noise_back_moves_g_not_the_encoder(sketch_catalog, tmp_path):  # noqa: F811
    """BicycleGAN's cLR: the random-noise fakes' noise read back by E; E is not trained to fit G's output."""
    loss, G, real, c_real = loss_and_batch(sketch_catalog, tmp_path, ms_weight=0.5, latent_weight=1.0)
    args, paired = loss.fake_inputs(torch.Generator().manual_seed(1), real, c_real)
    fake = G(*args).detach().requires_grad_()
    loss.opts = dataclasses.replace(loss.opts, kl_weight=0.0)
    term = loss._encoded_noise_terms(fake, paired._replace(posterior=tuple(t.detach() for t in paired.posterior)),
                                     stats := {})
    term.backward()
    assert term.item() == pytest.approx(stats["latent_l1"].item()) and term.item() > 0
    assert fake.grad[~paired.encoded].abs().sum() > 0 and fake.grad[paired.encoded].abs().sum() == 0
    assert all(p.grad is None or not p.grad.any() for p in G.encoder.parameters())
    assert all(p.requires_grad for p in G.encoder.parameters())


def test_a_run_with_encoded_noise_trains_and_paints_with_random_noise(sketch_catalog, tmp_path):  # noqa: F811
    run = load_run(train(options(sketch_catalog, tmp_path, iters=4, kl_weight=0.1, noise_levels=2)))
    assert run.options["arch"]["G"]["encoder"] is True
    G = generator(run)
    assert G.encoder is not None
    sketches = np.full((3, 32, 32), 255, np.uint8)
    sketches[:, 10:22, 16] = 0
    tags = [{"hair_color": run.spec.groups[0].tags[0]}] * 3
    a, b = paint_batch(run, G, sketches, tags, seed=0), paint_batch(run, G, sketches, tags, seed=1)
    assert a.shape == (3, 3, 32, 32) and not torch.equal(a, b)
