"""The app's Draw page through AppTest: no model -> says so; with a painter -> sketch in, faces out.

The painter here is a deterministic stand-in injected by the test to check the page's wiring
(what it passes, what it shows); the product itself only ever paints with `train.sketch.paint`.
"""

from __future__ import annotations

import html
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

from curate.lineart import XDoGParams, params_json
from label_app import painting
from train import pretrained

SCRIPT = str(Path(__file__).resolve().parent.parent / "label_app" / "streamlit_app.py")
HAIR = ["blonde hair", "black hair", "red hair"]


def drawing_png() -> bytes:
    im = Image.new("RGBA", (240, 240), (0, 0, 0, 0))           # transparent paper
    d = ImageDraw.Draw(im)
    d.ellipse([50, 30, 190, 210], outline=(0, 0, 0, 255), width=3)
    d.ellipse([85, 100, 105, 115], outline=(0, 0, 0, 255), width=3)
    d.ellipse([135, 100, 155, 115], outline=(0, 0, 0, 255), width=3)
    d.arc([100, 140, 140, 170], 20, 160, fill=(0, 0, 0, 255), width=3)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def make_sketch_run(runs: Path, number: int = 1, size: int = 32, hints: bool = False) -> Path:
    run = runs / f"{number:05d}-pix2pix-manual"
    run.mkdir(parents=True)
    conditions = [{"name": "hair_color", "exclusive": True, "tags": HAIR, "freq": [0.4, 0.4, 0.2]},
                  {"name": "eye_color", "exclusive": True, "tags": ["blue eyes", "red eyes"], "freq": [0.5, 0.5]}]
    (run / "options.json").write_text(json.dumps({
        "model": "pix2pix", "size": size, "z_dim": 8, "arch": {},
        "sketch": {"kind": "sketch", "method": "xdog", "params": params_json("xdog", XDoGParams())},
        "conditions": conditions, **({"hints": True} if hints else {})}))
    return run


class RecordingPainter:
    """Paints each face as the sketch in a flat tint: enough to see the wiring, nothing learned."""

    def __init__(self):
        self.calls = []
        self.hints = []          # the hint picture of each call (None without)

    def __call__(self, run_dir, sketch, tags, n, seed, hints=None, on_hinted_tags=None):
        self.calls.append((Path(run_dir), sketch.copy(), dict(tags), n, seed))
        self.hints.append(None if hints is None else np.array(hints))
        tint = np.array([200, 160, 40], np.uint8) if tags.get("hair_color") == "blonde hair" else np.array([90, 90, 90])
        return [np.where(sketch[..., None] < 128, 0, tint).astype(np.uint8) for _ in range(n)]


def open_draw_page(db: Path, runs: Path, monkeypatch) -> AppTest:
    monkeypatch.setenv("LABEL_APP_DB", str(db))
    monkeypatch.setenv("LABEL_APP_RUNS", str(runs))
    at = AppTest.from_file(SCRIPT, default_timeout=60).run()
    at.text_input(key="who_name").input("dora")
    at.button[0].click().run()
    at.segmented_control(key="mode").set_value("Draw").run()
    assert not at.exception, at.exception
    return at


def infos(at: AppTest) -> str:
    """The alerts' text as the browser shows it (data in them is escaped: shown, never markup)."""
    return html.unescape(" ".join(e.value for e in [*at.info, *at.warning, *at.error]))


def test_without_a_painter_the_page_says_no_model(tiny_catalog, tmp_path, monkeypatch):
    monkeypatch.setattr(painting, "find_painter", lambda: None)
    make_sketch_run(tmp_path / "runs")
    at = open_draw_page(tiny_catalog, tmp_path / "runs", monkeypatch)
    assert "No sketch model is available" in infos(at)
    at.file_uploader[0].set_value(("face.png", drawing_png(), "image/png")).run()
    assert not at.exception
    assert len(at.image) >= 1                                 # the normalised sketch is shown
    assert "No sketch model is available" in infos(at)


def test_with_a_painter_but_no_sketch_run(tiny_catalog, tmp_path, monkeypatch):
    monkeypatch.setattr(painting, "find_painter", lambda: RecordingPainter())
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", tmp_path / "no-models")     # a package shipping none
    (tmp_path / "runs" / "00001-acgan-manual").mkdir(parents=True)     # a run, but not a sketch run
    (tmp_path / "runs" / "00001-acgan-manual" / "options.json").write_text('{"model": "acgan", "size": 32}')
    at = open_draw_page(tiny_catalog, tmp_path / "runs", monkeypatch)
    assert "no pix2pix runs in" in infos(at)


