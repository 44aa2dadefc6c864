"""eval + compare on two tiny runs made by the trainer: eval.json, a self-contained HTML page, markdown."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

import train.cli  # noqa: F401  (registers the commands)
from db import Catalog
from train.app import app
from train.eval.evaluate import evaluate_run, write_eval
from curate.taggers.classifier import JudgeOptions, train_judge
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
                            "--no-download", "--device", "cpu"])
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


def test_compare_never_mixes_into_an_older_report(tiny_runs, tmp_path):
    (run_a, run_b), _, judge_path, _ = tiny_runs
    for run in (run_a, run_b):
        assert runner.invoke(app, ["eval", str(run), "--judge", str(judge_path), "--n", "8", "--per-class", "2",
                                   "--no-download"]).exit_code == 0
    out = tmp_path / "report"
    assert runner.invoke(app, ["compare", str(run_a), str(run_b), "-o", str(out)]).exit_code == 0
    stale = out / "samples_7_an-older-run.png"
    stale.write_bytes(b"\x89PNG")
    r = runner.invoke(app, ["compare", str(run_a), "-o", str(out)])
    assert r.exit_code == 2 and "not empty" in r.output and "--overwrite" in r.output and stale.exists()
    r = runner.invoke(app, ["compare", str(run_a), "-o", str(out), "--overwrite"])
    assert r.exit_code == 0, r.output
    assert not stale.exists() and json.loads((out / "summary.json").read_text())["runs"] == [str(run_a)]
    (out / "notes.txt").write_text("mine")
    r = runner.invoke(app, ["compare", str(run_a), "-o", str(out), "--overwrite"])
    assert r.exit_code == 2 and "notes.txt" in r.output and (out / "index.html").exists()


def test_sample_grids_are_enlarged_and_their_rows_labelled(tiny_runs, tmp_path):
    """32 px faces are drawn at 64 px, with the row's tag written beside it, in the grids a run
    writes and in `train sample`."""
    from PIL import Image
    (run_a, _), _, _, _ = tiny_runs
    unlabelled_width = (8 * (32 + 2) + 2) * 2        # 8 tiles of 32 px + padding, doubled
    grid = np.asarray(Image.open(run_a / "samples" / "000004.png").convert("L"))
    rows = len(load_run(run_a).spec.groups[0].tags)
    assert grid.shape[0] == (rows * (32 + 2) + 2) * 2 and grid.shape[1] > unlabelled_width
    assert (grid[:, :grid.shape[1] - unlabelled_width] < 128).any()      # the labels' text
    out = tmp_path / "grid.png"
    r = runner.invoke(app, ["sample", str(run_a), "-n", "16", "-o", str(out)])
    assert r.exit_code == 0, r.output
    img = np.asarray(Image.open(out).convert("L"))
    assert img.shape[0] == (2 * 34 + 2) * 2 and img.shape[1] > unlabelled_width
    assert (img[:, :img.shape[1] - unlabelled_width] < 128).any()
    r = runner.invoke(app, ["sample", str(run_a), "-n", "8", "--tags", "red hair", "-o", str(out)])
    assert r.exit_code == 0, r.output
    img = np.asarray(Image.open(out).convert("L"))
    assert img.shape[0] > (34 + 2) * 2 and (img[:20] < 128).any()      # the tags written above


def test_eval_is_offline_unless_asked_and_says_why_once_in_full(tiny_runs, tmp_path, monkeypatch):
    """No download is tried without --download (nor by an experiment's evaluations); the skip is
    said once, whole, with how to enable it; no line of `train eval` is cut short."""
    from train.eval import evaluate as E
    from train.eval import metrics as M
    from train.eval.score import score_run
    (run_a, run_b), _, judge_path, db = tiny_runs
    tried = []

    def fetch(*args, **kw):
        tried.append(args)
        raise M.WeightsUnavailable("offline")
    monkeypatch.setattr(M, "fetch", fetch)
    monkeypatch.setattr(M, "default_cache_dir", lambda: tmp_path / "empty-cache")
    monkeypatch.setattr(E, "SKIPS_TOLD", set(), raising=False)
    monkeypatch.setenv("COLUMNS", "60")
    r = runner.invoke(app, ["eval", str(run_a), "--judge", str(judge_path), "--n", "8", "--per-class", "2"])
    assert r.exit_code == 0, r.output
    assert not tried and "…" not in r.output
    said = [line for line in r.output.splitlines() if "Inception FID/KID skipped" in line]
    assert len(said) == 1 and "--inception-weights FILE" in said[0] and "--download" in said[0]
    logged = []
    with Catalog(db) as cat:     # as `train experiment` evaluates its runs, one after another
        for run in (run_a, run_b):
            score_run(run, judge_path, cat, n=8, per_class=2, log=logged.append)
    assert not tried and not any("Inception" in m for m in logged)


EVIL = ["<img src=x onerror=alert(1)>", "[x](javascript:alert(1))"]


def test_names_reach_report_md_as_text_never_as_markup(tiny_runs, tmp_path):
    """Label sources and run folders named like HTML or a link are shown in report.md as the
    characters they are (the one Markdown rule, curate.text.markdown_text), as index.html does."""
    (run_a, run_b), _, judge_path, _ = tiny_runs
    runs = []
    for run, evil in zip((run_a, run_b), EVIL):
        assert runner.invoke(app, ["eval", str(run), "--judge", str(judge_path), "--n", "8", "--per-class", "2",
                                   "--no-download"]).exit_code == 0
        options = json.loads((run / "options.json").read_text())
        options["labels"] = evil
        (run / "options.json").write_text(json.dumps(options))
        runs.append(run.rename(run.parent / evil))
    out = tmp_path / "report"
    r = runner.invoke(app, ["compare", *map(str, runs), "-o", str(out), "--db", str(tmp_path / "none.db")])
    assert r.exit_code == 0, r.output
    md = (out / "report.md").read_text()
    assert "<img" not in md and "](javascript" not in md and "[x]" not in md
    assert "&#60;img src=x onerror=alert(1)&#62;" in md and "&#91;x&#93;(javascript:alert(1))" in md
    for png in re.findall(r"\]\(([^)]+\.png)\)", md):      # every picture link still points at its file
        assert (out / png).is_file()
    page = (out / "index.html").read_text()
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_markdown_text_is_the_apps_rule_and_keeps_line_start_escaped():
    from curate.text import MID_LINE, markdown_text
    from label_app.safe_text import md
    for text in EVIL + ["1. a", "- b", "see http://x.y and www.z.com, a@b"]:
        assert md(text) == markdown_text(text)
    assert markdown_text("- x: (y)", MID_LINE) == "&#45; x: (y)" and markdown_text("--- ", MID_LINE) == "&#45;-- "
    assert markdown_text("12. x", MID_LINE) == "12&#46; x" and markdown_text("62.5%", MID_LINE) == "62.5%"
    assert markdown_text("-0.5", MID_LINE) == "-0.5" and markdown_text("00001-x", MID_LINE) == "00001-x"
    assert markdown_text("a|b*c_d`e", MID_LINE) == "a&#124;b&#42;c&#95;d&#96;e"


def test_report_opens_with_the_verdict_and_the_warnings(tiny_runs, tmp_path):
    """The answer first: the verdict over label sources trained alike (here one seed each: no
    verdict, and why), the warnings right under it, both on the terminal too; short names,
    every option folded below, an arrow on every figure's column; a short title."""
    import shutil
    (run_a, _), _, judge_path, _ = tiny_runs
    assert runner.invoke(app, ["eval", str(run_a), "--judge", str(judge_path), "--n", "8", "--per-class", "2",
                               "--no-download"]).exit_code == 0
    other = shutil.copytree(run_a, run_a.parent / "00009-acgan-i2v")      # the same training, other labels
    options = json.loads((other / "options.json").read_text())
    (other / "options.json").write_text(json.dumps(dict(options, labels="i2v", seed=1)))
    out = tmp_path / "report"
    r = runner.invoke(app, ["compare", str(run_a), str(other), "-o", str(out), "--db", str(tmp_path / "none.db")])
    assert r.exit_code == 0, r.output
    assert ("verdict: acgan · manual vs acgan · i2v: no verdict is possible with 1 seed: it needs at least 2 "
            "(better 3) seeds per configuration.") in r.output
    assert f"warning: acgan · manual (seed 0, {run_a.name}): 4 steps is too few at 32 px" in r.output
    md = (out / "report.md").read_text()
    assert md.startswith("# Comparison of 2 configurations (2 runs)\n")
    headings = re.findall(r"^## (.+)$", md, re.M)
    assert headings[:3] == ["Verdict", "Warnings", "Configurations over seeds"]
    assert "- ⚠ acgan · manual (seed 0, " in md and "judge FID ↓" in md and "judge acc. hair&#95;color ↑" in md
    assert "- acgan · i2v: --attrs hair&#95;color,eye&#95;color" in md
    page = (out / "index.html").read_text()
    assert page.index("<h2>Verdict</h2>") < page.index("<h2>Warnings</h2>") < page.index("<h2>Configurations over")
    assert "<details><summary>Configurations: every option</summary>" in page and "<li>acgan · i2v: --attrs" in page
    summary = json.loads((out / "summary.json").read_text())
    assert summary["verdict"]["sentences"][0].startswith("acgan · manual vs acgan · i2v: no verdict")
    assert any("too few" in w for w in summary["warnings"]) and "judge FID" in summary["table"][0]
