"""`train pix2pix` on the tiny catalog's line art: training with and without tags, exact resume,
DDP, the painter (`train.sketch.paint`), `train sample --sketch`, `train eval` and `train compare` of a
sketch run, and the clear errors for catalogs, options and drawings that do not fit."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from curate.derive import derive
from curate.lineart import XDoGParams
from db import Catalog
from train.app import app
import train.cli  # noqa: F401  (registers the commands)
from train.loop import train
from train.models.pix2pix import UNetGenerator
from train.options import TrainOptions
from train.sketch.evaluate import cascade
from train.sketch.paint import paint
from train.runs import RunError, load_run

from test_sketch_input import bomb_png, drawn_face, png
from test_train import ddp_ranks, interrupted_after, same_final_checkpoints

runner = CliRunner()
TINY = ["--size", "32", "--ngf", "8", "--ndf", "8", "--batch", "4", "--z-dim", "4", "--min-per-tag", "1",
        "--log-every", "2", "--diag-every", "2", "--no-progress"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def sketch_catalog(tiny_catalog):
    """The tiny catalog with `curate sketch`'s line art of every face."""
    with Catalog(tiny_catalog) as cat:
        assert derive(cat, workers=1).made == 24
    return tiny_catalog


def options(catalog, tmp_path, **kw) -> TrainOptions:
    base = dict(model="pix2pix", catalog=str(catalog), labels="manual", attrs=["hair_color", "eye_color"], size=32,
                ngf=8, ndf=8, batch=4, z_dim=4, min_per_tag=1, log_every=2, diag_every=2,
                runs_dir=str(tmp_path / "runs"), cache_dir=str(tmp_path / "cache"), progress=False)
    base.update(kw)
    return TrainOptions(**base)


