"""Distribution metrics on feature vectors: FID, KID, diversity, near-duplicates.

FID and KID are torch-fidelity's own formulas (the reference implementations),
applied to whatever features we hand them: InceptionV3 pool features when real
Inception weights are at hand, the judge's penultimate layer always. Inception
weights are never random: `inception_weights()` returns a checked file or raises
`WeightsUnavailable`, and the caller says "skipped" instead of printing a number.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import torch

from train.compat import import_torchvision

# torch-fidelity's InceptionV3 (converted from TF's 2015-12-05 release); the file name carries
# the first 8 hex digits of its sha256, as torch.hub's check_hash expects.
INCEPTION_URL = ("https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
                 "weights-inception-2015-12-05-6726825d.pth")
INCEPTION_SHA256_PREFIX = "6726825d"
# A few tensors every InceptionV3 state dict of torch-fidelity's layout has, with shapes.
INCEPTION_KEYS = {"Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3), "Mixed_7c.branch1x1.conv.weight": (320, 2048, 1, 1),
                  "fc.weight": (1008, 2048)}


class WeightsUnavailable(Exception):
    """No Inception weights could be had (not given, not cached, download failed): skip FID/KID."""


class WeightsError(Exception):
    """A weights file that exists but is not InceptionV3 weights (the user must fix it)."""


# -- FID / KID ----------------------------------------------------------------

def _fidelity():
    import_torchvision()  # torch_fidelity imports torchvision at import time
    from torch_fidelity import metric_fid, metric_kid
    return metric_fid, metric_kid


def fid(features_a: np.ndarray | torch.Tensor, features_b: np.ndarray | torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets [N, D] (torch-fidelity's formula)."""
    metric_fid, _ = _fidelity()
    a, b = _as_tensor(features_a), _as_tensor(features_b)
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"FID needs at least 2 samples per set, got {len(a)} and {len(b)}")
    sa, sb = metric_fid.fid_features_to_statistics(a), metric_fid.fid_features_to_statistics(b)
    return float(metric_fid.fid_statistics_to_metric(sa, sb, verbose=False)[metric_fid.KEY_METRIC_FID])


