"""Auto-taggers and the resumable loop that writes their labels into the catalog.

A tagger turns a batch of face pictures into, per face, a list of (tag, probability)
in the catalog's vocabulary. Its labels are written as label events of its own source
(`i2v`, `animeface`) with the probability as value and the model version as
annotator ("<version> (whole crop)" where it read a face another way than usual), so a
re-run skips the faces this version has tagged already; a face where it found nothing
is remembered as tried (db.tagging.NOTHING_KEY). Manual labels are never touched: they
are another source.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import multiprocessing
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

import numpy as np
from PIL import Image

from db import Catalog, CatalogError

from curate import on_ray
from curate.images import ImageError, open_crop
from curate.taggers.colors import DEFAULT_PALETTE, Palette, color_labels, find_face_colors, whole_crop_colors
from curate.taggers.i2v.preprocess import preprocess_batch

# Tags i2v knows that say something about the picture rather than the character:
# curation filters on them (drop monochrome, sketches, comic panels, crowds).
QUALITY_TAGS = ["monochrome", "sketch", "comic", "traditional media", "chibi", "solo", "multiple girls",
                "multiple boys", "no humans", "photo", "simple background", "white background", "signature"]
QUALITY_GROUP = "quality"


@dataclass
class TagOptions:
    """Everything a tagging run needs, gathered in one plain structure."""
    threshold: float = 0.25                       # independent tags below it are not written
    tag_thresholds: dict[str, float] = field(default_factory=dict)   # per-tag overrides
    batch: int = 32
    limit: int | None = None                      # tag at most this many (new) faces
    retag: bool = False                           # tag faces this version tagged already
    workers: int = 0                              # -j: processes here, or --ray actors (0: one per CPU or GPU)


class FaceTags(NamedTuple):
    """A tagger's answer for one face: its labels, and how they were read when not the usual way."""
    labels: list[tuple[str, float]]
    how: str | None = None


class AnimefaceTagger:
    """Hair and eye colours from animeface + the calibrated CIELAB palette (no download)."""
    source = "animeface"
    parallel = True     # -j: one process per worker (animeface is single-threaded C)

    def __init__(self, palette_path: str | Path | None = None):
        path = Path(palette_path or DEFAULT_PALETTE)
        try:
            self.palette = Palette.load(path)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise CatalogError(f"{path} is not a colour palette: {e}") from None
        self.version = "animeface-palette-" + hashlib.sha256(path.read_bytes()).hexdigest()[:8]

    def vocabulary(self) -> list[tuple[str, bool, list[str]]]:
        return []

    def predict(self, images: list[Image.Image], vocab: dict[str, tuple[str, bool]],
                opts: TagOptions, imported: list[bool] | None = None) -> list[FaceTags]:
        """Where animeface finds no face in a picture that is a face crop already (`imported`),
        the colours are read from the whole crop instead, and said so."""
        out = []
        for i, im in enumerate(images):
            colors, how = find_face_colors(im), None
            if colors is None and imported and imported[i]:
                colors, how = whole_crop_colors(im), "whole crop"
            out.append(FaceTags([] if colors is None else
                                [(t, p) for t, p in color_labels(colors, self.palette) if t in vocab], how))
        return out


class I2VTagger:
    """illustration2vec's 1,539 tags mapped onto the vocabulary."""
    source = "i2v"
    parallel = False    # torch computes a batch with all cores already

    def __init__(self, model, device: str = "cpu"):
        import torch
        self.torch = torch
        self.model = model.to(device)
        self.device = device
        self.version = model.version
        self.index = {t: i for i, t in enumerate(model.tags)}

    def vocabulary(self) -> list[tuple[str, bool, list[str]]]:
        return [(QUALITY_GROUP, False, [t for t in QUALITY_TAGS if t in self.index])]

    def to(self, device: str) -> "I2VTagger":
        """Onto another device (a Ray actor's GPU): a torch tagger has this, others do not."""
        self.model, self.device = self.model.to(device), device
        return self

    def probabilities(self, images: list[Image.Image]) -> np.ndarray:
        x = self.torch.from_numpy(preprocess_batch(images)).to(self.device)
        with self.torch.inference_mode():
            return self.model.net(x).float().cpu().numpy()

    def predict(self, images, vocab, opts: TagOptions, imported: list[bool] | None = None) -> list[FaceTags]:
        probs = self.probabilities(images)
        return [FaceTags(map_i2v(p, self.index, vocab, opts)) for p in probs]


