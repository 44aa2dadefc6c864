"""Which face a person should label next: ActiveLab, over new faces and labelled ones together.

ActiveLab (Goh and Mueller 2023, through cleanlab's `get_active_learning_scores`) gives every
face a score in 0..1 from the annotators' labels (a faces x annotators matrix, NaN where a person
did not label the face) and a model's held-out probabilities: low = another label of this face
would teach the most. (Faces nobody labelled are discounted by how far the model is trusted
against the people: a new face the model is fairly sure of can still come before a labelled face.) Faces nobody labelled are scored from the model alone (how unsure it is);
labelled faces from how far their labels and the model agree, weighted by how many labels they
have. The two scores are comparable, so one queue mixes "label a new face" and "a second opinion
on this one", whichever helps more.

"Second opinion needed" is narrower: faces exactly one person labelled, by their CROWDLAB
consensus quality (curate/quality/consensus.py), lowest first.

Pure functions of arrays; the catalog is read around them (curate/quality/active_source.py).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from db import CatalogError

NEW_FACE = "new face: no label yet"
ONE_LABEL = "second opinion: one label so far"
MORE_OPINIONS = "another opinion: its labels and the model disagree"
SECOND_OPINION = "second opinion: one label, low consensus quality"


@dataclass
class Pick:
    """One face's place in the queue: its score (low = label it first) and why."""
    score: float
    reason: str


def check_probabilities(pred_probs: np.ndarray, what: str) -> None:
    """CatalogError, one line, unless `pred_probs` is faces x (two tags or more) of finite numbers."""
    if pred_probs.ndim != 2 or (pred_probs.size and pred_probs.shape[1] < 2):
        raise CatalogError(f"{what}: the group has one tag, so there is nothing to tell apart (pick another group)")
    if not np.isfinite(pred_probs).all():
        raise CatalogError(f"{what}: the model's probabilities hold NaN or infinite values (rerun the judge)")


def active_learning_scores(labels: np.ndarray, pred_probs: np.ndarray, pred_probs_unlabelled: np.ndarray
                           ) -> tuple[np.ndarray, np.ndarray]:
    """ActiveLab scores (low = most useful to label next) of the labelled faces (rows of `labels`,
    faces x annotators with NaN where missing, and of `pred_probs`) and of the unlabelled ones
    (rows of `pred_probs_unlabelled`); either side may be empty."""
    from cleanlab.multiannotator import get_active_learning_scores   # brings pandas: loaded when used

    if not len(labels) and not len(pred_probs_unlabelled):
        raise CatalogError("no face has the model's probabilities yet: run `curate tag --tagger judge` first")
    for probs, what in ((pred_probs, "labelled faces"), (pred_probs_unlabelled, "unlabelled faces")):
        if len(probs):
            check_probabilities(probs, what)
    if len(labels) != len(pred_probs):
        raise CatalogError(f"{len(labels)} labelled faces but {len(pred_probs)} rows of probabilities")
    with warnings.catch_warnings():     # cleanlab's notes (unused classes, one annotator) are ours to say
        warnings.simplefilter("ignore")
        scored, scored_new = get_active_learning_scores(
            labels if len(labels) else None, pred_probs if len(labels) else None,
            pred_probs_unlabelled if len(pred_probs_unlabelled) else None)
    return np.asarray(scored, float), np.asarray(scored_new, float)


def most_useful(face_ids: list[int], labels: np.ndarray, pred_probs: np.ndarray,
                new_face_ids: list[int], pred_probs_new: np.ndarray) -> dict[int, Pick]:
    """Face id -> Pick for labelled faces (`face_ids`, rows of `labels` and `pred_probs`) and
    unlabelled ones (`new_face_ids`, rows of `pred_probs_new`): ActiveLab's score and the reason."""
    scored, scored_new = active_learning_scores(labels, pred_probs, pred_probs_new)
    count = (~np.isnan(labels)).sum(1) if len(labels) else np.zeros(0, int)
    out = {f: Pick(float(s), f"{ONE_LABEL if n == 1 else MORE_OPINIONS} (ActiveLab score {float(s):.2f})")
           for f, s, n in zip(face_ids, scored, count)}
    for f, s, p in zip(new_face_ids, scored_new, pred_probs_new):
        out[f] = Pick(float(s), f"{NEW_FACE}, the model's top probability {float(p.max()):.2f} "
                                f"(ActiveLab score {float(s):.2f})")
    return out


def second_opinions(face_ids: list[int], labels: np.ndarray, quality: np.ndarray) -> dict[int, Pick]:
    """Face id -> Pick of the faces exactly one person labelled (rows of `labels`), scored by their
    consensus quality (`quality`, CROWDLAB's, per row): lowest first is the most needed."""
    once = (~np.isnan(labels)).sum(1) == 1
    return {f: Pick(float(q), f"{SECOND_OPINION} ({float(q):.2f})")
            for f, q, one in zip(face_ids, quality, once) if one}
