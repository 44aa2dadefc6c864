"""Training data: the catalog's labelled crops plus condition vectors, and for sketch models
each face's stored line art (`curate sketch`), read alongside the crops.

Crops (and line art) are decoded and resized once into cache files keyed by the faces' content
hashes (the line art's parameters too) and the size (train/face_cache.py); a training step reads
its batch's rows from them (no JPEG/PNG decoding, no workers), so memory does not grow with the
data set.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch

from db import Catalog, CatalogError

from curate.cache import cache_root
from curate.images import ImageError, open_crop
from curate.text import visible

from train.conditions import ConditionGroup, ConditionSpec
from train.face_cache import FaceRows, Pictures, UndecodableCrop, cache_path, cached_images, discard_partial
from train.losses import loss_class
from train.options import TrainOptions


class DataError(ValueError):
    """The options select no usable training set."""


@dataclass
class HeldOut:
    """A few faces outside the training batches, with their sketches: a sketch model's grid rows."""
    face_ids: list[int]
    images: torch.Tensor              # uint8 [P, 3, S, S]
    sketches: torch.Tensor            # uint8 [P, 1, S, S], paper 255
    labels: torch.Tensor | None       # float [P, spec.dim]


@dataclass
class TrainingSet:
    face_ids: list[int]
    images: FaceRows | torch.Tensor   # uint8 [N, 3, S, S]: images[idx] -> a tensor of those rows
    labels: torch.Tensor | None       # float [N, spec.dim]
    spec: ConditionSpec | None
    counts: dict[str, dict[str, int]]  # group -> tag -> faces
    dropped: int                      # faces left out for lacking an exclusive label
    left_out: dict[str, dict[str, int]] = field(default_factory=dict)   # tags left out, with their faces
    # sketch models: each face's line art (uint8 [N, 1, S, S], paper 255), read, moved and flipped
    # with the faces; the held-out grid rows; what options.json records of them
    aligned: FaceRows | torch.Tensor | None = None
    held_out: HeldOut | None = None
    meta: dict = field(default_factory=dict)
    set_aside: list[tuple[int, str]] = field(default_factory=list)   # (face id, why): crops that do not decode


def default_cache_dir() -> Path:
    return cache_root()


@dataclass
class Selection:
    """The faces a run trains on, their labels, and what was left out (recorded in options.json)."""
    ids: list[int]
    labels: dict[int, dict]
    spec: ConditionSpec | None
    counts: dict[str, dict[str, int]]      # group -> tag -> faces, the tags trained on
    unlabelled: int = 0                    # faces left out for lacking an exclusive label
    left_out: dict[str, dict[str, int]] = field(default_factory=dict)   # group -> tag -> faces, tags left out


class RareTagsError(DataError):
    """Tags with fewer faces than --min-per-tag, and no --drop-rare: `counts` has every tag's faces."""

    def __init__(self, message: str, counts: dict[str, dict[str, int]], rare: set[tuple[str, str]],
                 min_per_tag: int):
        super().__init__(message)
        self.counts, self.rare, self.min_per_tag = counts, rare, min_per_tag
        self.source: str | None = None       # which run's source, where several are checked


def _present(value) -> bool:
    return value is None or value >= 0.5        # independent tags: a probability, or a plain label


def _count(groups: list[dict], faces: dict[int, dict], leave: set[str] = frozenset()) -> dict[str, dict[str, int]]:
    """Group -> tag -> faces with it, for the tags not in `leave`."""
    counts: dict[str, dict[str, int]] = {}
    for g in groups:
        if g["exclusive"]:
            c = Counter(labels[g["name"]][0] for labels in faces.values())
        else:
            c = Counter(t for labels in faces.values() for t in g["tags"] if t in labels and _present(labels[t][1]))
        counts[g["name"]] = {t: c[t] for t in g["tags"] if c[t] and t not in leave}
    return counts


