"""Line consistency (`train pix2pix --line-weight`): XDoG line art that gradients pass through."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from curate.lineart import XDoGParams, xdog
from train.losses.pix2pix import Pix2Pix
from train.models import build_discriminator
from train.runs import load_run
from train.sketch.soft_lines import line_consistency, soft_ink
from train.loop import train

from test_pix2pix import options, sketch_catalog  # noqa: F401  (a fixture)


def coloured_face(size: int = 64) -> np.ndarray:
    """A flat-coloured face: hair, skin, two eyes, on a pale ground (uint8 [S, S, 3])."""
    im = Image.new("RGB", (size, size), (230, 230, 240))
    d = ImageDraw.Draw(im)
    s = size / 100
    d.ellipse([10 * s, 5 * s, 90 * s, 95 * s], fill=(120, 60, 30))            # hair
    d.ellipse([22 * s, 25 * s, 78 * s, 92 * s], fill=(250, 215, 190))         # skin
    for x in (32, 58):
        d.ellipse([x * s, 50 * s, (x + 10) * s, 62 * s], fill=(40, 90, 200))   # eyes
    return np.array(im)


def as_tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 127.5 - 1


def test_soft_ink_finds_the_lines_xdog_finds():
    rgb = coloured_face()
    hard = xdog(rgb, XDoGParams()) < 128
    soft = soft_ink(as_tensor(rgb))[0, 0].numpy() > 0.5
    assert hard.any() and soft.any()
    assert (hard & soft).sum() / (hard | soft).sum() > 0.8


def test_soft_ink_is_float32_under_bf16_autocast():
    """S is the small difference of 26 and 25 times two blurs: computed in bf16, the ink moved by up to 0.02."""
    x = as_tensor(coloured_face())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under = soft_ink(x)
    assert under.dtype == torch.float32
    assert torch.allclose(under, soft_ink(x), atol=1e-6)


def test_a_missing_line_gets_drawn():
    """A flat painting of a face with lines: the gradient reaches it at the lines (XDoG's own threshold is
    flat where there is no ink, so it would not), and descending it lowers the distance."""
    real = as_tensor(coloured_face())
    fake = torch.full_like(real, 0.5).requires_grad_()
    opt = torch.optim.SGD([fake], lr=50.0)
    first = None
    for _ in range(20):
        opt.zero_grad()
        loss = line_consistency(fake, real).mean()
        loss.backward()
        if first is None:
            first = loss.item()
            lines = soft_ink(real)[0, 0] > 0.5
            assert fake.grad.abs().sum(1)[0][lines].mean() > 0
        opt.step()
    assert loss.item() < 0.7 * first


def test_g_loss_adds_line_weight_where_l1_applies(sketch_catalog, tmp_path):  # noqa: F811
    """--line-weight: G's loss grows by line_weight x the line distance of the fakes painted with their own
    face's tags; those painted with another face's tags are left out, as L1 leaves them out (a face's lines
    carry its colours: asked of them, the distance cost tag accuracy)."""
    opts = options(sketch_catalog, tmp_path, iters=1, batch=8, tag_swap=0.5, ms_weight=0.0, line_weight=5.0)
    spec = load_run(train(opts)).spec
    labels = spec.sample_tensor(32, torch.Generator().manual_seed(0))
    loss = Pix2Pix(opts, spec, build_discriminator(Pix2Pix.arch(opts, spec)["D"]), labels, torch.device("cpu"))
    real = torch.from_numpy(np.stack([coloured_face(32)] * 8)).permute(0, 3, 1, 2).float() / 127.5 - 1
    c_real = loss.real_condition(labels[:8], torch.ones(8, 1, 32, 32), torch.Generator().manual_seed(0))
    _, paired = loss.fake_inputs(torch.Generator().manual_seed(1), real, c_real)
    assert not paired.own.all()
    fake = torch.zeros_like(real)
    fake[~paired.own] = real[~paired.own].transpose(2, 3)   # other tags: the face on its side, other lines

    def g_loss(weight):
        loss.opts = dataclasses.replace(loss.opts, line_weight=weight)
        loss.D.eval()
        with torch.no_grad():
            return loss.g_loss(fake, paired, torch.Generator().manual_seed(0))

    (weighted, stats), (plain, plain_stats) = g_loss(5.0), g_loss(0.0)
    each = line_consistency(fake, paired.target)
    expected = each[paired.own].mean().item()
    assert expected != pytest.approx(each.mean().item())
    assert stats["line_l1"] == pytest.approx(expected) and "line_l1" not in plain_stats
    assert (weighted - plain).item() == pytest.approx(5.0 * expected, rel=1e-4)
    with pytest.raises(ValueError, match="--line-weight must be >= 0"):
        Pix2Pix.check_options(dataclasses.replace(opts, line_weight=-1.0))
