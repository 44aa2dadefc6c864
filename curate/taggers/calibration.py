"""`curate calibrate-colors`: fit the animeface palette on labelled faces, and say how it does on
faces it never saw, beside the palette in use, so a recalibration is a measured choice."""

from __future__ import annotations

import io
import multiprocessing
import os
from typing import Callable, Iterable

from PIL import Image

from curate.taggers.colors import GROUPS, FaceColors, Palette, color_labels, find_face_colors, fit_group

Progress = Callable[[int, int], None]


def _colors_of(blob: bytes) -> FaceColors | None:
    return find_face_colors(Image.open(io.BytesIO(blob)))


def face_colors(catalog, face_ids: list[int], workers: int = 0, progress: Progress | None = None
                ) -> dict[int, FaceColors | None]:
    """animeface's colours of each face (None where it finds no face), in `workers` processes (0: one
    per core). This process reads the crops; the workers only compute."""
    workers = min(workers or os.cpu_count() or 1, max(len(face_ids) // 16, 1))
    blobs: Iterable[bytes] = (catalog.face_image(f) for f in face_ids)
    out: dict[int, FaceColors | None] = {}
    if workers <= 1:
        results = map(_colors_of, blobs)
    else:
        pool = multiprocessing.get_context("fork").Pool(workers)
        results = pool.imap(_colors_of, list(blobs), chunksize=8)
    try:
        for face_id, colors in zip(face_ids, results):
            out[face_id] = colors
            if progress:
                progress(1, len(face_ids))
    finally:
        if workers > 1:
            pool.terminate()
    return out


def calibrate(catalog, source: str = "manual", split: str | None = "train", progress: Progress | None = None,
              min_count: int = 10, workers: int = 0) -> tuple[Palette, dict]:
    """Fit a palette on the faces `source` labelled (in `split`); also returns coverage counts."""
    labels = catalog.labelled_faces(source, split=split)
    colors = face_colors(catalog, list(labels), workers, progress)
    samples: dict[str, list] = {g: [] for g in GROUPS}
    found = sum(c is not None for c in colors.values())
    for face_id, face_labels in labels.items():
        if colors[face_id] is None:
            continue
        for group, (pixels, animeface_lab) in colors[face_id].cues().items():
            if group in face_labels:
                samples[group].append((pixels, animeface_lab, face_labels[group][0]))
    if not found:
        raise ValueError(f"animeface found no face among the {len(labels)} faces {source!r} labelled")
    palette = Palette({g: fit_group(s, min_count) for g, s in samples.items()})
    for group, model in palette.groups.items():
        if not model.tags:
            raise ValueError(f"no {group} tag has {min_count} labelled faces where animeface finds a face "
                             f"(found {found} of {len(labels)}); label more faces or lower --min-faces")
    return palette, {"faces": len(labels), "found": found}


def held_out_accuracy(catalog, palettes: dict[str, Palette], source: str, split: str = "test",
                      workers: int = 0, progress: Progress | None = None) -> dict:
    """Per palette and group, how often its most likely colour is `source`'s label on the faces of
    `split` where animeface finds a face (the same faces for every palette): {"faces", "found",
    "accuracy": {palette name: {group: (right, n)}}}."""
    labels = catalog.labelled_faces(source, split=split)
    colors = face_colors(catalog, list(labels), workers, progress)
    accuracy: dict[str, dict[str, list[int]]] = {name: {} for name in palettes}
    for face_id, face_labels in labels.items():
        if colors[face_id] is None:
            continue
        for name, palette in palettes.items():
            for group, (tag, _) in zip(palette.groups, color_labels(colors[face_id], palette)):
                if group in face_labels:
                    right_n = accuracy[name].setdefault(group, [0, 0])
                    right_n[0] += tag == face_labels[group][0]
                    right_n[1] += 1
    return {"faces": len(labels), "found": sum(c is not None for c in colors.values()),
            "accuracy": {name: {g: tuple(v) for g, v in groups.items()} for name, groups in accuracy.items()}}