def train_cli(catalog, tmp_path, *extra):
    res = invoke("pix2pix", "--db", catalog, *TINY, "--runs-dir", tmp_path / "runs", "--cache-dir",
                 tmp_path / "cache", *extra)
    assert res.exit_code == 0, res.output
    return load_run(res.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("tags", [True, False])
def test_pix2pix_trains_writes_its_grid_and_paints(tags, sketch_catalog, tmp_path):
    run = train_cli(sketch_catalog, tmp_path, *(["--labels", "manual"] if tags else []), "--iters", 4)
    assert run.dir.name == f"00000-pix2pix-{'manual' if tags else 'uncond'}"
    assert run.sketch["kind"] == "sketch" and json.loads(run.sketch["params"])["sigma"] == XDoGParams().sigma
    assert run.conditional == tags and (run.spec is not None) == tags
    rows = list(csv.DictReader(open(run.metrics_path)))
    assert [int(r["step"]) for r in rows] == [2, 4]
    for key in ("l1", "mode_seeking", "noise_spread", "sample_distance"):
        assert float(rows[-1][key]) > 0, key
    assert (rows[-1]["aux_acc_real"] != "") == tags
    # rows: 8 held-out sketches (the 5 test faces, then training ones); columns: sketch, real face, and
    # the own tags then each of the 3 hair colours (with tags), or 6 noises (without); 32 px tiles shown at 64
    cols = 2 + (1 + 3 if tags else 6)
    grid = np.asarray(Image.open(run.samples_dir / "000004.png"))
    assert grid.shape == (2 * (8 * 34 + 2), 2 * (cols * 34 + 2), 3)
    sketch_tile = grid[4:68, 4:68]
    assert (sketch_tile[..., 0] == sketch_tile[..., 2]).all() and (sketch_tile < 128).any()   # grey line art
    assert isinstance(run.generator(), UNetGenerator)

    with Catalog(sketch_catalog) as cat:
        sketch = np.asarray(Image.open(io.BytesIO(cat.derived_image("sketch", 1))).convert("L")
                            .resize((32, 32)))
    wanted = {"hair_color": "red hair"} if tags else {}
    faces = paint(run.dir, sketch, wanted, 3, seed=1)
    assert len(faces) == 3 and all(f.shape == (32, 32, 3) and f.dtype == np.uint8 for f in faces)
    assert all(np.array_equal(a, b) for a, b in zip(faces, paint(run.dir, sketch, wanted, 3, seed=1)))
    assert not np.array_equal(faces[0], faces[1])                  # the noise paints it other ways
    if tags:
        other = paint(run.dir, sketch, {"hair_color": "blonde hair"}, 3, seed=1)
        assert not np.array_equal(faces[0], other[0])
        with pytest.raises(ValueError, match="unknown hair_color 'green hair'"):
            paint(run.dir, sketch, {"hair_color": "green hair"}, 1, seed=0)
    else:
        with pytest.raises(ValueError, match="without tags"):
            paint(run.dir, sketch, {"hair_color": "red hair"}, 1, seed=0)
    with pytest.raises(ValueError, match="paints uint8 32x32 sketches"):
        paint(run.dir, np.zeros((64, 64), np.uint8), {}, 1, seed=0)


def test_resume_is_exact_with_augmented_sketches_tags_and_noise(sketch_catalog, tmp_path):
    """12 steps straight == 6, stop, resume, 6 more: the same weights, bit for bit (the sketch
    augmentation, the tag swaps and the mode-seeking pairs all draw from the step's generator)."""
    kw = dict(iters=12, log_every=6, diag_every=6, sample_every=6, checkpoint_every=5)
    straight = train(options(sketch_catalog, tmp_path, **kw))
    with interrupted_after(6):
        halves = train(options(sketch_catalog, tmp_path, **kw))
    assert not (halves / "G_ema.pt").exists()
    res = invoke("pix2pix", "--resume", halves, "--no-progress")
    assert res.exit_code == 0, res.output
    same_final_checkpoints(straight, halves, 12)


def test_ddp_two_cpu_processes(sketch_catalog, tmp_path):
    """torchrun, two CPU processes: both ranks hold the same weights, one run folder."""
    r0, r1 = ddp_ranks(options(sketch_catalog, tmp_path, iters=2), tmp_path)
    for k in r0["G"]:
        assert torch.equal(r0["G"][k], r1["G"][k]), k
    assert len(list((tmp_path / "runs").iterdir())) == 1
    assert load_run(r0["run_dir"]).options["world_size"] == 2


def test_bf16_hinge_spectral_norm_and_colour_augmentation(sketch_catalog, tmp_path):
    run = load_run(train(options(sketch_catalog, tmp_path, iters=2, precision="bf16", loss="hinge", sn="both",
                                 diffaug="color", noise_levels=3)))
    assert run.options["arch"]["G"]["noise_levels"] == 3 and run.generator().noise_levels == 3
    assert run.options["precision"] == "bf16" and run.options["arch"]["D"]["norm"] == "none"
    assert run.options["arch"]["G"]["sn"] and run.options["arch"]["D"]["sn"]
    assert all(np.isfinite(float(r["loss_g"])) for r in csv.DictReader(open(run.metrics_path)))
    assert isinstance(run.generator(), UNetGenerator)


@pytest.mark.parametrize("args, message", [
    (["pix2pix", "--labels", "manual", "--diffaug", "translation"], "does not fit pix2pix"),
    (["pix2pix", "--arch", "resnet"], "has its own nets"),
    (["pix2pix", "--tag-swap", "2"], "--tag-swap is a share"),
    (["pix2pix", "--noise-levels", "6"], "--noise-levels must be between 1 and 5 (the decoder's levels at 32x32)"),
    (["acgan", "--labels", "manual", "--l1-weight", "10"], "--l1-weight is for sketch models"),
])
def test_options_that_do_not_fit_are_refused(args, message, sketch_catalog, tmp_path):
    res = invoke(*args, "--db", sketch_catalog, *TINY, "--runs-dir", tmp_path / "runs")
    assert res.exit_code == 2 and message in res.output, res.output
    assert not (tmp_path / "runs").exists()


def test_line_art_missing_or_mixed_is_refused(tiny_catalog, tmp_path):
    res = invoke("pix2pix", "--db", tiny_catalog, *TINY, "--runs-dir", tmp_path / "runs")
    assert res.exit_code == 2 and "have no line art" in res.output and "`curate sketch` makes it" in res.output
    with Catalog(tiny_catalog) as cat:
        derive(cat, workers=1)
        derive(cat, params=XDoGParams(sigma=1.0), workers=1, limit=5)       # a rerun stopped half-way
    res = invoke("pix2pix", "--db", tiny_catalog, *TINY, "--runs-dir", tmp_path / "runs")
    assert res.exit_code == 2 and "made with 2 parameter sets" in res.output, res.output
    assert not (tmp_path / "runs").exists()


def test_line_art_is_read_per_batch_from_the_crops_cache_machinery(sketch_catalog, tmp_path):
    """The sketches go through train/face_cache.py as the crops do: a file of one-channel rows read
    per batch (FaceRows), keyed by the line art's content and parameters; new parameters, new file."""
    from train.data import load_training_set
    from train.face_cache import FaceRows, Pictures, cached_images

    opts = options(sketch_catalog, tmp_path)
    with Catalog(sketch_catalog) as cat:
        data = load_training_set(cat, opts)
        assert isinstance(data.images, FaceRows) and isinstance(data.aligned, FaceRows)
        n = len(data.face_ids)
        assert data.aligned.shape == (n, 1, 32, 32) and len(list((tmp_path / "cache").glob("sketch-32px-*.npy"))) == 1
        first = np.asarray(Image.open(io.BytesIO(cat.derived_image("sketch", data.face_ids[0])))
                           .convert("L").resize((32, 32), Image.Resampling.BOX))
        assert np.abs(data.aligned[0][0].numpy().astype(int) - first).max() <= 2     # the stored line art
        phash = cat.derived_params("sketch", data.face_ids).popitem()[0]
        in_memory = cached_images(cat, data.face_ids, 32, None, what=Pictures("sketch", phash))
        assert data.aligned[:].equal(in_memory)
        derive(cat, params=XDoGParams(p=30), workers=1)
        again = load_training_set(cat, opts)
    assert len(list((tmp_path / "cache").glob("sketch-32px-*.npy"))) == 2 and not again.aligned[:].equal(in_memory)
    assert len(list((tmp_path / "cache").glob("faces-32px-*.npy"))) == 1      # the crops' file is the same


def test_resume_refuses_line_art_made_since_with_other_parameters(sketch_catalog, tmp_path):
    with interrupted_after(2):
        run_dir = train(options(sketch_catalog, tmp_path, iters=4))
    with Catalog(sketch_catalog) as cat:
        derive(cat, params=XDoGParams(p=30), workers=1)
    res = invoke("pix2pix", "--resume", run_dir, "--no-progress")
    assert res.exit_code == 2 and "resuming would change its data" in res.output, res.output


# -- train sample --sketch ----------------------------------------------------------------

@pytest.fixture
def sketch_run(sketch_catalog, tmp_path):
    return train(options(sketch_catalog, tmp_path, iters=2))


def test_sample_paints_a_drawing_file_and_a_folder(sketch_run, tmp_path):
    drawing = tmp_path / "face.png"
    drawing.write_bytes(png(drawn_face()))
    out = tmp_path / "out.png"
    res = invoke("sample", sketch_run, "--sketch", drawing, "--tags", "red hair, blue eyes", "-n", 3, "-o", out)
    assert res.exit_code == 0, res.output
    h, w, _ = np.asarray(Image.open(out)).shape   # the sketch, then 3 paintings (shown at 64 px); the tags
    assert h == 22 + 2 * (34 + 2) and w > 2 * (4 * 34 + 2)    # above, the file's name on the row's left
    folder = tmp_path / "drawings"
    folder.mkdir()
    (folder / "a.png").write_bytes(png(drawn_face()))
    (folder / "b.png").write_bytes(png(drawn_face(size=500, width=6)))
    (folder / "blank.png").write_bytes(png(Image.new("RGB", (100, 100), "white")))
    (folder / "notes.txt").write_text("not a picture")
    res = invoke("sample", sketch_run, "--sketch", folder, "-n", 2, "-o", out)
    assert res.exit_code == 0, res.output
    assert "skipped" in res.output and "blank.png is blank" in res.output
    h, w, _ = np.asarray(Image.open(out)).shape
    assert h == 2 * (2 * 34 + 2) and w > 2 * (3 * 34 + 2)


def test_sample_of_many_drawings_shows_progress_and_writes_a_page_per_few_drawings(sketch_run, tmp_path,
                                                                                    monkeypatch):
    """issue 24 item 13: 490 drawings ran 9 minutes without a bar into one 33,324 px tall grid; now a bar
    (--progress/--no-progress) and a page per DRAWINGS_PER_PAGE drawings, the files written named."""
    import train.commands.train as train_commands
    monkeypatch.setattr(train_commands, "DRAWINGS_PER_PAGE", 2)
    folder = tmp_path / "drawings"
    folder.mkdir()
    for name in "abc":
        (folder / f"{name}.png").write_bytes(png(drawn_face()))
    out = tmp_path / "out.png"
    res = invoke("sample", sketch_run, "--sketch", folder, "-n", 2, "-o", out, "--progress")
    assert res.exit_code == 0, res.output
    assert "painting" in res.output and "3/3" in res.output          # the bar
    assert f"6 images -> {out}, {tmp_path / 'out-2.png'}" in res.output
    assert np.asarray(Image.open(out)).shape[0] == 2 * (2 * 34 + 2)          # two drawings on page 1
    assert np.asarray(Image.open(tmp_path / "out-2.png")).shape[0] == 2 * 34 + 2 + 2    # one on page 2
    res = invoke("sample", sketch_run, "--sketch", folder, "-n", 2, "-o", out, "--no-progress")
    assert res.exit_code == 0 and "painting" not in res.output


def photo() -> bytes:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:128, :128] / 128
    arr = np.stack([200 * x + 30, 150 * y + 50, 120 * (1 - x) + 60], -1) + rng.normal(0, 12, (128, 128, 3))
    return png(Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)))


