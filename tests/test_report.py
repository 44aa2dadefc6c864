"""eval + compare on two tiny runs made by the trainer: eval.json, a self-contained HTML page, markdown."""

from __future__ import annotations

import base64
import json
import re

import pytest
from typer.testing import CliRunner

import train.cli  # noqa: F401  (registers the commands)
from db import Catalog
from train.app import app
from train.evaluate import evaluate_run, write_eval
from train.judge import JudgeOptions, train_judge
from train.loop import train
from train.options import TrainOptions
from train.runs import load_run

runner = CliRunner()


@pytest.fixture
def tiny_runs(tiny_catalog, tmp_path):
    """An acgan and a cgan run (4 steps each) and a 1-epoch judge, all on the tiny catalog."""
    runs = []
    for model in ("acgan", "cgan"):
        opts = TrainOptions(model=model, catalog=str(tiny_catalog), labels="manual",
                            attrs=["hair_color", "eye_color"], size=32, ngf=8, ndf=8, batch=4, z_dim=16,
                            min_per_tag=1, iters=4, log_every=1, diag_every=2, runs_dir=str(tmp_path / "runs"),
                            cache_dir=str(tmp_path / "cache"), progress=False)
        runs.append(train(opts))
    with Catalog(tiny_catalog) as cat:
        judge = train_judge(cat, JudgeOptions(size=16, width=4, feature_dim=8, epochs=1, batch=8))
    judge_path = judge.save(tmp_path / "judge.pt")
    return runs, judge, judge_path, tiny_catalog


def test_eval_then_compare_builds_a_self_contained_report(tiny_runs, tmp_path):
    (run_a, run_b), judge, judge_path, db = tiny_runs
    # One through the library (small classes allowed, so intra-class FID is computed) ...
    with Catalog(db) as cat:
        result = evaluate_run(load_run(run_a), judge, cat, n=24, per_class=6, min_class=2, download=False,
                              log=lambda m: None)
    write_eval(load_run(run_a), result)
    assert result["n"] == 24 and result["judge_accuracy"]["hair_color"]["n"] == 24
    assert result["per_class"]["group"] == "hair_color" and result["per_class"]["tags"]
    assert "skipped" in result["inception"] and "fid" not in result["inception"]
    assert result["floor"]["judge_fid"] >= 0 and result["judge_fid"] >= 0
    # ... the other through the CLI.
    r = runner.invoke(app, ["eval", str(run_b), "--judge", str(judge_path), "--n", "24", "--per-class", "4",
                            "--no-download"])
    assert r.exit_code == 0, r.output
    assert "skipped" in r.output and "24 generated faces" in r.output
    ev = json.loads((run_b / "eval.json").read_text())
    assert ev["model"] == "cgan" and ev["n"] == 24 and ev["judge"]["path"] == str(judge_path)

    # Same seed, same numbers.
    with Catalog(db) as cat:
        again = evaluate_run(load_run(run_a), judge, cat, n=24, per_class=6, min_class=2, download=False,
                             log=lambda m: None)
    assert again["judge_fid"] == result["judge_fid"] and again["judge_accuracy"] == result["judge_accuracy"]

    out = tmp_path / "report"
    r = runner.invoke(app, ["compare", str(run_a), str(run_b), "-o", str(out)])
    assert r.exit_code == 0, r.output
    page = (out / "index.html").read_text()
    md = (out / "report.md").read_text()
    for name in (run_a.name, run_b.name, "ceiling", "floor", "Samples", "Training curves"):
        assert name in page and name in md
    # Self-contained: every picture is embedded and decodes as a PNG; no file references.
    uris = re.findall(r"src='data:image/png;base64,([^']+)'", page)
    assert len(uris) >= 4
    assert all(base64.b64decode(u)[:8] == b"\x89PNG\r\n\x1a\n" for u in uris)
    assert not re.search(r"src='(?!data:)", page)
    for png in re.findall(r"\]\(([^)]+\.png)\)", md):
        assert (out / png).is_file()
    table = json.loads((out / "summary.json").read_text())["table"]
    assert len(table) == 1 + 2 + 2     # header, two runs, ceiling, floor


def test_compare_refuses_unevaluated_runs(tiny_runs, tmp_path):
    (run_a, _), _, judge_path, _ = tiny_runs
    r = runner.invoke(app, ["compare", str(run_a), "-o", str(tmp_path / "r")])
    assert r.exit_code == 2 and "eval.json" in r.output and "train eval" in r.output
    r = runner.invoke(app, ["eval", str(tmp_path / "nope"), "--judge", str(tmp_path / "j.pt")])
    assert r.exit_code == 2 and "not a run folder" in r.output
    r = runner.invoke(app, ["eval", str(run_a), "--judge", str(tmp_path / "j.pt")])
    assert r.exit_code == 2 and "no judge" in r.output
    r = runner.invoke(app, ["eval", str(run_a), "--judge", str(judge_path), "--inception-weights",
                            str(tmp_path / "missing.pth")])
    assert r.exit_code == 2 and "missing.pth: no such file" in r.output
    assert not (run_a / "eval.json").exists()


def test_experiment_runs_judge_training_eval_and_report_in_one_command(tiny_catalog, tmp_path):
    out = tmp_path / "report"
    r = runner.invoke(app, ["experiment", "--db", str(tiny_catalog), "--runs", "acgan:manual,cgan:manual",
                            "--size", "32", "--iters", "2", "--batch", "4", "--ngf", "8", "--ndf", "8",
                            "--min-per-tag", "1", "--n", "16", "--runs-dir", str(tmp_path / "runs"), "-o", str(out),
                            "--no-progress"])
    assert r.exit_code == 0, r.output
    runs = sorted((tmp_path / "runs").iterdir())
    assert [p.name.split("-", 1)[1] for p in runs] == ["acgan-manual", "cgan-manual"]
    for run in runs:
        ev = json.loads((run / "eval.json").read_text())
        assert ev["n"] == 16 and ev["seed"] == 0 and load_run(run).options["iters"] == 2
    assert (out / "index.html").is_file() and (out / "judge-manual.pt").is_file()
    r = runner.invoke(app, ["experiment", "--db", str(tiny_catalog), "--runs", "acgan:nobody", "-o", str(out)])
    assert r.exit_code == 2 and "nobody" in r.output
    r = runner.invoke(app, ["experiment", "--db", str(tiny_catalog), "--runs", "gan:manual"])
    assert r.exit_code == 2 and "MODEL:LABELS" in r.output
