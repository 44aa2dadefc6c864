"""Training data: the catalog's labelled crops as one uint8 tensor plus condition vectors.

Crops are decoded and resized once into a cache file keyed by the faces' content hashes and
the size (train/face_cache.py); a training step reads its batch's rows from it (no JPEG/PNG
decoding, no workers), so memory does not grow with the data set.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

from db import Catalog, CatalogError

from .conditions import ConditionGroup, ConditionSpec
from .face_cache import FaceRows, cached_images
from .options import TrainOptions


class DataError(ValueError):
    """The options select no usable training set."""


@dataclass
class TrainingSet:
    face_ids: list[int]
    images: FaceRows | torch.Tensor   # uint8 [N, 3, S, S]: images[idx] -> a tensor of those rows
    labels: torch.Tensor | None       # float [N, spec.dim]
    spec: ConditionSpec | None
    counts: dict[str, dict[str, int]]  # group -> tag -> faces
    dropped: int                      # faces left out for lacking an exclusive label


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "animeface-gan-study"


def select_faces(catalog: Catalog, opts: TrainOptions) -> tuple[list[int], dict[int, dict], ConditionSpec | None,
                                                                 dict[str, dict[str, int]], int]:
    """The faces and labels a run trains on; raises DataError/CatalogError with the reason."""
    if opts.conditional and not opts.labels:
        raise DataError(f"{opts.model} is conditional: give --labels SOURCE (e.g. manual, i2v)")
    if opts.conditional and not opts.attrs:
        raise DataError(f"{opts.model} needs --attrs (tag groups, e.g. hair_color,eye_color)")
    if not opts.conditional and opts.attrs:
        raise DataError(f"{opts.model} is unconditional: --attrs is for the conditional models")
    if opts.labels is None:
        ids = catalog.face_ids("ok", opts.split)
        if not ids:
            raise DataError(f"no ok faces in split {opts.split!r} of {opts.catalog} (run `curate split`?)")
        return ids, {}, None, {}, 0
    groups = [catalog.group(name) for name in opts.attrs]     # CatalogError names an unknown group
    labelled = catalog.labelled_faces(opts.labels, opts.split, opts.min_prob, opts.common,
                                      groups=opts.attrs or None)
    if not labelled:
        common = f" and also by {', '.join(opts.common)}" if opts.common else ""
        raise DataError(f"no faces of split {opts.split!r} are labelled by {opts.labels!r}{common}"
                        + (f" with probability >= {opts.min_prob}" if opts.min_prob else ""))
    present = lambda value: value is None or value >= 0.5  # noqa: E731  (independent tags)
    keep, dropped = {}, 0
    for fid, labels in labelled.items():
        if all(g["name"] in labels for g in groups if g["exclusive"]):
            keep[fid] = labels
        else:
            dropped += 1
    counts: dict[str, dict[str, int]] = {}
    for g in groups:
        if g["exclusive"]:
            c = Counter(labels[g["name"]][0] for labels in keep.values())
        else:
            c = Counter(t for labels in keep.values() for t in g["tags"] if t in labels and present(labels[t][1]))
        counts[g["name"]] = {t: c[t] for t in g["tags"] if c[t]}
    rare = {(g, t): n for g, tags in counts.items() for t, n in tags.items() if n < opts.min_per_tag}
    if rare and not opts.drop_rare:
        listed = ", ".join(f"{t!r} ({n})" for (_, t), n in sorted(rare.items(), key=lambda kv: kv[1]))
        raise DataError(f"too few faces (< --min-per-tag {opts.min_per_tag}) for {listed}; lower "
                        f"--min-per-tag or pass --drop-rare to leave those tags (and, for exclusive "
                        f"groups, their faces) out")
    for (gname, tag) in rare:
        del counts[gname][tag]
        if next(g for g in groups if g["name"] == gname)["exclusive"]:
            keep = {f: lab for f, lab in keep.items() if lab[gname][0] != tag}
    if not keep:
        raise DataError("no faces are left to train on after the label filters")
    spec_groups = []
    for g in groups:
        tags = [t for t in g["tags"] if t in counts[g["name"]]]
        if not tags:
            raise DataError(f"no face of the training set has a {g['name']} tag from {opts.labels!r}")
        n = len(keep)
        if g["exclusive"]:
            tot = sum(counts[g["name"]][t] for t in tags)
            freq = [counts[g["name"]][t] / tot for t in tags]
        else:
            freq = [counts[g["name"]][t] / n for t in tags]
        spec_groups.append(ConditionGroup(g["name"], g["exclusive"], tags, freq))
    ids = sorted(keep)
    return ids, keep, ConditionSpec(spec_groups), counts, dropped


def encode_labels(spec: ConditionSpec, ids: list[int], labels: dict[int, dict]) -> torch.Tensor:
    dicts = []
    for fid in ids:
        d = {}
        for g in spec.groups:
            if g.exclusive:
                d[g.name] = labels[fid][g.name][0]
            else:
                d[g.name] = [t for t in g.tags if t in labels[fid]
                             and (labels[fid][t][1] is None or labels[fid][t][1] >= 0.5)]
        dicts.append(d)
    return spec.encode(dicts)


def load_training_set(catalog: Catalog, opts: TrainOptions, progress=None, images: bool = True,
                      selected: tuple | None = None) -> TrainingSet:
    """The faces, labels and images of a run; `selected`: what `select_faces` returned, when the
    caller already selected the faces (a run selects them once)."""
    ids, labels, spec, counts, dropped = selected if selected is not None else select_faces(catalog, opts)
    y = encode_labels(spec, ids, labels) if spec is not None and opts.conditional else None
    cache = Path(opts.cache_dir) if opts.cache_dir else default_cache_dir()
    x = cached_images(catalog, ids, opts.size, cache, progress) if images else torch.empty(0)
    return TrainingSet(ids, x, y, spec if opts.conditional else None, counts, dropped)
