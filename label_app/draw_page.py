"""The app's Draw page: draw a face (or upload a drawing), pick tags, see it painted.

Left: a canvas (streamlit-drawable-canvas, the `draw` extra; its toolbar has undo, redo
and clear) and an upload button. Middle: the drawing as the model sees it, normalised like
the training sketches (train/sketch/drawing.py), or why it cannot be used. Right: the sketch run,
tag pickers for the run's exclusive groups (hair colour, eye colour), and the painted faces.
For a run trained with colour hints, a hint brush and a hint upload below the canvas
(label_app/draw_hints.py); the hints go to the painter with the drawing.
Painting goes through the contract of label_app/painting.py; without a painter or a sketch
run the page says that no sketch model is available.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
import streamlit as st
from PIL import Image

from label_app import draw_hints, painting
from label_app.safe_text import md
from train.runs import RunError
from train.sketch.drawing import DrawingError, Frame, normalise_framed
from train.sketch.hint_tags import chosen_over

CANVAS_SIDE = 320
ANY = "(any)"
UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "gif", "bmp", "tif", "tiff"]


def pretty(group: str) -> str:
    return {"hair_color": "Hair colour", "eye_color": "Eye colour"}.get(group, group.replace("_", " ").capitalize())


def canvas_picture(nonce: int, stroke: int) -> np.ndarray | None:
    """The canvas's RGBA picture once something is drawn on it; None before, or without the canvas."""
    try:   # an optional dependency (the `draw` extra): imported here, where a missing one is said
        from streamlit_drawable_canvas import st_canvas
    except Exception:   # not installed, or imported outside a running app: the upload still works
        st.info("Drawing with the mouse needs the `draw` extra: `pip install -e '.[draw]'`. "
                "Upload a drawing below meanwhile.")
        return None
    result = st_canvas(stroke_width=stroke, stroke_color="#000000", background_color="#ffffff",
                       height=CANVAS_SIDE, width=CANVAS_SIDE, drawing_mode="freedraw", return_image_data=True,
                       key=f"draw-canvas-{nonce}")
    drawn = result is not None and result.json_data and result.json_data.get("objects")
    return np.asarray(result.image_data) if drawn else None


def picture_input(ss) -> tuple[object | None, str]:
    """(the picture to paint: canvas RGBA array or uploaded bytes, its name) or (None, "")."""
    nonce = ss.setdefault("draw_nonce", 0)
    stroke = st.slider("Line width", 1, 12, 3, key="draw_stroke")
    drawn = canvas_picture(nonce, stroke)

    def clear() -> None:
        ss.draw_nonce += 1          # a new canvas and a new uploader: both start empty
    st.button("Clear drawing and upload", key="draw_clear", on_click=clear)
    upload = st.file_uploader("…or upload a drawing (any size, white or transparent paper)", type=UPLOAD_TYPES,
                              key=f"draw-upload-{nonce}")
    if upload is not None:
        return upload.getvalue(), upload.name
    if drawn is not None:
        return drawn, "your drawing"
    return None, ""


@st.cache_data(max_entries=64, show_spinner=False)
def _normalised(key: str, _picture, name: str, size: int, _params) -> tuple[np.ndarray, Frame | None] | str:
    """(the line map, its face crop's Frame), or the reason the picture cannot be used (cached by `key`:
    content and settings)."""
    try:
        return normalise_framed(_picture, size=size, params=_params, name=name)
    except DrawingError as e:
        return str(e)


def normalise(picture, name: str, run: painting.SketchRun | None) -> tuple[np.ndarray, Frame | None] | str:
    """The drawing as the model sees it (cropped to its face where one is found) and that crop's Frame,
    by which the hints are cut too, as `train sample --hints` cuts them."""
    size = run.size if run else 64
    params = run.params if run else None
    raw = picture.tobytes() if isinstance(picture, np.ndarray) else bytes(picture)
    key = hashlib.sha256(raw + repr((name, size, params)).encode()).hexdigest()
    return _normalised(key, picture, name, size, params)


