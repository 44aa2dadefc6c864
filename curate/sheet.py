"""Contact sheets: a grid of face crops with small captions, to look at a catalog."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from PIL import Image, ImageDraw, ImageFont

from db import Catalog, CatalogError

from .images import ImageError, open_crop

CAPTION_H = 12
BACKGROUND = (255, 255, 255)
CAPTION_COLOR = (40, 40, 40)


def pick_faces(catalog: Catalog, n: int, status: str | None = "ok", split: str | None = None) -> list[int]:
    """`n` face ids spread evenly over the catalog (not just the first ones), in id order."""
    ids = catalog.face_ids(status, split)
    if len(ids) <= n:
        return ids
    step = len(ids) / n
    return [ids[int(i * step)] for i in range(n)]


def contact_sheet(catalog: Catalog, out: str | os.PathLike, faces: Iterable[int] | None = None, n: int = 64,
                  columns: int = 8, tile: int = 96, status: str | None = "ok",
                  captions: dict[int, str] | None = None) -> int:
    """Write a PNG grid of crops to `out`; returns how many faces it shows.

    `faces` names the faces (default: `n` spread over those with `status`). Each
    tile is captioned with the face id, or with `captions[face_id]` when given.
    """
    if n < 1 or columns < 1 or tile < 8:
        raise CatalogError("a contact sheet needs n >= 1, columns >= 1 and tiles of at least 8 px")
    ids = list(faces)[:n] if faces is not None else pick_faces(catalog, n, status)
    if not ids:
        raise CatalogError(f"no faces{f' with status {status!r}' if status and faces is None else ''} "
                           f"to put on a contact sheet")
    columns = min(columns, len(ids))
    rows = -(-len(ids) // columns)
    sheet = Image.new("RGB", (columns * tile, rows * (tile + CAPTION_H)), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for i, fid in enumerate(ids):
        x, y = (i % columns) * tile, (i // columns) * (tile + CAPTION_H)
        text = captions.get(fid, str(fid)) if captions else str(fid)
        try:
            sheet.paste(_thumbnail(catalog.face_image(fid), tile), (x, y))
        except ImageError:   # a broken crop: an empty tile that says so
            text = f"{fid} unreadable"
        draw.text((x + 2, y + tile), _fit(draw, font, text, tile - 4), fill=CAPTION_COLOR, font=font)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, "PNG", optimize=True)
    return len(ids)


def _thumbnail(blob: bytes, tile: int) -> Image.Image:
    with open_crop(blob) as im:
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, BACKGROUND + (255,))  # transparent crops on white
        im = Image.alpha_composite(bg, im).convert("RGB")
        scale = tile / max(im.size)
        if scale != 1:  # small crops are enlarged too: whole-pixel factors stay crisp
            resample = Image.NEAREST if scale > 1 and scale == int(scale) else Image.LANCZOS
            im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), resample)
        if im.size == (tile, tile):
            return im
        canvas = Image.new("RGB", (tile, tile), BACKGROUND)
        canvas.paste(im, ((tile - im.width) // 2, (tile - im.height) // 2))
        return canvas


def _fit(draw: ImageDraw.ImageDraw, font, text: str, width: int) -> str:
    """Shorten a caption with an ellipsis until it fits under its tile."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"
