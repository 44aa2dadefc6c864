"""illustration2vec's input pipeline, reproduced without skimage or chainer.

i2v (chainer_i2v.py) turns a picture into the network's input like this:
1. greyscale is replicated to 3 channels, alpha dropped (base.py `_convert_image`);
2. the whole picture is resized to 224x224 with `skimage.transform.resize(order=1)`
   (bilinear, pixel centres at +0.5, borders mirrored like numpy's 'reflect', and a
   Gaussian anti-aliasing blur of sigma (scale-1)/2 first when shrinking);
3. RGB -> BGR, minus the mean below on the 0-255 scale (no division by a std).
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

SIZE = 224
MEAN_BGR = np.array([164.76139251, 167.47864617, 181.13838569])


def to_rgb_array(image: Image.Image | np.ndarray) -> np.ndarray:
    """HxWx3 float64 on 0-255: greyscale replicated, alpha and palettes resolved."""
    if isinstance(image, Image.Image):
        if image.mode in ("L", "LA", "I", "I;16", "F", "1"):
            arr = np.asarray(image.convert("F") if image.mode != "LA" else image.getchannel("L"), np.float64)
        else:
            arr = np.asarray(image.convert("RGBA") if image.mode == "P" else image, np.float64)
            if image.mode not in ("RGB", "RGBA", "P"):
                arr = np.asarray(image.convert("RGB"), np.float64)
    else:
        arr = np.asarray(image, np.float64)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] < 3:
        raise ValueError(f"unsupported picture of shape {arr.shape}")
    return arr[:, :, :3]


def _axis_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear taps along one axis: skimage's coordinate mapping, numpy-'reflect' borders."""
    x = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    lo = np.floor(x).astype(int)
    frac = x - lo
    period = 2 * n_in - 2 if n_in > 1 else 1

    def mirror(i):
        if n_in == 1:
            return np.zeros_like(i)
        i = np.mod(i, period)
        return np.where(i >= n_in, period - i, i)
    return mirror(lo), mirror(lo + 1), frac


def resize(arr: np.ndarray, size: int = SIZE) -> np.ndarray:
    """`skimage.transform.resize(arr, (size, size), order=1)` on an HxWxC float array."""
    h, w = arr.shape[:2]
    lo, hi = arr.min(), arr.max()
    if hi <= lo:  # a constant picture stays constant (and i2v returns it without resizing)
        return np.full((size, size, arr.shape[2]), lo, np.float64)
    sigma = [max(0.0, (h / size - 1) / 2), max(0.0, (w / size - 1) / 2), 0.0]
    if sigma[0] > 0 or sigma[1] > 0:  # skimage anti-aliases when shrinking
        arr = ndimage.gaussian_filter(arr, sigma, mode="mirror")
    r0, r1, fr = _axis_weights(h, size)
    c0, c1, fc = _axis_weights(w, size)
    rows = arr[r0] * (1 - fr)[:, None, None] + arr[r1] * fr[:, None, None]
    out = rows[:, c0] * (1 - fc)[None, :, None] + rows[:, c1] * fc[None, :, None]
    return np.clip(out, lo, hi)


def preprocess(image: Image.Image | np.ndarray) -> np.ndarray:
    """One picture -> 3x224x224 float32 network input (BGR, mean subtracted)."""
    arr = resize(to_rgb_array(image)).astype(np.float32)
    # As i2v: float32 picture minus the float64 mean, rounded back to float32.
    arr = (arr[:, :, ::-1] - MEAN_BGR).astype(np.float32)
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


def preprocess_batch(images) -> np.ndarray:
    return np.stack([preprocess(im) for im in images]) if images else np.zeros((0, 3, SIZE, SIZE), np.float32)
