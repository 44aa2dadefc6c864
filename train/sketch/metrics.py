"""Fidelity of painted faces to the sketch they were painted from, with a floor and a ceiling.

The line art of a painted face (XDoG with the run's parameters, curate/lineart.py) is
compared with the input sketch, as ink maps (ink = darker than mid-grey):

- symmetric Chamfer distance: the mean distance (pixels) from each ink pixel of one map to
  the nearest ink of the other, averaged over both directions (lower is better);
- edge F1: precision = share of the painted face's ink within `tolerance` px of the sketch's
  ink, recall = share of the sketch's ink within `tolerance` of the painted face's; their
  harmonic mean (higher is better).

Both come from scipy's exact Euclidean distance transform. A number alone says little, so
`fidelity_report` brackets it on real faces:

- floor: a real face's own line art made with other, random XDoG parameters against its
  sketch: how far line art moves with the extraction's arbitrary choices, so a painting this
  close is as faithful as the real face;
- ceiling: the line art of a random other real face against the sketch: no fidelity at all;
- position = (model - floor) / (ceiling - floor), for each measure oriented so that 0 is the
  floor and 1 the ceiling (below 0: closer than the real face's own variation).

Every face is compared at the same size, through the same path (XDoG of an S x S face), so
the floor, the model and the ceiling differ only in the face they look at.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from curate.lineart import XDoGParams, xdog

TOLERANCE = 1.0     # px at 64x64 (scaled with the size): a line a pixel off still counts. At 2 px, a
                    # random other face already matched 67% of a sketch's ink on the shared faces (49% at 1)


def tolerance_for(size: int) -> float:
    """The edge-matching tolerance (px) at `size` x `size`: TOLERANCE at 64 px, scaled with the
    size, so F1 and floor-to-ceiling positions mean the same at 32 and 128 px. The one rule every
    fidelity measure uses (test split, other tags, hand drawings)."""
    return TOLERANCE * size / 64


def ink(lines: np.ndarray) -> np.ndarray:
    """uint8 line map (paper 255) -> bool ink map."""
    return np.asarray(lines) < 128


def line_art(faces: np.ndarray, params: XDoGParams) -> np.ndarray:
    """uint8 faces [N, H, W, 3] (or [N, 3, H, W]) -> bool ink maps [N, H, W] of their XDoG line art."""
    faces = np.asarray(faces)
    if faces.ndim == 4 and faces.shape[1] == 3 and faces.shape[3] != 3:
        faces = faces.transpose(0, 2, 3, 1)
    return np.stack([ink(xdog(np.ascontiguousarray(f), params)) for f in faces])


def _distances_to(m: np.ndarray) -> np.ndarray:
    """Distance of every pixel to the nearest ink of m (inf everywhere when m has none)."""
    if not m.any():
        return np.full(m.shape, np.inf)
    from scipy import ndimage   # lazy: every training run imports this module (the sketch model's eval hook)
    return ndimage.distance_transform_edt(~m)


def chamfer_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Symmetric Chamfer distance between two bool ink maps, in pixels. Two empty maps: 0; one
    empty: the map's diagonal (nothing could be further)."""
    if not a.any() and not b.any():
        return 0.0
    if not a.any() or not b.any():
        return float(np.hypot(*a.shape))
    return float((_distances_to(b)[a].mean() + _distances_to(a)[b].mean()) / 2)


def edge_f1(painted: np.ndarray, sketch: np.ndarray, tolerance: float | None = None) -> float:
    """F1 of the painted face's ink against the sketch's, a match being within `tolerance` px
    [tolerance_for the sketch's size]."""
    tolerance = tolerance_for(sketch.shape[-1]) if tolerance is None else tolerance
    if not painted.any() and not sketch.any():
        return 1.0
    if not painted.any() or not sketch.any():
        return 0.0
    precision = (_distances_to(sketch)[painted] <= tolerance).mean()
    recall = (_distances_to(painted)[sketch] <= tolerance).mean()
    return float(0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall))


@dataclass
class Fidelity:
    chamfer: float       # mean symmetric Chamfer distance, px (lower: more faithful)
    f1: float            # mean edge F1 (higher: more faithful)
    n: int


def fidelity(painted_ink: np.ndarray, sketch_ink: np.ndarray, tolerance: float | None = None) -> Fidelity:
    """Mean Chamfer distance and edge F1 over pairs of bool ink maps [N, H, W]; `tolerance` (px)
    [tolerance_for their size]."""
    tolerance = tolerance_for(np.shape(sketch_ink)[-1]) if tolerance is None else tolerance
    if len(painted_ink) != len(sketch_ink):
        raise ValueError(f"{len(painted_ink)} painted faces for {len(sketch_ink)} sketches")
    pairs = list(zip(painted_ink, sketch_ink))
    return Fidelity(float(np.mean([chamfer_distance(a, b) for a, b in pairs])),
                    float(np.mean([edge_f1(a, b, tolerance) for a, b in pairs])), len(pairs))


def random_params(rng: np.random.Generator, base: XDoGParams) -> XDoGParams:
    """Other XDoG parameters around `base`, as another reasonable extraction would choose them."""
    return replace(base, sigma=base.sigma * rng.uniform(0.75, 1.35), p=rng.uniform(15, 40),
                   epsilon=rng.uniform(-0.12, 0.0), phi=rng.uniform(20, 100),
                   min_area=int(base.min_area * rng.uniform(0.5, 2.0)))


def position(model: float, floor: float, ceiling: float) -> float:
    """Where `model` lies from `floor` (0) to `ceiling` (1); nan when they coincide."""
    return float("nan") if ceiling == floor else float((model - floor) / (ceiling - floor))


def fidelity_report(painted: np.ndarray, sketches: np.ndarray, reals: np.ndarray, params: XDoGParams,
                    seed: int = 0, tolerance: float | None = None) -> dict:
    """Model, floor and ceiling fidelity and the model's position between them.

    painted: uint8 faces [N, H, W, 3] painted from `sketches` (uint8 line maps [N, H, W], the
    sketches the model was given); reals: uint8 [N, H, W, 3], the real faces those sketches
    were made from, at the same size. `tolerance` (px) defaults to tolerance_for the size. The
    ceiling pairs sketch i with real face (i + k) mod N for a random shift k, so no face meets
    its own sketch."""
    n = len(sketches)
    if not (len(painted) == len(reals) == n) or n < 2:
        raise ValueError(f"fidelity needs as many painted and real faces as sketches, and at least 2 "
                         f"(got {len(painted)}, {len(reals)}, {n})")
    tolerance = tolerance_for(sketches.shape[-1]) if tolerance is None else tolerance
    rng = np.random.default_rng(seed)
    sketch_ink = ink(sketches)
    model = fidelity(line_art(painted, params), sketch_ink, tolerance)
    floor_ink = np.stack([line_art(r[None], random_params(rng, params))[0] for r in reals])
    floor = fidelity(floor_ink, sketch_ink, tolerance)
    shift = int(rng.integers(1, n))
    ceiling = fidelity(np.roll(line_art(reals, params), shift, axis=0), sketch_ink, tolerance)
    return {"model": asdict(model), "floor": asdict(floor), "ceiling": asdict(ceiling),
            "position": {"chamfer": position(model.chamfer, floor.chamfer, ceiling.chamfer),
                         "f1": position(model.f1, floor.f1, ceiling.f1)},
            "tolerance_px": tolerance, "seed": seed}
