"""The source picture of a face with its detector box and crop square drawn on it.

The path comes from the catalog (`Catalog.source_of_face`), never from the
browser. Big JPEGs are decoded at reduced size (`Image.draft`) and results are
cached, so showing the context stays cheap next to a labelling action.
"""

from __future__ import annotations

import io
import os
from functools import lru_cache

from PIL import Image, ImageDraw

from db import Catalog

BOX_COLOUR = (255, 64, 64)      # the detector's box
CROP_COLOUR = (255, 210, 0)     # the square that was cut out


def source_context(catalog: Catalog, face_id: int, max_side: int = 480) -> tuple[bytes | None, str]:
    """(JPEG bytes or None, a one-line caption) for the face's source picture."""
    src = catalog.source_of_face(face_id)
    if src is None:
        return None, f"no face with id {face_id}"
    path = src["path"]
    try:
        stat = os.stat(path)
    except OSError:
        return None, f"source picture missing: {path}"
    boxes = tuple(src[k] for k in ("box_x", "box_y", "box_w", "box_h", "crop_x", "crop_y", "crop_size"))
    try:
        data, size = _render(path, stat.st_mtime_ns, stat.st_size, boxes, max_side)
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        return None, f"source picture unreadable: {path} ({e})"
    caption = f"{os.path.basename(path)} · {size[0]}×{size[1]}"
    if boxes[0] is None and boxes[4] is None:
        caption += " · no box recorded (imported face)"
    return data, caption


@lru_cache(maxsize=256)
def _render(path: str, mtime_ns: int, size: int, boxes: tuple, max_side: int) -> tuple[bytes, tuple[int, int]]:
    with Image.open(path) as im:
        full = im.size
        im.draft("RGB", (max_side, max_side))  # JPEG: decode at 1/2, 1/4 or 1/8 scale
        im = im.convert("RGB")
        im.thumbnail((max_side, max_side))
        k = im.size[0] / full[0]  # source pixels -> shown pixels
        draw = ImageDraw.Draw(im)
        width = max(2, round(max(im.size) / 160))
        bx, by, bw, bh, cx, cy, cs = boxes
        if cx is not None and cs:
            draw.rectangle([cx * k, cy * k, (cx + cs) * k, (cy + cs) * k], outline=CROP_COLOUR, width=width)
        if bx is not None and bw:
            draw.rectangle([bx * k, by * k, (bx + bw) * k, (by + bh) * k], outline=BOX_COLOUR, width=width)
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=85)
    return buf.getvalue(), full
