"""Long commands written to a file (nohup, CI, a log), not a terminal: plain progress lines on
stderr (curate.progress_lines), not a bar that says nothing until it ends. PROGRESS_EVERY=0
here: a line at every step. CliRunner's stderr is not a terminal."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

import train.cli  # noqa: F401  (registers the commands)
from curate.cli import app as curate_app
from curate.taggers.classifier import JudgeOptions, train_judge
from db import Catalog
from train.app import app as train_app
from train.loop import train
from train.options import TrainOptions

runner = CliRunner()
JUDGE = ["--size", "16", "--width", "4", "--epochs", "1", "--batch", "8", "--device", "cpu"]


@pytest.fixture(autouse=True)
def every_step(monkeypatch):
    monkeypatch.setenv("PROGRESS_EVERY", "0")


def invoke(app, *args):
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exit_code == 0, r.output
    return r


def test_export_prints_plain_progress_lines(tiny_catalog, tmp_path):
    r = invoke(curate_app, "export", "-o", tmp_path / "out", "--format", "csv", "--db", tiny_catalog)
    lines = [line for line in r.stderr.splitlines() if line.startswith("export: ")]
    assert lines[0].startswith("export: 1/24 (4%); 0:00:0") and lines[-1].startswith("export: 24/24 (100%); ")
    assert "━" not in r.stderr


def test_export_refused_before_any_face_is_one_line_without_a_progress_line(tiny_catalog, tmp_path):
    r = runner.invoke(curate_app, ["export", "-o", str(tmp_path / "out"), "--group", "nope", "--db",
                                   str(tiny_catalog)])
    assert r.exit_code == 2 and r.stderr.startswith("error: ") and len(r.stderr.splitlines()) == 1, r.stderr


def test_train_judge_prints_plain_progress_lines(tiny_catalog, tmp_path):
    r = invoke(train_app, "judge", "--db", tiny_catalog, "-o", tmp_path / "j.pt", *JUDGE)
    assert re.search(r"^judge: 1/1 \(100%\), val acc\. \d+\.\d%; 0:00:\d\d elapsed$", r.stderr, re.M), r.stderr


def test_train_eval_says_each_stage_once_off_a_terminal(tiny_catalog, tmp_path):
    opts = TrainOptions(model="acgan", catalog=str(tiny_catalog), labels="manual", attrs=["hair_color"], size=32,
                        ngf=8, ndf=8, batch=4, z_dim=8, min_per_tag=1, iters=1, log_every=1, diag_every=1,
                        runs_dir=str(tmp_path / "runs"), cache_dir=str(tmp_path / "cache"), progress=False)
    run = train(opts)
    with Catalog(tiny_catalog) as cat:
        judge = train_judge(cat, JudgeOptions(size=16, width=4, feature_dim=8, epochs=1, batch=8))
    r = invoke(train_app, "eval", run, "--judge", judge.save(tmp_path / "j.pt"), "-n", 8, "--per-class", 2,
               "--no-download", "--device", "cpu")
    # off a terminal each stage is a plain line, said once (a progress line would say it again)
    lines = r.stderr.splitlines()
    assert lines.count("generating 8 faces (seed 0)") == 1, r.stderr
    assert len([x for x in lines if x.startswith("generating")]) == 1 and not any(c in r.stderr for c in "⠋⠙⠹⠸"), r.stderr
