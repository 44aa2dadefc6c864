"""Hair and eye colour tags from `animeface`, with probabilities.

`animeface` finds a face and reports one RGB value for the hair, one per eye, and
the boxes of the face and the eyes. One RGB value is a weak cue (the hair value is
often a shadow or the outline), so each group also looks at the pixels it came from:
for hair, the band of the picture above the eyes, leaving out skin (close to the
skin colour animeface reports), near-white background and black line art; for the
eyes, the two eye boxes without skin and whites.

The palette: for every tag a few prototype colours in CIELAB, where equal distances
look about equally different to people (k-means of the pixels of faces labelled with
that tag). A face is described by how its pixels fall on the palette -- each pixel's
soft membership to its nearest prototypes, averaged, and the distance from each
prototype to the nearest pixel -- plus animeface's own colours and the median pixel.
A multinomial logistic regression on that description gives each tag's probability.

The calibrated palette ships as `animeface_palette.json`, fitted by `calibrate` on the
train split of ../shared's labelled faces (`curate calibrate-colors`); its accuracy,
per colour, is in BENCHMARKS.md.
"""

from __future__ import annotations

import ctypes
import functools
import io
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

DEFAULT_PALETTE = Path(__file__).with_name("animeface_palette.json")
GROUPS = ("hair_color", "eye_color")
PAD = 48               # 96-px crops: a white frame lets animeface find faces touching the border
SKIN_DELTA_E = 6       # pixels closer than this to animeface's skin colour are skin
PIXELS = 400           # pixels kept per region (evenly spaced): plenty for a colour distribution
PROTOTYPES = 4         # palette colours per tag (hair colours have shades and highlights)
SOFTNESS = 12.0        # Delta E scale of a pixel's soft membership to the prototypes
FAR = 80.0             # Delta E beyond which "nearest pixel to this prototype" saturates
L2 = 10.0              # ridge of the logistic regression, per face (= sklearn's C 0.1)


def rgb_to_lab(rgb) -> np.ndarray:
    """sRGB (0-255, any shape ...x3) -> CIELAB (D65)."""
    c = np.asarray(rgb, np.float64) / 255.0
    c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    m = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                  [0.0193339, 0.1191920, 0.9503041]])
    xyz = c @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


