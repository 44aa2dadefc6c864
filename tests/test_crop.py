"""`curate crop` / `curate import`: geometry, quality figures, bad inputs, idempotence,
incremental adds, duplicates, interruption (kill -9) and two writers at once."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter
from typer.testing import CliRunner

from curate.cli import app
from curate.cropping import Square, crop_square, cut
from curate.detectors import Box
from curate import pipeline
from curate import face_measures as quality
from curate.pipeline import CropOptions
from db import Catalog

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent


def invoke(*args: str, env: dict | None = None):
    result = runner.invoke(app, [str(a) for a in args], env=env)
    return result


def picture(seed: int, size: int = 64) -> Image.Image:
    """A smooth random picture (so pHashes differ between seeds)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC)


def save(im: Image.Image, path: Path, fmt: str | None = None, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, fmt, **kw)
    return path


def sources(db: Path) -> dict[str, dict]:
    with Catalog(db) as cat:
        return {Path(r["path"]).name: r for r in cat.query("SELECT * FROM sources")}


def faces(db: Path) -> list[dict]:
    with Catalog(db) as cat:
        return cat.query("SELECT f.*, i.image, s.path FROM faces f JOIN sources s ON s.id = f.source_id "
                         "JOIN face_images i ON i.face_id = f.id ORDER BY f.id")


def link_shared(shared: Path, folder: Path, names: list[str]) -> None:
    """Symlinks to shared illustrations (never copies of them)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        os.symlink(shared / "data" / "raw_illustrations" / name, folder / name)


def shared_names(shared: Path, n: int) -> list[str]:
    return sorted(p.name for p in (shared / "data" / "raw_illustrations").iterdir())[:n]


# -- geometry ---------------------------------------------------------------

def test_square_is_centred_and_enlarged():
    assert crop_square(Box(100, 100, 40, 40), 400, 400, 1.5) == Square(90, 90, 60)
    assert crop_square(Box(100, 100, 40, 20), 400, 400, 1.0) == Square(100, 90, 40)  # square of the long side


def test_square_slides_inside_the_border():
    assert crop_square(Box(0, 0, 40, 40), 400, 300, 2.0) == Square(0, 0, 80)
    assert crop_square(Box(370, 270, 30, 30), 400, 300, 2.0) == Square(340, 240, 60)


def test_square_bigger_than_the_picture_is_padded_with_edge_pixels():
    square = crop_square(Box(10, 0, 40, 20), 60, 20, 1.5)
    assert square == Square(0, -20, 60)
    im = Image.new("RGB", (60, 20), (200, 10, 10))
    out = cut(im, square, 30)
    assert out.size == (30, 30)
    assert np.abs(np.asarray(out, np.int16) - (200, 10, 10)).max() <= 1  # edge replicated, no black bars


def test_cut_resizes_the_source_pixels():
    im = Image.new("RGB", (100, 100), "white")
    im.paste((0, 0, 255), (50, 50, 100, 100))
    out = np.asarray(cut(im, Square(50, 50, 50), 16))
    assert out[..., 2].min() > 240 and out[..., 0].max() < 15


# -- quality figures --------------------------------------------------------

def test_phash_survives_reencoding_and_separates_pictures():
    a = picture(1, 128)
    jpeg = Image.open(io.BytesIO(_bytes(a, "JPEG", quality=70))).convert("RGB")
    assert quality.hamming(quality.phash(a), quality.phash(jpeg)) <= 4
    assert quality.hamming(quality.phash(a), quality.phash(picture(2, 128))) > 10
    h = quality.phash(a)
    assert -(1 << 63) <= h < (1 << 63)  # fits SQLite's signed 64-bit integer
    idx, dist = quality.nearest(np.array([quality.phash(picture(2, 128)), h], np.int64), quality.phash(jpeg))
    assert idx == 1 and dist <= 4


def test_blur_and_monochrome():
    sharp = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    assert quality.blur(sharp.filter(ImageFilter.GaussianBlur(3))) < quality.blur(sharp) / 10
    assert quality.monochrome(sharp.convert("L").convert("RGB")) == 0
    assert quality.monochrome(Image.new("RGB", (4, 4), (255, 0, 0))) == 255


# -- the commands -----------------------------------------------------------

def test_help():
    for command in ("crop", "import"):
        result = invoke(command, "--help")
        assert result.exit_code == 0
        for option in ("--db", "--jobs", "--near-dup", "--min-blur"):
            assert option in result.output
    assert "--margin" in invoke("crop", "--help").output and "--no-detect" in invoke("import", "--help").output


def test_bad_options_and_folders(tmp_path):
    result = invoke("crop", tmp_path / "nowhere", "--db", tmp_path / "c.db")
    assert result.exit_code == 2 and "nowhere does not exist" in result.output
    result = invoke("crop", tmp_path, "--db", tmp_path / "c.db", "--detector", "yolo")
    assert result.exit_code == 2 and "unknown detector 'yolo'" in result.output
    result = invoke("crop", tmp_path, "--db", tmp_path / "c.db", "--margin", "0.5")
    assert result.exit_code == 2 and "--margin" in result.output


def make_zoo(folder: Path) -> dict[str, str]:
    """Every kind of file a user's folder holds; name -> expected source status."""
    expected = {}
    good = picture(7, 96)
    for seed, (name, fmt) in enumerate([("plain.jpg", "JPEG"), ("plain.png", "PNG"), ("anim.gif", "GIF"),
                                        ("old.bmp", "BMP"), ("web.webp", "WEBP"),
                                        ("nested/deeper/日本語 の 絵.png", "PNG")]):
        save(picture(100 + seed, 96), folder / name, fmt)
        expected[Path(name).name] = "no_face"
    save(good.convert("CMYK"), folder / "cmyk.jpg", "JPEG")
    save(good.convert("RGBA"), folder / "alpha.png")
    save(Image.fromarray((np.asarray(good.convert("L"), np.uint16) * 257)), folder / "sixteen.png")
    expected.update({"cmyk.jpg": "no_face", "alpha.png": "no_face", "sixteen.png": "no_face"})
    data = _bytes(picture(8, 200), "JPEG")
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (folder / "zero.png").write_bytes(b"")
    (folder / "notes.jpg").write_text("not a picture at all")
    from test_images import png_with_header
    (folder / "bomb.png").write_bytes(png_with_header(100_000, 100_000))
    expected.update({"truncated.jpg": "error", "zero.png": "error", "notes.jpg": "error", "bomb.png": "error"})
    os.symlink(folder / "nested", folder / "nested" / "deeper" / "loop")
    expected["loop"] = "error"   # recorded as a source, with the reason
    with open(os.fsencode(folder) + b"/latin-1 caf\xe9.png", "wb") as f:  # a name that is not UTF-8
        f.write(_bytes(picture(9), "PNG"))
    return expected


