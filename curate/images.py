"""Reading whatever a user's folder holds into one plain RGB picture.

Every decoder problem becomes an `ImageError` with a short reason, so the
pipeline can record it against the file and go on with the next one.
"""

from __future__ import annotations

import errno
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


class Skipped(NamedTuple):
    """Something in the folder that is not read, and why: recorded, never dropped silently."""
    path: Path
    status: str         # 'error', or 'duplicate' for a second way into a folder read already
    reason: str


def iter_image_files(root: str | os.PathLike, skipped: list[Skipped] | None = None) -> Iterator[Path]:
    """Picture files under `root` (nested folders, symlinks followed), each real folder once.

    Files are named by their path under `root` (not resolved), in sorted order so
    runs are reproducible. What is passed over -- a symlink loop, a second link to a
    folder read already, a dangling link, a folder that cannot be read -- is added to
    `skipped` with the reason.
    """
    root = Path(root)
    note = skipped.append if skipped is not None else (lambda _: None)
    if root.is_file():
        yield root
        return
    seen: dict[tuple[int, int], Path] = {}
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            st = folder.stat()
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as e:
            note(Skipped(folder, "error", _unreadable(e, "folder")))
            continue
        first = seen.setdefault((st.st_dev, st.st_ino), folder)
        if first != folder:
            if first in folder.parents:
                note(Skipped(folder, "error", f"symbolic link loop: leads back to {first}"))
            else:
                note(Skipped(folder, "duplicate", f"same folder as {first}, read there"))
            continue
        subfolders = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            picture = Path(entry.name).suffix.lower() in IMAGE_SUFFIXES
            try:
                if entry.is_dir():
                    subfolders.append(Path(entry.path))
                elif entry.is_file():
                    if picture:
                        yield Path(entry.path)
                elif entry.is_symlink() and (picture or not Path(entry.name).suffix):
                    note(Skipped(Path(entry.path), "error",
                                 f"dangling symbolic link: {os.readlink(entry.path)} does not exist"))
            except OSError as e:   # a link to itself, a permission problem
                if picture or entry.is_symlink():
                    note(Skipped(Path(entry.path), "error", _unreadable(e, "file")))
        stack.extend(reversed(subfolders))


def _unreadable(e: OSError, what: str) -> str:
    if e.errno == errno.ELOOP:
        return "symbolic link loop"
    return f"cannot read {what} ({e.strerror or e})"


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


def open_crop(blob: bytes) -> Image.Image:
    """A crop stored in the catalog, decoded; ImageError when it no longer decodes."""
    try:
        im = Image.open(io.BytesIO(blob))
        im.load()
        return im
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageError(f"unreadable crop ({type(e).__name__}: {e})") from None


def to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB, alpha composited on white.

    Deep pixels are brought down to 8 bits in their own type, in place, before anything
    else: a float64 copy of a 16-bit picture took 8 bytes a pixel three times over (1.7 GB
    for a 1.3 MB PNG of 8,000 x 8,000 grey pixels)."""
    if im.mode.startswith("I;16"):
        arr = np.array(im)                      # uint16, 2 bytes a pixel
        arr >>= 8
        im = Image.fromarray(arr.astype(np.uint8))
    elif im.mode == "I":
        arr = np.array(im)                      # int32
        if arr.max() > 255:                     # 16-bit values in a 32-bit image
            np.clip(arr, 0, 65535, out=arr)
            arr >>= 8
        im = Image.fromarray(np.clip(arr, 0, 255, out=arr).astype(np.uint8))
    elif im.mode == "F":
        arr = np.array(im)                      # float32
        if arr.max() <= 1.0:
            arr *= 255.0
        im = Image.fromarray(np.clip(arr, 0, 255, out=arr).astype(np.uint8))
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


def rgb_png(blob: bytes, fmt: str) -> tuple[bytes, tuple[int, int]]:
    """A stored crop as the RGB PNG every export writes, transparency flattened onto white (stored
    PNGs that are RGB already are kept byte for byte, but decoded all the same: a broken crop must
    not pass as a good one). ImageError if broken."""
    with open_crop(blob) as im:
        if fmt == "png" and im.mode == "RGB":
            return blob, im.size
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            rgba = im.convert("RGBA")
            flat = Image.new("RGB", im.size, (255, 255, 255))
            flat.paste(rgba, mask=rgba.getchannel("A"))
        else:
            flat = im.convert("RGB")
        buf = io.BytesIO()
        flat.save(buf, "PNG", compress_level=1)
        return buf.getvalue(), im.size


def png_bytes(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def _short(e: Exception) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return f"({text[:160]})"
