"""A user's drawing -> the line map a sketch model was trained on.

`normalise_drawing` takes any picture of a drawing (a file, bytes, a PIL image or an array;
any size, grey or colour, white, tinted or transparent paper) and returns what training
sketches are: XDoG line art (curate/lineart.py, with the run's parameters) of a face, as a
uint8 size x size map, ink 0 on paper 255. Pictures of a whole figure are cropped to the face
first when animeface finds one, with the margin of `curate crop`; `normalise_framed` also says where
that crop lies (a `Frame`), so that colour hints drawn over the whole drawing are cut the same way
(train/sketch/hints.py).

Bad input gets a `DrawingError` that says what is wrong, measured, not guessed:
- unreadable, too small (under 16 px) or too large (the decompression-bomb limit of curate);
- blank: one flat tone, or no lines left after line extraction;
- not a drawing: a drawing is mostly paper with thin lines. A photo or a painted picture
  has most of its area away from the paper tone (`non_paper`), large filled areas that
  survive a morphological opening (`filled`), or colour in such areas (`coloured`; thin lines
  of a coloured pen are fine). The limits lie between what XDoG sketches of the shared faces
  measure (non_paper <= 0.38, filled <= 0.007, coloured 0) and what the shared painted faces
  and illustrations measure (their medians: 0.54-0.64, 0.43-0.48, 0.27-0.29). With them, 2 of
  the 92 shared illustrations (face crops) and 2 of 100 shared face crops pass as drawings:
  very pale or near-blank pictures; both shared hand drawings pass.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from curate.cropping import crop_square, cut
from curate.detectors import AnimeFaceDetector
from curate.images import DEFAULT_MAX_PIXELS, ImageError, decode, to_rgb
from curate.lineart import XDoGParams, xdog

MIN_SIDE = 16               # smaller pictures hold no drawing of a face
CROP_MARGIN = 1.5           # as `curate crop`: crop side = face box side x this
MIN_FACE_SCORE = 0.7        # animeface likelihood, as `curate crop --min-score`
DETECT_SIDE = 640           # faces are looked for in the picture shrunk to this long side
ANALYSIS_SIDE = 256         # the measures below are taken at most at this size
PAPER_BAND = 0.1            # luminance within this of the paper tone counts as paper
MAX_NON_PAPER = 0.5         # drawings: at most half the picture away from the paper tone
MAX_FILLED = 0.2            # ... at most a fifth in areas wider than a line (7x7 opening at <= 256 px)
MAX_COLOURED = 0.03         # ... at most 3% in filled areas of colour (CIELAB chroma > 15)
MIN_INK = 0.003             # line maps with less ink (mean darkness) than this are empty
# The training sketches' stroke width, in fractions of the picture's side: the XDoG line art (default
# parameters) of the shared faces measures 2.05-2.17 px on their 96 px crops (10th-90th percentile).
# Hand drawings' lines are about half as wide (the two shared ones: 0.011 and 0.010), and a model
# trained on XDoG lines paints thin ones loosely: widened to this width, the shared drawings'
# paintings lie closer to the drawn lines themselves (measured against the lines before widening).
LINE_WIDTH = 0.022
WIDEN_SIDE = 256            # stroke width is measured and widened with the line map at most this size


@dataclass(frozen=True)
class Frame:
    """Where the model's square lies in a drawing centred on square paper (as `normalise_drawing`
    centres it), in fractions of that square's side; beyond 0-1 where the crop reaches past the paper."""
    left: float
    top: float
    right: float
    bottom: float


class DrawingError(ValueError):
    """A picture that cannot be used as a drawing; the message names it and says why."""


@dataclass(frozen=True)
class DrawingStats:
    paper: float         # the paper's luminance (0-1): the most common tone
    non_paper: float     # share of pixels away from it
    filled: float        # share of pixels in areas wider than a line (they survive a 7x7 opening)
    coloured: float      # share of pixels in such areas that are in colour (chroma > 15): paint
    contrast: float      # luminance range between the 1st and 99th percentile


