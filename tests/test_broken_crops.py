"""One face whose stored crop is garbage: every command that reads crops names it, sets it aside as
rejected with the reason (as `curate tag --tagger animeface` does), goes on, and says so at the
end; none shows a traceback or refuses the whole run."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import curate.cli
import train.cli
from db import Catalog

runner = CliRunner()
GARBAGE = b"\x00not a picture at all\xff" * 8


@pytest.fixture
def one_garbage(tiny_catalog) -> tuple[Path, int]:
    """tiny_catalog whose face 5's image bytes are replaced by garbage; face 6 has no label, so the
    judge tagger reads unlabelled faces too."""
    with Catalog(tiny_catalog) as cat:
        cat.conn.execute("UPDATE face_images SET image = ? WHERE face_id = 5", (GARBAGE,))
        cat.add_labels([(6, "blonde hair", None), (6, "blue eyes", None)], "manual", "tester")
    return tiny_catalog, 5


def run(app, *args, code: int = 0):
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exit_code == code, (r.output, r.exception)
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    assert "Traceback" not in r.output
    return r


def assert_set_aside(db: Path, face: int) -> None:
    with Catalog(db) as cat:
        row = cat.face(face)
        assert row["status"] == "rejected" and "unreadable crop" in row["reason"], dict(row)
        assert face not in cat.face_ids("ok")


def test_judge_tagger_sets_the_face_aside_and_goes_on(one_garbage):
    db, broken = one_garbage
    r = run(curate.cli.app, "tag", "--tagger", "judge", "--db", db, "--folds", "2", "--epochs", "1", "--no-progress")
    assert f"face {broken}: unreadable crop" in r.output and "set aside as rejected" in r.output
    assert "23 labelled faces cross-fitted" in r.output, r.output
    assert_set_aside(db, broken)


def test_judge_tagger_sets_aside_an_unlabelled_face_too(tiny_catalog):
    with Catalog(tiny_catalog) as cat:
        sid = cat.save_source("/synthetic/extra.png", sha256="f" * 64, size=1, width=32, height=32, status="ok",
                              detector="none")
        extra = cat.add_face(source_id=sid, image=GARBAGE, format="png", width=32, height=32, detector="none")
    r = run(curate.cli.app, "tag", "--tagger", "judge", "--db", tiny_catalog, "--folds", "2", "--epochs", "1",
            "--no-progress")
    assert f"face {extra}: unreadable crop" in r.output and "0 unlabelled faces" in r.output, r.output
    assert_set_aside(tiny_catalog, extra)


def test_show_prints_the_face_and_says_its_crop_does_not_decode(one_garbage, tmp_path):
    db, broken = one_garbage
    out = tmp_path / "face.png"
    r = run(curate.cli.app, "show", broken, "-o", out, "--db", db, code=2)
    assert f"face {broken}" in r.output and "/synthetic/" in r.output        # what the catalog knows, still shown
    assert f"error: the crop of face {broken} does not decode (unreadable crop" in r.output
    assert not out.exists()
    run(curate.cli.app, "show", 4, "-o", out, "--db", db)                     # a good face still writes
    assert out.stat().st_size > 0


def test_train_judge_sets_the_face_aside_and_goes_on(one_garbage, tmp_path):
    db, broken = one_garbage
    with Catalog(db) as cat:
        assert broken in cat.face_ids("ok", "train") + cat.face_ids("ok", "val") + cat.face_ids("ok", "test")
    r = run(train.cli.app, "judge", "--db", db, "-o", tmp_path / "j.pt", "--size", "16", "--width", "4",
            "--epochs", "1", "--batch", "8", "--no-progress")
    assert f"face {broken}: unreadable crop" in r.output and "set aside as rejected" in r.output
    assert (tmp_path / "j.pt").is_file()
    assert_set_aside(db, broken)


def test_train_acgan_sets_the_face_aside_and_trains(tiny_catalog, tmp_path):
    with Catalog(tiny_catalog) as cat:
        broken = cat.face_ids("ok", "train")[0]
        cat.conn.execute("UPDATE face_images SET image = ? WHERE face_id = ?", (GARBAGE, broken))
    cache = tmp_path / "cache"
    r = run(train.cli.app, "acgan", "--db", tiny_catalog, "--labels", "manual", "--size", "32", "--ngf", "8",
            "--ndf", "8", "--batch", "4", "--z-dim", "16", "--min-per-tag", "1", "--iters", "2",
            "--runs-dir", tmp_path / "runs", "--cache-dir", cache, "--no-progress")
    assert "1 crops do not decode: set aside as rejected" in r.output and f"face {broken}: unreadable" in r.output
    assert_set_aside(tiny_catalog, broken)
    assert not list(cache.glob("*.partial*"))        # the cache of the faces that never all decode is gone
    assert len(list(cache.glob("*.npy"))) == 1