def test_bad_input_zoo_idempotence_and_incremental_adds(tmp_path):
    folder, db = tmp_path / "raw", tmp_path / "c.db"
    expected = make_zoo(folder)
    # a narrow terminal must not fold the error lines (paths stay whole, copy-pasteable)
    result = invoke("crop", folder, "--db", db, "--detector", "human", "-j", "1", env={"COLUMNS": "30"})
    assert result.exit_code == 0, result.output
    got = sources(db)
    assert {name: row["status"] for name, row in got.items()} == expected
    assert "decompression bomb" in got["bomb.png"]["message"]
    assert "empty file" in got["zero.png"]["message"]
    assert "not a picture" in got["notes.jpg"]["message"]
    assert "cannot decode" in got["truncated.jpg"]["message"]
    assert got["old.bmp"]["width"] == 96 and got["old.bmp"]["sha256"] == _sha((folder / "old.bmp").read_bytes())
    assert "5 error" in result.output
    assert got["loop"]["message"] == f"symbolic link loop: leads back to {folder / 'nested'}"
    assert f"{os.path.relpath(folder / 'bomb.png')}: decompression bomb" in result.output
    assert "caf\ufffd.png: file name is not valid UTF-8" in result.output
    # the same run again adds nothing
    result = invoke("crop", folder, "--db", db, "--detector", "human", "-j", "1")
    assert result.exit_code == 0 and "13 already in the catalog, 0 processed" in result.output
    assert len(sources(db)) == 14
    # new files: only those are processed
    save(picture(99, 96), folder / "later" / "new.png")
    (folder / "later" / "copy of plain.jpg").write_bytes((folder / "plain.jpg").read_bytes())
    result = invoke("crop", folder, "--db", db, "--detector", "human", "-j", "2")
    assert result.exit_code == 0 and "13 already in the catalog, 2 processed" in result.output
    got = sources(db)
    assert got["new.png"]["status"] == "no_face"
    assert got["copy of plain.jpg"]["status"] == "duplicate"
    assert got["copy of plain.jpg"]["message"] == f"same bytes as {folder / 'plain.jpg'}"
    # a broken file that gets fixed (finished downloading) is tried again; unchanged ones are not
    save(picture(8, 200), folder / "truncated.jpg", "JPEG")
    result = invoke("crop", folder, "--db", db, "--detector", "human", "-j", "1")
    assert result.exit_code == 0 and "14 already in the catalog, 1 processed" in result.output
    assert sources(db)["truncated.jpg"]["status"] == "no_face" and len(sources(db)) == 16


