"""Issue 23's models and options for few faces: TAC-GAN (a twin classifier learnt on fakes only),
LeCam regularisation (anchors kept in checkpoints) and adaptive augmentation (ADA: the
augmentation probability rises when D overfits, kept in checkpoints and metrics.csv). Each
trains, resumes bit for bit, and nonsense is refused in one line."""

from __future__ import annotations

import csv

import pytest
import torch
from typer.testing import CliRunner

import train.cli  # noqa: F401  (registers the commands)
from train.adaptive_augment import INTERVAL, AdaptiveAugment
from train.app import app
from train.augment import DiffAugment
from train.conditions import ConditionGroup, ConditionSpec
from train.loop import train
from train.losses import loss_class
from train.losses.acgan import aux_loss
from train.losses.lecam import DECAY, LeCam
from train.models import build
from train.options import TrainOptions
from train.runs import load_run

from test_pix2pix import options as sketch_options, sketch_catalog  # noqa: F401  (the fixture)
from test_train import ddp_ranks, interrupted_after, same_final_checkpoints

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


# -- every one trains and resumes exactly ---------------------------------------------------

@pytest.mark.parametrize("model, kw", [
    ("tacgan", dict(diffaug="translation,cutout")),
    ("acgan", dict(lecam=0.3, diffaug="translation,cutout")),
    ("cgan-pd", dict(ada=0.6, ada_kimg=0.05)),
    ("tacgan", dict(lecam=0.3, ada=0.6, ada_kimg=0.05, backbone="resnet", n_critic=2)),
])
def test_resume_is_exact_and_keeps_the_loss_state(model, kw, tiny_catalog, tmp_path):
    """6 steps straight == 3, stop, resume, 3 more: the nets bit for bit, and LeCam's anchors and
    ADA's probability as the straight run had them at step 3 and at step 6."""
    kw = dict(kw, iters=6, log_every=3, diag_every=3, sample_every=3, checkpoint_every=3)
    straight = train(options(tiny_catalog, tmp_path, model, **kw))
    with interrupted_after(3):
        halves = train(options(tiny_catalog, tmp_path, model, **kw))
    stopped = checkpoint(halves, 3)["loss"]
    res = invoke(model, "--resume", halves, "--no-progress")
    assert res.exit_code == 0, res.output
    a = same_final_checkpoints(straight, halves, 6)
    b = checkpoint(halves, 6)
    expected = {k for k in ("lecam", "ada") if k in kw}
    assert set(a["loss"]) == set(b["loss"]) == set(stopped) == expected
    for name in expected:
        same_state(checkpoint(straight, 3)["loss"][name], stopped[name])
        same_state(a["loss"][name], b["loss"][name])
    assert [r["step"] for r in metrics(straight)] == [r["step"] for r in metrics(halves)] == ["3", "6"]
    if "ada" in kw:
        assert [r["ada_p"] for r in metrics(straight)] == [r["ada_p"] for r in metrics(halves)]
    if "lecam" in kw:
        assert a["loss"]["lecam"]["biased"].shape == (2,) and a["loss"]["lecam"]["updates"] == 6 * kw.get("n_critic", 1)
        assert all(float(r["lecam"]) >= 0 for r in metrics(straight))


def test_ddp_processes_keep_the_same_anchors_and_probability(tiny_catalog, tmp_path):
    """torchrun, two CPU processes, each its half of the batch: LeCam's anchors and ADA's p come
    from sums over both, so they agree (and a resumed run, which restores rank 0's, stays exact)."""
    r0, r1 = ddp_ranks(options(tiny_catalog, tmp_path, "acgan", iters=8, lecam=0.3, ada=0.6, ada_kimg=0.05), tmp_path)
    assert r0["step"] == r1["step"] == 8
    assert r0["loss"].keys() == {"lecam", "ada"}
    for name in r0["loss"]:
        same_state(r0["loss"][name], r1["loss"][name])
    assert r0["loss"]["ada"]["steps"] == 0 and r0["loss"]["ada"]["images"] == 0     # moved at steps 4 and 8


