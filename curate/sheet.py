"""Contact sheets: a grid of face crops with small captions, to look at a catalog.

A tile can show several pictures of one face side by side (`kinds`): its crop and the images
derived from it (`curate sketch`), e.g. kinds=("crop", "sketch") for crop | line art pairs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from PIL import Image, ImageDraw, ImageFont

from db import Catalog, CatalogError

from curate.images import ImageError, open_crop

CROP = "crop"   # the face's own crop; any other kind is a derived image (db/derived.py)

CAPTION_H = 12
BACKGROUND = (255, 255, 255)
CAPTION_COLOR = (40, 40, 40)


def pick_faces(catalog: Catalog, n: int, status: str | None = "ok", split: str | None = None,
               kinds: tuple[str, ...] = (CROP,)) -> list[int]:
    """`n` face ids spread evenly over the catalog (not just the first ones), in id order;
    only faces that have every derived image `kinds` names."""
    ids = catalog.face_ids(status, split)
    for kind in kinds:
        if kind != CROP:
            have = set(catalog.derived_face_ids(kind, status, split))
            ids = [i for i in ids if i in have]
    if len(ids) <= n:
        return ids
    step = len(ids) / n
    return [ids[int(i * step)] for i in range(n)]


def contact_sheet(catalog: Catalog, out: str | os.PathLike, faces: Iterable[int] | None = None, n: int = 64,
                  columns: int = 8, tile: int = 96, status: str | None = "ok",
                  captions: dict[int, str] | None = None, kinds: tuple[str, ...] = (CROP,)) -> int:
    """Write a PNG grid of crops to `out`; returns how many faces it shows.

    `faces` names the faces (default: `n` spread over those with `status`). Each
    tile is captioned with the face id, or with `captions[face_id]` when given (one line
    under the tile per line of the caption), and shows the face's pictures of each of
    `kinds` side by side.
    """
    if n < 1 or columns < 1 or tile < 8:
        raise CatalogError("a contact sheet needs n >= 1, columns >= 1 and tiles of at least 8 px")
    ids = list(faces)[:n] if faces is not None else pick_faces(catalog, n, status, kinds=kinds)
    if not ids:
        with_kinds = " with " + " and ".join(k for k in kinds if k != CROP) if set(kinds) - {CROP} else ""
        raise CatalogError(f"no faces{f' with status {status!r}' if status and faces is None else ''}"
                           f"{with_kinds} to put on a contact sheet")
    columns = min(columns, len(ids))
    rows = -(-len(ids) // columns)
    width = tile * len(kinds)
    lines = max((captions[f].count("\n") + 1 for f in ids if f in captions), default=1) if captions else 1
    cell = tile + lines * CAPTION_H
    sheet = Image.new("RGB", (columns * width, rows * cell), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for i, fid in enumerate(ids):
        x, y = (i % columns) * width, (i // columns) * cell
        text = captions.get(fid, str(fid)) if captions else str(fid)
        for j, kind in enumerate(kinds):
            blob = catalog.face_image(fid) if kind == CROP else catalog.derived_image(kind, fid)
            try:
                sheet.paste(_thumbnail(blob, tile), (x + j * tile, y))
            except ImageError:   # a broken crop: an empty tile that says so
                text = f"{fid} unreadable"
        for k, line in enumerate(text.split("\n")[:lines]):
            draw.text((x + 2, y + tile + k * CAPTION_H), _fit(draw, font, line, width - 4), fill=CAPTION_COLOR,
                      font=font)
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
