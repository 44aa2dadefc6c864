"""Contact sheets: a grid of face crops with small captions (wrapped, never cut), to look at a catalog.

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
    tile is captioned with the face id, or with `captions[face_id]` when given (under the tile,
    wrapped to its width: a name is never cut), and shows the face's pictures of each of
    `kinds` side by side.
    """
    if n < 1 or columns < 1 or tile < 8:
        raise CatalogError("a contact sheet needs n >= 1, columns >= 1 and tiles of at least 8 px")
    ids = list(faces)[:n] if faces is not None else pick_faces(catalog, n, status, kinds=kinds)
    if not ids:
        with_kinds = " with " + " and ".join(k for k in kinds if k != CROP) if set(kinds) - {CROP} else ""
        raise CatalogError(f"no faces{f' with status {status!r}' if status and faces is None else ''}"
                           f"{with_kinds} to put on a contact sheet")
    font = ImageFont.load_default()
    width = tile * len(kinds)
    pictures = [[_picture(catalog, fid, kind, tile) for kind in kinds] for fid in ids]
    texts = [f"{fid} unreadable" if None in row else captions.get(fid, str(fid)) if captions else str(fid)
             for fid, row in zip(ids, pictures)]   # a broken crop: an empty tile that says so
    wrapped = [wrap(font, text, width - 4) for text in texts]
    cell = tile + max(map(len, wrapped)) * CAPTION_H   # every caption whole, however many lines it takes
    columns = min(columns, len(ids))
    rows = -(-len(ids) // columns)
    sheet = Image.new("RGB", (columns * width, rows * cell), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for i, (row, lines) in enumerate(zip(pictures, wrapped)):
        x, y = (i % columns) * width, (i // columns) * cell
        for j, picture in enumerate(row):
            if picture is not None:
                sheet.paste(picture, (x + j * tile, y))
        for k, line in enumerate(lines):
            draw.text((x + 2, y + tile + k * CAPTION_H), line, fill=CAPTION_COLOR, font=font)
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


def _picture(catalog: Catalog, face_id: int, kind: str, tile: int) -> Image.Image | None:
    """The tile of one face's crop or derived image; None when it does not decode."""
    blob = catalog.face_image(face_id) if kind == CROP else catalog.derived_image(kind, face_id)
    try:
        return _thumbnail(blob, tile)
    except ImageError:
        return None


def wrap(font, text: str, width: float) -> list[str]:
    """`text` in lines no wider than `width` pixels: broken between words, and a word wider than
    a line is broken across lines. Never cut: every character of a name is on the sheet."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if font.getlength(candidate) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            line = ""
            for ch in word:   # a word that does not fit a line on its own
                if line and font.getlength(line + ch) > width:
                    lines.append(line)
                    line = ""
                line += ch
        lines.append(line)
    return lines