@dataclass
class FaceColors:
    """What animeface (and our look at the pixels around it) saw in one face."""
    hair: tuple[int, int, int]
    left_eye: tuple[int, int, int]
    right_eye: tuple[int, int, int]
    skin: tuple[int, int, int]
    likelihood: float
    box: tuple[int, int, int, int]      # x, y, w, h in the picture's pixels
    hair_pixels: np.ndarray             # CIELAB [N, 3]
    eye_pixels: np.ndarray              # CIELAB [M, 3]

    def cues(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Group -> (its pixels, animeface's colours), all CIELAB."""
        return {"hair_color": (self.hair_pixels, rgb_to_lab([self.hair])),
                "eye_color": (self.eye_pixels, rgb_to_lab([self.left_eye, self.right_eye]))}


def _rgb(part) -> tuple[int, int, int]:
    return (int(part.color.r), int(part.color.g), int(part.color.b))


def _region(lab: np.ndarray, mask: np.ndarray, skin_lab: np.ndarray, drop_dark: bool,
            fallback: np.ndarray) -> np.ndarray:
    """The masked pixels without skin, near-white (background, eye whites) and, for hair, line art."""
    px = lab[mask]
    keep = np.linalg.norm(px - skin_lab, axis=1) > SKIN_DELTA_E
    keep &= ~((px[:, 0] > 92) & (np.hypot(px[:, 1], px[:, 2]) < 8))
    if drop_dark:
        keep &= px[:, 0] >= 12
    if keep.sum() >= 5:
        px = px[keep]
    if len(px) == 0:
        px = fallback
    return px[::max(1, len(px) // PIXELS)]


# animeface's C library draws random numbers (nv_rand) from one global state that every call
# advances, so a face's colours depended on the faces detected before it in the process: a
# resumed `curate tag` differed from a straight run. The state is put back to the value the
# library starts with (idums[0] = 8273 in animeface-2009's nv_num.c) before each detection,
# so a face's colours are what a fresh process gives, whatever ran before.
ANIMEFACE_SEED = 8273


@functools.lru_cache(maxsize=1)
def _animeface_srand():
    """The library's `nv_srand`, found through the extension module that links it."""
    from animeface import _nvxs
    srand = ctypes.CDLL(_nvxs.__file__).nv_srand
    srand.argtypes, srand.restype = [ctypes.c_long], None
    return srand


def _detect(rgb: Image.Image) -> list:
    import animeface  # the C extension; only this tagger needs it
    _animeface_srand()(ANIMEFACE_SEED)
    return animeface.detect(rgb)


def find_face_colors(image: Image.Image) -> FaceColors | None:
    """The colours of the most likely face animeface finds; None when it finds none.

    Tries the picture as it is, then inside a white frame (small crops whose face
    touches the border): on the 96x96 shared faces that lifts coverage from 83% to 93%.
    """
    rgb = image.convert("RGB")
    offset = 0
    faces = _detect(rgb)
    if not faces:
        offset = PAD
        faces = _detect(ImageOps.expand(rgb, border=PAD, fill=(255, 255, 255)))
    if not faces:
        return None
    face = max(faces, key=lambda f: f.likelihood)
    p = face.face.pos
    eyes = [(int(e.pos.x) - offset, int(e.pos.y) - offset, int(e.pos.width), int(e.pos.height))
            for e in (face.left_eye, face.right_eye)]
    return _colors_in(rgb, (int(p.x) - offset, int(p.y) - offset, int(p.width), int(p.height)), eyes,
                      _rgb(face.skin), _rgb(face.hair), [_rgb(face.left_eye), _rgb(face.right_eye)],
                      float(face.likelihood))


# Where a face crop holds its face and eyes, as fractions of its side: the medians of what
# animeface finds in the shared 96x96 face crops (face 0.17-0.86; eyes y 0.33-0.51, x 0.23-0.42
# and 0.57-0.76), and a cheek patch below the eyes for the skin colour.
CROP_FACE = (0.17, 0.17, 0.69, 0.69)
CROP_EYES = ((0.57, 0.33, 0.19, 0.17), (0.23, 0.35, 0.19, 0.16))
CROP_SKIN = (0.35, 0.58, 0.30, 0.14)


def whole_crop_colors(image: Image.Image) -> FaceColors:
    """The colours of a picture that is already a face crop but where animeface finds no face:
    read from where a face crop has its hair, eyes and skin (CROP_*), with the regions'
    median colours standing in for animeface's own."""
    rgb = image.convert("RGB")
    pixels = np.asarray(rgb)
    h, w = pixels.shape[:2]

    def box(b):
        return int(b[0] * w), int(b[1] * h), max(1, int(b[2] * w)), max(1, int(b[3] * h))

    def median(b) -> tuple[int, int, int]:
        x, y, bw, bh = b
        return tuple(int(v) for v in np.median(pixels[y:y + bh, x:x + bw].reshape(-1, 3), 0))

    face, eyes = box(CROP_FACE), [box(b) for b in CROP_EYES]
    hair_band = (0, 0, w, max(1, int(face[1] + 0.3 * face[3])))
    return _colors_in(rgb, face, eyes, median(box(CROP_SKIN)), median(hair_band), [median(e) for e in eyes], 0.0)


def _colors_in(rgb: Image.Image, box: tuple[int, int, int, int], eyes: list[tuple[int, int, int, int]],
               skin: tuple[int, int, int], hair: tuple[int, int, int], eye_colors: list[tuple[int, int, int]],
               likelihood: float) -> FaceColors:
    """FaceColors from a face box and eye boxes (picture pixels) and the reported colours."""
    lab = rgb_to_lab(np.asarray(rgb))
    height, width = lab.shape[:2]
    skin_lab = rgb_to_lab(np.asarray(skin, np.float64))
    hair_mask = np.zeros((height, width), bool)
    hair_mask[:int(np.clip(box[1] + 0.3 * box[3], 8, height))] = True      # above the eyes
    eye_mask = np.zeros((height, width), bool)
    for x, y, w, h in eyes:
        eye_mask[max(0, y):max(0, y) + h, max(0, x):max(0, x) + w] = True
    return FaceColors(
        hair, eye_colors[0], eye_colors[1], skin, likelihood, box,
        hair_pixels=_region(lab, hair_mask, skin_lab, True, rgb_to_lab([hair])),
        eye_pixels=_region(lab, eye_mask, skin_lab, False, rgb_to_lab(eye_colors)))


def describe(pixels: np.ndarray, animeface_lab: np.ndarray, prototypes: np.ndarray) -> np.ndarray:
    """A face's description for one group: how its pixels fall on that group's palette."""
    d = ((pixels[:, None, :] - prototypes[None]) ** 2).sum(-1)            # [pixels, prototypes]
    member = np.exp(-(d - d.min(1, keepdims=True)) / (2 * SOFTNESS ** 2))
    member /= member.sum(1, keepdims=True)
    nearest = np.sqrt(d.min(0)).clip(0, FAR) / FAR
    return np.concatenate([member.mean(0), nearest, np.ravel(animeface_lab), np.median(pixels, 0)])


@dataclass
class GroupModel:
    """One group's palette (prototypes, `PROTOTYPES` per tag) and the regression on top."""
    tags: list[str]
    prototypes: np.ndarray      # CIELAB [tags * PROTOTYPES, 3]
    mean: np.ndarray            # feature standardisation
    scale: np.ndarray
    weights: np.ndarray         # [features, tags]
    bias: np.ndarray            # [tags]
    counts: dict[str, int]      # labelled faces each tag was fitted on

    def probabilities(self, pixels: np.ndarray, animeface_lab: np.ndarray) -> dict[str, float]:
        x = (describe(pixels, animeface_lab, self.prototypes) - self.mean) / self.scale
        z = x @ self.weights + self.bias
        p = np.exp(z - z.max())
        return dict(zip(self.tags, (p / p.sum()).tolist()))

    def to_json(self) -> dict:
        r = lambda a: np.round(a, 6).tolist()  # noqa: E731
        return {"tags": self.tags, "prototypes": r(self.prototypes), "mean": r(self.mean), "scale": r(self.scale),
                "weights": r(self.weights), "bias": r(self.bias), "counts": self.counts}

    @classmethod
    def from_json(cls, d: dict) -> "GroupModel":
        arrays = {k: np.asarray(d[k], np.float64) for k in ("prototypes", "mean", "scale", "weights", "bias")}
        model = cls(list(d["tags"]), counts=dict(d["counts"]), **arrays)
        if model.weights.shape != (len(model.mean), len(model.tags)) or len(model.scale) != len(model.mean) \
                or model.bias.shape != (len(model.tags),) or model.prototypes.shape[1:] != (3,):
            raise ValueError("its arrays do not fit together")
        return model


@dataclass
class Palette:
    """Group -> its calibrated model."""
    groups: dict[str, GroupModel]

    def best(self, group: str, colors: FaceColors) -> tuple[str, float]:
        probs = self.groups[group].probabilities(*colors.cues()[group])
        tag = max(probs, key=probs.get)
        return tag, probs[tag]

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({g: m.to_json() for g, m in self.groups.items()}))

    @classmethod
    def load(cls, path: str | Path = DEFAULT_PALETTE) -> "Palette":
        data = json.loads(Path(path).read_text())
        return cls({g: GroupModel.from_json(d) for g, d in data.items()})


def color_labels(colors: FaceColors, palette: Palette) -> list[tuple[str, float]]:
    """(tag, probability) of the most likely colour of each group the palette knows."""
    return [palette.best(group, colors) for group in palette.groups]


# -- calibration -----------------------------------------------------------------


def fit_group(samples: list[tuple[np.ndarray, np.ndarray, str]], min_count: int = 10, seed: int = 0) -> GroupModel:
    """[(pixels, animeface colours, true tag)] -> the group's palette and regression.
    Tags with fewer than `min_count` faces are left out (too few to trust)."""
    from scipy.cluster.vq import kmeans2

    counts = Counter(tag for _, _, tag in samples)
    tags = sorted(t for t, n in counts.items() if n >= min_count)
    samples = [s for s in samples if s[2] in tags]
    if not tags:
        return GroupModel([], np.zeros((0, 3)), np.zeros(0), np.ones(0), np.zeros((0, 0)), np.zeros(0), {})
    rng = np.random.default_rng(seed)
    prototypes = []
    for tag in tags:   # up to 40 pixels of every face with this tag, so no face dominates
        pixels = np.concatenate([px[rng.choice(len(px), min(len(px), 40), replace=False)]
                                 for px, _, t in samples if t == tag])
        k = min(PROTOTYPES, len(np.unique(pixels, axis=0)))
        centres, _ = kmeans2(pixels, k, minit="++", seed=rng)
        prototypes.append(np.concatenate([centres, np.repeat(centres[:1], PROTOTYPES - k, 0)]))
    prototypes = np.concatenate(prototypes)
    X = np.array([describe(px, af, prototypes) for px, af, _ in samples])
    y = np.array([tags.index(t) for _, _, t in samples])
    mean, scale = X.mean(0), X.std(0) + 1e-6
    weights, bias = _logistic_regression((X - mean) / scale, y, len(tags))
    return GroupModel(tags, prototypes, mean, scale, weights, bias, {t: counts[t] for t in tags})


def _logistic_regression(X: np.ndarray, y: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression with a ridge, fitted by L-BFGS: (weights [F, k], bias [k])."""
    from scipy.optimize import minimize

    n, f = X.shape
    onehot = np.eye(k)[y]

    def loss(theta):
        W, b = theta[:f * k].reshape(f, k), theta[f * k:]
        z = X @ W + b
        z -= z.max(1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(1, keepdims=True)
        nll = -np.log(p[np.arange(n), y] + 1e-12).mean() + 0.5 * L2 / n * (W ** 2).sum()
        g = (p - onehot) / n
        return nll, np.concatenate([(X.T @ g + L2 / n * W).ravel(), g.sum(0)])

    theta = minimize(loss, np.zeros(f * k + k), jac=True, method="L-BFGS-B", options={"maxiter": 2000}).x
    return theta[:f * k].reshape(f, k), theta[f * k:]