def test_crop_real_illustrations_with_duplicates(tmp_path, shared):
    folder, db = tmp_path / "raw", tmp_path / "c.db"
    link_shared(shared, folder, ["afdr_detect_03.jpg", "s2p_v4_25.png"])
    original = decode_file(shared / "data" / "raw_illustrations" / "afdr_detect_03.jpg")
    (folder / "exact copy.jpg").write_bytes((folder / "afdr_detect_03.jpg").read_bytes())
    save(original, folder / "re-encoded.jpg", "JPEG", quality=80)  # same picture, other pixels: near-duplicate
    save(original.resize((original.width * 2, original.height * 2)), folder / "big.png")  # found via downscale
    result = invoke("crop", folder, "--db", db, "-j", "2", "--detect-max", "300")
    assert result.exit_code == 0, result.output
    got = sources(db)
    assert got["exact copy.jpg"]["status"] == "duplicate"
    assert {got[n]["status"] for n in ("afdr_detect_03.jpg", "s2p_v4_25.png", "re-encoded.jpg")} == {"ok"}
    rows = faces(db)
    assert not [f for f in rows if Path(f["path"]).name == "exact copy.jpg"]
    by_source = {Path(f["path"]).name: f for f in rows}
    first, again, big = by_source["afdr_detect_03.jpg"], by_source["re-encoded.jpg"], by_source["big.png"]
    # files go largest first: the original JPEG is kept, the re-encoded one points to it
    assert first["status"] == "ok" and big["status"] == "ok"
    assert again["status"] == "duplicate" and again["duplicate_of"] == first["id"]
    assert again["reason"].startswith(f"near-duplicate of face {first['id']} (pHash distance ")
    # boxes and crop squares are in source pixels: the 2x picture's box is about twice as large
    assert abs(big["box_w"] - 2 * first["box_w"]) <= 0.15 * big["box_w"]
    assert abs(big["box_x"] - 2 * first["box_x"]) <= 0.15 * big["box_w"]
    for f in rows:
        im = Image.open(io.BytesIO(f["image"]))
        assert (im.format, im.size, f["format"], f["detector"]) == ("PNG", (128, 128), "png", "animeface")
        assert f["sha256"] == _sha(f["image"]) and f["blur"] > 0 and f["monochrome"] > 0
        assert abs(f["crop_size"] - round(max(f["box_w"], f["box_h"]) * 1.5)) <= 1


def test_min_face_and_max_upscale_reject_with_reasons(tmp_path, shared):
    folder, db = tmp_path / "raw", tmp_path / "c.db"
    link_shared(shared, folder, ["afdr_detect_03.jpg"])  # one face about 61 px wide
    result = invoke("crop", folder, "--db", db, "-j", "1", "--min-face", "100")
    assert result.exit_code == 0
    [face] = faces(db)
    assert face["status"] == "rejected" and "--min-face 100" in face["reason"]
    db2 = tmp_path / "c2.db"
    invoke("crop", folder, "--db", db2, "-j", "1", "--size", "256", "--max-upscale", "2")
    [face] = faces(db2)
    assert face["status"] == "rejected" and "--max-upscale 2" in face["reason"]
    db3 = tmp_path / "c3.db"
    invoke("crop", folder, "--db", db3, "-j", "1", "--min-score", "1.01")
    [face] = faces(db3)
    assert face["status"] == "rejected" and "--min-score 1.01" in face["reason"]


