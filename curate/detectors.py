"""Face detectors behind one small interface: `detect(rgb) -> [Box]`.

- `animeface`: the embedded nvxs detector from PyPI `animeface` (no download; the default)
- `lbp`: nagadomi's lbpcascade_animeface.xml with OpenCV (`--cascade PATH`; else the copy in
  ../shared/models or the cache; else fetched once from its public home), always sha256-checked
- `human`, `cat`: OpenCV's bundled Haar cascades, for the human-face and cat datasets

Detectors are built inside each worker process from a picklable `DetectorSpec`
(OpenCV classifiers cannot be pickled), so anything that downloads happens once,
in the main process, in `resolve()`.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

from curate.cache import cache_path
from curate.shared_files import shared_path

LBP_URL = "https://raw.githubusercontent.com/nagadomi/lbpcascade_animeface/master/lbpcascade_animeface.xml"
LBP_SHA256 = "9376d30ac38db6bda2a68b88b3b76bbd7e6aa33af47f7f5c76bc88ca75f1ce30"
HAAR_FILES = {"human": "haarcascade_frontalface_default.xml", "cat": "haarcascade_frontalcatface.xml"}
DETECTORS = ("animeface", "lbp", "human", "cat")
# `curate crop --min-score` when not given. animeface's likelihood is 0-1; at 0.7, on the shared raw
# illustrations, precision rose from 88% to 97% for one true face of 88 lost (BENCHMARKS.md).
# Cascade scores are level weights on no fixed scale: no default.
DEFAULT_MIN_SCORE = {"animeface": 0.7}


class DetectorError(Exception):
    """The detector cannot be set up (bad cascade file, failed download, wrong checksum)."""


class Box(NamedTuple):
    """A face box in the pixels of the picture given to `detect`."""
    x: int
    y: int
    w: int
    h: int
    score: float | None = None

    def scaled(self, factor: float) -> "Box":
        return Box(round(self.x * factor), round(self.y * factor), round(self.w * factor),
                   round(self.h * factor), self.score)


@dataclass(frozen=True)
class DetectorSpec:
    """What a worker needs to build a detector: its name and, for cascades, the file."""
    name: str
    cascade: str | None = None


class AnimeFaceDetector:
    name = "animeface"

    def __init__(self, min_likelihood: float = 0.0):
        import animeface  # imported here: only this detector needs the C extension
        self._animeface = animeface
        self.min_likelihood = min_likelihood

    def _faces(self, rgb: Image.Image) -> list:
        """animeface's faces at or above the likelihood threshold."""
        return [f for f in self._animeface.detect(rgb) if f.likelihood >= self.min_likelihood]

    def detect(self, rgb: Image.Image) -> list[Box]:
        return [Box(f.face.pos.x, f.face.pos.y, f.face.pos.width, f.face.pos.height, float(f.likelihood))
                for f in self._faces(rgb)]

    def eyes(self, rgb: Image.Image) -> list[tuple[Box, Box]]:
        """Each face's two eye boxes (animeface finds them with the face), scored by the face's likelihood."""
        return [tuple(Box(e.pos.x, e.pos.y, e.pos.width, e.pos.height, float(f.likelihood))
                      for e in (f.left_eye, f.right_eye))
                for f in self._faces(rgb)]


class CascadeDetector:
    """OpenCV cascade on the equalised grey picture."""

    def __init__(self, name: str, path: str, min_size: int = 24, neighbours: int = 5):
        import cv2
        self.name = name
        self._cv2 = cv2
        try:
            self.classifier = cv2.CascadeClassifier(str(path))
            bad = self.classifier.empty()
        except (cv2.error, SystemError):  # OpenCV raises on malformed XML
            bad = True
        if bad:
            raise DetectorError(f"{path} is not an OpenCV cascade file")
        self.min_size = min_size
        self.neighbours = neighbours

    def detect(self, rgb: Image.Image) -> list[Box]:
        cv2 = self._cv2
        grey = cv2.equalizeHist(cv2.cvtColor(np.asarray(rgb), cv2.COLOR_RGB2GRAY))
        boxes, _, weights = self.classifier.detectMultiScale3(
            grey, scaleFactor=1.1, minNeighbors=self.neighbours, minSize=(self.min_size, self.min_size),
            outputRejectLevels=True)
        return [Box(int(x), int(y), int(w), int(h), float(s))
                for (x, y, w, h), s in zip(boxes, np.ravel(weights))]


def cache_dir() -> Path:
    old = ("lbpcascade_animeface.xml",)
    cached = cache_path("cascades", *old, old=old)
    return cached.parent


def fetch_cascade(url: str | None = None, sha256: str | None = None, cache: Path | None = None,
                  timeout: float = 30, download: bool = True) -> Path:
    """The cached cascade file, downloaded once and checked against `sha256` (`download=False`: the
    cached or ../shared copy only, else DetectorError).

    The download goes to a temporary file renamed into place only when the hash
    matches, so a failed or hostile download never leaves a file that is later trusted.
    """
    url, sha256, cache = url or LBP_URL, sha256 or LBP_SHA256, cache or cache_dir()
    target = cache / Path(url).name
    if target.exists() and _sha256_file(target) == sha256:
        return target
    local = shared_path("models", Path(url).name)
    if local is not None and local.is_file() and _sha256_file(local) == sha256:
        return local   # offline: the copy ../shared holds, checked like a download
    if not download:
        raise DetectorError(f"{target.name} is not cached in {cache} and may not be downloaded")
    cache.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data = response.read()
    except OSError as e:
        raise DetectorError(f"cannot download {url}: {e} (or pass --cascade PATH)") from e
    got = hashlib.sha256(data).hexdigest()
    if got != sha256:
        raise DetectorError(f"{url} has sha256 {got}, expected {sha256}: refusing to use it")
    fd, tmp = tempfile.mkstemp(dir=cache, suffix=".part")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, target)
    return target


def resolve(name: str, cascade: str | os.PathLike | None = None, download: bool = True) -> DetectorSpec:
    """Check the detector name and find (or fetch, with `download`) its cascade file, in the main process."""
    if name not in DETECTORS:
        raise DetectorError(f"unknown detector {name!r}; choose one of {', '.join(DETECTORS)}")
    if cascade is not None and name == "animeface":
        raise DetectorError("--cascade applies to the cascade detectors (lbp, human, cat), not animeface")
    if cascade is not None:
        path = Path(cascade)
        if not path.is_file():
            raise DetectorError(f"cascade file {path} does not exist")
    elif name == "lbp":
        path = fetch_cascade(download=download)
    elif name in HAAR_FILES:
        import cv2
        path = Path(cv2.data.haarcascades) / HAAR_FILES[name]
    else:
        return DetectorSpec(name)
    spec = DetectorSpec(name, str(path))
    build(spec)  # fail now, with a message, rather than in every worker
    return spec


def build(spec: DetectorSpec):
    if spec.name == "animeface":
        return AnimeFaceDetector()
    return CascadeDetector(spec.name, spec.cascade)


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
