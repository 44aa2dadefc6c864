"""`curate export` and `curate tag` on hostile data: tag names that are paths, formula cells, a
symlinked OUT, crops that no longer decode."""

from __future__ import annotations

import csv
import errno
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import png_bytes
from curate.cli import app
from db import Catalog

runner = CliRunner()


def run(*args, code: int = 0):
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exit_code == code, r.output
    return r


def broken_png(seed: int) -> bytes:
    """A PNG whose compressed pixels are damaged: Pillow says "broken data stream"."""
    data = bytearray(png_bytes(seed))
    i = data.find(b"IDAT")
    for k in range(i + 20, i + 60):
        data[k] ^= 0x55
    return bytes(data)


HOSTILE = ["../../x", "..", ".", "a/b", "a_b", "A_B", "_unlabelled", ".hidden", "back\\slash", "=1+1"]


@pytest.fixture
def hostile_tags(tiny_catalog) -> Path:
    """tiny_catalog with a group whose tags are paths, each given to two faces by source `evil`."""
    with Catalog(tiny_catalog) as cat:
        cat.add_group("trap", exclusive=True)
        for tag in HOSTILE:
            cat.add_tag(tag, "trap")
        ids = cat.face_ids()
        cat.add_labels([(fid, HOSTILE[i % len(HOSTILE)], 1.0) for i, fid in enumerate(ids[:20])], "evil")
    return tiny_catalog


def test_folder_names_are_plain_readable_and_unique():
    from curate.export import folder_names

    folders = folder_names(["_unlabelled"] + HOSTILE)
    assert len({f.casefold() for f in folders}) == len(folders) == len(HOSTILE) + 1
    for f in folders:
        assert "/" not in f and "\\" not in f and f not in (".", "..", "") and not f.startswith(".")
    names = dict(zip(HOSTILE, folders[1:]))
    assert names["a/b"] == "a_b" and names["a_b"] == "a_b-2" and names["=1+1"] == "=1+1"
    assert folders[0] == "_unlabelled" and names["_unlabelled"] == "_unlabelled-2"
    assert folder_names(["blonde hair", "日本語 ok"]) == ["blonde hair", "日本語 ok"]   # readable as they are


def test_imagefolder_export_never_leaves_out(hostile_tags, tmp_path):
    out = tmp_path / "deep" / "er" / "out"
    r = run("export", out, "--group", "trap", "--labels", "evil", "--unlabelled", "--db", hostile_tags)
    written = sorted(p for p in tmp_path.rglob("*") if p.is_file() and not p.name.startswith("tiny.db"))
    assert all(out in p.parents for p in written), [p for p in written if out not in p.parents]
    folders = sorted(p.name for p in out.iterdir())
    assert len(folders) == len(HOSTILE) + 1            # every tag its own folder, plus _unlabelled
    assert sum(1 for _ in out.rglob("*.png")) == 24    # every face once
    assert "'../../x' is in folder" in r.output and "'a/b' is in folder 'a_b" in r.output
    assert not (tmp_path / "x").exists() and not (tmp_path / "deep" / "x").exists()


def test_export_into_a_symlinked_folder(tiny_catalog, tmp_path):
    target = tmp_path / "real"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target, target_is_directory=True)
    run("export", link, "--db", tiny_catalog)
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert sum(1 for _ in target.rglob("*.png")) == 24
    run("export", link, "--format", "csv", "--force", "--db", tiny_catalog)
    assert (target / "faces.csv").is_file() and link.is_symlink()


