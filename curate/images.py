"""Reading whatever a user's folder holds into one plain RGB picture.

Every decoder problem becomes an `ImageError` with a short reason, so the
pipeline can record it against the file and go on with the next one.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
DEFAULT_MAX_PIXELS = 64_000_000  # 8000 x 8000: far beyond any real illustration, far below a bomb

# We enforce our own pixel limit (and a clearer message) before decoding anything.
Image.MAX_IMAGE_PIXELS = None


class ImageError(Exception):
    """A file that cannot be used as a picture; the message says why."""


class Decoded(NamedTuple):
    image: Image.Image  # upright 8-bit RGB
    format: str         # 'JPEG', 'PNG', ...
    plain: bool         # the file's own pixels are already exactly `image` (RGB/grey JPEG/PNG, upright)


def iter_image_files(root: str | os.PathLike) -> Iterator[Path]:
    """Picture files under `root` (nested folders, symlinks followed), each real folder once.

    Files are named by their path under `root` (not resolved), in sorted order so
    runs are reproducible. A symlink loop is visited once and then skipped.
    """
    root = Path(root)
    if root.is_file():
        yield root
        return
    seen: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            st = folder.stat()
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        subfolders = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir():
                    subfolders.append(Path(entry.path))
                elif entry.is_file() and Path(entry.name).suffix.lower() in IMAGE_SUFFIXES:
                    yield Path(entry.path)
            except OSError:  # a dangling link or a permission problem: not a picture we can read
                continue
        stack.extend(reversed(subfolders))


def decode(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Decoded:
    """Decode file bytes into an upright RGB image.

    First frame of animations, EXIF orientation applied, transparency composited on
    white, palette/CMYK/16-bit/greyscale brought to 8-bit RGB.
    """
    if not data:
        raise ImageError("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            fmt = im.format or "unknown"
            w, h = im.size
            if w * h > max_pixels:
                raise ImageError(f"decompression bomb? {w}x{h} = {w * h:,} pixels exceeds the limit "
                                 f"of {max_pixels:,} (--max-pixels)")
            im.seek(0)
            im.load()
            upright = im.getexif().get(0x0112, 1) in (0, 1)  # EXIF Orientation
            plain = fmt in ("JPEG", "PNG") and im.mode in ("RGB", "L") and upright \
                and "transparency" not in im.info and getattr(im, "n_frames", 1) == 1
            im = ImageOps.exif_transpose(im)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError("not a picture Pillow can read") from None
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as e:
        raise ImageError(f"cannot decode {_short(e)}") from None
    except Exception as e:  # hostile files reach odd corners of decoders; never let one stop a run
        raise ImageError(f"cannot decode ({type(e).__name__}: {_short(e)})") from None
    return Decoded(to_rgb(im), fmt, plain)


def to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB, alpha composited on white."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or arr.max() > 255 else 255.0
        im = Image.fromarray(np.clip(arr * (255.0 / top), 0, 255).astype(np.uint8))
    elif im.mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        scale = 255.0 if arr.max() <= 1.0 else 1.0
        im = Image.fromarray(np.clip(arr * scale, 0, 255).astype(np.uint8))
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("LA", "La", "PA", "RGBa"):
        im = im.convert("RGBA")
    if im.mode == "RGBA":
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, im).convert("RGB")
    if im.mode != "RGB":
        im = im.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV
    return im


def png_bytes(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def _short(e: Exception) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return f"({text[:160]})"
