"""How a run ends when it does not end well: a full disk, a stop (exit 130), a kill -9 and its
resume (the first metrics row after it); and progress shown from the first step, in a file too
(issues 24 and 25)."""

from __future__ import annotations

import csv
import errno
import io
import signal
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from PIL import Image
from rich.console import Console

from curate.progress_lines import LineProgress, progress_display
from curate.taggers.classifier import JudgeOptions, train_judge
from db import Catalog
from train import runs
from train.loop import train
from train.runs import load_run
from train.step import Step
from train.training.metrics_log import MetricsCollector
from train.training.progress import StepProgress
from train.estimate import TIMED_STEPS

from test_train import TINY, interrupted_after, invoke, same_final_checkpoints, tiny_options

FULL = OSError(errno.ENOSPC, "No space left on device")


@contextmanager
def disk_full_after(steps: int, what: str):
    """The disk fills up after the `steps`-th training step: from then on writing `what` (a
    checkpoint, a sample grid, a metrics row, G_ema.pt) fails half-way, as a full disk does."""
    done = []
    one_step, save, png = Step.__call__, torch.save, Image.Image.save

    def step(self, index, log_now):
        done.append(index)
        return one_step(self, index, log_now)

    def full() -> bool:
        return len(done) >= steps

    def torch_save(obj, f, *a, **kw):
        kind = isinstance(obj, dict) and ("checkpoint" if "opt_G" in obj else "G_ema" if "arch" in obj else None)
        if full() and kind == what:
            target = open(f, "wb") if isinstance(f, (str, Path)) else f
            target.write(b"PK\x03\x04 half a checkpoint")
            raise FULL
        return save(obj, f, *a, **kw)

    def png_save(self, fp, *a, **kw):
        if full() and what == "samples":
            target = open(fp, "wb") if isinstance(fp, (str, Path)) else fp
            target.write(b"\x89PNG half")
            raise FULL
        return png(self, fp, *a, **kw)

    class HalfWrites:
        """metrics.csv as opened by the run's logger: a row is half written, then the disk is full."""
        def __init__(self, f):
            self.f = f

        def write(self, data):
            if full():
                self.f.write(data[:len(data) // 2])
                self.f.flush()
                raise FULL
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

    def logger_open(path, mode="r", *a, **kw):
        f = open(path, mode, *a, **kw)
        return HalfWrites(f) if what == "metrics" and Path(path).name == "metrics.csv" and mode[0] in "aw" else f

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Step, "__call__", step)
        patch.setattr(torch, "save", torch_save)
        patch.setattr(Image.Image, "save", png_save)
        patch.setattr(runs, "open", logger_open, raising=False)
        yield


@pytest.mark.parametrize("what, stopped, last", [("checkpoint", 4, 2), ("samples", 4, 2), ("metrics", 4, 2),
                                                  ("G_ema", 6, 6)])
def test_a_full_disk_stops_in_one_line_and_the_run_resumes(what, stopped, last, tiny_catalog, tmp_path):
    """Whatever was being written when the disk filled up: one line (exit 2) saying where the run
    stopped and what to resume from; nothing half-written left; --resume finishes it exactly."""
    args = ["acgan", "--db", tiny_catalog, "--labels", "manual", *TINY, "--iters", 6, "--checkpoint-every", 2,
            "--sample-every", 4, "--runs-dir", tmp_path / "runs", "--cache-dir", tmp_path / "cache"]
    with disk_full_after(3, what):
        res = invoke(*args)
    run_dir = tmp_path / "runs" / "00000-acgan-manual"
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and res.output.count("disk full") == 1
    failed = {"checkpoint": f"checkpoints/{stopped:06d}.pt", "samples": f"samples/{stopped:06d}.png",
              "metrics": "metrics.csv", "G_ema": "G_ema.pt"}[what]
    assert (f"error: disk full writing {run_dir / failed}: the run stopped at step {stopped}; the last good "
            f"checkpoint is step {last}; free space and run `train acgan --resume {run_dir}`") in res.output
    assert not list(run_dir.rglob("*.tmp")) and not (run_dir / "G_ema.pt").exists()
    assert load_run(run_dir).latest_checkpoint().name == f"{last:06d}.pt"
    assert not (what == "samples" and (run_dir / failed).exists())
    text = (run_dir / "metrics.csv").read_bytes()
    assert text.endswith(b"\r\n") and [r["step"] for r in csv.DictReader(io.StringIO(text.decode()))] == \
        [str(s) for s in range(2, stopped + (what != "metrics"), 2)]          # whole rows only
    assert "disk full" in (run_dir / "log.txt").read_text()

    res = invoke("acgan", "--resume", run_dir, "--no-progress")
    assert res.exit_code == 0, res.output
    straight = train(tiny_options(tiny_catalog, tmp_path / "straight", iters=6, checkpoint_every=2,
                                  sample_every=4, cache_dir=str(tmp_path / "cache")))
    same_final_checkpoints(straight, run_dir, 6)
    assert (run_dir / "G_ema.pt").exists()


def test_a_full_disk_at_the_first_checkpoint_says_to_start_again(tiny_catalog, tmp_path):
    with disk_full_after(0, "checkpoint"), pytest.raises(runs.RunError,
                                                         match="stopped at step 2, before its first checkpoint"):
        train(tiny_options(tiny_catalog, tmp_path, iters=4, checkpoint_every=2))
    assert not list((tmp_path / "runs").rglob("*.tmp"))


def test_the_first_row_after_a_resume_is_the_row_of_a_run_never_stopped(tiny_catalog, tmp_path):
    """kill -9 after step 5 (rows at 4 and 8, checkpoints every 3): resumed from step 3, the row at 4
    still averages steps 1-4, as the run straight through wrote it (the clock's columns aside)."""
    kw = dict(iters=8, log_every=4, diag_every=4, checkpoint_every=3, sample_every=8)
    straight = train(tiny_options(tiny_catalog, tmp_path / "a", **kw))
    with interrupted_after(5):
        killed = train(tiny_options(tiny_catalog, tmp_path / "b", **kw))
    (killed / "checkpoints" / "000005.pt").unlink()        # as if killed: the newest is step 3's
    assert load_run(killed).latest_checkpoint().name == "000003.pt"
    res = invoke("acgan", "--resume", killed, "--no-progress")
    assert res.exit_code == 0, res.output

    def rows(run_dir):
        return [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")}
                for r in csv.DictReader(open(run_dir / "metrics.csv"))]
    assert [r["step"] for r in rows(killed)] == ["4", "8"]
    assert rows(killed) == rows(straight)


def test_a_checkpoint_without_the_running_figures_still_resumes(tiny_catalog, tmp_path):
    with interrupted_after(3):
        run_dir = train(tiny_options(tiny_catalog, tmp_path, iters=4, log_every=2))
    path = load_run(run_dir).latest_checkpoint()
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["metrics"]["sums"]["loss_d"]            # step 3's, the row at 4 needs it
    del ckpt["metrics"]                                 # as written before
    torch.save(ckpt, path)
    res = invoke("acgan", "--resume", run_dir, "--no-progress")
    assert res.exit_code == 0, res.output


def test_a_stopped_run_exits_130_and_says_how_to_resume(tiny_catalog, tmp_path):
    args = ["acgan", "--db", tiny_catalog, "--labels", "manual", *TINY, "--iters", 4,
            "--runs-dir", tmp_path / "runs", "--cache-dir", tmp_path / "cache"]
    with interrupted_after(2, signal.SIGTERM):
        res = invoke(*args)
    run_dir = tmp_path / "runs" / "00000-acgan-manual"
    assert res.exit_code == 130, res.output
    assert "stopped at step 2 of 4" in res.output and f"--resume {run_dir}" in res.output
    res = invoke("acgan", "--resume", run_dir, "--no-progress")
    assert res.exit_code == 0, res.output


def test_a_stopped_experiment_exits_130_too(tiny_catalog, tmp_path):
    with Catalog(tiny_catalog) as cat:
        train_judge(cat, JudgeOptions(size=16, width=4, feature_dim=8, epochs=1, batch=8)).save(tmp_path / "judge.pt")
    folder = tmp_path / "exp"
    args = ["experiment", "--db", tiny_catalog, "--judge", tmp_path / "judge.pt", "--run", "acgan:manual",
            "--cache-dir", tmp_path / "cache", "--iters", 3, "--batch", 4, "--ngf", 8, "--ndf", 8, "--z-dim", 8,
            "--min-per-tag", 1, "-n", 16, "--no-progress"]
    with interrupted_after(TIMED_STEPS + 1):      # the plan's timing steps, then the run's first step
        res = invoke(*args, "-o", folder)
    assert res.exit_code == 130, res.output
    assert f"continue with `train experiment --resume {folder}`" in res.output
    with interrupted_after(1):                    # while the plan is being timed: nothing starts
        res = invoke(*args, "-o", tmp_path / "exp2")
    assert res.exit_code == 130 and "stopped while timing the plan: no run was started" in res.output, res.output
    assert not (tmp_path / "exp2" / "runs").exists()


def test_progress_has_real_figures_from_the_first_step():
    opts = SimpleNamespace(batch=4, n_critic=1, dwin_window=100)
    metrics = MetricsCollector(opts, SimpleNamespace(steps_per_epoch=10), 0, False)
    metrics.add(1, {"loss_d": torch.tensor(0.5), "loss_g": torch.tensor(1.5)})
    ips, ld, lg = metrics.figures(1)
    assert ips > 0 and (ld, lg) == (0.5, 1.5)
    metrics.add(2, {"loss_d": torch.tensor(0.25), "loss_g": torch.tensor(0.5)})
    row = metrics.row(2)
    assert metrics.figures(2) == (metrics.images_per_s, row["loss_d"], row["loss_g"])


def test_without_a_terminal_a_run_prints_plain_progress_lines(tiny_catalog, tmp_path, monkeypatch):
    """Output to a file (nohup, CI): a plain line every PROGRESS_EVERY seconds (0 here: every
    step), with the figures of the steps so far."""
    monkeypatch.setenv("PROGRESS_EVERY", "0")
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, soft_wrap=True)
    train(tiny_options(tiny_catalog, tmp_path, iters=3, log_every=10, progress=True), console=console)
    lines = [line for line in out.getvalue().splitlines() if line.startswith("00000-acgan-manual: ")]
    assert [line.split(",")[0] for line in lines] == ["00000-acgan-manual: 1/3 (33%)",
                                                      "00000-acgan-manual: 2/3 (67%)",
                                                      "00000-acgan-manual: 3/3 (100%)"]
    assert " img/s  D " in lines[0] and "D 0.000  G 0.000" not in lines[0] and "━" not in out.getvalue()