def test_a_sketch_model_takes_both_on_its_patch_scores(sketch_catalog, tmp_path):
    """pix2pix's D scores patches: LeCam anchors their means, ADA counts their signs and augments
    with colour alone (translation would move the face off its sketch)."""
    run_dir = train(sketch_options(sketch_catalog, tmp_path, iters=8, lecam=0.3, ada=0.6, ada_kimg=0.05))
    assert load_run(run_dir).options["diffaug"] == "color"
    rows = metrics(run_dir)
    assert all(r["lecam"] != "" and r["ada_p"] != "" for r in rows)
    assert all(0 <= float(r["ada_p"]) <= 1 and float(r["lecam"]) >= 0 for r in rows)


def test_the_three_commands_of_the_issue_run(tiny_catalog, tmp_path):
    tiny = ["--db", tiny_catalog, "--size", 32, "--ngf", 4, "--ndf", 4, "--batch", 4, "--z-dim", 8,
            "--min-per-tag", 1, "--iters", 4, "--log-every", 2, "--no-progress", "--runs-dir", tmp_path / "runs",
            "--cache-dir", tmp_path / "cache"]
    for args, column in ((["tacgan", "--labels", "manual", "--diffaug", "translation,cutout"], "twin_acc_fake"),
                         (["acgan", "--labels", "manual", "--lecam", 0.3, "--diffaug", "translation,cutout"], "lecam"),
                         (["cgan-pd", "--labels", "manual", "--ada", 0.6], "ada_p")):
        res = invoke(*args, *tiny)
        assert res.exit_code == 0, res.output
        run_dir = res.stdout.strip().splitlines()[-1]
        assert all(r[column] != "" for r in metrics(run_dir)), column
    options = load_run(run_dir).options
    assert (options["ada"], options["ada_kimg"], options["diffaug"]) == (0.6, 500.0, "translation,cutout")


@pytest.mark.parametrize("args, message", [
    (["wgan-gp", "--lecam", 0.3], "--lecam anchors logit-like D scores (bce, hinge)"),
    (["dcgan", "--lecam", -1], "--lecam must be >= 0"),
    (["wgan-gp", "--ada", 0.6], "--ada reads the sign of D's score on reals"),
    (["acgan", "--labels", "manual", "--loss", "wasserstein", "--sn", "d", "--ada", 0.6], "--ada reads the sign"),
    (["dcgan", "--ada", 1.5], "--ada is the target of E[sign(D(real))]: between 0 and 1"),
    (["dcgan", "--ada-kimg", 100], "--ada-kimg sets how fast --ada moves its probability: give --ada too"),
    (["dcgan", "--ada", 0.6, "--ada-kimg", 0], "--ada-kimg must be > 0"),
    (["tacgan"], "tacgan is conditional: give --labels"),
])
def test_nonsense_is_refused_in_one_line(args, message, tiny_catalog, tmp_path):
    res = invoke(*args, "--db", tiny_catalog, "--runs-dir", tmp_path / "runs")
    assert res.exit_code == 2, res.output
    assert message in res.output and len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_ada_takes_the_diffaug_policy_that_fits_the_model():
    assert TrainOptions(model="dcgan", ada=0.6).diffaug == "translation,cutout"
    assert TrainOptions(model="dcgan", ada=0.6, diffaug="color").diffaug == "color"
    assert TrainOptions(model="pix2pix", ada=0.6).diffaug == "color"     # translation would move the face off its sketch
    assert TrainOptions(model="dcgan").diffaug == "" and TrainOptions(model="dcgan").ada_kimg is None


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


# -- LeCam -------------------------------------------------------------------------------------