def test_csv_export_neutralises_formula_cells(hostile_tags, tmp_path):
    with Catalog(hostile_tags) as cat:
        cat.add_tag("@SUM(A1)", "other")
        cat.add_labels([(cat.face_ids()[0], "@SUM(A1)", 1.0)], "evil")
    run("export", tmp_path / "out", "--format", "csv", "--labels", "evil", "--db", hostile_tags)
    with open(tmp_path / "out" / "faces.csv", newline="") as f:
        rows = list(csv.reader(f))
    cells = [c for row in rows for c in row]
    assert "'=1+1" in cells and "'@SUM(A1)" in rows[0]
    assert not [c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r")]
    assert not [c for c in cells if c.startswith("-") and not _number(c)]


def _number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


# -- crops that no longer decode ------------------------------------------------------------

@pytest.fixture
def one_broken(tiny_catalog) -> tuple[Path, int]:
    """tiny_catalog whose face 5's stored crop is damaged."""
    with Catalog(tiny_catalog) as cat:
        cat.conn.execute("UPDATE face_images SET image = ? WHERE face_id = 5", (broken_png(5),))
    return tiny_catalog, 5


@pytest.mark.parametrize("fmt", ["imagefolder", "csv", "dataset-json"])
def test_export_leaves_out_a_broken_crop_and_names_it(one_broken, tmp_path, fmt):
    db, broken = one_broken
    r = run("export", tmp_path / "out", "--format", fmt, "--db", db)
    assert f"left out face {broken}: unreadable crop" in r.output and "broken data stream" in r.output
    assert sum(1 for _ in (tmp_path / "out").rglob("*.png")) == 23


def test_tagging_sets_a_broken_crop_aside_and_goes_on(one_broken):
    db, broken = one_broken
    r = run("tag", "--tagger", "animeface", "--db", db)
    assert f"face {broken}: unreadable crop" in r.output and "broken data stream" in r.output
    assert "23 faces tagged" in r.output
    with Catalog(db) as cat:
        face = cat.face(broken)
        assert face["status"] == "rejected" and "broken data stream" in face["reason"]
        assert broken not in cat.face_ids("ok")
    sheet = db.with_name("rejected.png")                     # the contact sheet shows it as unreadable
    run("stats", "--sheet", sheet, "--status", "rejected", "--db", db)
    assert sheet.stat().st_size > 0
    r = run("tag", "--tagger", "animeface", "--db", db)     # the rerun does not stumble on it again
    assert "unreadable" not in r.output and "23 skipped (tagged before)" in r.output, r.output


# -- a full disk ----------------------------------------------------------------------------

def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _arrow_no_space(*args, **kwargs):   # Arrow says it in words, with no errno
    import pyarrow as pa
    raise pa.lib.ArrowIOError("Error writing bytes to file. Detail: [errno 28] No space left on device")


FULL_DISK = {   # format -> (what to patch, how it fails): the write each format makes
    "imagefolder": ("pathlib.Path.write_bytes", _no_space),
    "dataset-json": ("pathlib.Path.write_bytes", _no_space),
    "csv": ("pathlib.Path.write_bytes", _no_space),
    "webdataset": ("tarfile.TarFile.addfile", _no_space),
    "hf": ("curate.export_shards.HuggingFaceDataset._write", _arrow_no_space),
}


@pytest.mark.parametrize("fmt", list(FULL_DISK))
def test_a_full_disk_is_one_line_and_leaves_nothing_half_written(tiny_catalog, tmp_path, monkeypatch, fmt):
    if fmt == "hf":
        monkeypatch.setattr("curate.export_shards.HuggingFaceDataset.BATCH", 2)   # a batch is written early
    target, fails = FULL_DISK[fmt]
    monkeypatch.setattr(target, fails)
    out = tmp_path / "exports" / "out"
    r = run("export", "-o", out, "--format", fmt, "--no-progress", "--db", tiny_catalog, code=2)
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the disk is full") and str(out) in lines[0], r.output
    assert "Traceback" not in r.output and r.exception is None or isinstance(r.exception, SystemExit)
    assert list((tmp_path / "exports").iterdir()) == []          # no OUT, no partial folder beside it


def test_a_full_disk_keeps_the_old_export_when_overwriting(tiny_catalog, tmp_path, monkeypatch):
    out = tmp_path / "out"
    run("export", "-o", out, "--format", "csv", "--db", tiny_catalog)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    monkeypatch.setattr("pathlib.Path.write_bytes", _no_space)
    r = run("export", "-o", out, "--format", "csv", "--overwrite", "--db", tiny_catalog, code=2)
    assert "the disk is full" in r.output and f"the old {out} is as it was" in r.output
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_group_that_does_not_exist_is_one_line_without_python_noise(tiny_catalog, tmp_path):
    code = ("import sys; sys.argv = ['curate', 'export', '-o', sys.argv[1], '--group', 'nope', '--db', sys.argv[2]]\n"
            "import curate.cli\ncurate.cli.main()")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "x1"), str(tiny_catalog)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == ["error: unknown tag group 'nope'; known: hair_color, eye_color, "
                                             "hair_style, other"], r.stderr
