"""The app's "most useful next" and "second opinion needed" queues: the catalog read around
curate/quality/active.py (each person's labels of one exclusive group, the judge's probabilities).

A face the asking person labelled is never ranked: a second opinion from the same person
teaches nothing. Nothing here writes to the catalog.
"""

from __future__ import annotations

import numpy as np

from curate.quality.active import Pick, most_useful, second_opinions
from curate.quality.consensus import LabelMatrix, check_matrix, crowdlab, label_matrix, model_probabilities
from curate.quality.consensus_source import NO_NAME
from curate.quality.suspects import judge_distributions
from db import Catalog, CatalogError
from db.labelling import MANUAL, QueueSpec

ACTIVE_ORDERS = ("useful", "second-opinion")


def group_labels(catalog: Catalog, group: str, dists: dict) -> LabelMatrix:
    """The people's current labels of `group` on the faces the judge scored, as a matrix over the
    tags the judge knows (a label of a tag it never learned cannot be weighed against it)."""
    known = {t for probs, _, _ in dists.values() for t in probs}
    rows = [(f, NO_NAME if who is None else who, tag) for f, _, who, tag in catalog.annotator_labels(MANUAL, [group])
            if f in dists and tag in known]
    tags = [t for t in catalog.group(group)["tags"] if t in known]
    if len(tags) < 2:
        raise CatalogError(f"the judge knows {len(tags)} tag(s) of {group}: nothing to tell apart (pick another "
                           f"group, or label more faces and rerun `curate tag --tagger judge --labels {MANUAL}`)")
    m = label_matrix(group, rows, tags)
    if rows and len(m.tags) < 2:    # one tag used by everyone: the model still knows the others
        m = LabelMatrix(group, m.face_ids, m.annotators, tags,
                        np.where(np.isnan(m.labels), np.nan, tags.index(m.tags[0])))
    elif not rows:
        m = LabelMatrix(group, [], [], tags, np.zeros((0, 0)))
    return m


def mine(m: LabelMatrix, annotator: str | None) -> set[int]:
    """The faces `annotator` labelled in the matrix."""
    if annotator not in m.annotators:
        return set()
    j = m.annotators.index(annotator)
    return {f for f, v in zip(m.face_ids, m.labels[:, j]) if not np.isnan(v)}


def useful_picks(catalog: Catalog, group: str, judge: str, annotator: str | None = None) -> dict[int, Pick]:
    """Face id -> Pick: ActiveLab over every face the judge scored in `group`, labelled or not,
    less those `annotator` labelled."""
    dists = judge_distributions(catalog, MANUAL, group, judge)
    m = group_labels(catalog, group, dists)
    probs = {f: p for f, (p, _, _) in dists.items()}
    labelled = set(m.face_ids)
    new = sorted(f for f in dists if f not in labelled)
    picks = most_useful(m.face_ids, m.labels, model_probabilities(m.face_ids, m.tags, probs),
                        new, model_probabilities(new, m.tags, probs))
    for f in mine(m, annotator):
        picks.pop(f, None)
    return picks


def second_opinion_picks(catalog: Catalog, group: str, judge: str, annotator: str | None = None
                         ) -> dict[int, Pick]:
    """Face id -> Pick: the faces one person (not `annotator`) labelled in `group`, by their
    CROWDLAB consensus quality. CatalogError, one line, without two annotators to weigh."""
    dists = judge_distributions(catalog, MANUAL, group, judge)
    m = group_labels(catalog, group, dists)
    if not m.face_ids:
        raise CatalogError(f"nobody labelled {group} yet: nothing to give a second opinion on")
    check_matrix(m, MANUAL)
    result = crowdlab(m, model_probabilities(m.face_ids, m.tags, {f: p for f, (p, _, _) in dists.items()}))
    picks = second_opinions(m.face_ids, m.labels, result.quality)
    for f in mine(m, annotator):
        picks.pop(f, None)
    return picks


def active_picks(catalog: Catalog, spec: QueueSpec) -> dict[int, Pick] | None:
    """The picks of a validated `spec` of one of ACTIVE_ORDERS (its judge: `spec.source`); None
    for the other orders."""
    if spec.order == "useful":
        return useful_picks(catalog, spec.group, spec.source, spec.annotator)
    if spec.order == "second-opinion":
        return second_opinion_picks(catalog, spec.group, spec.source, spec.annotator)
    return None
