"""Hair and eye colour tags from `animeface`, with probabilities.

`animeface` finds a face and reports one RGB value for the hair and one per eye.
Its hair value alone is a weak cue (it is often a shadow or the outline), so the
hair is also measured on the crop itself: the median CIELAB colour of the band above
the eyes, leaving out pixels close to the skin colour animeface reports, near-white
background and black line art.

Each colour tag is then a small Gaussian in that CIELAB feature space (the "palette",
calibrated on labelled faces by `fit_palette`); a face's probabilities are the
softmax over the tags of minus half the Mahalanobis distance (plus log prior and
log-determinant: i.e. quadratic discriminant analysis). Distances are in CIELAB
because there equal steps look about equally different to people.
The calibrated palette ships as `animeface_palette.json` (fitted on the train split of
the shared labelled faces: see .notes/bench_tagging.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

DEFAULT_PALETTE = Path(__file__).with_name("animeface_palette.json")
PAD = 48          # 96-px crops: a white frame lets animeface find faces touching the border
SKIN_DELTA_E = 18  # pixels closer than this to the skin colour are skin, not hair
SHRINK = 0.05     # covariance shrinkage: keeps rare colours (orange, grey: ~100 faces) stable


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
    """What animeface (and our look at the hair band) saw in one face."""
    hair: tuple[int, int, int]
    left_eye: tuple[int, int, int]
    right_eye: tuple[int, int, int]
    skin: tuple[int, int, int]
    likelihood: float
    box: tuple[int, int, int, int]      # x, y, w, h in the picture's pixels
    hair_band_lab: tuple[float, float, float]

    def features(self) -> dict[str, np.ndarray]:
        """Group -> the feature vector its palette is defined on."""
        return {"hair_color": np.r_[self.hair_band_lab, rgb_to_lab(self.hair)],
                "eye_color": np.r_[rgb_to_lab(self.left_eye), rgb_to_lab(self.right_eye)]}


def _rgb(part) -> tuple[int, int, int]:
    return (int(part.color.r), int(part.color.g), int(part.color.b))


def hair_band_lab(rgb: np.ndarray, box: tuple[int, int, int, int], skin_rgb) -> np.ndarray:
    """Median CIELAB of the picture above 30% of the face box, skin/background/lines left out."""
    x, y, w, h = box
    bottom = int(np.clip(y + 0.3 * h, 8, rgb.shape[0]))
    band = rgb_to_lab(rgb[:bottom]).reshape(-1, 3)
    skin = rgb_to_lab(np.asarray(skin_rgb, np.float64))
    not_skin = np.linalg.norm(band - skin, axis=1) > SKIN_DELTA_E
    background = (band[:, 0] > 92) & (np.hypot(band[:, 1], band[:, 2]) < 8)
    lines = band[:, 0] < 12
    keep = not_skin & ~background & ~lines
    return np.median(band[keep] if keep.sum() > 20 else band, axis=0)


def find_face_colors(image: Image.Image) -> FaceColors | None:
    """The colours of the most likely face animeface finds; None when it finds none.

    Tries the picture as it is, then inside a white frame (small crops whose face
    touches the border): on the 96x96 shared faces that lifts coverage from 83% to 93%.
    """
    import animeface  # the C extension; only this tagger needs it
    rgb = image.convert("RGB")
    offset = 0
    faces = animeface.detect(rgb)
    if not faces:
        offset = PAD
        faces = animeface.detect(ImageOps.expand(rgb, border=PAD, fill=(255, 255, 255)))
    if not faces:
        return None
    face = max(faces, key=lambda f: f.likelihood)
    p = face.face.pos
    box = (int(p.x) - offset, int(p.y) - offset, int(p.width), int(p.height))
    skin = _rgb(face.skin)
    band = hair_band_lab(np.asarray(rgb), box, skin)
    return FaceColors(_rgb(face.hair), _rgb(face.left_eye), _rgb(face.right_eye), skin,
                      float(face.likelihood), box, tuple(float(v) for v in band))


@dataclass
class Palette:
    """Per group, per tag: a Gaussian (mean, inverse covariance, log-det) and a log prior;
    per group a temperature that scales the log scores so probabilities are calibrated."""
    groups: dict[str, dict[str, dict]]
    temperatures: dict[str, float] = field(default_factory=dict)

    def scores(self, group: str, x: np.ndarray) -> np.ndarray:
        return np.array([_log_score(t, x) for t in self.groups[group].values()])

    def probabilities(self, group: str, x: np.ndarray) -> dict[str, float]:
        tags = self.groups[group]
        scores = self.scores(group, x) * self.temperatures.get(group, 1.0)
        scores = np.exp(scores - scores.max())
        scores /= scores.sum()
        return dict(zip(tags, scores.tolist()))

    def best(self, group: str, x: np.ndarray) -> tuple[str, float]:
        probs = self.probabilities(group, x)
        tag = max(probs, key=probs.get)
        return tag, probs[tag]

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"groups": self.groups, "temperatures": self.temperatures}, indent=1))

    @classmethod
    def load(cls, path: str | Path = DEFAULT_PALETTE) -> "Palette":
        data = json.loads(Path(path).read_text())
        return cls(data["groups"], data.get("temperatures", {}))


def _log_score(t: dict, x: np.ndarray) -> float:
    d = np.asarray(x, np.float64) - np.asarray(t["mean"])
    return float(-0.5 * d @ np.asarray(t["inv_cov"]) @ d - 0.5 * t["logdet"] + t["log_prior"])


def fit_palette(samples: dict[str, list[tuple[np.ndarray, str]]], min_count: int = 10) -> Palette:
    """Calibrate: group -> [(feature vector, true tag)] -> one Gaussian per tag seen >= min_count times."""
    groups = {}
    for group, pairs in samples.items():
        X = np.array([p[0] for p in pairs], np.float64)
        y = np.array([p[1] for p in pairs])
        tags = {}
        for tag in sorted(set(y)):
            Xc = X[y == tag]
            if len(Xc) < min_count:
                continue
            cov = np.cov(Xc.T)
            cov = (1 - SHRINK) * cov + SHRINK * np.eye(X.shape[1]) * np.trace(cov) / X.shape[1]
            tags[tag] = {"mean": Xc.mean(0).round(4).tolist(), "inv_cov": np.linalg.inv(cov).tolist(),
                         "logdet": float(np.linalg.slogdet(cov)[1]), "log_prior": float(np.log(len(Xc) / len(X))),
                         "count": int(len(Xc))}
        groups[group] = tags
    palette = Palette(groups)
    for group, pairs in samples.items():
        palette.temperatures[group] = _fit_temperature(palette, group, pairs)
    return palette


def _fit_temperature(palette: Palette, group: str, pairs) -> float:
    """The scale of the log scores that maximises the likelihood of the true tags: Gaussians
    fitted to noisy labels are far too sure of themselves (probabilities of 1.00 everywhere)."""
    tags = list(palette.groups[group])
    known = [(x, tags.index(t)) for x, t in pairs if t in tags]
    if not known:
        return 1.0
    scores = np.array([palette.scores(group, x) for x, _ in known])
    truth = np.array([i for _, i in known])
    best, best_nll = 1.0, np.inf
    for t in np.geomspace(0.02, 2.0, 60):
        z = scores * t
        z = z - z.max(1, keepdims=True)
        nll = -(z[np.arange(len(z)), truth] - np.log(np.exp(z).sum(1))).mean()
        if nll < best_nll:
            best, best_nll = float(t), nll
    return round(best, 4)


def color_labels(colors: FaceColors, palette: Palette) -> list[tuple[str, float]]:
    """(tag, probability) of the most likely colour of each group the palette knows."""
    feats = colors.features()
    return [palette.best(group, feats[group]) for group in palette.groups if group in feats]


def calibrate(catalog, source: str = "manual", split: str | None = "train",
              progress=None, min_count: int = 10) -> tuple[Palette, dict]:
    """Fit a palette on the faces `source` labelled (in `split`); also returns coverage counts."""
    import io
    groups = [g for g in ("hair_color", "eye_color")]
    labels = catalog.labelled_faces(source, split=split)
    samples: dict[str, list] = {g: [] for g in groups}
    found = 0
    for face_id, face_labels in labels.items():
        colors = find_face_colors(Image.open(io.BytesIO(catalog.face_image(face_id))))
        if progress:
            progress(1, len(labels))
        if colors is None:
            continue
        found += 1
        feats = colors.features()
        for g in groups:
            if g in face_labels:
                samples[g].append((feats[g], face_labels[g][0]))
    if not found:
        raise ValueError(f"animeface found no face among the {len(labels)} faces {source!r} labelled")
    palette = fit_palette(samples, min_count)
    for group, tags in palette.groups.items():
        if not tags:
            raise ValueError(f"no {group} tag has {min_count} labelled faces where animeface finds a face "
                             f"(found {found} of {len(labels)}); label more faces or lower --min-faces")
    return palette, {"faces": len(labels), "found": found}