def run_controls(runs: list[painting.SketchRun]) -> tuple[painting.SketchRun, dict[str, str], int, int]:
    run = st.selectbox("Sketch model (run)", runs, format_func=lambda r: r.name, key="draw_run")
    tags = {}
    cols = st.columns(max(1, len(run.groups)))
    for col, (group, choices) in zip(cols, run.groups.items()):
        pick = col.selectbox(md(pretty(group)), [ANY, *choices], key=f"draw-tag-{group}")
        if pick != ANY:
            tags[group] = pick
    c1, c2, c3 = st.columns([1, 1, 1])
    n = c1.slider("Faces", 1, 8, 4, key="draw_n")
    seed = c2.number_input("Seed", 0, 2**31 - 1, 0, key="draw_seed")

    def reseed() -> None:
        st.session_state.draw_seed = int(np.random.default_rng().integers(0, 2**31 - 1))
    c3.button("Other faces", key="draw_reseed", on_click=reseed, help="A new seed: the same drawing painted "
              "other ways")
    return run, tags, n, int(seed)


def show_faces(faces: list[np.ndarray], seconds: float, hinted: bool) -> None:
    cols = st.columns(4)
    for i, face in enumerate(faces):
        cols[i % 4].image(Image.fromarray(np.asarray(face, dtype=np.uint8)), width=128)
    st.caption(f"{len(faces)} faces painted {'with colour hints ' if hinted else ''}in {seconds * 1000:.0f} ms")


def render(runs_dir: Path, painter=None) -> None:
    """The whole page. `painter`: the painting function (default: `painting.find_painter()`)."""
    ss = st.session_state
    painter = painter if painter is not None else painting.find_painter()
    runs = painting.sketch_runs(runs_dir) if painter is not None else []
    # the left column holds the CANVAS_SIDE px canvas whole in a 1280 px window with the sidebar open
    left, mid, right = st.columns([1.45, 0.55, 1.3], gap="medium")
    with left:
        st.markdown("#### Draw a face")
        picture, name = picture_input(ss)
    with right:
        st.markdown("#### Painted")
        if painter is None:
            st.info("No sketch model is available: this installation cannot paint sketches yet "
                    "(`train pix2pix` is not part of it).")
            run = None
        elif not runs:
            st.info(f"No sketch model is available: no pix2pix runs in {md(runs_dir)}. Train one with "
                    f"`train pix2pix --labels manual --attrs hair_color,eye_color --size 64`, or start "
                    f"the app with `label-app --runs DIR`.")
            run = None
        else:
            run, tags, n, seed = run_controls(runs)
    with left:
        hints = draw_hints.hint_input(run, picture, CANVAS_SIDE, ss.draw_nonce)
    lines = None
    with mid:
        st.markdown("#### Model's view")
        if picture is None:
            st.caption("Draw with the mouse or a pen, or upload a drawing.")
        else:
            normalised = normalise(picture, name, run)
            if isinstance(normalised, str):
                st.warning(md(normalised))
            else:
                lines, frame = normalised
                cut = draw_hints.framed(hints, frame)
                if hints is not None and cut is None:
                    st.caption("Your colour hints lie outside the face the model sees: painted without them.")
                hints = cut
                st.image(Image.fromarray(draw_hints.with_hints(lines, hints)), width=192)
    if run is not None and lines is not None:
        with right:
            painting.limit_threads()
            started = time.perf_counter()
            chosen: dict = {}
            try:
                faces = painter(run.dir, lines, tags, n, seed, hints=hints, on_hinted_tags=chosen.update)
            except (RunError, ValueError, OSError) as e:   # ConditionError is a ValueError
                st.error(md(f"{run.name}: {e}"))
            else:
                show_faces(faces, time.perf_counter() - started, hints is not None)
                if chosen:     # where hints and tags disagree, the hints decide (train/sketch/hint_tags.py)
                    st.caption(md(f"The colour hints chose {chosen_over(chosen)}."))