def test_upload_tags_and_painted_faces(tiny_catalog, tmp_path, monkeypatch):
    painter = RecordingPainter()
    monkeypatch.setattr(painting, "find_painter", lambda: painter)
    run = make_sketch_run(tmp_path / "runs", size=32)
    at = open_draw_page(tiny_catalog, tmp_path / "runs", monkeypatch)
    assert at.selectbox(key="draw_run").value.name == run.name
    at.selectbox(key="draw-tag-hair_color").set_value("blonde hair")
    at.slider(key="draw_n").set_value(3)
    at.file_uploader[0].set_value(("face.png", drawing_png(), "image/png")).run()
    assert not at.exception, at.exception
    run_dir, sketch, tags, n, seed = painter.calls[-1]
    assert run_dir == run and tags == {"hair_color": "blonde hair"} and n == 3 and seed == 0
    assert sketch.shape == (32, 32) and sketch.dtype == np.uint8 and (sketch < 128).any()
    assert len(at.image) == 1 + 3              # the sketch as the model sees it, and the faces
    assert "3 faces painted in" in " ".join(c.value for c in at.caption)

    at.button(key="draw_reseed").click().run()        # other faces: a new seed reaches the painter
    assert painter.calls[-1][4] != 0


def test_bad_drawings_and_painter_errors_are_one_line_messages(tiny_catalog, tmp_path, monkeypatch):
    from train.runs import RunError

    def broken(run_dir, sketch, tags, n, seed, hints=None, on_hinted_tags=None):
        raise RunError(f"{run_dir} has neither G_ema.pt nor a checkpoint yet")
    monkeypatch.setattr(painting, "find_painter", lambda: broken)
    make_sketch_run(tmp_path / "runs")
    at = open_draw_page(tiny_catalog, tmp_path / "runs", monkeypatch)
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (80, 80, 3), dtype=np.uint8))
    buf = io.BytesIO()
    photo.save(buf, "PNG")
    at.file_uploader[0].set_value(("holiday <b>photo</b>.png", buf.getvalue(), "image/png")).run()
    assert "holiday <b>photo</b>.png looks like a photo" in infos(at)
    assert "<b>" not in " ".join(w.value for w in at.warning)          # the name is text, not markup
    at.file_uploader[0].set_value(("face.png", drawing_png(), "image/png")).run()
    assert "neither G_ema.pt nor a checkpoint" in infos(at) and not at.exception


@pytest.mark.parametrize("options, ok", [
    ({"model": "pix2pix", "size": 64, "sketch": {"params": params_json("xdog", XDoGParams())}}, True),
    ({"model": "pix2pix", "size": 64}, False),                                  # no sketch settings
    ({"model": "pix2pix", "size": 64, "sketch": {"params": '{"method": "xdog", "version": 99}'}}, False),
    ({"model": "acgan", "size": 64}, False),
])
def test_which_folders_are_sketch_runs(tmp_path, options, ok):
    run = tmp_path / "00007-x"
    run.mkdir()
    (run / "options.json").write_text(json.dumps(options))
    assert (painting.read_sketch_run(run) is not None) == ok
    own = [r.dir for r in painting.sketch_runs(tmp_path) if not pretrained.is_pretrained(r.dir)]
    assert own == ([run] if ok else [])                               # (the shipped models follow them)


def test_a_real_tiny_pix2pix_run_paints_through_train_paint(tiny_catalog, tmp_path, monkeypatch):
    """No stand-in: a pix2pix run trained two steps at 32x32 on the tiny catalog's line art, found
    by the page and painted with `train.sketch.paint`."""
    from curate.derive import derive
    from db import Catalog
    from train.loop import train
    from train.options import TrainOptions

    with Catalog(tiny_catalog) as cat:
        derive(cat, workers=1)
    run = train(TrainOptions(model="pix2pix", catalog=str(tiny_catalog), labels="manual",
                             attrs=["hair_color", "eye_color"], size=32, ngf=8, ndf=8, batch=4, z_dim=4, min_per_tag=1,
                             iters=2, runs_dir=str(tmp_path / "runs"), cache_dir=str(tmp_path / "cache"),
                             progress=False))
    assert painting.find_painter() is not None
    at = open_draw_page(tiny_catalog, tmp_path / "runs", monkeypatch)
    assert at.selectbox(key="draw_run").value.name == run.name
    assert at.selectbox(key="draw-tag-hair_color").options == ["(any)", *HAIR]
    at.selectbox(key="draw-tag-hair_color").set_value("red hair")
    at.file_uploader[0].set_value(("face.png", drawing_png(), "image/png")).run()
    assert not at.exception, at.exception
    assert not at.error and "No sketch model" not in infos(at)
    assert len(at.image) == 1 + 4                # the sketch as the model sees it, and 4 painted faces
    assert "4 faces painted in" in " ".join(c.value for c in at.caption)


