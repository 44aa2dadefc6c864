"""Issue 23's models and options for few faces: TAC-GAN (a twin classifier learnt on fakes only)."""

from __future__ import annotations

import csv

import torch
from typer.testing import CliRunner

import train.cli  # noqa: F401  (registers the commands)
from train.app import app
from train.conditions import ConditionGroup, ConditionSpec
from train.loop import train
from train.losses import loss_class
from train.losses.acgan import aux_loss
from train.models import build
from train.options import TrainOptions
from train.runs import load_run

from test_train import interrupted_after, same_final_checkpoints

runner = CliRunner()
TINY = dict(size=32, ngf=4, ndf=4, batch=4, z_dim=8, min_per_tag=1, log_every=1, diag_every=2, progress=False)


def options(tiny_catalog, tmp_path, model: str, **kw) -> TrainOptions:
    cond = loss_class(model).conditional
    return TrainOptions(model=model, catalog=str(tiny_catalog), labels="manual" if cond else None,
                        attrs=["hair_color", "eye_color"] if cond else [], runs_dir=str(tmp_path / "runs"),
                        cache_dir=str(tmp_path / "cache"), **{**TINY, **kw})


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def checkpoint(run_dir, step: int) -> dict:
    return torch.load(load_run(run_dir).dir / "checkpoints" / f"{step:06d}.pt", weights_only=True)


def metrics(run_dir) -> list[dict]:
    return list(csv.DictReader(open(load_run(run_dir).metrics_path)))


def same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(torch.as_tensor(a[key]), torch.as_tensor(b[key])), key


# -- TAC-GAN trains and resumes exactly ----------------------------------------------------

def test_tacgan_trains_and_resumes_exactly(tiny_catalog, tmp_path):
    kw = dict(iters=6, log_every=3, diag_every=3, sample_every=3, checkpoint_every=3, diffaug="translation,cutout")
    straight = train(options(tiny_catalog, tmp_path, "tacgan", **kw))
    with interrupted_after(3):
        halves = train(options(tiny_catalog, tmp_path, "tacgan", **kw))
    res = invoke("tacgan", "--resume", halves, "--no-progress")
    assert res.exit_code == 0, res.output
    same_final_checkpoints(straight, halves, 6)
    assert all(r["twin_acc_fake"] != "" for r in metrics(halves))


# -- TAC-GAN: the twin classifier sees only fakes ------------------------------------------

SPEC = ConditionSpec([ConditionGroup("hair_color", True, ["blonde", "black", "red"], [1 / 3] * 3),
                      ConditionGroup("tags", False, ["smile", "hat"], [0.5, 0.5])])


def tacgan_loss():
    opts = TrainOptions(model="tacgan", labels="manual", size=32, ndf=8, ngf=8, batch=6)
    torch.manual_seed(0)
    _, D = build(loss_class("tacgan").arch(opts, SPEC))
    labels = torch.cat([torch.eye(3)[torch.arange(6) % 3], (torch.rand(6, 2) > 0.5).float()], 1)
    return loss_class("tacgan")(opts, SPEC, D, labels, torch.device("cpu")), D, labels


def head_grads(loss, D, real, fake, c):
    """The D step's gradients of the main (C) and twin (C^mi) rows of the auxiliary head."""
    D.zero_grad(set_to_none=True)
    total, _ = loss.d_loss(real, c, fake, c, torch.Generator().manual_seed(0))
    total.backward()
    k = SPEC.dim
    w, b = D.aux.weight.grad, D.aux.bias.grad
    return (w[:k].clone(), b[:k].clone()), (w[k:].clone(), b[k:].clone())


def test_tacgan_twin_classifier_learns_from_fakes_only():
    loss, D, c = tacgan_loss()
    assert D.aux.weight.shape[0] == 2 * SPEC.dim                   # [C | C^mi] on the same features
    gen = torch.Generator().manual_seed(1)
    real, other_real, fake, other_fake = (torch.rand(6, 3, 32, 32, generator=gen) * 2 - 1 for _ in range(4))
    main, twin = head_grads(loss, D, real, fake, c)
    main_other_real, twin_other_real = head_grads(loss, D, other_real, fake, c)
    main_other_fake, twin_other_fake = head_grads(loss, D, real, other_fake, c)
    for g, same_reals_other, same_fakes_other in zip(twin, twin_other_fake, twin_other_real):
        assert g.abs().sum() > 0
        assert torch.equal(g, same_fakes_other)        # other reals: the twin's gradient does not move
        assert not torch.equal(g, same_reals_other)    # other fakes: it does
    for g, same_reals_other, same_fakes_other in zip(main, main_other_fake, main_other_real):
        assert torch.equal(g, same_reals_other)        # and the main classifier learns from reals only
        assert not torch.equal(g, same_fakes_other)


def test_tacgan_generator_minimises_the_main_minus_the_twin_cross_entropy():
    loss, D, c = tacgan_loss()
    fake = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(2)) * 2 - 1
    adv, aux = D(fake)
    total, stats = loss.g_loss(fake, c, torch.Generator().manual_seed(0))
    k = SPEC.dim
    expected = loss.adv.g(adv) + aux_loss(SPEC, aux[:, :k], c) - aux_loss(SPEC, aux[:, k:], c)
    assert torch.allclose(total, expected, atol=1e-6)
    assert "twin_acc_fake" in stats and "aux_acc_fake" in stats
