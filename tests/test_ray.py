"""`curate crop --ray` and `curate tag --ray` on a local Ray of 2 CPUs, started once for the module:
the same catalog as `-j 2`, reruns add nothing, a killed worker and Ctrl-C lose nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from curate.cli import app
from db import Catalog

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()
# one pytest-xdist worker runs them all: one local Ray, started once, not one per worker
pytestmark = pytest.mark.xdist_group("ray")

# 10 of the shared illustrations (the full 92 take ~90 s per run on 2 busy cores), chosen to
# give every outcome: several faces, no face, rejected, near-duplicates of another file's face;
# plus an exact copy of one (a duplicate source) and a broken file (an error).
PICTURES = ["s2p_v3_Apr19H16M01S15R264.jpg", "s2p_v3_Apr19H15M56S43R679.jpg", "s2p_v3_Apr19H15M58S59R661.jpg",
            "s2p_v3_Apr19H10M44S09R636.jpg", "s2p_v3_Apr19H10M44S09R229.jpg", "afdr_detect_01.jpg",
            "afdr_detect_03.jpg", "afdr_detect_07.jpg", "s2p_v3_Apr19H23M17S21R119.jpg", "s2p_v4_29.png"]
FACES = ("SELECT f.id, s.path, s.status AS source_status, s.message, s.sha256 AS source_sha256, f.box_x, f.box_y, "
         "f.box_w, f.box_h, f.crop_x, f.crop_y, f.crop_size, f.score, f.sha256, f.phash, f.status, f.reason, "
         "f.duplicate_of FROM sources s LEFT JOIN faces f ON f.source_id = s.id ORDER BY s.path, f.id")


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> Path:
    raw = ROOT.parent / "shared" / "data" / "raw_illustrations"
    if not raw.is_dir():
        pytest.skip("../shared is not beside this checkout")
    folder = tmp_path_factory.mktemp("raw")
    for name in PICTURES:
        (folder / name).symlink_to(raw / name)
    (folder / "copy_of_afdr_detect_03.jpg").symlink_to(raw / "afdr_detect_03.jpg")
    (folder / "broken.jpg").write_text("not a picture")
    return folder


@pytest.fixture(scope="module")
def with_j2(pictures, tmp_path_factory) -> list[dict]:
    """The catalog `curate crop -j 2` makes (in its own process: no Ray there)."""
    db = tmp_path_factory.mktemp("j2") / "j2.db"
    subprocess.run([sys.executable, "-m", "curate.cli", "crop", str(pictures), "--db", str(db), "-j", "2"],
                   check=True, capture_output=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    with Catalog(db) as cat:
        return cat.query(FACES)


def crop_on_ray(pictures: Path, db: Path):
    return runner.invoke(app, ["crop", str(pictures), "--db", str(db), "--ray", "auto"])


def test_crop_on_ray_makes_the_catalog_of_j2_and_a_rerun_adds_nothing(local_ray, pictures, with_j2, tmp_path):
    db = tmp_path / "ray.db"
    r = crop_on_ray(pictures, db)
    assert r.exit_code == 0, r.output
    assert "12 processed (1 duplicate, 1 error, 1 no_face, 9 ok)" in r.output
    with Catalog(db) as cat:
        faces = cat.query(FACES)
    assert faces == with_j2
    assert {f["status"] for f in faces} == {"ok", "rejected", "duplicate", None}   # None: sources without faces
    r = crop_on_ray(pictures, db)
    assert r.exit_code == 0 and "12 already in the catalog, 0 processed" in r.output
    with Catalog(db) as cat:
        assert cat.query(FACES) == faces


def actor_pids(name: str) -> list[int]:
    """Ray's worker processes running our actor class (their title names it)."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if name.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                pids.append(int(pid))
        except OSError:
            pass
    return pids


def test_killed_worker_and_ctrl_c_lose_nothing(local_ray, pictures, with_j2, tmp_path):
    from curate.pipeline import CropOptions, run

    seen = []

    def kill_a_worker_then_ctrl_c(result, total):
        if not seen:
            os.kill(actor_pids("CropActor")[0], signal.SIGKILL)   # a lost worker: Ray restarts it, retries its file
        seen.append(result.path)
        if len(seen) == 6:                                        # then Ctrl-C
            raise KeyboardInterrupt

    db = tmp_path / "ray.db"
    with Catalog(db) as cat:
        summary = run(cat, pictures, CropOptions(workers=2, min_score=0.7), on_progress=kill_a_worker_then_ctrl_c,
                      ray="auto")
        assert summary.interrupted and summary.processed == 6
        assert cat.conn.execute("SELECT count(*) FROM sources").fetchone()[0] == 6
    r = crop_on_ray(pictures, db)
    assert r.exit_code == 0 and "6 already in the catalog, 6 processed" in r.output, r.output
    with Catalog(db) as cat:
        assert cat.query(FACES) == with_j2


def tiny_i2v(folder: Path):
    """An i2v-shaped model with random weights: a deterministic tagger to compare runs with."""
    from curate.taggers.i2v.caffemodel import i2v_layers, write_caffemodel
    from curate.taggers.i2v.network import MODEL_FILE, load_model
    tags = ["black hair", "blonde hair", "red hair", "blue eyes", "red eyes", "long hair", "smile", "solo"]
    folder.mkdir()
    write_caffemodel(folder / MODEL_FILE, i2v_layers(len(tags), {s: 2 for s in range(1, 7)}, seed=3))
    (folder / "tag_list.json").write_text(json.dumps(tags))
    return load_model(folder)


def test_tag_on_ray_writes_what_a_local_run_writes(local_ray, tiny_catalog, tmp_path):
    from curate.taggers.tagging import I2VTagger, TagOptions, tag_catalog

    model = tiny_i2v(tmp_path / "m")
    local = tmp_path / "local.db"
    local.write_bytes(tiny_catalog.read_bytes())
    events = {}
    for db, ray in [(local, None), (tiny_catalog, "auto")]:
        with Catalog(db) as cat:
            summary = tag_catalog(cat, I2VTagger(model), TagOptions(batch=5, threshold=0.0, workers=1), ray=ray)
            assert summary.faces == 24 and not summary.interrupted
            again = tag_catalog(cat, I2VTagger(model), TagOptions(batch=5, threshold=0.0), ray=ray)
            assert again.faces == 0 and again.skipped == 24                    # a rerun adds nothing
            events[ray] = cat.query("SELECT face_id, key, tag, value, source, annotator FROM label_events "
                                    "WHERE source = 'i2v' ORDER BY face_id, key")
    assert len(events[None]) == 24 * 5
    assert [{**e, "value": pytest.approx(e["value"], abs=1e-6)} for e in events["auto"]] == events[None]


def test_without_ray_the_option_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)   # what `import ray` meets where it is not installed
    (tmp_path / "raw").mkdir()
    db = tmp_path / "c.db"
    r = runner.invoke(app, ["crop", str(tmp_path / "raw"), "--db", str(db), "--ray", "auto"])
    assert r.exit_code == 2 and "pip install -e '.[ray]'" in r.output and not db.exists()
    r = runner.invoke(app, ["tag", "--db", str(db), "--ray", "auto"])
    assert r.exit_code == 2 and "pip install -e '.[ray]'" in r.output
