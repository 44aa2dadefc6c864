"""`curate tag --tagger judge`: the attribute classifier trained on a source's labels, as a tagger.

The classifier is the evaluation judge's (`curate.taggers.classifier`: one definition, in one place),
trained on the current labels of `source` (default manual) and written as label source
`judge`, so agreement, the app's suggestions and queue orders, `curate suspects` and
`train --labels judge` all read it like any other source.

Cross-fitting: the labelled faces are dealt into K folds (stratified by their first
group's tag, seeded); each fold's faces get their probabilities from a model trained on
the other K-1 folds, so no face's probability ever saw its own label -- what confident
learning needs to find wrong labels. A face's probabilities are the mean of the face's and
its mirror image's. Faces without a label get them from one model
trained on every labelled face. Besides the arg-max label events, the whole distribution
of each exclusive group is stored (label_distributions), marked held out.

The version (the events' annotator) names what it learned from: the source, a
fingerprint of its current labels and of the options, so a rerun on unchanged labels
does nothing and a changed label makes a new version.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from db import Catalog, CatalogError
from db.labelling import MANUAL

from curate.taggers.classifier import JudgeError, JudgeOptions, decode_or_set_aside, fit_judge, load_labelled, \
    vocabulary

MIN_PER_FOLD = 2   # faces each fold must hold out at least (and batch norm needs two to train)


@dataclass
class JudgeTaggerOptions:
    source: str = "manual"        # the labels to learn
    target: str = "judge"         # the label source to write
    folds: int = 5
    seed: int = 0
    size: int = 32
    width: int = 16
    epochs: int = 10
    batch: int = 64
    lr: float = 2e-3
    retag: bool = False           # write again even when this version exists

    def judge_options(self) -> JudgeOptions:
        return JudgeOptions(source=self.source, size=self.size, width=self.width, epochs=self.epochs,
                            batch=self.batch, lr=self.lr, seed=self.seed)


@dataclass
class JudgeTagSummary:
    version: str
    labelled: int = 0                 # faces with a held-out (cross-fitted) probability
    unlabelled: int = 0               # faces tagged by the model on all labelled faces
    events: int = 0
    accuracy: dict = field(default_factory=dict)   # group -> held-out accuracy against the source
    seconds: float = 0.0
    skipped: bool = False             # this version was written before
    set_aside: list[tuple[int, str]] = field(default_factory=list)   # (face id, why): crops that do not decode


def assign_folds(strata: list[str], folds: int, seed: int) -> np.ndarray:
    """Fold of each face: each stratum's faces, in a seeded order, dealt round-robin
    (continuing where the previous stratum stopped), so every fold gets its share of every tag."""
    rng = np.random.default_rng(seed)
    out = np.zeros(len(strata), int)
    turn = 0
    for stratum in sorted(set(strata)):
        members = [i for i, s in enumerate(strata) if s == stratum]
        for i in rng.permutation(members):
            out[i] = turn % folds
            turn += 1
    return out


def version_of(opts: JudgeTaggerOptions, fingerprint: str) -> str:
    """`judge-<source>-<labels fingerprint>-<options hash>`: what the events were learned from."""
    knobs = {k: v for k, v in asdict(opts).items() if k not in ("source", "target", "retag")}
    h = hashlib.sha256(json.dumps(knobs, sort_keys=True).encode()).hexdigest()[:6]
    return f"judge-{opts.source}-{fingerprint[:8]}-{h}"


def cross_fit(catalog: Catalog, opts: JudgeTaggerOptions, progress=None) -> JudgeTagSummary:
    """Train the folds and write source `opts.target` (see the module doc).

    `progress(done, total)` is called once the input is checked (0 done), then after every
    epoch of every model trained. Raises CatalogError on a source without labels, without a
    group of two tags, with too few faces for the folds, or a --target that is not its own."""
    started = time.time()
    if opts.folds < 2:
        raise CatalogError(f"--folds {opts.folds}: cross-fitting needs at least 2 folds")
    if opts.target in (opts.source, MANUAL):
        raise CatalogError(f"--target {opts.target!r}: the judge writes a source of its own, never into "
                           f"people's labels or the labels it learns from")
    catalog.require_label_source(opts.source)
    fingerprint = catalog.labels_fingerprint(opts.source)
    version = version_of(opts, fingerprint)
    if not opts.retag and catalog.tagger_version(version) is not None:
        return JudgeTagSummary(version, skipped=True)
    labelled = load_labelled(catalog, opts.source, None, opts.size)
    heads = vocabulary(catalog, labelled)
    if not heads:
        raise CatalogError(f"label source {opts.source!r} uses no group with two or more tags: "
                           f"nothing to learn (label more faces)")
    n = len(labelled.face_ids)
    if n < MIN_PER_FOLD * opts.folds:
        raise CatalogError(f"label source {opts.source!r} labelled {n} ok faces: too few for {opts.folds} folds "
                           f"(at least {MIN_PER_FOLD * opts.folds}); lower --folds or label more faces")
    first = heads[0]["name"]
    fold = assign_folds([str(d.get(first, "")) for d in labelled.tags], opts.folds, opts.seed)
    unlabelled, unlabelled_images = _unlabelled_faces(catalog, set(labelled.face_ids), opts.size,
                                                      labelled.set_aside)
    total = (opts.folds + (1 if unlabelled else 0)) * opts.epochs
    if progress:
        progress(0, total)
    step = (lambda epoch: progress(1, total)) if progress else None
    try:
        probs, extra = _cross_fitted(opts, heads, labelled, fold, unlabelled_images, step)
    except JudgeError as e:
        raise CatalogError(str(e)) from None

    summary = JudgeTagSummary(version, labelled=n, unlabelled=len(unlabelled), set_aside=labelled.set_aside)
    labels, dists = _outputs(heads, [(labelled.face_ids, probs, True), (unlabelled, extra, False)])
    for h, p in zip(heads, probs):
        if h["exclusive"]:
            given = [d.get(h["name"]) for d in labelled.tags]
            hits = [h["tags"][int(row.argmax())] == g for row, g in zip(p, given) if g in h["tags"]]
            summary.accuracy[h["name"]] = float(np.mean(hits)) if hits else float("nan")
    summary.seconds = round(time.time() - started, 1)
    info = {"learned_from": opts.source, "labels_fingerprint": fingerprint, "options": asdict(opts),
            "labelled_faces": n, "unlabelled_faces": len(unlabelled), "heads": heads,
            "held_out_accuracy": summary.accuracy, "seconds": summary.seconds,
            "classifier": "curate.taggers.classifier.JudgeNet"}
    summary.events = catalog.save_learned_labels(opts.target, version, info, labels, dists)
    return summary


def _unlabelled_faces(catalog: Catalog, labelled: set[int], size: int, set_aside: list[tuple[int, str]]
                      ) -> tuple[list[int], torch.Tensor | None]:
    """The ok faces without a label and their crops (uint8 NCHW; None when there are none); a
    crop that does not decode is set aside (classifier.decode_or_set_aside)."""
    ids, images = [], []
    for face in catalog.iter_faces(status="ok"):
        if face["id"] not in labelled:
            image = decode_or_set_aside(catalog, face["id"], face["image"], size, set_aside)
            if image is not None:
                ids.append(face["id"])
                images.append(image)
    if not images:
        return ids, None
    return ids, torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def _cross_fitted(opts: JudgeTaggerOptions, heads: list[dict], labelled, fold: np.ndarray,
                  unlabelled: torch.Tensor | None, on_epoch) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per head, the held-out probabilities of the labelled faces (fold k from the model trained
    on the other folds) and those of the unlabelled faces (from a model on every labelled face)."""
    jopts = opts.judge_options()
    probs = [np.zeros((len(labelled.face_ids), len(h["tags"]))) for h in heads]
    for k in range(opts.folds):
        train, held = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        judge = _fit(jopts, heads, labelled, train, opts.seed * 1000 + k, on_epoch)
        for p, out in zip(probs, _predict(judge, labelled.images[torch.from_numpy(held)])):
            p[held] = out
    if unlabelled is None:
        return probs, []
    judge = _fit(jopts, heads, labelled, np.arange(len(labelled.face_ids)), opts.seed * 1000 + opts.folds, on_epoch)
    return probs, _predict(judge, unlabelled)