def select_faces(catalog: Catalog, opts: TrainOptions) -> Selection:
    """The faces and labels a run trains on; raises DataError/CatalogError with the reason.

    `opts.drop_tags` are left out by name (with their faces, for exclusive groups); tags with
    fewer than `min_per_tag` faces are then refused, or left out too with `drop_rare`. With
    `same_faces`, a face is kept only when every source of the run (`labels` and `common`) gives
    it every exclusive group and none of `drop_tags`: runs on those sources with the same
    `drop_tags` then train on exactly the same faces (`train experiment` sets both)."""
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
        return Selection(ids, {}, None, {})
    groups = [catalog.group(name) for name in opts.attrs]     # CatalogError names an unknown group
    unknown = [t for t in opts.drop_tags if not any(t in g["tags"] for g in groups)]
    if unknown:
        raise DataError(f"tags to leave out that no group of {', '.join(opts.attrs)} has: {', '.join(unknown)}")
    labelled = catalog.labelled_faces(opts.labels, opts.split, opts.min_prob, opts.common,
                                      groups=opts.attrs or None)
    if not labelled:
        common = f" and also by {', '.join(opts.common)}" if opts.common else ""
        raise DataError(f"no faces of split {opts.split!r} are labelled by {opts.labels!r}{common}"
                        + (f" with probability >= {opts.min_prob}" if opts.min_prob else ""))
    exclusive = [g["name"] for g in groups if g["exclusive"]]
    others = [catalog.labelled_faces(s, opts.split, opts.min_prob, groups=opts.attrs or None)
              for s in opts.common] if opts.same_faces else []
    complete = {fid: labels for fid, labels in labelled.items()
                if all(all(name in src.get(fid, {}) for name in exclusive) for src in [labelled, *others])}
    unlabelled = len(labelled) - len(complete)

    def without(drop: set[str]) -> dict[int, dict]:
        """The faces none of whose sources gives them a left-out exclusive tag."""
        return {fid: labels for fid, labels in complete.items()
                if not any(src[fid][name][0] in drop for src in [labelled, *others] for name in exclusive)}

    drop = set(opts.drop_tags)
    before = _count(groups, complete)
    counts = _count(groups, without(drop), drop)
    rare = {(g, t) for g, tags in counts.items() for t, n in tags.items() if n < opts.min_per_tag}
    if rare and not opts.drop_rare:
        listed = ", ".join(f"{t!r} ({counts[g][t]})" for g, t in sorted(rare, key=lambda gt: counts[gt[0]][gt[1]]))
        raise RareTagsError(f"too few faces (< --min-per-tag {opts.min_per_tag}) for {listed}; lower "
                            f"--min-per-tag or pass --drop-rare to leave those tags (and, for exclusive "
                            f"groups, their faces) out", counts, rare, opts.min_per_tag)
    drop |= {t for _, t in rare}
    keep = without(drop)
    if not keep:
        raise DataError("no faces are left to train on after the label filters")
    counts = _count(groups, keep, drop)
    left_out = {g["name"]: {t: before[g["name"]].get(t, 0) for t in g["tags"] if t in drop} for g in groups}
    spec_groups = []
    for g in groups:
        tags = [t for t in g["tags"] if t in counts[g["name"]]]
        if not tags:
            raise DataError(f"no face of the training set has a {g['name']} tag from {opts.labels!r}")
        if g["exclusive"]:
            tot = sum(counts[g["name"]][t] for t in tags)
            freq = [counts[g["name"]][t] / tot for t in tags]
        else:
            freq = [counts[g["name"]][t] / len(keep) for t in tags]
        spec_groups.append(ConditionGroup(g["name"], g["exclusive"], tags, freq))
    return Selection(sorted(keep), keep, ConditionSpec(spec_groups), counts, unlabelled,
                     {g: tags for g, tags in left_out.items() if tags})


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


def sketch_parameters(catalog: Catalog, ids: list[int], what: str = "training faces") -> dict:
    """The one set of line-art parameters the faces' current sketches share: {"kind", "method",
    "params", "params_hash"}. Refuses faces without line art and line art of mixed parameters,
    saying that `curate sketch` makes it."""
    found = catalog.derived_params("sketch", ids)
    have = sum(len(v["faces"]) for v in found.values())
    if have < len(ids):
        done = {f for v in found.values() for f in v["faces"]}
        missing = [f for f in ids if f not in done]
        raise DataError(f"{len(missing)} of the {len(ids)} {what} have no line art in {catalog.path} (e.g. face "
                        f"{', '.join(map(str, missing[:5]))}): `curate sketch` makes it")
    if len(found) > 1:
        counts = ", ".join(f"{len(v['faces'])} made with {v['params']}" for v in found.values())
        raise DataError(f"the line art of the {what} was made with {len(found)} parameter sets ({counts}): run "
                        f"`curate sketch` once more with the parameters you want, so that all faces share them")
    (phash, v), = found.items()
    return {"kind": "sketch", "method": v["method"], "params": v["params"], "params_hash": phash}