def test_plain_lines_come_every_n_seconds(monkeypatch):
    now = [0.0]
    monkeypatch.setattr("curate.progress_lines.time.monotonic", lambda: now[0])
    out = io.StringIO()
    bar = progress_display(console=Console(file=out, force_terminal=False), every=30)
    assert isinstance(bar, LineProgress)
    with bar:
        task = bar.add_task("crop", total=100, faces=0)
        for t, done in [(10, 10), (31, 31), (40, 40), (62, 62)]:
            now[0] = t
            bar.update(task, completed=done, faces=done * 2)
    assert out.getvalue().splitlines() == [
        "crop: 31/100 (31%), faces 62; 0:00:31 elapsed, ~0:01:09 left",
        "crop: 62/100 (62%), faces 124; 0:01:02 elapsed, ~0:00:38 left"]
    on_terminal = progress_display(console=Console(file=io.StringIO(), force_terminal=True))
    assert not isinstance(on_terminal, LineProgress)


def test_step_progress_shows_the_figures_it_is_given(monkeypatch):
    monkeypatch.setenv("PROGRESS_EVERY", "0")
    out = io.StringIO()
    with StepProgress(Console(file=out, force_terminal=False), True, "run", 10, 0) as bar:
        bar.update(1, lambda step: (12.0 * step, 0.5, 1.5))
    assert out.getvalue().splitlines()[0].startswith("run: 1/10 (10%), 12 img/s  D 0.500  G 1.500; ")