def test_a_fresh_install_paints_with_the_shipped_model(tiny_catalog, tmp_path, monkeypatch):
    """No runs of one's own, the real painter: the page picks `pretrained:sketch`, paints an upload
    in the tags asked for, and again with an uploaded hint picture."""
    if "sketch" not in pretrained.known():
        pytest.skip("no sketch model ships in this checkout")
    at = open_draw_page(tiny_catalog, tmp_path / "no-runs", monkeypatch)
    assert at.selectbox(key="draw_run").value.name == "pretrained:sketch"
    at.selectbox(key="draw-tag-hair_color").set_value("blue hair")
    at.file_uploader[0].set_value(("face.png", drawing_png(), "image/png")).run()
    assert not at.exception and not at.error, (at.exception, at.error)
    assert "4 faces painted in" in " ".join(c.value for c in at.caption)
    hints = Image.new("RGBA", (240, 240), (0, 0, 0, 0))
    ImageDraw.Draw(hints).rectangle([60, 40, 180, 70], fill=(240, 60, 60, 255))       # red over the forehead
    buf = io.BytesIO()
    hints.save(buf, "PNG")
    at.file_uploader(key="draw-hints-upload-0").set_value(("hints.png", buf.getvalue(), "image/png")).run()
    assert not at.exception and not at.error, (at.exception, at.error)
    assert "4 faces painted with colour hints in" in " ".join(c.value for c in at.caption)


def test_the_page_paints_with_the_threads_label_app_sets(tiny_catalog, tmp_path, monkeypatch):
    """`label-app --paint-threads N` (default 1) reaches the server as LABEL_APP_PAINT_THREADS, and the
    page paints with that many torch threads."""
    import torch
    from typer.testing import CliRunner
    from label_app import launch

    seen = {}
    monkeypatch.setattr(launch, "run_child", lambda command, env: seen.update(env) or 0)
    assert CliRunner().invoke(launch.app, ["--db", str(tiny_catalog)]).exit_code == 0
    assert seen["LABEL_APP_PAINT_THREADS"] == "1"
    assert CliRunner().invoke(launch.app, ["--db", str(tiny_catalog), "--paint-threads", "0"]).exit_code == 0
    assert seen["LABEL_APP_PAINT_THREADS"] == "0"

    threads = []          # torch's threads as the painter is called (OpenMP's setting is per thread:
                          # the page sets it in the script thread that paints)
    def painter(run_dir, sketch, tags, n, seed, hints=None, on_hinted_tags=None):
        threads.append(torch.get_num_threads())
        return RecordingPainter()(run_dir, sketch, tags, n, seed, hints)
    monkeypatch.setattr(painting, "find_painter", lambda: painter)
    make_sketch_run(tmp_path / "runs")
    for setting, want in (("1", 1), ("0", torch.get_num_threads())):
        monkeypatch.setenv("LABEL_APP_PAINT_THREADS", setting)
        at = open_draw_page(tiny_catalog, tmp_path / "runs", monkeypatch)
        at.file_uploader[0].set_value(("face.png", drawing_png(), "image/png")).run()
        assert threads[-1] == want


def test_the_page_says_which_tags_the_colour_hints_chose(tiny_catalog, tmp_path, monkeypatch):
    """The real painter, "black hair" asked and pink hints over the hair: the faces are painted with
    the hints' choice, and the page says so under them."""
    if "sketch" not in pretrained.known():
        pytest.skip("no sketch model ships in this checkout")
    at = open_draw_page(tiny_catalog, tmp_path / "no-runs", monkeypatch)
    at.selectbox(key="draw-tag-hair_color").set_value("black hair")
    at.file_uploader[0].set_value(("face.png", drawing_png(), "image/png")).run()
    assert not any("hints chose" in c.value for c in at.caption)
    hints = Image.new("RGBA", (240, 240), (0, 0, 0, 0))
    for box in ((38, 8, 202, 38), (15, 38, 45, 150), (195, 38, 225, 150)):     # the hair around the face
        ImageDraw.Draw(hints).rectangle(box, fill=(245, 140, 200, 255))
    buf = io.BytesIO()
    hints.save(buf, "PNG")
    at.file_uploader(key="draw-hints-upload-0").set_value(("hints.png", buf.getvalue(), "image/png")).run()
    assert not at.exception and not at.error, (at.exception, at.error)
    captions = " ".join(c.value for c in at.caption)
    assert "The colour hints chose pink hair over black hair" in captions, captions
