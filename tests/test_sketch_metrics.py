"""Sketch fidelity: Chamfer distance and edge F1 on shapes with known answers, floor and ceiling."""

from __future__ import annotations

import numpy as np
import pytest

from curate.lineart import XDoGParams, xdog
from train.sketch.metrics import chamfer_distance, edge_f1, fidelity, fidelity_report, position


def vline(x: int, size: int = 32) -> np.ndarray:
    m = np.zeros((size, size), bool)
    m[4:28, x] = True
    return m


def test_chamfer_and_f1_on_known_shapes():
    a = vline(10)
    assert chamfer_distance(a, a) == 0 and edge_f1(a, a) == 1
    assert chamfer_distance(a, vline(13)) == pytest.approx(3.0)        # every pixel 3 px from the other line
    assert edge_f1(a, vline(13), tolerance=2) == 0 and edge_f1(a, vline(11), tolerance=2) == 1
    both = a | vline(20)                                                # half of the ink matches
    assert edge_f1(both, a, tolerance=2) == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert chamfer_distance(both, a) == pytest.approx((5.0 + 0.0) / 2)  # 0 and 10 px -> 5; other way 0
    empty = np.zeros_like(a)
    assert chamfer_distance(empty, empty) == 0 and edge_f1(empty, empty) == 1
    assert chamfer_distance(a, empty) == pytest.approx(np.hypot(32, 32)) and edge_f1(a, empty) == 0


def test_position_between_floor_and_ceiling():
    assert position(2.0, 2.0, 6.0) == 0 and position(6.0, 2.0, 6.0) == 1 and position(3.0, 2.0, 6.0) == 0.25
    assert position(0.5, 0.8, 0.2) == 0.5                               # F1: higher is better, same formula
    assert np.isnan(position(1.0, 2.0, 2.0))
    f = fidelity(np.stack([vline(10), vline(10)]), np.stack([vline(10), vline(13)]), tolerance=2)
    assert f.n == 2 and f.chamfer == pytest.approx(1.5) and f.f1 == pytest.approx(0.5)


def faces(n: int = 8, size: int = 64, seed: int = 0) -> np.ndarray:
    """Synthetic 'faces': a pale ellipse with two dark eyes, placed and shaped at random."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = []
    for _ in range(n):
        cy, cx = rng.uniform(0.35, 0.65, 2) * size
        ry, rx = rng.uniform(0.2, 0.35, 2) * size
        img = np.full((size, size, 3), rng.integers(60, 140, 3), np.uint8)
        img[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1] = (245, 220, 205)
        for ex in (cx - rx / 2.5, cx + rx / 2.5):
            img[(yy - cy + ry / 4) ** 2 + (xx - ex) ** 2 < (size / 20) ** 2] = (40, 30, 80)
        out.append(img)
    return np.stack(out)


def test_report_places_the_real_faces_at_the_floor_and_strangers_at_the_ceiling():
    params = XDoGParams()
    reals = faces()
    sketches = np.stack([xdog(r, params) for r in reals])
    exact = fidelity_report(reals, sketches, reals, params)
    assert exact["model"]["chamfer"] == 0 and exact["model"]["f1"] == 1
    assert exact["position"]["chamfer"] <= 0 and exact["position"]["f1"] <= 0   # no worse than the floor
    assert exact["floor"]["chamfer"] < exact["ceiling"]["chamfer"] and exact["floor"]["f1"] > exact["ceiling"]["f1"]
    strangers = fidelity_report(np.roll(reals, 2, axis=0), sketches, reals, params)
    assert strangers["position"]["chamfer"] > 0.6 and strangers["position"]["f1"] > 0.6
    shifted = fidelity_report(np.roll(reals, 2, axis=2), sketches, reals, params)   # every face 2 px off
    for measure in ("chamfer", "f1"):
        assert 0 < shifted["position"][measure] < strangers["position"][measure]
    with pytest.raises(ValueError, match="at least 2"):
        fidelity_report(reals[:1], sketches[:1], reals[:1], params)


@pytest.mark.parametrize("size", [32, 128])
def test_every_fidelity_measure_scales_its_tolerance_with_the_size(size):
    """`train eval` of a 32 or 128 px sketch run: the other-tags and hand-drawn fidelity (plain
    `fidelity`) match lines within the same tolerance as the test split's report, so their F1 and
    positions between floor and ceiling are comparable."""
    from train.sketch.metrics import ink, line_art, tolerance_for
    params = XDoGParams()
    reals = faces(size=size)
    sketches = np.stack([xdog(r, params) for r in reals])
    painted = np.roll(reals, 1, axis=2)                  # every line a pixel to the right
    report = fidelity_report(painted, sketches, reals, params)
    plain = fidelity(line_art(painted, params), ink(sketches))
    assert report["tolerance_px"] == tolerance_for(size) == size / 64
    assert plain.f1 == pytest.approx(report["model"]["f1"])
    assert plain.chamfer == pytest.approx(report["model"]["chamfer"])
