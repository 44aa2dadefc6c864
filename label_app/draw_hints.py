"""The Draw page's colour hints, for sketch runs trained with them (`train pix2pix --hints`).

Beside the line canvas, a second canvas shows the drawing faded; what is painted on it with the
"hint colour" brush is the hint picture (transparent where nothing is painted), as `train sample
--hints` takes it (train/sketch/hints.py). A hint picture can be uploaded instead (RGBA PNG, the
drawing's proportions); it replaces the strokes. A bad upload gets a one-line reason and the
faces are painted without hints. For runs trained without hints the page says so and shows none
of this.
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
import streamlit as st
from PIL import Image

from label_app.safe_text import md
from train.sketch.hints import HintError, framed_hint_picture, hints_from_picture, read_hint_picture
from train.sketch.paint import same_proportions

HINT_STROKE = 10            # canvas pixels: at 64 px about the 3x3 patches of training
HINT_COLOUR = "#e0b040"     # the colour picker's first colour (a blonde)
FADE = 0.35                 # the drawing under the hint brush, this dark


def drawing_size(picture) -> tuple[int, int] | None:
    """(width, height) of the drawing: the canvas array or uploaded bytes; None where unreadable
    (the page says why when it normalises it)."""
    if isinstance(picture, np.ndarray):
        return picture.shape[1], picture.shape[0]
    try:
        with Image.open(io.BytesIO(bytes(picture))) as im:
            return im.size
    except (OSError, ValueError):
        return None


@st.cache_data(max_entries=8, show_spinner=False)
def _backdrop(key: str, _picture, side: int) -> Image.Image | None:
    try:
        rgba = np.asarray(read_hint_picture(_picture), dtype=np.float32)   # white paper -> transparent
    except HintError:
        return None
    ink = (255 - rgba[..., :3]) * (rgba[..., 3:] / 255) * FADE
    faded = Image.fromarray((255 - ink).astype(np.uint8))
    faded.thumbnail((side, side))
    return faded


def backdrop(picture, side: int) -> Image.Image | None:
    """The drawing, faded, to paint hints over (None before there is one)."""
    if picture is None:
        return None
    raw = picture.tobytes() if isinstance(picture, np.ndarray) else bytes(picture)
    return _backdrop(hashlib.sha256(raw).hexdigest(), picture, side)


def hint_canvas(picture, colour: str, side: int, nonce: int) -> np.ndarray | None:
    """The hint strokes as RGBA (transparent where none) once some are painted; None before, or
    without the canvas (the line canvas has said why)."""
    try:   # the optional `draw` extra, as for the line canvas
        from streamlit_drawable_canvas import st_canvas
    except Exception:
        return None
    result = st_canvas(stroke_width=HINT_STROKE, stroke_color=colour, background_color="",
                       background_image=backdrop(picture, side), background_image_fit="contain",
                       height=side, width=side, drawing_mode="freedraw", return_image_data=True,
                       key=f"draw-hints-{nonce}")
    drawn = result is not None and result.json_data and result.json_data.get("objects")
    return np.asarray(result.image_data) if drawn else None


def uploaded_hints(upload, picture) -> np.ndarray | None:
    """The uploaded hint picture as RGBA, or None with a one-line warning saying why it is not used."""
    try:
        rgba = read_hint_picture(upload.getvalue(), upload.name)
    except HintError as e:
        st.warning(md(f"{e}: painted without hints"))
        return None
    size = drawing_size(picture)
    if size is not None and not same_proportions(size, rgba.size):
        st.warning(md(f"{upload.name}: {rgba.width}x{rgba.height} is not of the drawing's proportions "
                      f"({size[0]}x{size[1]}): hints are laid over the drawing; painted without hints"))
        return None
    return np.asarray(rgba)


def hint_input(run, picture, side: int, nonce: int) -> np.ndarray | None:
    """The hint controls (for a run trained with hints) and the hint picture they make: RGBA laid
    over the drawing, or None (no hints, a run without them, or a bad upload)."""
    if run is None:
        return None
    if not run.hints:
        st.caption("This model was trained without colour hints.")
        return None
    st.markdown("#### Colour hints")
    st.caption("Paint colours with the hint brush on the canvas below, over your faded drawing: the "
               "model paints those colours there (cut to the face with the drawing). An uploaded hint "
               "picture (transparent where there is no hint) replaces the strokes.")
    colour = st.color_picker("Hint colour", HINT_COLOUR, key="draw_hint_colour")
    painted = hint_canvas(picture, colour, side, nonce)
    upload = st.file_uploader("…or upload a hint picture (RGBA PNG, the drawing's proportions)",
                              type=["png", "webp", "gif", "tif", "tiff", "bmp"], key=f"draw-hints-upload-{nonce}")
    hints = uploaded_hints(upload, picture) if upload is not None and picture is not None else painted
    if hints is not None and not (hints[..., 3] > 0).any():
        return None                                   # all transparent: no hint anywhere
    return hints


def framed(hints: np.ndarray | None, frame) -> np.ndarray | None:
    """The hint picture cut to the drawing's face crop (`frame`, train.sketch.drawing.Frame; None: the
    whole drawing), as the painter then lays it over the drawing the model sees; None where no hint is
    left inside the crop."""
    if hints is None or frame is None:
        return hints
    cut = np.asarray(framed_hint_picture(hints, frame))
    return cut if (cut[..., 3] > 0).any() else None


def with_hints(lines: np.ndarray, hints: np.ndarray | None) -> np.ndarray:
    """The line map as the model sees it, in RGB, with the hint colours where the mask is (model size)."""
    rgb = np.repeat(lines[..., None], 3, -1)
    if hints is None:
        return rgb
    h = hints_from_picture(hints, lines.shape[0])[0].numpy()
    mask = h[3] > 0
    rgb[mask] = ((h[:3, mask].T + 1) * 127.5).clip(0, 255).astype(np.uint8)
    return rgb
