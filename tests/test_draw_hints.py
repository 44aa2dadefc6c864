"""The Draw page's colour hints (label_app/draw_hints.py) through AppTest: hints painted or uploaded
reach the painter where they were drawn; a run without hints shows no hint controls; a bad hint
upload gets a one-line reason and the faces are still painted, without hints.

The painter is the deterministic stand-in of tests/test_draw_page.py, recording the hint picture
it is given; that hints change what a model paints is tests/test_sketch_hints.py's
(test_hints_reach_the_generator, test_a_hints_run_trains_paints_and_samples_with_hints).
"""

from __future__ import annotations

import html
import io

import numpy as np
import torch
from PIL import Image

from curate.lineart import XDoGParams
from curate.detectors import Box
from label_app import draw_hints, draw_page, painting
from train.sketch import drawing
from train.sketch.drawing import normalise_drawing
from train.sketch.hints import hints_from_picture

from test_draw_page import RecordingPainter, drawing_png, make_sketch_run, open_draw_page

SIZE = 32


def png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def square_hint(side: int, box: tuple[int, int, int, int], colour) -> Image.Image:
    """Transparent `side` x `side`, one opaque square `box` (x0, y0, x1, y1) of `colour`."""
    im = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    im.paste((*colour, 255), box)
    return im


def mask_and_colour(hints: np.ndarray) -> tuple[np.ndarray, torch.Tensor]:
    h = hints_from_picture(hints, SIZE)[0]
    return h[3].numpy() > 0, h[:3]


def warnings(at) -> list[str]:
    return [html.unescape(w.value) for w in at.warning]


def captions(at) -> str:
    return " ".join(c.value for c in at.caption)


def page(tiny_catalog, tmp_path, monkeypatch, hints: bool = True, face=None):
    """The Draw page with a stand-in painter and drawing_png uploaded; animeface's answer fixed to `face`
    (None: no face, the drawing used whole), so that where hints land is the test's to say."""
    monkeypatch.setattr(drawing, "find_face", lambda rgb: face)
    draw_page._normalised.clear()                 # cached by content: made again with this answer
    painter = RecordingPainter()
    monkeypatch.setattr(painting, "find_painter", lambda: painter)
    make_sketch_run(tmp_path / "runs", size=SIZE, hints=hints)
    at = open_draw_page(tiny_catalog, tmp_path / "runs", monkeypatch)
    at.file_uploader(key="draw-upload-0").set_value(("face.png", drawing_png(), "image/png")).run()
    assert not at.exception, at.exception
    return at, painter


def test_an_uploaded_hint_picture_reaches_the_painter_where_it_was_drawn(tiny_catalog, tmp_path, monkeypatch):
    at, painter = page(tiny_catalog, tmp_path, monkeypatch)
    assert painter.hints[-1] is None and at.color_picker(key="draw_hint_colour")   # the controls are there
    hint = square_hint(240, (30, 30, 60, 60), (255, 0, 0))       # on the 240x240 drawing: 4..8 at 32 px
    at.file_uploader(key="draw-hints-upload-0").set_value(("hints.png", png(hint), "image/png")).run()
    assert not at.exception and not at.warning, (at.exception, warnings(at))
    hints = painter.hints[-1]
    assert hints is not None and hints.shape == (240, 240, 4)
    mask, colour = mask_and_colour(hints)
    want = np.zeros((SIZE, SIZE), bool)
    want[4:8, 4:8] = True
    assert np.array_equal(mask, want)
    assert torch.allclose(colour[:, 4:8, 4:8], torch.tensor([1.0, -1.0, -1.0])[:, None, None])
    sketch = painter.calls[-1][1]                  # (no face found: the whole drawing)
    assert np.array_equal(sketch, normalise_drawing(drawing_png(), SIZE, XDoGParams(), crop_face=False))
    assert "4 faces painted with colour hints in" in captions(at)
    assert len(at.image) == 1 + 4          # the sketch with the hints over it, and the faces


def test_hints_are_cut_to_the_face_as_the_drawing_is(tiny_catalog, tmp_path, monkeypatch):
    """Where a face is found the drawing is cropped to it, and the hints with it: a hint over the face's
    middle reaches the painter in the middle of the sketch the model sees."""
    at, painter = page(tiny_catalog, tmp_path, monkeypatch, face=Box(120, 80, 80, 80, 1.0))   # 60 x 1.5 = 120 px
    hint = square_hint(240, (150, 110, 170, 130), (255, 0, 0))    # the face box's middle: (160, 120)
    at.file_uploader(key="draw-hints-upload-0").set_value(("hints.png", png(hint), "image/png")).run()
    assert not at.exception and not at.warning, (at.exception, warnings(at))
    mask, _ = mask_and_colour(painter.hints[-1])
    ys, xs = np.nonzero(mask)
    assert abs(ys.mean() - 15.5) <= 1 and abs(xs.mean() - 15.5) <= 1   # whole, it would sit at (16, 21)
    lines, frame = drawing.normalise_framed(drawing_png(), SIZE, XDoGParams())
    assert np.array_equal(painter.calls[-1][1], lines) and frame is not None