def test_default_min_score_rejects_animeface_false_faces(tmp_path, shared):
    """s2p_v4_27.png: one real face, and fabric and a flower print animeface scores 0.57-0.64."""
    folder = tmp_path / "raw"
    link_shared(shared, folder, ["s2p_v4_27.png"])
    invoke("crop", folder, "--db", tmp_path / "default.db", "-j", "1")
    got = sorted((f["status"], f["reason"]) for f in faces(tmp_path / "default.db"))
    assert got == [("ok", None)] + [("rejected", "score below --min-score 0.7")] * 2
    invoke("crop", folder, "--db", tmp_path / "all.db", "-j", "1", "--min-score", "0")
    assert [f["status"] for f in faces(tmp_path / "all.db")] == ["ok"] * 3


def test_import_no_detect(tmp_path):
    folder, db = tmp_path / "faces", tmp_path / "c.db"
    for i in range(5):
        save(picture(i), folder / f"{i}.jpg", "JPEG", quality=90)
    save(picture(10), folder / "webp face.webp", "WEBP")
    save(picture(11, 700), folder / "big.png")
    save(picture(12).convert("RGBA"), folder / "alpha.png")
    (folder / "same bytes.jpg").write_bytes((folder / "0.jpg").read_bytes())
    save(Image.open(folder / "1.jpg").convert("RGB"), folder / "1 again.png")  # same picture, new bytes
    save(Image.new("RGB", (64, 64), (90, 90, 90)), folder / "flat.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    result = invoke("import", folder, "--db", db, "--no-detect", "--min-blur", "1", "-j", "2")
    assert result.exit_code == 0, result.output
    got = sources(db)
    assert got["same bytes.jpg"]["status"] == "duplicate" and got["broken.png"]["status"] == "error"
    assert {r["detector"] for r in got.values()} == {"none"}
    rows = {Path(f["path"]).name: f for f in faces(db)}
    assert len(rows) == 10
    for i in range(5):  # small JPEGs are stored as the file itself
        assert rows[f"{i}.jpg"]["image"] == (folder / f"{i}.jpg").read_bytes()
        assert rows[f"{i}.jpg"]["format"] == "jpeg" and (rows[f"{i}.jpg"]["status"] == "ok" or i == 1)
    for name in ("webp face.webp", "big.png", "alpha.png"):
        assert rows[name]["format"] == "png" and Image.open(io.BytesIO(rows[name]["image"])).mode == "RGB"
    assert rows["big.png"]["width"] == 700 and rows["big.png"]["box_w"] == 700
    # the same picture twice: the larger file (processed first) is kept, the other points to it
    kept, dup = rows["1 again.png"], rows["1.jpg"]
    assert kept["status"] == "ok" and dup["status"] == "duplicate" and dup["duplicate_of"] == kept["id"]
    assert rows["flat.png"]["status"] == "rejected" and "--min-blur" in rows["flat.png"]["reason"]
    # again: nothing new
    result = invoke("import", folder, "--db", db, "--no-detect")
    assert result.exit_code == 0 and "0 processed" in result.output and len(faces(db)) == 10


def test_exact_face_duplicate_across_sources(tmp_path):
    folder, db = tmp_path / "faces", tmp_path / "c.db"
    save(picture(3), folder / "a.png")
    # same pixels, different file bytes (PNG metadata): a face-level exact duplicate
    from PIL import PngImagePlugin
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "other bytes")
    save(picture(3).convert("RGBA"), folder / "b.png", pnginfo=info)  # RGBA -> re-encoded as the same RGB PNG
    save(picture(3), folder / "c.webp", "WEBP", lossless=True)
    invoke("import", folder, "--db", db, "--no-detect", "--near-dup", "-1", "-j", "1")
    rows = {Path(f["path"]).name: f for f in faces(db)}
    assert rows["b.png"]["status"] == "duplicate" or rows["c.webp"]["status"] == "duplicate"
    dups = [f for f in rows.values() if f["status"] == "duplicate"]
    assert dups and all("same pixels as face" in f["reason"] for f in dups)


