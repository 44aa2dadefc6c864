"""The judge on tiny data: it learns a learnable attribute, saves/loads, scores, and the CLI fails clearly."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import train.cli  # noqa: F401  (registers the commands)
from db import Catalog
from train.app import app
from train.runs import safe_slug
from curate.taggers.classifier import JudgeOptions, accuracy, load_judge, load_labelled, train_judge, JudgeError

runner = CliRunner()
HAIR = {"red hair": (220, 30, 30), "blue hair": (30, 30, 220), "green hair": (30, 200, 30)}


def solid_png(rgb, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    arr = np.clip(np.array(rgb)[None, None] + rng.normal(0, 25, (16, 16, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def colour_catalog(tmp_path):
    """90 noisy flat-colour faces whose 'hair colour' is their colour: a judge must learn it."""
    path = tmp_path / "colours.db"
    cat = Catalog(path)
    labels = []
    for i in range(90):
        tag = list(HAIR)[i % 3]
        sid = cat.save_source(f"/c/{i}.png", sha256=f"{i:064x}", size=1, status="ok", detector="none")
        fid = cat.add_face(source_id=sid, image=solid_png(HAIR[tag], i), format="png", width=16, height=16,
                           detector="none")
        labels.append((fid, tag, 1.0))
    cat.add_labels(labels, "manual", "tester")
    cat.assign_splits(val=0.2, test=0.2, seed=0)
    cat.close()
    return path


def test_judge_learns_a_learnable_attribute_and_round_trips(colour_catalog, tmp_path):
    with Catalog(colour_catalog) as cat:
        opts = JudgeOptions(size=16, width=8, feature_dim=16, epochs=6, batch=16, lr=5e-3)
        judge = train_judge(cat, opts)
        test = load_labelled(cat, "manual", "test", 16)
    assert [h["name"] for h in judge.heads] == ["hair_color"]
    assert sorted(judge.heads[0]["tags"]) == sorted(HAIR)
    assert judge.scores["test"]["hair_color"]["accuracy"] >= 0.9
    assert judge.scores["faces"]["test"] == len(test.face_ids) > 0
    path = judge.save(tmp_path / "j.pt")
    again = load_judge(path)
    assert again.predict(test.images) == judge.predict(test.images)
    assert again.features(test.images).shape == (len(test.face_ids), 16)
    # Generated faces may come at another size: they are resized to the judge's.
    big = torch.nn.functional.interpolate(test.images.float(), size=32).round().to(torch.uint8)
    assert accuracy(again.heads, again.predict(big), test.tags)["hair_color"]["accuracy"] >= 0.9


def test_accuracy_per_group_and_tag():
    heads = [{"name": "hair_color", "exclusive": True, "tags": ["red hair", "blue hair"]},
             {"name": "other", "exclusive": False, "tags": ["smile", "hat"]}]
    pred = [{"hair_color": "red hair", "other": ["smile"]}, {"hair_color": "red hair", "other": []}]
    want = [{"hair_color": "red hair", "other": ["smile", "hat"]}, {"hair_color": "blue hair"}]
    acc = accuracy(heads, pred, want)
    assert acc["hair_color"]["accuracy"] == 0.5
    assert acc["hair_color"]["per_tag"] == {"red hair": {"accuracy": 1.0, "n": 1}, "blue hair": {"accuracy": 0.0, "n": 1}}
    assert acc["other"]["n"] == 2 and acc["other"]["per_tag"]["hat"]["accuracy"] == 0.0


def test_judge_cli_trains_saves_and_reports(tiny_catalog, tmp_path):
    out = tmp_path / "judges" / "m.pt"
    r = runner.invoke(app, ["judge", "--db", str(tiny_catalog), "-o", str(out), "--size", "16", "--width", "4",
                            "--epochs", "1", "--batch", "8", "--no-progress"])
    assert r.exit_code == 0, r.output
    judge = load_judge(out)
    assert {h["name"] for h in judge.heads} == {"hair_color", "eye_color"}
    assert "test" in judge.scores and "real test split" in r.output


@pytest.mark.parametrize("source", ["../../x", "{tmp}/abs/path[x]"])
def test_judge_default_file_stays_in_judges_and_counts_faces_in_words(tiny_catalog, tmp_path, monkeypatch, source):
    """A label source named like a path still puts its judge in judges/, under the name run
    folders give it (train.runs.safe_slug); the face counts are words, not a Python dict."""
    source = source.format(tmp=tmp_path)       # an absolute path, but inside the test's folder
    with Catalog(tiny_catalog) as cat:
        hair, eyes = ["blonde hair", "black hair", "red hair"], ["blue eyes", "red eyes"]   # as the fixture
        cat.add_labels([(i + 1, tag, 1.0) for i in range(24) for tag in (hair[i % 3], eyes[i % 2])], source, "t")
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    r = runner.invoke(app, ["judge", "--db", str(tiny_catalog), "--labels", source, "--size", "16", "--width", "4",
                            "--epochs", "1", "--batch", "8", "--no-progress"])
    assert r.exit_code == 0, r.output
    made = [p.relative_to(tmp_path) for p in tmp_path.rglob("*.pt")]
    assert made == [Path("a/b/judges") / f"{safe_slug(source, 'labels')}.pt"]
    assert "{" not in r.output and re.search(r"\d+ train, \d+ val, \d+ test faces", r.output)


def test_judge_and_eval_take_the_shared_device_option(tiny_catalog, tmp_path):
    """--device as every command spells it (curate.conventions): a device this machine lacks or a
    bad name is one line, before anything is trained or scored."""
    out = tmp_path / "j.pt"
    r = runner.invoke(app, ["judge", "--db", str(tiny_catalog), "-o", str(out), "--size", "16", "--width", "4",
                            "--epochs", "1", "--batch", "8", "--no-progress", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert load_judge(out).device == torch.device("cpu")
    for command in (["judge", "--db", str(tiny_catalog), "-o", str(tmp_path / "k.pt")],
                    ["eval", str(tmp_path / "no-run"), "--judge", str(out)]):
        r = runner.invoke(app, [*command, "--device", "tpu:7"])
        assert r.exit_code == 2 and "--device 'tpu:7': expected auto, cpu, cuda or cuda:N" in r.output, r.output
        if not torch.cuda.is_available():
            r = runner.invoke(app, [*command, "--device", "cuda"])
            assert r.exit_code == 2 and "sees no CUDA GPU" in r.output
    assert not (tmp_path / "k.pt").exists()


def test_judge_cli_errors(tiny_catalog, tmp_path):
    r = runner.invoke(app, ["judge", "--db", str(tmp_path / "none.db")])
    assert r.exit_code == 2 and "no catalog" in r.output
    r = runner.invoke(app, ["judge", "--db", str(tiny_catalog), "--labels", "i2v", "-o", str(tmp_path / "x.pt")])
    assert r.exit_code == 2 and "i2v" in r.output and not (tmp_path / "x.pt").exists()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"nope")
    with pytest.raises(JudgeError, match="not a judge file"):
        load_judge(bad)
    with pytest.raises(JudgeError, match="no judge"):
        load_judge(tmp_path / "missing.pt")
