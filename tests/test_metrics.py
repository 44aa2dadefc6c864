"""FID/KID/diversity against known answers, and Inception weights handling (files, loopback download)."""

from __future__ import annotations

import hashlib
import http.server
import threading

import numpy as np
import pytest
import torch

from train.eval import metrics as M


def gaussian(n: int, d: int, mean: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(mean, 1.0, (n, d))


def test_fid_of_identical_sets_is_zero():
    x = gaussian(500, 8, 0.0, 0)
    assert M.fid(x, x) == pytest.approx(0.0, abs=1e-6)


def test_fid_of_shifted_gaussians_is_squared_mean_distance():
    # Same samples shifted: equal covariances, so FID = ||mu1 - mu2||^2 exactly.
    x = gaussian(2000, 4, 0.0, 1)
    shift = np.array([1.0, -2.0, 0.5, 0.0])
    assert M.fid(x, x + shift) == pytest.approx(float(shift @ shift), rel=1e-6)


def test_fid_of_independent_draws_is_small_and_grows_with_shift():
    a, b = gaussian(4000, 4, 0.0, 2), gaussian(4000, 4, 0.0, 3)
    near, far = M.fid(a, b), M.fid(a, b + 3.0)
    assert near < 0.05
    assert far == pytest.approx(4 * 9.0, rel=0.05)


def test_kid_identical_near_zero_and_shift_positive():
    a, b = gaussian(600, 16, 0.0, 4), gaussian(600, 16, 0.0, 5)
    same, _ = M.kid(a, a, subsets=20, subset_size=200)
    draws, _ = M.kid(a, b, subsets=20, subset_size=200)
    shifted, _ = M.kid(a, b + 1.0, subsets=20, subset_size=200)
    # The unbiased estimator scatters around 0 for equal distributions, by a few hundredths here.
    assert abs(same) < 0.05 and abs(draws) < 0.05
    assert shifted > 100 * max(abs(same), abs(draws))


def test_kid_shrinks_subsets_to_small_sets():
    mean, std = M.kid(gaussian(30, 4, 0, 6), gaussian(50, 4, 0, 7))
    assert np.isfinite(mean) and std >= 0


def test_fid_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        M.fid(np.zeros(5), np.zeros(5))
    with pytest.raises(ValueError, match="at least 2"):
        M.fid(np.zeros((1, 3)), np.zeros((4, 3)))


def test_diversity_measures():
    pts = np.array([[0.0, 0.0], [3.0, 4.0], [3.0, 4.001]])
    # distances: 5, 5.0008, 0.001 -> mean over ordered distinct pairs
    assert M.mean_pairwise_distance(pts) == pytest.approx((5 + 5.0008 + 0.001) / 3, rel=1e-3)
    assert M.nearest_neighbour_distances(pts) == pytest.approx([5.0, 0.001, 0.001], rel=1e-3)
    assert M.near_duplicate_share(pts, threshold=0.01) == pytest.approx(2 / 3)
    collapsed = np.repeat(gaussian(1, 8, 0, 8), 50, axis=0) + gaussian(50, 8, 0, 9) * 1e-4
    real = gaussian(500, 8, 0, 10)
    t = M.duplicate_threshold(real, quantile=0.01)
    assert M.near_duplicate_share(real, t) <= 0.02
    assert M.near_duplicate_share(collapsed, t) == 1.0


# -- Inception weights --------------------------------------------------------------------

def test_missing_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(M.WeightsError, match="no such file"):
        M.inception_weights(tmp_path / "nope.pth")


def test_garbage_weights_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(M.WeightsError, match="not a PyTorch weights file"):
        M.inception_weights(bad)


def test_wrong_state_dict_is_a_clear_error(tmp_path):
    other = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(4, 3, 3, 3)}, other)
    with pytest.raises(M.WeightsError, match="not InceptionV3 weights"):
        M.inception_weights(other)


def test_no_cache_and_no_download_is_unavailable(tmp_path):
    with pytest.raises(M.WeightsUnavailable, match="--inception-weights"):
        M.inception_weights(cache_dir=tmp_path, download=False)


def fake_inception_state() -> dict:
    # Only the checked tensors: the layout check passes, nothing else pretends to be Inception.
    return {k: torch.zeros(shape) for k, shape in M.INCEPTION_KEYS.items()}


@pytest.fixture
def loopback(tmp_path):
    """A local HTTP server over a folder; yields (folder, base URL, request log)."""
    root = tmp_path / "www"
    root.mkdir()
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(root), **kw)

        def log_message(self, *a):
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()
    server.server_close()


def test_download_checks_hash_caches_and_reuses(tmp_path, loopback):
    root, base, requests = loopback
    torch.save(fake_inception_state(), root / "weights.pth")
    prefix = hashlib.sha256((root / "weights.pth").read_bytes()).hexdigest()[:8]
    cache = tmp_path / "cache"
    path = M.inception_weights(url=f"{base}/weights.pth", sha256_prefix=prefix, cache_dir=cache)
    assert path == cache / "weights.pth" and path.read_bytes() == (root / "weights.pth").read_bytes()
    assert len(requests) == 1
    again = M.inception_weights(url=f"{base}/weights.pth", sha256_prefix=prefix, cache_dir=cache)
    assert again == path and len(requests) == 1   # served from the cache


def test_download_with_wrong_hash_leaves_nothing(tmp_path, loopback):
    root, base, _ = loopback
    torch.save(fake_inception_state(), root / "weights.pth")
    cache = tmp_path / "cache"
    with pytest.raises(M.WeightsError, match="refusing"):
        M.inception_weights(url=f"{base}/weights.pth", sha256_prefix="00000000", cache_dir=cache)
    assert list(cache.iterdir()) == []


def test_unreachable_server_is_unavailable_not_random(tmp_path, loopback):
    _, base, _ = loopback
    with pytest.raises(M.WeightsUnavailable, match="could not download"):
        M.inception_weights(url=f"{base}/missing.pth", cache_dir=tmp_path / "cache")
    assert not any((tmp_path / "cache").iterdir())