def test_ctrl_c_keeps_finished_work(tmp_path):
    folder = tmp_path / "faces"
    for i in range(10):
        save(picture(i), folder / f"{i}.png")
    cat = Catalog(tmp_path / "c.db")
    seen = []

    def interrupt_after_four(result, total):
        seen.append(result.path)
        if len(seen) == 4:
            raise KeyboardInterrupt

    summary = pipeline.run(cat, folder, CropOptions(no_detect=True, workers=1), on_progress=interrupt_after_four)
    assert summary.interrupted and summary.processed == 4
    assert len(cat.query("SELECT id FROM faces")) == 4
    summary = pipeline.run(cat, folder, CropOptions(no_detect=True, workers=1))
    assert summary.skipped == 4 and summary.processed == 6 and len(cat.query("SELECT id FROM faces")) == 10
    cat.close()


# -- crashes and concurrent writers -------------------------------------------

def _default_sigint() -> None:
    """In the child: Ctrl-C as a terminal gives it. A suite started in the background (`nohup`,
    `&` in a script) runs with SIGINT ignored, which children inherit: the Ctrl-C test then sent a
    signal nobody heard."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def child_process(argv: list) -> subprocess.Popen:
    return subprocess.Popen([str(a) for a in argv], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            preexec_fn=_default_sigint)


def curate_process(*args) -> subprocess.Popen:
    return child_process([sys.executable, "-m", "curate.cli", *args])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_children_hear_ctrl_c_even_when_the_suite_ignores_it():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)   # as under nohup
    try:
        proc = child_process([sys.executable, "-c", "import time; time.sleep(60)"])
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        status = Path(f"/proc/{proc.pid}/status").read_text()
        ignored = int(next(line for line in status.splitlines() if line.startswith("SigIgn:")).split()[1], 16)
        assert not ignored & (1 << (signal.SIGINT - 1))
    finally:
        proc.kill()
        proc.wait()


def count_sources(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=30) as conn:
            return conn.execute("SELECT count(*) FROM sources").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def crop_args(shared: Path, folder: Path, db: Path) -> list:
    return ["crop", folder, "--db", db, "--detector", "lbp", "--cascade",
            shared / "models" / "lbpcascade_animeface.xml", "-j", "1"]


def test_kill_9_midway_then_rerun_processes_each_source_once(tmp_path, shared):
    folder, db, ref = tmp_path / "raw", tmp_path / "c.db", tmp_path / "ref.db"
    link_shared(shared, folder, shared_names(shared, 24))
    proc = curate_process(*crop_args(shared, folder, db))
    deadline = time.time() + 60
    while count_sources(db) == 0 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = count_sources(db)
    assert 0 < done_before < 24, "the kill should land between the first commit and the end"
    result = invoke(*crop_args(shared, folder, db))
    assert result.exit_code == 0, result.output
    assert f"{done_before} already in the catalog, {24 - done_before} processed" in result.output
    # same outcome as one uninterrupted run: each source once, no doubled faces
    assert invoke(*crop_args(shared, folder, ref)).exit_code == 0
    assert _outcome(db) == _outcome(ref)
    assert len(faces(db)) == len(faces(ref)) > 10


def test_ctrl_c_with_workers_saves_and_exits_130(tmp_path, shared):
    # 48 pictures: with 16 an idle machine finished the whole run before the signal arrived
    folder, db = tmp_path / "raw", tmp_path / "c.db"
    link_shared(shared, folder, shared_names(shared, 48))
    proc = curate_process("crop", folder, "--db", db, "-j", "2")
    deadline = time.time() + 60
    while count_sources(db) == 0 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)  # wait for the first committed batch: the run is then surely under way
    committed = count_sources(db)
    proc.send_signal(signal.SIGINT)
    output = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 130, output
    assert "interrupted: work so far is saved" in output and "Traceback" not in output
    assert 0 < committed <= count_sources(db) < 48


STOP_AT_THE_END = """
import multiprocessing, os, signal, sys
from curate import pipeline
from curate.pipeline import CropOptions
from db import Catalog