@pytest.mark.parametrize("content, message", [
    (png(Image.new("RGB", (200, 200), "white")), "is blank"),
    (b"", "empty file"),
    (photo(), "looks like a photo or a painted picture"),
    (png(Image.new("RGB", (1, 1), "black")), "1x1 pixels is too small"),
    (bomb_png(20000, 20000), "exceeds the limit"),
])
def test_sample_refuses_bad_drawings_and_loses_nothing(content, message, sketch_run, tmp_path):
    drawing = tmp_path / "drawing.png"
    drawing.write_bytes(content)
    out = tmp_path / "out.png"
    out.write_bytes(b"an earlier grid")
    res = invoke("sample", sketch_run, "--sketch", drawing, "-o", out)
    assert res.exit_code == 2 and message in res.output and str(drawing) in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1
    assert out.read_bytes() == b"an earlier grid" and drawing.read_bytes() == content


def test_sample_refuses_a_sketch_for_other_runs_and_no_sketch_for_sketch_runs(sketch_run, tiny_catalog, tmp_path):
    drawing = tmp_path / "face.png"
    drawing.write_bytes(png(drawn_face()))
    acgan = train(TrainOptions(model="acgan", catalog=str(tiny_catalog), labels="manual", attrs=["hair_color"],
                               size=32, ngf=8, ndf=8,
                               batch=4, z_dim=4, min_per_tag=1, iters=1, runs_dir=str(tmp_path / "runs"),
                               cache_dir=str(tmp_path / "cache"), progress=False))
    res = invoke("sample", acgan, "--sketch", drawing, "-o", tmp_path / "x.png")
    assert res.exit_code == 2 and "not a sketch model" in res.output
    res = invoke("sample", sketch_run, "-o", tmp_path / "x.png")
    assert res.exit_code == 2 and "is a sketch model (pix2pix): give --sketch" in res.output
    with pytest.raises(RunError, match="not a sketch model"):
        paint(acgan, np.full((32, 32), 255, np.uint8), {}, 1, 0)
    assert not (tmp_path / "x.png").exists()