def kid(features_a, features_b, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Kernel (polynomial, degree 3) MMD², mean and std over random subsets (torch-fidelity's estimator).

    The subset size shrinks to the smaller set, so small evaluations still give a number.
    """
    _, metric_kid = _fidelity()
    a, b = _as_tensor(features_a), _as_tensor(features_b)
    size = min(subset_size, len(a), len(b))
    if size < 2:
        raise ValueError(f"KID needs at least 2 samples per set, got {len(a)} and {len(b)}")
    out = metric_kid.kid_features_to_metric(a, b, kid_subsets=subsets, kid_subset_size=size, rng_seed=seed,
                                            verbose=False, kid_kernel="poly", kid_kernel_poly_degree=3,
                                            kid_kernel_poly_gamma=None, kid_kernel_poly_coef0=1)
    return float(out[metric_kid.KEY_METRIC_KID_MEAN]), float(out[metric_kid.KEY_METRIC_KID_STD])


def _as_tensor(x) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x, dtype=np.float64))
    if t.dim() != 2:
        raise ValueError(f"features must be [N, D], got shape {tuple(t.shape)}")
    return t


# -- diversity ----------------------------------------------------------------

def pairwise_distances(features) -> np.ndarray:
    f = torch.as_tensor(np.asarray(features, dtype=np.float64))
    return torch.cdist(f, f).numpy()


def mean_pairwise_distance(features) -> float:
    """Mean L2 distance over all distinct pairs: how spread out a set is."""
    d = pairwise_distances(features)
    n = len(d)
    return float(d.sum() / (n * (n - 1))) if n > 1 else float("nan")


def nearest_neighbours(features) -> tuple[np.ndarray, np.ndarray]:
    """Each sample's nearest other sample in the same set: its index and the distance to it."""
    d = pairwise_distances(features)
    np.fill_diagonal(d, np.inf)
    nearest = d.argmin(1)
    return nearest, d[np.arange(len(d)), nearest]


def nearest_neighbour_distances(features) -> np.ndarray:
    """Each sample's distance to its nearest other sample in the same set."""
    return nearest_neighbours(features)[1]


def near_duplicate_share(features, threshold: float) -> float:
    """Share of samples with another sample closer than `threshold` (mode collapse shows up here)."""
    nn = nearest_neighbour_distances(features)
    return float((nn < threshold).mean()) if len(nn) > 1 else float("nan")


def duplicate_threshold(real_features, quantile: float = 0.01) -> float:
    """Calibrate "near-duplicate" on real faces: the distance only `quantile` of real faces'
    nearest neighbours fall below, so real data scores about `quantile` by construction."""
    return float(np.quantile(nearest_neighbour_distances(real_features), quantile))


# -- Inception weights ----------------------------------------------------------

def default_cache_dir() -> Path:
    """Where downloaded weights are kept: torch.hub's checkpoint folder, shared with torch-fidelity."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def inception_weights(path: str | os.PathLike | None = None, *, url: str = INCEPTION_URL,
                      sha256_prefix: str = INCEPTION_SHA256_PREFIX, cache_dir: str | os.PathLike | None = None,
                      download: bool = True, timeout: float = 30) -> Path:
    """A checked InceptionV3 weights file.

    `path` given: it must exist and hold InceptionV3 weights (else `WeightsError`).
    Otherwise the cached download is used, fetched first when `download` is true;
    with no network this raises `WeightsUnavailable` -- never random weights.
    """
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise WeightsError(f"--inception-weights {path}: no such file")
        check_inception_state(path)
        return path
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = cache / url.rsplit("/", 1)[-1]
    if not target.is_file():
        if not download:
            raise WeightsUnavailable(f"no Inception weights cached at {target}: pass --inception-weights FILE, "
                                     f"or fetch them once with `train eval RUN --download`")
        fetch(url, target, sha256_prefix, timeout=timeout)
    check_inception_state(target)
    return target


def fetch(url: str, target: Path, sha256_prefix: str | None, timeout: float = 30) -> Path:
    """Download `url` to `target` atomically, checking its sha256 prefix; nothing is left on failure."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name + ".", suffix=".part")
    try:
        digest = hashlib.sha256()
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, os.fdopen(fd, "wb") as out:
                while chunk := response.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise WeightsUnavailable(f"could not download Inception weights from {url} ({e}); "
                                     f"pass --inception-weights FILE") from e
        if sha256_prefix and not digest.hexdigest().startswith(sha256_prefix):
            raise WeightsError(f"download from {url} has sha256 {digest.hexdigest()[:16]}..., expected "
                               f"{sha256_prefix}...: refusing to use it")
        shutil.move(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def check_inception_state(path: Path) -> dict:
    """Load a weights file and make sure it is torch-fidelity's InceptionV3 layout."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # zip/pickle errors come in many types
        raise WeightsError(f"{path} is not a PyTorch weights file ({type(e).__name__}: {e})") from e
    if not isinstance(state, dict):
        raise WeightsError(f"{path} holds a {type(state).__name__}, not a state dict")
    for key, shape in INCEPTION_KEYS.items():
        if key not in state or tuple(state[key].shape) != shape:
            raise WeightsError(f"{path} is not InceptionV3 weights in torch-fidelity's layout "
                               f"(missing or misshapen {key!r})")
    return state


class InceptionFeatures:
    """uint8 NCHW images -> 2048-d InceptionV3 pool features (torch-fidelity's extractor)."""

    def __init__(self, weights: Path):
        import_torchvision()
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
        self.net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                               feature_extractor_weights_path=str(weights))

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, batch: int = 64) -> np.ndarray:
        out = [self.net(images[i:i + batch])[0] for i in range(0, len(images), batch)]
        return torch.cat(out).double().numpy() if out else np.zeros((0, 2048))
