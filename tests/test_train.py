"""The GAN trainer on the tiny catalog: every model, resume exactness, errors, DDP on two CPU processes."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from db import Catalog
from train.app import app
import train.cli  # noqa: F401  (registers the commands)
from train.conditions import ConditionSpec, ConditionGroup
from train.loop import train
from train.options import TrainOptions
from train.runs import load_run
from train.sampling import generate
from train.step import Step

runner = CliRunner()
TINY = ["--size", "32", "--ngf", "8", "--ndf", "8", "--batch", "4", "--z-dim", "16", "--min-per-tag", "1",
        "--log-every", "2", "--diag-every", "2", "--no-progress"]


def tiny_options(tiny_catalog, tmp_path, **kw) -> TrainOptions:
    base = dict(model="acgan", catalog=str(tiny_catalog), labels="manual", attrs=["hair_color", "eye_color"],
                size=32, ngf=8, ndf=8, batch=4, z_dim=16, min_per_tag=1, log_every=2, diag_every=2,
                runs_dir=str(tmp_path / "runs"), cache_dir=str(tmp_path / "cache"), progress=False)
    base.update(kw)
    return TrainOptions(**base)


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("model", ["dcgan", "wgan-gp", "cgan", "acgan"])
def test_every_model_trains_and_samples(model, tiny_catalog, tmp_path):
    labels = ["--labels", "manual"] if model in ("cgan", "acgan") else []
    res = invoke(model, "--db", tiny_catalog, *labels, *TINY, "--iters", 4, "--runs-dir", tmp_path / "runs",
                 "--cache-dir", tmp_path / "cache")
    assert res.exit_code == 0, res.output
    run = load_run(res.stdout.strip().splitlines()[-1])
    assert run.dir.name == f"00000-{model}-{'manual' if labels else 'uncond'}"
    opts = run.options
    assert opts["catalog"] == str(tiny_catalog) and len(opts["catalog_fingerprint"]) == 16
    rows = list(csv.DictReader(open(run.metrics_path)))
    assert [int(r["step"]) for r in rows] == [2, 4]
    assert all(float(r["loss_d"]) == float(r["loss_d"]) for r in rows)       # finite, not NaN
    assert rows[-1]["sample_distance"] and rows[-1]["grad_cosine"]
    if model == "acgan":
        assert 0 <= float(rows[-1]["aux_acc_real"]) <= 1
    assert (run.dir / "G_ema.pt").exists() and run.latest_checkpoint().name == "000004.pt"
    assert (run.samples_dir / "000000.png").exists() and (run.samples_dir / "000004.png").exists()
    G = run.generator()
    assert not G.training
    images, tags = generate(run, 5, seed=1)
    assert images.shape == (5, 3, 32, 32) and images.dtype == torch.uint8
    assert torch.equal(images, generate(run, 5, seed=1)[0])
    if run.conditional:
        assert run.spec.tags == ["blonde hair", "black hair", "red hair", "blue eyes", "red eyes"]
        assert all(t["hair_color"] in run.spec.group("hair_color").tags for t in tags)
        out = tmp_path / "grid.png"
        res = invoke("sample", run.dir, "--tags", "red hair, blue eyes", "-n", 6, "-o", out)
        assert res.exit_code == 0, res.output
        assert out.exists()
    else:
        assert run.spec is None and tags == [{}] * 5


@contextmanager
def interrupted_after(steps: int, signum: int = signal.SIGINT):
    """Ctrl-C (or `signum`), as a user presses it, while the `steps`-th step of the training inside
    runs: the run finishes that step, then stops with a checkpoint (resumable)."""
    one_step, done = Step.__call__, []

    def step_then_ctrl_c(self, index, log_now):
        stats = one_step(self, index, log_now)
        done.append(index)
        if len(done) == steps:
            os.kill(os.getpid(), signum)
        return stats

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Step, "__call__", step_then_ctrl_c)
        yield
    assert len(done) == steps, f"{len(done)} steps, not {steps}: the stop request was not obeyed"


def same_final_checkpoints(straight: Path, resumed: Path, step: int) -> dict:
    """Assert that two runs' newest checkpoints are at `step` and hold the same G, D and EMA, bit for
    bit (a run straight through, and one stopped and resumed); returns the first."""
    a = torch.load(load_run(straight).latest_checkpoint(), weights_only=True)
    b = torch.load(load_run(resumed).latest_checkpoint(), weights_only=True)
    assert a["step"] == b["step"] == step
    for net in ("G", "D", "G_ema"):
        assert a[net].keys() == b[net].keys()
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), (net, k)
    return a


def test_resume_is_exact(tiny_catalog, tmp_path):
    """2k steps straight == 1k, stop, resume, 1k more: the same weights, bit for bit."""
    kw = dict(iters=2000, ngf=4, ndf=4, log_every=500, diag_every=500, sample_every=1000, checkpoint_every=700)
    straight = train(tiny_options(tiny_catalog, tmp_path, **kw))
    with interrupted_after(1000):
        halves = train(tiny_options(tiny_catalog, tmp_path, **kw))
    assert load_run(halves).latest_checkpoint().name == "001000.pt"
    assert not (halves / "G_ema.pt").exists()
    res = invoke("acgan", "--resume", halves, "--no-progress")
    assert res.exit_code == 0, res.output
    same_final_checkpoints(straight, halves, 2000)
    steps = [int(r["step"]) for r in csv.DictReader(open(halves / "metrics.csv"))]
    assert steps == [500, 1000, 1500, 2000]


@pytest.mark.parametrize("precision", ["fp32", "bf16", "auto"])
def test_precisions_train_and_options_record_what_ran(precision, tiny_catalog, tmp_path):
    from train.device import pick_precision

    run = load_run(train(tiny_options(tiny_catalog, tmp_path, iters=4, precision=precision)))
    ran = pick_precision(precision, torch.device("cpu"))
    assert ran in ("fp32", "bf16") and run.options["precision"] == ran   # never "auto": a resume runs the same
    rows = list(csv.DictReader(open(run.metrics_path)))
    assert all(math.isfinite(float(r[k])) for r in rows for k in ("loss_d", "loss_g"))
    assert run.generator()(torch.zeros(1, 16), torch.zeros(1, run.spec.dim)).dtype == torch.float32


def test_dry_run_prints_counts_and_writes_nothing(tiny_catalog, tmp_path):
    res = invoke("acgan", "--db", tiny_catalog, "--labels", "manual", *TINY, "--dry-run",
                 "--runs-dir", tmp_path / "runs", "--cache-dir", tmp_path / "cache")
    assert res.exit_code == 0, res.output
    assert "blonde hair" in res.output and '"model": "acgan"' in res.output
    assert not (tmp_path / "runs").exists() and not (tmp_path / "cache").exists()


@pytest.mark.parametrize("args, message", [
    (["acgan", "--labels", "manual", "--attrs", "hair_colour"], "unknown tag group 'hair_colour'"),
    (["acgan", "--labels", "i2v"], "label source 'i2v' has no labels"),
    (["acgan", "--labels", "manul"], "label source 'manul' has no labels in this catalog (did you mean 'manual'?)"),
    (["acgan"], "give --labels"),
    (["dcgan", "--attrs", "hair_color"], "unconditional"),
    (["acgan", "--labels", "manual", "--min-per-tag", "100"], "too few faces"),
    (["dcgan", "--size", "48"], "--size must be one of"),
    (["dcgan", "--precision", "fp16"], "--precision must be one of auto, fp32, bf16"),
])
def test_bad_options_fail_clearly(args, message, tiny_catalog, tmp_path):
    extra = [a for a in TINY if a != "--min-per-tag" and a != "1"] if "--min-per-tag" in args else TINY
    extra = [a for a in extra if a not in ("--size", "32")] if "--size" in args else extra
    res = invoke(*args, "--db", tiny_catalog, *extra, "--runs-dir", tmp_path / "runs")
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert not (tmp_path / "runs").exists()


def test_empty_split_fails_clearly(tmp_path):
    path = tmp_path / "nosplit.db"
    Catalog(path).close()
    res = invoke("dcgan", "--db", path, *TINY, "--runs-dir", tmp_path / "runs")
    assert res.exit_code == 2 and "no ok faces in split 'train'" in res.output


def test_unknown_tag_when_sampling(tiny_catalog, tmp_path):
    run_dir = train(tiny_options(tiny_catalog, tmp_path, iters=1))
    res = invoke("sample", run_dir, "--tags", "green hair", "-o", tmp_path / "x.png")
    assert res.exit_code == 2 and "unknown tag 'green hair'" in res.output
    res = invoke("sample", run_dir, "--tags", "red hair, black hair", "-o", tmp_path / "x.png")
    assert res.exit_code == 2 and "pick one" in res.output


def test_corrupt_checkpoint_fails_clearly(tiny_catalog, tmp_path):
    with interrupted_after(2):
        run_dir = train(tiny_options(tiny_catalog, tmp_path, iters=4))
    ckpt = load_run(run_dir).latest_checkpoint()
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    res = invoke("acgan", "--resume", run_dir, "--no-progress")
    assert res.exit_code == 2 and "corrupt" in res.output and ckpt.name in res.output
    res = invoke("dcgan", "--resume", run_dir)
    assert res.exit_code == 2 and "is a acgan run" in res.output


def test_sigterm_stops_after_the_step_with_a_checkpoint(tiny_catalog, tmp_path):
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with interrupted_after(2, signal.SIGTERM):
        run_dir = train(tiny_options(tiny_catalog, tmp_path, iters=4))
    run = load_run(run_dir)
    assert run.latest_checkpoint().name == "000002.pt" and not (run_dir / "G_ema.pt").exists()
    assert "stopped at step 2 of 4" in (run_dir / "log.txt").read_text()
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers   # put back


def test_nan_loss_stops_with_a_checkpoint(tiny_catalog, tmp_path):
    opts = tiny_options(tiny_catalog, tmp_path, model="dcgan", labels=None, attrs=[], iters=50, lr_d=1e38, lr_g=1e38)
    with pytest.raises(Exception, match="loss is (nan|inf)"):
        train(opts)
    run = load_run(next((tmp_path / "runs").iterdir()))
    assert run.latest_checkpoint() is not None
    assert "stopped" in (run.dir / "log.txt").read_text()


def test_condition_sampling_follows_the_label_distribution():
    spec = ConditionSpec([ConditionGroup("hair_color", True, ["a", "b"], [0.8, 0.2]),
                          ConditionGroup("other", False, ["x", "y"], [0.5, 0.1])])
    c, dicts = spec.sample(4000, torch.Generator().manual_seed(0))
    assert c.shape == (4000, 4) and torch.equal(c, spec.encode(dicts))
    assert torch.equal(c, spec.sample_tensor(4000, torch.Generator().manual_seed(0)))
    assert abs(c[:, 0].mean().item() - 0.8) < 0.03 and abs(c[:, 3].mean().item() - 0.1) < 0.02
    assert torch.all(c[:, :2].sum(1) == 1)
    assert spec.encode([{"hair_color": "b", "y": True}]).tolist() == [[0, 1, 0, 1]]
    assert spec.decode(spec.encode([{"hair_color": "b", "other": ["x"]}])) == [{"hair_color": "b", "other": ["x"]}]


def test_fake_conditions_keep_the_tags_that_go_together():
    from train.losses import fake_conditions

    # hair and eyes always match on the training faces: blonde+blue or red+red, 3 to 1
    labels = torch.tensor([[1., 0., 1., 0.]] * 75 + [[0., 1., 0., 1.]] * 25)
    c = fake_conditions(labels, 4000, torch.Generator().manual_seed(0))
    assert ((c == labels[0]).all(1) | (c == labels[-1]).all(1)).all()      # never blonde + red eyes
    assert abs(c[:, 0].mean().item() - 0.75) < 0.03


def test_animate_writes_gif_and_mp4(tiny_catalog, tmp_path):
    run_dir = train(tiny_options(tiny_catalog, tmp_path, iters=6, sample_every=2))
    res = invoke("animate", run_dir, "--fps", 2)
    assert res.exit_code == 0, res.output
    gif, mp4 = run_dir / "progress.gif", run_dir / "progress.mp4"
    assert gif.stat().st_size > 0 and mp4.stat().st_size > 0
    import imageio.v2 as imageio
    assert len(imageio.mimread(gif)) == 4        # steps 0, 2, 4, 6


def ddp_ranks(opts: TrainOptions, tmp_path: Path) -> tuple[dict, dict]:
    """Train `opts` under torchrun with two CPU processes (gloo); what each rank saved (ddp_worker.py)."""
    worker = Path(__file__).with_name("ddp_worker.py")
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          str(worker), json.dumps(opts.to_dict()), str(tmp_path)],
                         capture_output=True, text=True, timeout=300, cwd=Path(__file__).parent.parent,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr[-3000:]
    return tuple(torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))


@pytest.mark.parametrize("extra", [{}, dict(model="cgan-pd", sn="both", diffaug="color,translation,cutout")])
def test_ddp_two_cpu_processes(extra, tiny_catalog, tmp_path):
    """torchrun with two CPU processes on gloo: gradients are averaged, rank 0 alone writes (and with
    spectral norm in both nets, the power-iteration vectors stay the same on both ranks)."""
    r0, r1 = ddp_ranks(tiny_options(tiny_catalog, tmp_path, iters=3, **extra), tmp_path)
    assert r0["step"] == r1["step"] == 3
    for k in r0["G"]:      # gradients are averaged: both processes hold the same weights
        assert torch.equal(r0["G"][k], r1["G"][k]), k
    run = load_run(r0["run_dir"])
    assert run.options["world_size"] == 2
    assert len(list((tmp_path / "runs").iterdir())) == 1          # only rank 0 writes
    assert torch.load(run.latest_checkpoint(), weights_only=True)["step"] == 3
    rows = list(csv.DictReader(open(run.metrics_path)))
    assert rows[-1]["step"] == "3"


def test_tensorboard_and_wandb_log_without_network(tiny_catalog, tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    pytest.importorskip("wandb")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_MODE", raising=False)          # offline is the default
    run_dir = train(tiny_options(tiny_catalog, tmp_path, iters=4, sample_every=2, tensorboard=True, wandb=True))
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("loss_d")] == [2, 4]
    assert "samples" in events.Tags()["images"]
    [offline] = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")
    assert offline.stat().st_size > 1000


def test_a_discriminator_that_wins_is_flagged(tiny_catalog, tmp_path):
    from train.diagnostics import discriminator_wins

    assert discriminator_wins(0.999, 0.001, 9.0) and not discriminator_wins(0.9, 0.1, 3.0)
    # D far stronger than G: a tiny fixed-lr G against a wide D with a high lr
    opts = tiny_options(tiny_catalog, tmp_path, model="dcgan", labels=None, attrs=[], iters=60, dwin_window=10,
                        ndf=32, lr_d=5e-3, lr_g=1e-6)
    run_dir = train(opts)
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    assert rows[-1]["d_wins"] == "1"
    assert "the discriminator wins outright" in (run_dir / "log.txt").read_text()


def test_sampling_a_left_out_tag_says_it_was_left_out(tiny_catalog, tmp_path):
    """Not "did you mean 'green eyes'" for a tag that --drop-rare / --drop-tags left out (issue 25)."""
    run_dir = train(tiny_options(tiny_catalog, tmp_path, iters=1, drop_tags=["black hair"]))
    res = invoke("sample", run_dir, "--tags", "black hair", "-o", tmp_path / "x.png")
    assert res.exit_code == 2, res.output
    assert "'black hair' was left out of this run's training data" in res.output
    assert "did you mean" not in res.output
