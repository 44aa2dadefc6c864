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

from collections.abc import Mapping
from typing import Callable
from dataclasses import dataclass

import numpy as np

from curate.quality import crowdlab_arrays
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


class Picks(Mapping):
    """Face id -> Pick, held as arrays (a queue of a million faces), each reason written when asked
    for: `labels` = how many people labelled the face (0: a new face, whose reason names `top`, the
    model's top probability); `second`: the "second opinion needed" order's reason."""

    def __init__(self, face_ids: np.ndarray, scores: np.ndarray, labels: np.ndarray, top: np.ndarray,
                 second: bool = False):
        self.face_ids, self.scores, self.labels, self.top, self.second = face_ids, scores, labels, top, second
        self._by_id: np.ndarray | None = None

    def _index(self, face_id: int) -> int:
        if self._by_id is None:
            self._by_id = np.argsort(self.face_ids, kind="stable")
        at = int(np.searchsorted(self.face_ids, face_id, sorter=self._by_id))
        if at == len(self.face_ids) or self.face_ids[self._by_id[at]] != face_id:
            raise KeyError(face_id)
        return int(self._by_id[at])

    def __getitem__(self, face_id: int) -> Pick:
        i = self._index(face_id)
        score = float(self.scores[i])
        if self.second:
            return Pick(score, f"{SECOND_OPINION} ({score:.2f})")
        if self.labels[i] == 0:
            return Pick(score, f"{NEW_FACE}, the model's top probability {float(self.top[i]):.2f} "
                               f"(ActiveLab score {score:.2f})")
        return Pick(score, f"{ONE_LABEL if self.labels[i] == 1 else MORE_OPINIONS} (ActiveLab score {score:.2f})")

    def __iter__(self):
        return iter(self.face_ids.tolist())

    def __len__(self) -> int:
        return len(self.face_ids)

    def without(self, face_ids: set[int]) -> "Picks":
        """These picks less the faces `face_ids`."""
        keep = ~np.isin(self.face_ids, np.fromiter(face_ids, np.int64, len(face_ids)))
        return Picks(self.face_ids[keep], self.scores[keep], self.labels[keep], self.top[keep], self.second)

    def reasons(self) -> "Reasons":
        return Reasons(self)


class Reasons(Mapping):
    """Face id -> why the queue's order picked it (`Picks`' reasons), written when asked for."""

    def __init__(self, picks: Picks):
        self.picks = picks

    def __getitem__(self, face_id: int) -> str:
        return self.picks[face_id].reason

    def __iter__(self):
        return iter(self.picks)

    def __len__(self) -> int:
        return len(self.picks)


def check_probabilities(pred_probs: np.ndarray, what: str) -> None:
    """CatalogError, one line, unless `pred_probs` is faces x (two tags or more) of finite numbers."""
    if pred_probs.ndim != 2 or (pred_probs.size and pred_probs.shape[1] < 2):
        raise CatalogError(f"{what}: the group has one tag, so there is nothing to tell apart (pick another group)")
    if not np.isfinite(pred_probs).all():
        raise CatalogError(f"{what}: the model's probabilities hold NaN or infinite values (rerun the judge)")


def active_learning_scores(labels: np.ndarray, pred_probs: np.ndarray, pred_probs_unlabelled: np.ndarray,
                           scaled_top: Callable[[float], np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """ActiveLab scores (low = most useful to label next) of the labelled faces (rows of `labels`,
    faces x annotators with NaN where missing, and of `pred_probs`) and of the unlabelled ones
    (rows of `pred_probs_unlabelled`); either side may be empty. cleanlab's
    `get_active_learning_scores`, computed by curate.quality.crowdlab_arrays (`scaled_top`: see there)."""
    if not len(labels) and not len(pred_probs_unlabelled):
        raise CatalogError("no face has the model's probabilities yet: run `curate tag --tagger judge` first")
    for probs, what in ((pred_probs, "labelled faces"), (pred_probs_unlabelled, "unlabelled faces")):
        if len(probs):
            check_probabilities(probs, what)
    if len(labels) != len(pred_probs):
        raise CatalogError(f"{len(labels)} labelled faces but {len(pred_probs)} rows of probabilities")
    scored, scored_new = crowdlab_arrays.active_learning_scores(
        labels if len(labels) else None, pred_probs if len(labels) else None,
        pred_probs_unlabelled if len(pred_probs_unlabelled) else None, scaled_top)
    return np.asarray(scored, float), np.asarray(scored_new, float)


def activelab_picks(face_ids: list[int], labels: np.ndarray, pred_probs: np.ndarray,
                    new_face_ids: list[int], pred_probs_new: np.ndarray,
                    scaled_top: Callable[[float], np.ndarray] | None = None) -> Picks:
    """ActiveLab's picks of labelled faces (`face_ids`, rows of `labels` and `pred_probs`) and
    unlabelled ones (`new_face_ids`, rows of `pred_probs_new`; `scaled_top`: see
    curate.quality.crowdlab_arrays.active_learning_scores)."""
    scored, scored_new = active_learning_scores(labels, pred_probs, pred_probs_new, scaled_top)
    count = (~np.isnan(labels)).sum(1) if len(labels) else np.zeros(0, int)
    top = pred_probs_new.max(1) if len(pred_probs_new) else np.zeros(0)
    return Picks(np.concatenate([np.asarray(face_ids, np.int64), np.asarray(new_face_ids, np.int64)]),
                 np.concatenate([scored, scored_new]), np.concatenate([count, np.zeros(len(new_face_ids), int)]),
                 np.concatenate([np.zeros(len(face_ids)), top]))


def most_useful(face_ids: list[int], labels: np.ndarray, pred_probs: np.ndarray,
                new_face_ids: list[int], pred_probs_new: np.ndarray) -> dict[int, Pick]:
    """Face id -> Pick for labelled faces (`face_ids`, rows of `labels` and `pred_probs`) and
    unlabelled ones (`new_face_ids`, rows of `pred_probs_new`): ActiveLab's score and the reason."""
    return dict(activelab_picks(face_ids, labels, pred_probs, new_face_ids, pred_probs_new).items())


def lone_label_picks(face_ids: list[int], labels: np.ndarray, quality: np.ndarray) -> Picks:
    """The picks of the faces exactly one person labelled (rows of `labels`), scored by their
    consensus quality (`quality`, CROWDLAB's, per row): lowest first is the most needed."""
    once = (~np.isnan(labels)).sum(1) == 1
    return Picks(np.asarray(face_ids, np.int64)[once], np.asarray(quality, float)[once],
                 np.ones(int(once.sum()), int), np.zeros(int(once.sum())), second=True)


def second_opinions(face_ids: list[int], labels: np.ndarray, quality: np.ndarray) -> dict[int, Pick]:
    """Face id -> Pick of the faces exactly one person labelled (rows of `labels`), scored by their
    consensus quality (`quality`, CROWDLAB's, per row): lowest first is the most needed."""
    return dict(lone_label_picks(face_ids, labels, quality).items())