def at_the_end(result, total, seen=[]):
    seen.append(result)
    if len(seen) == total:   # every file done: the workers wait for work that never comes
        for child in multiprocessing.active_children():   # the OOM killer takes them as they wait
            os.kill(child.pid, signal.SIGKILL)
        raise KeyboardInterrupt   # then Ctrl-C

with Catalog(sys.argv[2]) as cat:
    summary = pipeline.run(cat, sys.argv[1], CropOptions(no_detect=True, workers=2), on_progress=at_the_end)
print("interrupted" if summary.interrupted else "finished", summary.processed)
"""


def test_ctrl_c_when_the_workers_wait_for_work_exits_at_once(tmp_path):
    """multiprocessing.Pool.terminate() waited for ever here: it takes the task queue's lock, which
    an idle worker holds while it waits, and a worker killed while holding it never gives it back."""
    folder = tmp_path / "raw"
    for i in range(6):
        save(picture(i), folder / f"{i}.png")
    proc = subprocess.Popen([sys.executable, "-c", STOP_AT_THE_END, str(folder), str(tmp_path / "c.db")], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        output = proc.communicate(timeout=60)[0].decode()
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("the run did not stop within 60 s of Ctrl-C")
    assert proc.returncode == 0 and output.split() == ["interrupted", "6"], output


def test_a_worker_that_dies_on_a_file_is_an_error_for_that_file_and_the_run_goes_on(tmp_path, monkeypatch):
    folder = tmp_path / "raw"
    for i in range(6):
        save(picture(i), folder / f"{i}.png")
    real = pipeline.process_file

    def dies_on_3(path: str):
        if path.endswith("3.png"):
            os.kill(os.getpid(), signal.SIGKILL)   # a crash inside a decoder
        return real(path)
    monkeypatch.setattr(pipeline, "process_file", dies_on_3)
    with Catalog(tmp_path / "c.db") as cat:
        summary = pipeline.run(cat, folder, CropOptions(no_detect=True, workers=2))
    assert summary.processed == 6 and summary.sources == {"ok": 5, "error": 1}
    assert summary.errors == [(str(folder / "3.png"), "the worker process died on this file (killed by signal 9)")]


def test_two_processes_writing_one_catalog(tmp_path, shared):
    folder, db, ref = tmp_path / "raw", tmp_path / "c.db", tmp_path / "ref.db"
    link_shared(shared, folder, shared_names(shared, 12))
    for i in range(20):
        save(picture(i), folder / "synthetic" / f"{i}.png")
    procs = [curate_process(*crop_args(shared, folder, db)) for _ in range(2)]
    outputs = [p.communicate(timeout=120)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert invoke(*crop_args(shared, folder, ref)).exit_code == 0
    assert _outcome(db) == _outcome(ref)
    with Catalog(db) as cat:
        assert len(cat.query("SELECT path FROM sources")) == 32  # unique paths, each once


def _outcome(db: Path) -> tuple:
    """What a run produced, independent of row ids and timing."""
    src = sorted((Path(r["path"]).name, r["status"]) for r in sources(db).values())
    fcs = Counter((Path(f["path"]).name, f["sha256"]) for f in faces(db))
    return src, sorted(fcs.items())


def decode_file(path: Path) -> Image.Image:
    from curate.images import decode
    return decode(path.read_bytes()).image


def _bytes(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_dangling_links_are_recorded_and_read_once_they_lead_somewhere(tmp_path):
    folder, db = tmp_path / "raw", tmp_path / "c.db"
    save(picture(1), folder / "a.png")
    os.symlink(tmp_path / "later.png", folder / "link.png")
    result = invoke("import", folder, "--no-detect", "--db", db)
    assert result.exit_code == 0 and "link.png: dangling symbolic link" in result.output, result.output
    got = sources(db)
    assert got["link.png"]["status"] == "error" and "later.png does not exist" in got["link.png"]["message"]
    result = invoke("import", folder, "--no-detect", "--db", db)      # recorded once, not again
    assert result.exit_code == 0 and "dangling" not in result.output and len(sources(db)) == 2
    save(picture(2), tmp_path / "later.png")                           # the target appears
    result = invoke("import", folder, "--no-detect", "--db", db)
    assert result.exit_code == 0 and sources(db)["link.png"]["status"] == "ok"