def read_drawing(source, name: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """A file path, bytes, PIL image or array -> uint8 HxWx3 RGB, transparency on white paper."""
    label = name or (str(source) if isinstance(source, (str, os.PathLike)) else "the drawing")
    try:
        if isinstance(source, (str, os.PathLike)):
            try:
                data = Path(source).read_bytes()
            except OSError as e:
                raise DrawingError(f"{label}: cannot read ({e.strerror or e})") from None
            rgb = np.asarray(decode(data, max_pixels).image)
        elif isinstance(source, (bytes, bytearray)):
            rgb = np.asarray(decode(bytes(source), max_pixels).image)
        elif isinstance(source, Image.Image):
            if source.width * source.height > max_pixels:
                raise ImageError(f"{source.width}x{source.height} pixels exceeds the limit of {max_pixels:,}")
            rgb = np.asarray(to_rgb(source))
        else:
            rgb = _array_to_rgb(np.asarray(source), max_pixels)
    except ImageError as e:
        raise DrawingError(f"{label}: {e}") from None
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise DrawingError(f"{label}: {w}x{h} pixels is too small for a drawing (at least {MIN_SIDE} px a side)")
    return rgb


def _array_to_rgb(arr: np.ndarray, max_pixels: int) -> np.ndarray:
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        raise ImageError(f"an array of shape {arr.shape} is not a picture (HxW, HxWx3 or HxWx4)")
    if arr.shape[0] * arr.shape[1] > max_pixels:
        raise ImageError(f"{arr.shape[1]}x{arr.shape[0]} pixels exceeds the limit of {max_pixels:,}")
    if arr.dtype != np.uint8:
        arr = np.clip(arr * (255.0 if arr.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    return np.asarray(to_rgb(Image.fromarray(np.ascontiguousarray(arr))))   # L, RGB or RGBA by shape


def drawing_stats(rgb: np.ndarray) -> DrawingStats:
    """The measures that tell a line drawing from a photo or a painting."""
    h, w = rgb.shape[:2]
    scale = min(1.0, ANALYSIS_SIDE / max(h, w))
    if scale < 1:
        rgb = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2LAB).astype(np.float32)
    lum = lab[..., 0] / 255.0
    chroma = np.hypot(lab[..., 1] - 128, lab[..., 2] - 128)
    hist = np.convolve(np.bincount((lum * 63).astype(int).ravel(), minlength=64), [1, 1, 1], "same")
    paper = (int(np.argmax(hist)) + 0.5) / 63
    off = np.abs(lum - paper) >= PAPER_BAND
    filled = cv2.morphologyEx(off.astype(np.uint8), cv2.MORPH_OPEN, np.ones((7, 7), np.uint8))
    lo, hi = np.percentile(lum, [1, 99])
    return DrawingStats(paper=paper, non_paper=float(off.mean()), filled=float(filled.mean()),
                        coloured=float((filled.astype(bool) & (chroma > 15)).mean()), contrast=float(hi - lo))


def check_drawing(stats: DrawingStats, label: str = "the drawing") -> None:
    """Raise DrawingError when the measures say blank, or not a line drawing."""
    if stats.contrast < 0.05:
        raise DrawingError(f"{label} is blank: one flat tone, no lines")
    why = []
    if stats.non_paper > MAX_NON_PAPER:
        why.append(f"{stats.non_paper:.0%} of it is away from the paper tone (a drawing: at most "
                   f"{MAX_NON_PAPER:.0%})")
    if stats.filled > MAX_FILLED:
        why.append(f"{stats.filled:.0%} is filled areas wider than a line (at most {MAX_FILLED:.0%})")
    if stats.coloured > MAX_COLOURED:
        why.append(f"{stats.coloured:.0%} is in colour (at most {MAX_COLOURED:.0%})")
    if why:
        raise DrawingError(f"{label} looks like a photo or a painted picture, not a line drawing: "
                           + "; ".join(why))


def find_face(rgb: np.ndarray):
    """The most likely face box animeface finds (likelihood >= 0.7), or None. It looks at the picture
    shrunk to DETECT_SIDE (a face worth painting is large in a drawing), in a fraction of the time."""
    picture = Image.fromarray(rgb)
    scale = max(picture.size) / DETECT_SIDE
    if scale > 1:
        picture = picture.resize((round(picture.width / scale), round(picture.height / scale)), reducing_gap=2.0)
    boxes = [b for b in AnimeFaceDetector().detect(picture) if (b.score or 0) >= MIN_FACE_SCORE]
    best = max(boxes, key=lambda b: (b.score or 0, b.w * b.h)) if boxes else None
    return best.scaled(scale) if best is not None and scale > 1 else best


def crop_to_face(rgb: np.ndarray) -> tuple[np.ndarray, object]:
    """(the face's square crop, its box) when a face is found, else (the picture, None)."""
    cropped, box, _ = _face_crop(rgb)
    return cropped, box


def _face_crop(rgb: np.ndarray) -> tuple[np.ndarray, object, Frame | None]:
    """crop_to_face, and the crop's Frame (None: no face, the whole picture)."""
    box = find_face(rgb)
    if box is None:
        return rgb, None, None
    h, w = rgb.shape[:2]
    square = crop_square(box, w, h, CROP_MARGIN)
    side = max(h, w)
    left, top = (square.x + (side - w) / 2) / side, (square.y + (side - h) / 2) / side
    frame = Frame(left, top, left + square.size / side, top + square.size / side)
    return np.asarray(cut(Image.fromarray(rgb), square, square.size)), box, frame


def normalise_drawing(source, size: int = 64, params: XDoGParams | None = None, crop_face: bool = True,
                      name: str | None = None, widen: bool = True) -> np.ndarray:
    """Any picture of a drawing -> uint8 [size, size] line map (ink 0, paper 255) made as the
    training sketches are made, its lines widened to theirs where thinner (`widen_lines`). Raises
    DrawingError with the reason for unusable pictures."""
    return normalise_framed(source, size, params, crop_face, name, widen)[0]


def normalise_framed(source, size: int = 64, params: XDoGParams | None = None, crop_face: bool = True,
                     name: str | None = None, widen: bool = True) -> tuple[np.ndarray, Frame | None]:
    """normalise_drawing, and the Frame of the face crop it made (None: the whole drawing was used).
    `widen=False` leaves the lines as drawn (`train eval` measures paintings against those)."""
    label = name or (str(source) if isinstance(source, (str, os.PathLike)) else "the drawing")
    rgb = read_drawing(source, label)
    frame = None
    if crop_face:
        rgb, _, frame = _face_crop(rgb)
    stats = drawing_stats(rgb)
    check_drawing(stats, label)
    h, w = rgb.shape[:2]
    if h != w:   # centre on square paper: the face's proportions stay, nothing is cut
        side = max(h, w)
        paper = int(round(stats.paper * 255))
        square = np.full((side, side, 3), paper, np.uint8)
        square[(side - h) // 2:(side - h) // 2 + h, (side - w) // 2:(side - w) // 2 + w] = rgb
        rgb = square
    lines = xdog(rgb, params or XDoGParams())
    if widen:
        lines = widen_lines(at_size(lines, min(WIDEN_SIDE, lines.shape[0])))
    lines = at_size(lines, size)
    if (255 - lines.astype(np.float32)).mean() / 255 < MIN_INK:   # darkness, not a threshold: thin lines are grey
        raise DrawingError(f"{label} is blank: no lines are left after line extraction")
    return lines, frame


def stroke_width(lines: np.ndarray) -> float:
    """The mean width (px) of a line map's strokes: twice the ink area over its boundary (a stroke
    w px wide and L long has w L pixels and 2 L on its edges); 0 without ink."""
    ink = (lines < 128).astype(np.uint8)
    boundary = int(ink.sum()) - int(cv2.erode(ink, np.ones((3, 3), np.uint8)).sum())
    return 2.0 * ink.sum() / boundary if boundary else 0.0


def widen_lines(lines: np.ndarray, width: float = LINE_WIDTH) -> np.ndarray:
    """Strokes thinner than `width` (a fraction of the side) widened to it by a round dilation of the
    ink; wider ones are left as they are (thinning would break them)."""
    grow = round((width * max(lines.shape) - stroke_width(lines)) / 2)      # px on each side
    if grow < 1:
        return lines
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    return cv2.erode(lines, disk)                     # ink is dark: eroding the paper widens the ink


def at_size(lines: np.ndarray, size: int) -> np.ndarray:
    """A line map at the model's size: area-averaged, so thin lines turn grey rather than vanish.
    Training sketches (the catalog's line art of each crop) and users' drawings both pass here."""
    if lines.shape == (size, size):
        return lines
    return cv2.resize(lines, (size, size), interpolation=cv2.INTER_AREA)


def to_png(lines: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(lines).save(buf, "PNG")
    return buf.getvalue()