def held_out(catalog: Catalog, opts: TrainOptions, spec: ConditionSpec | None, sketch: dict, n: int = 8) -> HeldOut:
    """`n` faces of the test split (filled up from the training split when it has too few) with
    their sketches, and their labels when the run is conditional: the rows of a sketch model's
    sample grids, the same at every step."""
    picked: list[int] = []
    labels: dict[int, dict] = {}
    for split in ("test", opts.split):
        if spec is not None:
            found = catalog.labelled_faces(opts.labels, split, opts.min_prob, groups=opts.attrs or None)
            ok = [f for f, lab in sorted(found.items()) if all(
                g.name in lab and lab[g.name][0] in g.tags for g in spec.groups if g.exclusive)]
            labels.update(found)
        else:
            ok = catalog.face_ids("ok", split)
        have = set(catalog.derived_params("sketch", ok).get(sketch["params_hash"], {}).get("faces", []))
        picked += [f for f in ok if f in have and f not in picked][:n - len(picked)]
        if len(picked) >= n:
            break
    if not picked:
        raise DataError(f"no face of {catalog.path} has line art to show in the sample grids: `curate sketch`")
    x = cached_images(catalog, picked, opts.size, None)
    s = cached_images(catalog, picked, opts.size, None, what=Pictures("sketch", sketch["params_hash"]))
    y = encode_labels(spec, picked, labels) if spec is not None else None
    return HeldOut(picked, x, s, y)


def load_training_set(catalog: Catalog, opts: TrainOptions, progress=None, images: bool = True,
                      selected: Selection | None = None) -> TrainingSet:
    """The faces, labels and images of a run; `selected`: what `select_faces` returned, when the
    caller already selected the faces (a run selects them once)."""
    sel = selected if selected is not None else select_faces(catalog, opts)
    cache = Path(opts.cache_dir) if opts.cache_dir else default_cache_dir()
    x, set_aside = torch.empty(0), []
    if images:
        sel, x, set_aside = _crops_setting_aside(catalog, opts, sel, cache, progress)
    y = encode_labels(sel.spec, sel.ids, sel.labels) if sel.spec is not None and opts.conditional else None
    spec = sel.spec if opts.conditional else None
    data = TrainingSet(sel.ids, x, y, spec, sel.counts, sel.unlabelled, sel.left_out, set_aside=set_aside)
    if loss_class(opts.model).needs_sketch:
        sketch = sketch_parameters(catalog, sel.ids)
        if images:
            data.aligned = cached_images(catalog, sel.ids, opts.size, cache, progress,
                                         what=Pictures("sketch", sketch["params_hash"]))
            data.held_out = held_out(catalog, opts, spec, sketch)
        data.meta["sketch"] = {k: sketch[k] for k in ("kind", "method", "params")}
    return data


def _crops_setting_aside(catalog: Catalog, opts: TrainOptions, sel: Selection, cache: Path, progress
                         ) -> tuple[Selection, FaceRows | torch.Tensor, list[tuple[int, str]]]:
    """The selection's crops. Where one does not decode, every crop of the selection that does not
    is found in one pass and set aside as rejected with its reason (as `curate tag` does), the
    faces are selected again without them, and the run goes on: (selection, crops, set aside)."""
    try:
        return sel, cached_images(catalog, sel.ids, opts.size, cache, progress), []
    except UndecodableCrop:
        set_aside = set_aside_undecodable(catalog, sel.ids)
        if not set_aside:
            raise
    discard_partial(cache_path(catalog, sel.ids, opts.size, cache))   # those faces are not the run's any more
    sel = select_faces(catalog, opts)
    return sel, cached_images(catalog, sel.ids, opts.size, cache, progress), set_aside


def set_aside_undecodable(catalog: Catalog, ids: list[int]) -> list[tuple[int, str]]:
    """(face id, why) of the faces among `ids` whose crops do not decode, each now rejected."""
    out = []
    for face_id in ids:
        try:
            with open_crop(catalog.face_image(face_id)) as im:
                im.convert("RGB")
        except ImageError as e:
            catalog.set_face_status(face_id, "rejected", reason=str(e))
            out.append((face_id, str(e)))
    return out


def set_aside_text(set_aside: list[tuple[int, str]]) -> str:
    """One line on the crops a run set aside (console and log)."""
    named = "; ".join(f"face {f}: {visible(why)}" for f, why in set_aside[:5])
    more = f"; and {len(set_aside) - 5} more" if len(set_aside) > 5 else ""
    return f"{len(set_aside)} crops do not decode: set aside as rejected, trained without them ({named}{more})"
