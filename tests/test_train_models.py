"""The models and options beyond the study's: every model with every option that applies to it
trains a few steps, resumes exactly, and nonsense is refused in one line; the pieces
(DiffAugment, D2D-CE, projection, spectral norm) do what their papers say."""

from __future__ import annotations

import csv
import math

import pytest
import torch
from typer.testing import CliRunner

import train.cli  # noqa: F401  (registers the commands)
from train.app import app
from train.augment import DiffAugment
from train.loop import train
from train.losses import MODELS, loss_class
from train.losses.reacgan import d2d_ce
from train.options import TrainOptions
from train.runs import load_run
from train.sampling import generate

from test_train import interrupted_after, same_final_checkpoints

runner = CliRunner()
CONDITIONAL = ("cgan", "acgan", "cgan-pd", "reacgan", "tacgan")
NOISE_MODELS = [m for m in MODELS if not loss_class(m).needs_sketch]   # sketch models: tests/test_pix2pix.py
TINY = dict(size=32, ngf=4, ndf=4, batch=4, z_dim=8, min_per_tag=1, log_every=1, diag_every=2, progress=False)
# every option with every model: A = resnet, hinge, SN in both nets, all of DiffAugment;
# B = DCGAN nets, wasserstein made sound by SN in D, translation only
COMBOS = {"A": dict(backbone="resnet", loss="hinge", sn="both", diffaug="color,translation,cutout"),
          "B": dict(loss="wasserstein", sn="d", diffaug="translation", n_critic=2)}


def options(tiny_catalog, tmp_path, model: str, **kw) -> TrainOptions:
    cond = model in CONDITIONAL
    return TrainOptions(model=model, catalog=str(tiny_catalog), labels="manual" if cond else None,
                        attrs=["hair_color", "eye_color"] if cond else [], runs_dir=str(tmp_path / "runs"),
                        cache_dir=str(tmp_path / "cache"), **{**TINY, **kw})


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("combo", sorted(COMBOS))
@pytest.mark.parametrize("model", NOISE_MODELS)
def test_every_model_trains_with_every_option(model, combo, tiny_catalog, tmp_path):
    run = load_run(train(options(tiny_catalog, tmp_path, model, iters=3, **COMBOS[combo])))
    rows = list(csv.DictReader(open(run.metrics_path)))
    assert [r["step"] for r in rows] == ["1", "2", "3"]
    assert all(math.isfinite(float(r[k])) for r in rows for k in ("loss_d", "loss_g", "d_real", "d_fake"))
    assert run.options["backbone"] == COMBOS[combo].get("backbone", "dcgan")
    assert run.options["arch"]["D"]["sn"] and run.options["arch"]["G"]["sn"] == (combo == "A")
    assert run.options["arch"]["D"].get("norm", "none") == "none"        # SN replaces D's normalisation
    images, _ = generate(run, 3, seed=1)
    assert images.shape == (3, 3, 32, 32)


@pytest.mark.parametrize("model", ["cgan-pd", "reacgan"])
def test_new_models_train_with_their_defaults_from_the_command_line(model, tiny_catalog, tmp_path):
    res = invoke(model, "--db", tiny_catalog, "--labels", "manual", "--size", 32, "--ngf", 4, "--ndf", 4,
                 "--batch", 4, "--z-dim", 8, "--min-per-tag", 1, "--iters", 2, "--no-progress",
                 "--runs-dir", tmp_path / "runs", "--cache-dir", tmp_path / "cache")
    assert res.exit_code == 0, res.output
    run = load_run(res.stdout.strip().splitlines()[-1])
    assert run.options["loss"] == "hinge" and run.options["sn"] == "d"
    d = run.options["arch"]["D"]
    assert (d.get("proj_dim"), d.get("proxy_dim")) == ((5, None) if model == "cgan-pd" else (None, 128))
    res = invoke("sample", run.dir, "--tags", "red hair, blue eyes", "-n", 2, "-o", tmp_path / "g.png")
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("model, kw", [
    ("cgan-pd", COMBOS["A"]),
    ("reacgan", dict(diffaug="color,cutout")),
    ("wgan-gp", dict(diffaug="translation", backbone="resnet")),
])
def test_resume_is_exact_with_the_new_options(model, kw, tiny_catalog, tmp_path):
    """6 steps straight == 3, stop, resume, 3 more: every weight and buffer (spectral norm's
    vectors, batch norm statistics, the EMA) bit for bit."""
    kw = dict(kw, iters=6, log_every=3, diag_every=3, sample_every=3, checkpoint_every=100)
    straight = train(options(tiny_catalog, tmp_path, model, **kw))
    with interrupted_after(3):
        halves = train(options(tiny_catalog, tmp_path, model, **kw))
    res = invoke(model, "--resume", halves, "--no-progress")
    assert res.exit_code == 0, res.output
    a = same_final_checkpoints(straight, halves, 6)
    if kw.get("sn") == "both":      # the EMA generator carries G's power-iteration vectors
        us = [k for k in a["G"] if k.endswith("._u")]
        assert us and all(torch.equal(a["G"][k], a["G_ema"][k]) for k in us)