def test_hints_outside_the_face_crop_are_said_to_be_left_out(tiny_catalog, tmp_path, monkeypatch):
    at, painter = page(tiny_catalog, tmp_path, monkeypatch, face=Box(120, 80, 80, 80, 1.0))   # crop 100..220
    hint = square_hint(240, (10, 10, 40, 40), (255, 0, 0))            # the top left corner: outside it
    at.file_uploader(key="draw-hints-upload-0").set_value(("hints.png", png(hint), "image/png")).run()
    assert not at.exception and painter.hints[-1] is None
    assert "Your colour hints lie outside the face the model sees" in captions(at)
    assert "4 faces painted in" in captions(at)


def test_hints_painted_on_the_hint_canvas_reach_the_painter(tiny_catalog, tmp_path, monkeypatch):
    """The canvas itself needs a browser; here its stand-in paints a square in the picked colour."""
    seen = {}

    def canvas(picture, colour, side, nonce):
        seen["backdrop"] = draw_hints.backdrop(picture, side)
        rgb = tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
        return np.asarray(square_hint(side, (side // 2, side // 2, side // 2 + 40, side // 2 + 40), rgb))
    monkeypatch.setattr(draw_hints, "hint_canvas", canvas)
    at, painter = page(tiny_catalog, tmp_path, monkeypatch)
    at.color_picker(key="draw_hint_colour").pick("#0000ff").run()
    assert not at.exception, at.exception
    assert seen["backdrop"] is not None and max(seen["backdrop"].size) <= 320     # the drawing under the brush
    mask, colour = mask_and_colour(painter.hints[-1])
    assert mask[16:20, 16:20].all() and mask.sum() == 16                          # 160..200 of 320 -> 16..20
    assert torch.allclose(colour[:, 16:20, 16:20], torch.tensor([-1.0, -1.0, 1.0])[:, None, None])
    # an uploaded hint picture replaces the strokes
    hint = square_hint(240, (0, 0, 30, 30), (0, 255, 0))
    at.file_uploader(key="draw-hints-upload-0").set_value(("hints.png", png(hint), "image/png")).run()
    mask, _ = mask_and_colour(painter.hints[-1])
    assert mask[:4, :4].all() and mask.sum() == 16


def test_a_run_without_hints_shows_no_hint_controls(tiny_catalog, tmp_path, monkeypatch):
    at, painter = page(tiny_catalog, tmp_path, monkeypatch, hints=False)
    assert len(at.color_picker) == 0 and len(at.file_uploader) == 1       # only the drawing's upload
    assert "trained without colour hints" in captions(at)
    assert painter.calls and painter.hints[-1] is None
    assert "4 faces painted in" in captions(at)


def test_a_bad_hint_upload_gets_one_line_and_the_page_paints_without_hints(tiny_catalog, tmp_path, monkeypatch):
    at, painter = page(tiny_catalog, tmp_path, monkeypatch)
    for name, data, reason in [
        ("notes.png", b"not a picture at all", "notes.png: cannot read the hint picture"),
        ("wide.png", png(square_hint(480, (0, 0, 10, 10), (255, 0, 0)).crop((0, 0, 480, 240))),
         "wide.png: 480x240 is not of the drawing's proportions (240x240)"),
    ]:
        calls = len(painter.calls)
        at.file_uploader(key="draw-hints-upload-0").set_value((name, data, "image/png")).run()
        assert not at.exception, at.exception
        shown = warnings(at)
        assert len(shown) == 1 and reason in shown[0] and "painted without hints" in shown[0], shown
        assert "\n" not in shown[0]
        assert len(painter.calls) > calls and painter.hints[-1] is None      # painted all the same
        assert "4 faces painted in" in captions(at)
    # a hint picture with nothing on it (all transparent) is no hint
    at.file_uploader(key="draw-hints-upload-0").set_value(
        ("empty.png", png(Image.new("RGBA", (240, 240), (0, 0, 0, 0))), "image/png")).run()
    assert not at.warning and painter.hints[-1] is None


def test_the_model_view_shows_the_hints_over_the_lines():
    lines = np.full((SIZE, SIZE), 255, np.uint8)
    lines[10, :] = 0
    assert np.array_equal(draw_hints.with_hints(lines, None), np.repeat(lines[..., None], 3, -1))
    shown = draw_hints.with_hints(lines, np.asarray(square_hint(64, (0, 0, 8, 8), (255, 0, 0))))
    assert (shown[:4, :4] == [255, 0, 0]).all() and (shown[10, 4:] == 0).all() and (shown[20, 20] == 255).all()
