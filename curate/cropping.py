"""The square crop around a face box, in source pixels."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from PIL import Image

from curate.detectors import Box


class Square(NamedTuple):
    """A crop square in source pixels; it may reach past the border (padded there)."""
    x: int
    y: int
    size: int


def crop_square(box: Box, width: int, height: int, margin: float) -> Square:
    """The square of side max(w, h) * margin centred on the box.

    When the square fits in the picture it is slid inside the border (no padding,
    the face stays whole); only a square bigger than the picture reaches outside.
    """
    side = max(1, round(max(box.w, box.h) * margin))
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    x, y = round(cx - side / 2), round(cy - side / 2)
    x = _slide(x, side, width)
    y = _slide(y, side, height)
    return Square(x, y, side)


def _slide(start: int, side: int, limit: int) -> int:
    if side <= limit:
        return min(max(start, 0), limit - side)
    return (limit - side) // 2  # centred, padded on both sides


def cut(rgb: Image.Image, square: Square, size: int) -> Image.Image:
    """The square resized to size x size; parts outside the picture repeat its edge pixels."""
    x, y, side = square
    w, h = rgb.size
    inside = rgb.crop((max(x, 0), max(y, 0), min(x + side, w), min(y + side, h)))
    if inside.size != (side, side):
        left, top = max(-x, 0), max(-y, 0)
        inside = _pad_edge(inside, left, top, side - inside.width - left, side - inside.height - top)
    return inside.resize((size, size), Image.Resampling.LANCZOS, reducing_gap=3.0)


def _pad_edge(im: Image.Image, left: int, top: int, right: int, bottom: int) -> Image.Image:
    arr = np.pad(np.asarray(im), ((top, bottom), (left, right), (0, 0)), mode="edge")
    return Image.fromarray(arr)