@pytest.mark.parametrize("args, message", [
    (["acgan", "--loss", "wasserstein"], "--loss wasserstein needs a Lipschitz discriminator: add --sn d"),
    (["dcgan", "--arch", "resnet", "--deep"], "--deep is the DCGAN study's extra layers"),
    (["dcgan", "--diffaug", "color,zoom"], "--diffaug: unknown 'zoom'"),
    (["dcgan", "--sn", "yes"], "--sn must be one of none, d, g, both"),
    (["dcgan", "--loss", "lsgan"], "--loss must be one of bce, hinge, wasserstein"),
    (["dcgan", "--arch", "vit"], "--arch must be one of dcgan, resnet"),
    (["cgan-pd"], "cgan-pd is conditional: give --labels"),
    (["reacgan", "--labels", "manual", "--attrs", "hair_colour"], "unknown tag group 'hair_colour'"),
])
def test_nonsense_is_refused_in_one_line(args, message, tiny_catalog, tmp_path):
    res = invoke(*args, "--db", tiny_catalog, "--runs-dir", tmp_path / "runs")
    assert res.exit_code == 2, res.output
    assert message in res.output and len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_resume_refuses_options_that_contradict_the_run(tiny_catalog, tmp_path):
    with interrupted_after(1):
        run_dir = train(options(tiny_catalog, tmp_path, "acgan", iters=2))
    res = invoke("acgan", "--resume", run_dir, "--size", 64, "--lr", 0.001, "--labels", "i2v", "--arch", "resnet",
                 "--loss", "hinge", "--no-progress")
    assert res.exit_code == 2, res.output
    for said in ("--size 64 (the run has 32)", "--lr-g 0.001 (the run has 0.0002)", "--labels i2v (the run has manual)",
                 "--arch resnet (the run has dcgan)", "--loss hinge (the run has bce)"):
        assert said in res.output
    assert len(list(load_run(run_dir).checkpoints())) == 1           # nothing written
    res = invoke("acgan", "--resume", run_dir, "--size", 32, "--iters", 3, "--no-progress")  # agreeing: fine
    assert res.exit_code == 0, res.output
    assert torch.load(load_run(run_dir).latest_checkpoint(), weights_only=True)["step"] == 3


def test_sampling_an_unknown_tag_suggests_the_closest(tiny_catalog, tmp_path):
    run_dir = train(options(tiny_catalog, tmp_path, "acgan", iters=1))
    res = invoke("sample", run_dir, "--tags", "blond hair", "-o", tmp_path / "x.png")
    assert res.exit_code == 2 and "did you mean 'blonde hair'" in res.output


def test_diffaugment_is_deterministic_differentiable_and_the_papers():
    x = (torch.rand(64, 3, 32, 32) * 2 - 1).requires_grad_(True)
    aug = DiffAugment("color,translation,cutout")
    a, b = aug(x, torch.Generator().manual_seed(3)), aug(x, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == x.shape
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert DiffAugment("")(x, torch.Generator()) is x
    ones = torch.ones(256, 3, 32, 32)
    cut = DiffAugment("cutout")(ones, torch.Generator().manual_seed(0))
    assert (cut == 0).all(1).sum((1, 2)).max() == 16 * 16            # a square of half the side ...
    assert 0.12 < (cut == 0).float().mean() < 0.25                   # ... partly outside the picture
    shifted = DiffAugment("translation")(ones, torch.Generator().manual_seed(0))
    zero_cols = (shifted[:, 0] == 0).all(1).sum(1)                    # zero-padded columns per image
    assert zero_cols.max() <= 4 and zero_cols.float().mean() > 1      # shifts of up to 1/8 of 32


def test_d2d_ce_gives_no_gradient_to_easy_pairs_and_some_to_hard_ones():
    proxies = torch.eye(3, 8)
    y = torch.tensor([0, 1, 2, 0])
    easy = proxies[y].clone().requires_grad_(True)        # on its proxy, orthogonal to the other classes
    d2d_ce(easy, proxies, y).backward()
    assert easy.grad.abs().max() < 1e-6
    hard = (proxies[y] + proxies[(y + 1) % 3]).requires_grad_(True)   # halfway to another class
    loss = d2d_ce(hard, proxies, y)
    loss.backward()
    assert loss > math.log(1 + 3) and hard.grad.abs().max() > 0.1


def test_projection_scores_the_condition_by_an_inner_product():
    from train.models import build_discriminator

    torch.manual_seed(0)
    D = build_discriminator(dict(net="dcgan", size=32, ndf=4, proj_dim=3, norm="none")).eval()
    x = torch.randn(2, 3, 32, 32)
    c = torch.eye(3)[[0, 2]]
    adv, _ = D(x, c)
    h = D.features(x)
    expected = D.adv(h).flatten() + (D.proj(h).flatten(1) * c).sum(1)
    assert torch.allclose(adv, expected) and not torch.allclose(adv, D(x, torch.eye(3)[[1, 1]])[0])


def test_spectral_norm_keeps_each_layer_of_d_near_1_lipschitz(tiny_catalog, tmp_path):
    run = load_run(train(options(tiny_catalog, tmp_path, "cgan-pd", iters=5, lr_d=0.05)))
    from train.models import build_discriminator

    D = build_discriminator(run.options["arch"]["D"])
    D.load_state_dict(torch.load(run.latest_checkpoint(), weights_only=True)["D"])
    D.eval()
    convs = [m for m in D.modules() if isinstance(m, torch.nn.Conv2d)]
    for conv in convs:
        sigma = torch.linalg.matrix_norm(conv.weight.flatten(1), ord=2)
        assert sigma < 1.2, sigma