def test_lecam_anchors_are_moving_averages_and_the_term_the_papers():
    lecam = LeCam(2.0, torch.device("cpu"))
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([-2.0, 0.0])
    stats: dict = {}
    term = lecam.d_term(real, fake, stats)            # debiased, the anchors start at the first means: (2, -1)
    assert lecam.anchors.tolist() == pytest.approx([2.0, -1.0])
    # relu(D(x) - alpha_F)^2 + relu(alpha_R - D(G(z)))^2: (4 + 16) / 2 + (16 + 4) / 2
    assert term.item() == pytest.approx(2.0 * 20.0) and stats["lecam"].item() == pytest.approx(20.0)
    lecam.d_term(torch.tensor([0.0, 0.0]), torch.tensor([1.0, 1.0]), {})
    first, second = DECAY * (1 - DECAY), 1 - DECAY     # each batch's weight, over their sum
    assert lecam.anchors.tolist() == pytest.approx([first * 2.0 / (first + second),
                                                    (first * -1.0 + second * 1.0) / (first + second)], rel=1e-5)
    again = LeCam(2.0, torch.device("cpu"))
    again.load_state_dict(lecam.state_dict())
    assert torch.equal(again.anchors, lecam.anchors)


# -- ADA ---------------------------------------------------------------------------------------

def test_ada_probability_rises_while_d_is_always_right_and_falls_when_it_is_not():
    ada = AdaptiveAugment("translation,cutout", target=0.6, kimg=0.1, device=torch.device("cpu"))
    right, wrong = torch.ones(4), -torch.ones(4)
    ps = []
    for _ in range(5 * INTERVAL):
        ada.d_term(right, -right, {})
        ps.append(ada.p.item())
    step = 4 * INTERVAL / 100           # the images of INTERVAL steps over ada_kimg * 1000
    assert ps[-1] == pytest.approx(5 * step) and ps == sorted(ps)
    for _ in range(10 * INTERVAL):
        ada.d_term(wrong, wrong, {})
    assert ada.p.item() == 0.0          # clamped at 0
    for _ in range(100 * INTERVAL):
        ada.d_term(right, right, {})
    assert ada.p.item() == 1.0          # and at 1


def test_ada_augments_each_image_with_its_probability_and_draws_the_same_numbers():
    ada = AdaptiveAugment("translation,cutout", target=0.6, kimg=500, device=torch.device("cpu"))
    x = torch.rand(200, 3, 16, 16) * 2 - 1
    everything = DiffAugment("translation,cutout")(x, torch.Generator().manual_seed(5))
    assert torch.equal(ada(x, torch.Generator().manual_seed(5)), x)              # p = 0: untouched
    ada.p = torch.tensor(1.0)
    assert torch.equal(ada(x, torch.Generator().manual_seed(5)), everything)     # p = 1: DiffAugment's
    ada.p = torch.tensor(0.3)
    gen = torch.Generator().manual_seed(5)
    out = ada(x, gen)
    changed = (out != x).flatten(1).any(1).float().mean().item()
    assert 0.15 < changed < 0.45
    after = torch.rand(1, generator=gen)     # as many numbers drawn whatever p is: runs stay exact
    gen0 = torch.Generator().manual_seed(5)
    ada.p = torch.tensor(0.0)
    ada(x, gen0)
    assert torch.equal(torch.rand(1, generator=gen0), after)


def test_ada_probability_rises_when_d_overfits_a_tiny_set(tiny_catalog, tmp_path):
    """13 training faces, 60 steps: D soon calls them all real (r_t above 0.6) and p rises."""
    run_dir = train(options(tiny_catalog, tmp_path, "dcgan", ndf=8, iters=60, log_every=10, ada=0.6, ada_kimg=0.5))
    rows = metrics(run_dir)
    ps = [float(r["ada_p"]) for r in rows]
    assert ps[0] < 0.05 and max(ps) > 0.1, ps
    assert max(float(r["ada_rt"]) for r in rows) > 0.6