def map_i2v(probs: np.ndarray, index: dict[str, int], vocab: dict[str, tuple[str, bool]],
            opts: TagOptions) -> list[tuple[str, float]]:
    """One face's i2v probabilities -> (tag, probability) labels.

    Exclusive groups (hair colour, eye colour) take the arg-max of their tags that i2v
    knows, with its probability; independent tags are written with their probability
    when it reaches their threshold."""
    best: dict[str, tuple[str, float]] = {}
    out = []
    for tag, (group, exclusive) in vocab.items():
        if tag not in index:
            continue
        p = float(probs[index[tag]])
        if exclusive:
            if group not in best or p > best[group][1]:
                best[group] = (tag, p)
        elif p >= opts.tag_thresholds.get(tag, opts.threshold):
            out.append((tag, p))
    return list(best.values()) + out


@dataclass
class TagSummary:
    faces: int = 0           # faces looked at in this run
    labelled: int = 0        # of those, faces that got at least one label
    other_way: int = 0       # of those, faces read another way than usual (animeface: the whole crop)
    events: int = 0
    skipped: int = 0         # tagged by this version before
    broken: list[tuple[int, str]] = field(default_factory=list)   # (face id, why): crops that do not decode
    seconds: float = 0.0
    interrupted: bool = False  # Ctrl-C: the batches written so far stay
    failed: str | None = None  # why the Ray cluster stopped for good (the batches written stay)

    @property
    def faces_per_s(self) -> float:
        return self.faces / self.seconds if self.seconds else 0.0


def tag_catalog(catalog: Catalog, tagger, opts: TagOptions,
                progress: Callable[[int, int], None] | None = None, ray: str | None = None) -> TagSummary:
    """Tag every ok face not yet tagged by this tagger version, batch by batch.

    The batches are computed here, or on a Ray cluster with `ray` = "auto", "local" or its
    address; either way this process writes them, each batch in one transaction, so an
    interrupted run keeps what it finished and the next run starts where it stopped."""
    if ray is not None:
        on_ray.require_ray()
    for group, exclusive, tags in tagger.vocabulary():
        catalog.ensure_group(group, exclusive, tags)
    vocab = catalog.tag_index()
    done = set() if opts.retag else catalog.tagged_face_ids(tagger.source, tagger.version)
    todo = [f for f in catalog.face_ids("ok") if f not in done]
    summary = TagSummary(skipped=len(catalog.face_ids("ok")) - len(todo))
    if opts.limit is not None:
        todo = todo[:opts.limit]
    start = time.perf_counter()
    if progress:
        progress(0, len(todo))   # sets the total and starts the clock before the first batch
    if not todo:
        batches = contextlib.nullcontext(iter(()))
    elif ray is not None:
        batches = on_ray.tag_results(catalog, todo, tagger, vocab, opts, ray, RAY_WORK)
    else:
        batches = contextlib.nullcontext(local_predictions(catalog, todo, tagger, vocab, opts))
    try:
        with batches as stream:
            for ids, results, broken in stream:
                for face_id, why in broken:   # set aside, so no later run stumbles on it again
                    catalog.set_face_status(face_id, "rejected", reason=why)
                    summary.broken.append((face_id, why))
                with catalog.transaction():   # one transaction a batch
                    for how in dict.fromkeys(r.how for r in results):
                        rows = [(f, tag, p) for f, r in zip(ids, results) if r.how == how for tag, p in r.labels]
                        if rows:
                            catalog.add_labels(rows, tagger.source, tagger.version + (f" ({how})" if how else ""))
                        summary.events += len(rows)
                    catalog.record_nothing_found([f for f, r in zip(ids, results) if not r.labels],
                                                 tagger.source, tagger.version)
                summary.faces += len(ids)
                summary.labelled += sum(1 for r in results if r.labels)
                summary.other_way += sum(1 for r in results if r.labels and r.how)
                if progress:
                    progress(len(ids) + len(broken), len(todo))
    except KeyboardInterrupt:
        summary.interrupted = True
    except on_ray.WorkersFailed as e:
        summary.interrupted, summary.failed = True, str(e)
    summary.seconds = time.perf_counter() - start
    return summary


