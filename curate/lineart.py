"""Line art from a colour crop, with no downloaded weights: XDoG (Winnemöller, Kyprianidis and
Olsen 2012, "XDoG: An eXtended difference-of-Gaussians compendium").

On the luminance L (contrast-stretched to [0, 1] between two percentiles, so pale and dark
pictures give lines alike), the sharpened difference of Gaussians

    S = (1 + p) G_sigma(L) - p G_{k sigma}(L)

is soft-thresholded: T = 1 where S >= epsilon, else 1 + tanh(phi (S - epsilon)). A slightly
negative epsilon keeps flat dark areas (black hair) white, so only edges become ink: line
art, not a posterised picture. Ink specks smaller than `min_area` are removed.

The work is done at a fixed resolution (`work_size`), whatever the crop size, so line widths
are the same share of the face for 96 px imports and 128 px crops; the result is returned at
the crop's own size. The defaults were chosen by looking at sheets of the shared faces
(docs/sketch_pairs.png).
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, dataclass, fields

import cv2
import numpy as np
from PIL import Image

from curate.images import ImageError, open_crop, to_rgb

ALGORITHM_VERSION = 1   # bump when the code changes what a parameter set produces: every image is remade


class LineArtError(ValueError):
    """Bad parameters, or a crop that cannot be turned into line art."""


@dataclass(frozen=True)
class XDoGParams:
    sigma: float = 1.2        # scale of the edges (work pixels)
    k: float = 1.6            # ratio of the two Gaussians
    p: float = 25.0           # sharpening: higher finds fainter edges
    epsilon: float = -0.05    # threshold on S; below 0 flat dark areas stay white
    phi: float = 50.0         # steepness of the soft threshold (large: hard black/white)
    work_size: int = 192      # the luminance is resized to this side first
    stretch: float = 2.0      # percentile clipped at each end of the luminance range
    min_area: int = 32        # ink specks smaller than this (work pixels) are erased

    def __post_init__(self):
        checks = [(self.sigma > 0, "sigma > 0"), (self.k > 1, "k > 1"), (self.p >= 0, "p >= 0"),
                  (-1 <= self.epsilon <= 1, "-1 <= epsilon <= 1"), (self.phi > 0, "phi > 0"),
                  (16 <= self.work_size <= 2048, "16 <= work_size <= 2048"),
                  (0 <= self.stretch < 50, "0 <= stretch < 50"), (self.min_area >= 0, "min_area >= 0")]
        for ok, rule in checks:
            if not ok:
                raise LineArtError(f"xdog parameter out of range: needs {rule}")




def make_params(method: str = "xdog", overrides: dict[str, str | float] | None = None) -> XDoGParams:
    """The parameters of `method`, defaults overridden by `overrides` (strings are parsed)."""
    cls = _method(method)[0]
    types = {f.name: f.type for f in fields(cls)}
    values = {}
    for key, value in (overrides or {}).items():
        if key not in types:
            raise LineArtError(f"{method} has no parameter {key!r}; it has: {', '.join(types)}")
        try:
            values[key] = int(value) if types[key] in (int, "int") else float(value)
        except (TypeError, ValueError):
            raise LineArtError(f"{method} parameter {key}={value!r} is not a number") from None
    return cls(**values)


def params_json(method: str, params: XDoGParams) -> str:
    """What is stored with each image: the method, its parameters and the algorithm version."""
    return json.dumps({"method": method, "version": ALGORITHM_VERSION, **asdict(params)}, sort_keys=True)


def params_hash(method: str, params: XDoGParams) -> str:
    return hashlib.sha256(params_json(method, params).encode()).hexdigest()[:16]


def xdog(rgb: np.ndarray, params: XDoGParams = XDoGParams()) -> np.ndarray:
    """uint8 HxWx3 (or HxW) picture -> uint8 HxW line art: black (0) ink on white (255)."""
    if rgb.ndim == 3:
        grey = cv2.cvtColor(np.ascontiguousarray(rgb[..., :3]), cv2.COLOR_RGB2GRAY)
    else:
        grey = rgb
    h, w = grey.shape
    lum = grey.astype(np.float32) / 255.0
    lo, hi = np.percentile(lum, [params.stretch, 100 - params.stretch])
    if hi - lo < 0.5 * (lum.max() - lum.min()):   # thin lines on paper: the percentiles are both paper
        lo, hi = lum.min(), lum.max()
    lum = np.clip((lum - lo) / max(hi - lo, 1e-3), 0, 1)
    scale = params.work_size / max(h, w)
    work = cv2.resize(lum, (max(1, round(w * scale)), max(1, round(h * scale))),
                      interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
    g1 = cv2.GaussianBlur(work, (0, 0), params.sigma)
    g2 = cv2.GaussianBlur(work, (0, 0), params.sigma * params.k)
    s = (1 + params.p) * g1 - params.p * g2
    t = np.where(s >= params.epsilon, 1.0, 1.0 + np.tanh(params.phi * (s - params.epsilon))).astype(np.float32)
    if params.min_area:
        ink = (t < 0.5).astype(np.uint8)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
        small = stats[:, cv2.CC_STAT_AREA] < params.min_area
        small[0] = False                      # label 0 is the paper, not a speck
        t[small[labels]] = 1.0
    out = cv2.resize(t, (w, h), interpolation=cv2.INTER_AREA if scale > 1 else cv2.INTER_LINEAR)
    return (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)


METHODS = {"xdog": (XDoGParams, xdog)}     # name -> (its parameters, the function)


def _method(method: str):
    if method not in METHODS:
        raise LineArtError(f"unknown line-art method {method!r}; one of: {', '.join(METHODS)}")
    return METHODS[method]


def line_art(crop: bytes, method: str, params: XDoGParams) -> np.ndarray:
    """A crop's encoded bytes -> its line art, uint8 at the crop's size (ink 0, paper 255)."""
    try:
        with open_crop(crop) as im:
            rgb = np.asarray(to_rgb(im))        # transparency on white, as everywhere in curate
    except ImageError as e:   # a broken blob is that face's problem, named in the summary
        raise LineArtError(str(e)) from None
    return _method(method)[1](rgb, params)


def line_art_png(crop: bytes, method: str, params: XDoGParams) -> tuple[bytes, int, int]:
    """A crop's encoded bytes -> (PNG of its line art, width, height)."""
    lines = line_art(crop, method, params)
    buf = io.BytesIO()
    Image.fromarray(lines).save(buf, "PNG", optimize=False, compress_level=6)
    return buf.getvalue(), lines.shape[1], lines.shape[0]


def params_from_json(stored: str | dict) -> tuple[str, XDoGParams]:
    """What `params_json` wrote (a run's options.json keeps it too) -> (method, parameters)."""
    values = json.loads(stored) if isinstance(stored, str) else dict(stored)
    method = values.pop("method", "xdog")
    version = values.pop("version", ALGORITHM_VERSION)
    _method(method)
    if version != ALGORITHM_VERSION:
        raise LineArtError(f"these sketches were made by {method} version {version}; this program makes "
                           f"version {ALGORITHM_VERSION}: rerun `curate sketch` (and retrain)")
    return method, make_params(method, values)
