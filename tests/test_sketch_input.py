"""Users' drawings normalised like training sketches, bad drawings refused, and the augmentation."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from train.sketch.drawing import (LINE_WIDTH, DrawingError, crop_to_face, drawing_stats, normalise_drawing,
                                  read_drawing, stroke_width, widen_lines)
from train.sketch.augment import SketchAugment, ink_tensor


def drawn_face(size: int = 300, paper=(255, 255, 255, 255), ink=(20, 20, 20, 255), width: int = 3) -> Image.Image:
    """Strokes of a face: an outline, two eyes, a mouth, on `paper` (alpha 0: transparent)."""
    im = Image.new("RGBA", (size, size), paper)
    d = ImageDraw.Draw(im)
    s = size / 100
    d.ellipse([20 * s, 15 * s, 80 * s, 90 * s], outline=ink, width=width)
    for x in (35, 60):
        d.ellipse([x * s, 45 * s, (x + 8) * s, 53 * s], outline=ink, width=width)
    d.arc([40 * s, 60 * s, 60 * s, 75 * s], 20, 160, fill=ink, width=width)
    return im


def png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def test_a_drawing_becomes_a_line_map_with_ink_on_its_strokes():
    lines = normalise_drawing(drawn_face(), size=64, crop_face=False)
    assert lines.shape == (64, 64) and lines.dtype == np.uint8
    ink = lines < 128
    assert 0.01 < ink.mean() < 0.3
    assert ink[32, 10:16].any() or ink[32, 48:56].any()        # the outline's sides
    assert not ink[5:10, 5:10].any()                            # the corner is paper


def test_paper_kind_and_ink_colour_do_not_matter():
    white = normalise_drawing(png(drawn_face()), crop_face=False)
    for variant in (drawn_face(paper=(0, 0, 0, 0)),                       # transparent background
                    drawn_face(paper=(200, 195, 185, 255)),               # grey, tinted paper
                    drawn_face(ink=(30, 60, 200, 255)),                   # a blue pen
                    drawn_face(size=900, width=9).convert("L")):          # big, greyscale
        other = normalise_drawing(variant, crop_face=False)
        assert ((other < 128) == (white < 128)).mean() > 0.93


def bomb_png(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels (its data is a few bytes)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = lambda kind, data: (struct.pack(">I", len(data)) + kind + data  # noqa: E731
                                + struct.pack(">I", zlib.crc32(kind + data)))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 8)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("picture, says", [
    (Image.new("RGB", (200, 200), "white"), "blank: one flat tone"),
    (Image.new("RGB", (200, 200), (90, 140, 60)), "blank: one flat tone"),
    (Image.new("RGBA", (200, 200), (0, 0, 0, 0)), "blank: one flat tone"),
    (Image.new("RGB", (1, 1), "black"), "1x1 pixels is too small"),
    (bomb_png(20000, 20000), "exceeds the limit"),
    (b"", "empty file"),
    (b"GIF89a not really", "not a picture"),
    (np.zeros((5, 5, 7)), "not a picture"),
])
def test_bad_drawings_get_a_clear_error(picture, says):
    with pytest.raises(DrawingError, match=says) as e:
        normalise_drawing(picture, name="my drawing.png")
    assert str(e.value).startswith("my drawing.png")


def test_a_faint_speck_is_blank_after_line_extraction():
    im = Image.new("RGB", (200, 200), "white")
    ImageDraw.Draw(im).point([(100, 100), (101, 100)], fill=(150, 150, 150))
    with pytest.raises(DrawingError, match="blank"):
        normalise_drawing(im, crop_face=False)


def test_a_photo_or_painting_is_not_a_drawing():
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:128, :128] / 128
    photo = np.stack([200 * x + 30, 150 * y + 50, 120 * (1 - x) + 60], -1) + rng.normal(0, 12, (128, 128, 3))
    with pytest.raises(DrawingError, match="looks like a photo or a painted picture"):
        normalise_drawing(np.clip(photo, 0, 255).astype(np.uint8), crop_face=False)


def test_read_drawing_names_a_missing_file(tmp_path):
    with pytest.raises(DrawingError, match="nope.png: cannot read"):
        read_drawing(tmp_path / "nope.png")


@pytest.mark.shared
def test_shared_drawings_pass_and_shared_faces_do_not(shared):
    for path in sorted((shared / "data" / "sketches").glob("*.png")):
        rgb = read_drawing(path)
        face, box = crop_to_face(rgb)
        assert box is not None and face.shape[0] == face.shape[1] < min(rgb.shape[:2])
        lines = normalise_drawing(path, size=64)
        assert 0.05 < (lines < 128).mean() < 0.5
    faces = sorted((shared / "data" / "anime_faces_labelled" / "images").glob("*.jpg"))[:40]
    refused = 0
    for path in faces:
        try:
            normalise_drawing(path, crop_face=False)
        except DrawingError:
            refused += 1
    assert refused >= 36, f"only {refused} of {len(faces)} painted faces refused"
    stats = drawing_stats(read_drawing(faces[0]))
    assert stats.non_paper > 0 and stats.filled > 0


# -- augmentation -----------------------------------------------------------------------

def sketches(n: int = 6, size: int = 64) -> torch.Tensor:
    maps = [normalise_drawing(drawn_face(size=200 + 20 * i), size=size, crop_face=False) for i in range(n)]
    return ink_tensor(torch.from_numpy(np.stack(maps))[:, None])


def test_augmentation_is_seeded_and_keeps_shape_and_range():
    x = sketches()
    aug = SketchAugment()
    a = aug(x, torch.Generator().manual_seed(3))
    b = aug(x, torch.Generator().manual_seed(3))
    c = aug(x, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == x.shape and a.dtype == x.dtype and a.min() >= -1 and a.max() <= 1
    assert (a != x).flatten(1).any(1).float().mean() > 0.5     # most samples changed
    assert torch.equal(SketchAugment(p=0)(x, torch.Generator().manual_seed(3)), x)


def test_augmentation_changes_lines_not_paper():
    x = sketches(16)
    y = SketchAugment(p=1)(x, torch.Generator().manual_seed(0))
    ink_before, ink_after = (1 - x) / 2, (1 - y) / 2
    assert ink_after.mean() < 2.5 * ink_before.mean() and ink_after.mean() > 0.3 * ink_before.mean()
    far = torch.nn.functional.max_pool2d(ink_before, 9, 1, 4) < 0.05            # 4+ px from any line
    assert ink_after[far].max() < 0.05


@pytest.mark.parametrize("size", [32, 128])
def test_augmentation_at_other_sizes(size):
    x = sketches(3, size)
    assert SketchAugment()(x, torch.Generator().manual_seed(0)).shape == (3, 1, size, size)


def test_augmentation_refuses_nonsense():
    with pytest.raises(ValueError):
        SketchAugment(level=(0.6, 0.2))
    with pytest.raises(ValueError):
        SketchAugment(p=2)


@pytest.mark.shared
def test_eval_finds_the_shared_drawings_from_any_working_directory(shared, tmp_path, monkeypatch):
    # `train eval` of a sketch run scores ../shared's hand drawings by default: it used to look for
    # them relative to the working directory only, so run from elsewhere it silently skipped them.
    from train.commands.eval import default_drawings

    monkeypatch.chdir(tmp_path)
    assert default_drawings() == shared / "data" / "sketches"


def lines_of_width(width: int, side: int = 256) -> np.ndarray:
    """Paper with three vertical strokes `width` px wide."""
    lines = np.full((side, side), 255, np.uint8)
    for x in (60, 128, 196):
        lines[30:side - 30, x:x + width] = 0
    return lines


@pytest.mark.parametrize("width", [2, 4, 7])
def test_stroke_width_measures_the_strokes(width):
    assert stroke_width(lines_of_width(width)) == pytest.approx(width, rel=0.1)
    assert stroke_width(np.full((64, 64), 255, np.uint8)) == 0


def test_thin_lines_are_widened_to_the_training_sketches_and_wide_ones_kept():
    target = LINE_WIDTH * 256                                          # 5.6 px at 256 px
    widened = widen_lines(lines_of_width(2))
    assert stroke_width(widened) == pytest.approx(target, abs=1.0)
    assert ((widened < 128) >= (lines_of_width(2) < 128)).all()       # every drawn pixel stays ink
    wide = lines_of_width(9)
    assert np.array_equal(widen_lines(wide), wide)                      # never thinned


def test_a_thin_pen_drawing_is_given_to_the_model_with_training_width_lines():
    thin = drawn_face(400, width=2)
    plain, widened = (normalise_drawing(thin, 64, crop_face=False, widen=w) for w in (False, True))
    ink = lambda m: float((255 - m.astype(np.float32)).mean() / 255)  # noqa: E731
    assert ink(widened) > 1.3 * ink(plain)
    assert ((widened < 128) >= (plain < 128)).all()                     # the drawn lines, wider