# -- train eval and compare -----------------------------------------------------------------

def test_eval_and_compare_a_sketch_run(sketch_run, sketch_catalog, tmp_path):
    judge = tmp_path / "judge.pt"
    assert invoke("judge", "--db", sketch_catalog, "--epochs", 1, "--no-progress", "-o", judge).exit_code == 0
    drawings = tmp_path / "drawings"
    drawings.mkdir()
    (drawings / "face.png").write_bytes(png(drawn_face()))
    res = invoke("eval", sketch_run, "--judge", judge, "--drawings", drawings, "--no-download", "-n", 200)
    assert res.exit_code == 0, res.output
    assert "-n 200 does not apply to a sketch run: it paints the test split's 5 sketches" in res.output
    ev = json.loads((sketch_run / "eval.json").read_text())
    s = ev["sketch"]
    f = s["fidelity"]
    assert f["model"]["n"] == s["test_faces"] == ev["n"] == 5
    assert f["floor"]["chamfer"] < f["ceiling"]["chamfer"] and "chamfer" in f["position"]
    assert set(ev["judge_accuracy"]) == {"hair_color", "eye_color"} and ev["judge_accuracy"]["hair_color"]["n"] == 15
    assert "hair_color" in s["judge_accuracy_own_tags"] and s["noise"]["pixel_distance"] > 0
    assert ev["judge_fid"] >= 0 and "near_duplicates" in ev["diversity"]["fake"]
    assert [d["file"] for d in s["drawings"]["files"]] == ["face.png"]
    assert (sketch_run / "eval_drawings.png").exists()
    if cascade() is not None:     # the LBP cascade's file: ../shared's copy, or downloaded once
        assert 0 <= s["faces_found"]["lbp"]["real"] <= 1 and "faces_found_lbp" in s["drawings"]["files"][0]
        assert "the LBP anime-face cascade finds one in" in res.output
    report = tmp_path / "report"
    res = invoke("compare", sketch_run, "-o", report, "--db", sketch_catalog)
    assert res.exit_code == 0, res.output
    md = (report / "report.md").read_text()
    assert "## Sketch models" in md and "hand drawings" in md