Prediction = tuple[list[int], list[FaceTags], list[tuple[int, str]]]


def local_predictions(catalog: Catalog, todo: list[int], tagger, vocab: dict, opts: TagOptions
                      ) -> Iterator[Prediction]:
    """predict_blobs of each batch, in order: computed in this process, or by `opts.workers` worker
    processes (0: one per core) for a tagger that runs in parallel. This process reads the crops (the
    catalog connection stays in its thread) and keeps a few batches ahead of the workers."""
    batches = (len(todo) + opts.batch - 1) // opts.batch
    workers = min(opts.workers or os.cpu_count() or 1, batches) if getattr(tagger, "parallel", False) else 1
    jobs = (read_batch(catalog, todo[i:i + opts.batch]) for i in range(0, len(todo), opts.batch))
    if workers <= 1:
        for ids, blobs, imported in jobs:
            yield predict_blobs(tagger, vocab, opts, ids, blobs, imported)
        return
    with multiprocessing.get_context("fork").Pool(workers, _start_worker, (tagger, vocab, opts)) as pool:
        waiting: collections.deque = collections.deque()
        for job in jobs:
            waiting.append(pool.apply_async(_predict_in_worker, job))
            if len(waiting) >= 2 * workers:
                yield waiting.popleft().get()
        while waiting:
            yield waiting.popleft().get()


def read_batch(catalog: Catalog, ids: list[int]) -> tuple[list[int], list[bytes], list[bool]]:
    """predict_blobs' input for the faces `ids`: their stored crops and whether each was imported as
    a face crop already; read by the process that holds the catalog (here, or a Ray task pinned to it)."""
    imported = catalog.imported_face_ids(ids)
    return ids, [catalog.face_image(f) for f in ids], [f in imported for f in ids]


_worker: tuple = ()   # (tagger, vocab, opts) in a worker process


def _start_worker(tagger, vocab: dict, opts: TagOptions) -> None:
    global _worker
    _worker = (tagger, vocab, opts)


def _predict_in_worker(ids: list[int], blobs: list[bytes], imported: list[bool]) -> Prediction:
    return predict_blobs(*_worker, ids, blobs, imported)


def predict_blobs(tagger, vocab: dict, opts: TagOptions, ids: list[int], blobs: list[bytes],
                  imported: list[bool]) -> Prediction:
    """One batch of crops (their stored bytes; `imported`: each is a face crop already) -> (ids
    of the faces that decode, their FaceTags, (face id, why) of the crops that do not): what
    every kind of worker runs, here or in a Ray actor. The writer sets the broken ones aside
    as `rejected`."""
    kept, images, kept_imported, broken = [], [], [], []
    for face_id, blob, whole in zip(ids, blobs, imported):
        try:
            images.append(open_crop(blob))
            kept.append(face_id)
            kept_imported.append(whole)
        except ImageError as e:
            broken.append((face_id, str(e)))
    return kept, (tagger.predict(images, vocab, opts, kept_imported) if images else []), broken


RAY_WORK = on_ray.TagWork(read=read_batch, predict=predict_blobs, answer=FaceTags)   # what --ray's workers run
