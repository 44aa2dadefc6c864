"""The app's "most useful next" and "second opinion needed" queues: the catalog read around
curate/quality/active.py (each person's labels of one exclusive group, the judge's probabilities).

A face the asking person labelled is never ranked: a second opinion from the same person
teaches nothing. Nothing here writes to the catalog.
"""

from __future__ import annotations

import numpy as np

from curate.quality import crowdlab_arrays
from curate.quality.active import Picks, activelab_picks, lone_label_picks
from curate.quality.consensus import LabelMatrix, check_matrix, label_matrix_of, renormalised
from curate.quality.consensus_source import NO_NAME
from curate.quality.suspects import judge_matrix
from db import Catalog, CatalogError
from db.labelling import MANUAL, QueueSpec
from db.tagging import DistributionMatrix

ACTIVE_ORDERS = ("useful", "second-opinion")


def group_labels(catalog: Catalog, group: str, dists: DistributionMatrix) -> LabelMatrix:
    """The people's current labels of `group` on the faces the judge scored, as a matrix over the
    tags the judge knows (a label of a tag it never learned cannot be weighed against it)."""
    known = {dists.tags[j] for j in np.flatnonzero(dists.named.any(0))}
    people = catalog.annotator_label_column(MANUAL, group)       # every face: the judge scored ok faces only
    keep = (np.isin(people.face_ids, dists.face_ids) & np.array([tag in known for tag in people.tags], bool)).tolist()
    rows = [(who, tag) for who, tag, k in zip(people.annotators, people.tags, keep) if k]
    tags = [t for t in catalog.group(group)["tags"] if t in known]
    if len(tags) < 2:
        raise CatalogError(f"the judge knows {len(tags)} tag(s) of {group}: nothing to tell apart (pick another "
                           f"group, or label more faces and rerun `curate tag --tagger judge --labels {MANUAL}`)")
    m = label_matrix_of(group, people.face_ids[np.array(keep, bool)],
                        [NO_NAME if who is None else who for who, _ in rows], [tag for _, tag in rows], tags)
    if rows and len(m.tags) < 2:    # one tag used by everyone: the model still knows the others
        m = LabelMatrix(group, m.face_ids, m.annotators, tags,
                        np.where(np.isnan(m.labels), np.nan, tags.index(m.tags[0])))
    elif not rows:
        m = LabelMatrix(group, [], [], tags, np.zeros((0, 0)))
    return m


def model_probabilities(dists: DistributionMatrix, face_ids: list[int] | np.ndarray, tags: list[str]) -> np.ndarray:
    """curate.quality.consensus.model_probabilities of the judge's rows of `face_ids` (all scored)."""
    rows = np.searchsorted(dists.face_ids, np.asarray(face_ids, np.int64))
    known = [k for k, tag in enumerate(tags) if tag in dists.tags]
    probs = dists.probs[np.ix_(rows, [dists.tags.index(tags[k]) for k in known])]
    if len(known) < len(tags):          # a tag the model does not know: 0
        probs, known_only = np.zeros((len(rows), len(tags))), probs
        probs[:, known] = known_only
    return renormalised(probs)


def mine(m: LabelMatrix, annotator: str | None) -> set[int]:
    """The faces `annotator` labelled in the matrix."""
    if annotator not in m.annotators:
        return set()
    labelled = ~np.isnan(m.labels[:, m.annotators.index(annotator)])
    return set(np.asarray(m.face_ids, np.int64)[labelled].tolist())


def useful_picks(catalog: Catalog, group: str, judge: str, annotator: str | None = None) -> Picks:
    """ActiveLab over every face the judge scored in `group`, labelled or not, less those
    `annotator` labelled."""
    from cleanlab.internal.multiannotator_utils import temp_scale_pred_probs

    dists = judge_matrix(catalog, MANUAL, group, judge)
    m = group_labels(catalog, group, dists)
    # Each face's model probabilities, and their temperature-scaled top, depend on that face alone:
    # kept with the judge's parsed probabilities for the next queue (after a label, most of a million
    # faces are new faces still, and the temperature is mostly the one before).
    tags = tuple(m.tags)
    probs = dists.per_row(("model", tags), lambda whole: model_probabilities(whole, whole.face_ids, list(tags)))
    labelled = np.isin(dists.face_ids, np.asarray(m.face_ids, np.int64))

    def scaled_top(temperature: float) -> np.ndarray:
        return dists.per_row(("scaled top", tags, float(temperature)), lambda whole: np.max(temp_scale_pred_probs(
            whole.per_row(("model", tags), lambda w: model_probabilities(w, w.face_ids, list(tags))), temperature),
            axis=1))[~labelled]

    picks = activelab_picks(m.face_ids, m.labels, probs[np.searchsorted(dists.face_ids, m.face_ids)],
                            dists.face_ids[~labelled], probs[~labelled], scaled_top)
    return picks.without(mine(m, annotator))


def second_opinion_picks(catalog: Catalog, group: str, judge: str, annotator: str | None = None) -> Picks:
    """The faces one person (not `annotator`) labelled in `group`, by their CROWDLAB consensus
    quality. CatalogError, one line, without two annotators to weigh."""
    dists = judge_matrix(catalog, MANUAL, group, judge)
    m = group_labels(catalog, group, dists)
    if not m.face_ids:
        raise CatalogError(f"nobody labelled {group} yet: nothing to give a second opinion on")
    check_matrix(m, MANUAL)
    quality = crowdlab_arrays.consensus_quality(m.labels, model_probabilities(dists, m.face_ids, m.tags))[0]
    return lone_label_picks(m.face_ids, m.labels, quality).without(mine(m, annotator))


def active_picks(catalog: Catalog, spec: QueueSpec) -> Picks | None:
    """The picks of a validated `spec` of one of ACTIVE_ORDERS (its judge: `spec.source`); None
    for the other orders."""
    if spec.order == "useful":
        return useful_picks(catalog, spec.group, spec.source, spec.annotator)
    if spec.order == "second-opinion":
        return second_opinion_picks(catalog, spec.group, spec.source, spec.annotator)
    return None
