"""Figures stored with every face: perceptual hash, blur, monochrome."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image


def phash(rgb: Image.Image) -> int:
    """64-bit DCT perceptual hash (as in imagehash.phash), as a signed int for SQLite.

    Grey 32x32, 2-D DCT, the 8x8 lowest frequencies, one bit per coefficient above
    their median.
    """
    grey = np.asarray(rgb.convert("L").resize((32, 32), Image.Resampling.LANCZOS), dtype=np.float32)
    low = cv2.dct(grey)[:8, :8]
    bits = (low > np.median(low)).ravel()
    value = int("".join("1" if b else "0" for b in bits), 2)
    return value - (1 << 64) if value >= 1 << 63 else value


def hamming(a: int, b: int) -> int:
    return bin((a ^ b) & ((1 << 64) - 1)).count("1")


def nearest(hashes: np.ndarray, value: int) -> tuple[int, int]:
    """(index, distance) of the hash in `hashes` (int64 array) closest to `value`; (-1, 65) if empty."""
    if len(hashes) == 0:
        return -1, 65
    distances = np.bitwise_count(np.bitwise_xor(hashes, np.int64(value)))
    i = int(np.argmin(distances))
    return i, int(distances[i])


def blur(rgb: Image.Image) -> float:
    """Variance of the Laplacian of the grey picture: low means blurry."""
    grey = np.asarray(rgb.convert("L"))
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def monochrome(rgb: Image.Image) -> float:
    """Mean chroma, max(R,G,B) - min(R,G,B) on 0..255: near 0 for greyscale pictures."""
    arr = np.asarray(rgb, dtype=np.int16)
    return float((arr.max(axis=2) - arr.min(axis=2)).mean())