def _outputs(heads: list[dict], parts) -> tuple[list[tuple[int, str, float]], list[tuple]]:
    """Label events (exclusive groups: the arg-max and its probability; independent tags: each
    tag's probability) and exclusive groups' whole distributions, for [(face ids, probs, held out)]."""
    labels, dists = [], []
    for ids, head_probs, held_out in parts:
        for h, p in zip(heads, head_probs):
            for f, row in zip(ids, p):
                if h["exclusive"]:
                    best = int(row.argmax())
                    labels.append((f, h["tags"][best], round(float(row[best]), 6)))
                    dists.append((f, h["name"], {t: round(float(v), 6) for t, v in zip(h["tags"], row)}, held_out))
                else:
                    labels += [(f, t, round(float(v), 6)) for t, v in zip(h["tags"], row)]
    return labels, dists


def _predict(judge, images) -> list[np.ndarray]:
    """Per head, the mean probabilities of each face and its mirror image: steadier than one view
    (on the noise benchmark's first fold, +0.6 points recall of the flipped labels)."""
    a, b = judge.outputs(images)[1], judge.outputs(images.flip(3))[1]
    return [(x + y) / 2 for x, y in zip(a, b)]


def _fit(jopts, heads: list[dict], labelled, rows: np.ndarray, seed: int, on_epoch):
    idx = torch.from_numpy(rows)
    return fit_judge(jopts, heads, labelled.images[idx], [labelled.tags[i] for i in rows], seed, on_epoch)
