"""Faces whose given label is likely wrong, ranked: confident learning on held-out probabilities.

A learned tagger (`curate tag --tagger judge`) stores, per face and exclusive group,
the probability of every tag from a model that never saw that face's own label
(label_distributions, `held_out`). Confident learning (Northcutt et al. 2021, through
`cleanlab`) estimates per class how sure the model must be to count a face as "really
that class", counts the faces confidently of another class than their given label (the
off-diagonal of the confident joint) and keeps as many of the least self-confident ones
per given/true class pair as it estimates to be wrong. Those are ranked by how unlikely
the model finds the given label (self-confidence, or normalised margin).

Faces where another source confidently names another tag (`curate agree --worst`) join the
list with that reason. Nothing here writes to the catalog: a correction is a person's
label event (`curate suspects` lists, `label-app` fixes).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from db import Catalog, CatalogError
from db.labelling import MANUAL, QueueSpec
from db.tagging import DistributionMatrix

RANKINGS = ("self_confidence", "normalized_margin")
# A judge right on fewer held-out faces than this, or than this many times what always naming the
# commonest tag scores, is too weak for its suspects to mean much (on a weak judge, 45% hair and
# 28% eyes held out, half the faces came out suspects).
WEAK_BELOW = 0.5
WEAK_TIMES_CHANCE = 1.5
# Which faces confident learning flags: per given class, as many of its least self-confident
# faces as the confident joint's off-diagonal estimates to be wrong ("prune by class"). On the
# noise benchmark it missed fewer injected errors than cleanlab's default, prune_by_noise_rate
# (BENCHMARKS.md, "Label quality").
FILTER = "prune_by_class"
JUDGE = "judge"            # the label source `curate tag --tagger judge` writes by default
MIN_CONFIDENCE = 0.8       # a disagreement with another source counts from this confidence


@dataclass
class Suspect:
    face_id: int
    group: str
    given: str               # the label source's tag
    likely: str              # the judge's most probable tag
    p_likely: float
    p_given: float           # the judge's probability of the given tag
    score: float             # label quality (cleanlab's): low = likely wrong
    flagged: bool            # found by confident learning
    reasons: list[str] = field(default_factory=list)


@dataclass
class GroupRanking:
    """One group's faces with a given label and held-out probabilities, lowest label quality first."""
    group: str
    tags: list[str]
    face_ids: list[int]          # lowest label quality score first
    given: list[str]
    probs: np.ndarray            # [faces, tags] in the same order
    scores: np.ndarray
    flagged: set[int]


def judge_distributions(catalog: Catalog, source: str, group: str, judge: str = JUDGE
                        ) -> dict[int, tuple[dict[str, float], bool, str]]:
    """The judge's stored distributions for `group`, checked to have been learned from `source`."""
    dists = catalog.distributions(judge, group)
    _check_judge(catalog, source, group, judge, {v for _, _, v in dists.values()})
    return dists


def judge_matrix(catalog: Catalog, source: str, group: str, judge: str = JUDGE) -> DistributionMatrix:
    """`judge_distributions` as arrays (`Catalog.distribution_matrix`), checked the same way."""
    m = catalog.distribution_matrix(judge, group)
    _check_judge(catalog, source, group, judge, set(m.versions))
    return m


def _check_judge(catalog: Catalog, source: str, group: str, judge: str, versions: set[str]) -> None:
    """CatalogError, one line, unless the judge has distributions of `group`, all learned from `source`."""
    if not versions:
        raise CatalogError(f"no {judge!r} probabilities for {group} yet: run "
                           f"`curate tag --tagger judge --labels {source}` first")
    for version in sorted(versions):
        learned = (catalog.tagger_version(version) or {}).get("learned_from")
        if learned != source:
            raise CatalogError(f"the {judge!r} probabilities ({version}) were learned from {learned!r}, not "
                               f"{source!r}: run `curate tag --tagger judge --labels {source}` first")


@dataclass
class JudgeStrength:
    """How well the judge did on one group's held-out faces, against the source it learned."""
    group: str
    accuracy: float      # share of the held-out faces where its top tag is the source's
    chance: float        # what always naming the source's commonest tag would score

    @property
    def weak(self) -> bool:
        return self.accuracy < WEAK_BELOW or self.accuracy < WEAK_TIMES_CHANCE * self.chance


def judge_strength(catalog: Catalog, source: str, group: str | None = None, judge: str = JUDGE
                   ) -> list[JudgeStrength]:
    """The judge's held-out accuracy (recorded when `curate tag --tagger judge` ran) per group it
    scored (`group`, or every one), beside chance."""
    accuracy: dict[str, float] = {}
    for version in catalog.distribution_versions(judge):
        accuracy.update((catalog.tagger_version(version) or {}).get("held_out_accuracy") or {})
    groups = [g for g in exclusive_groups(catalog, group) if g in accuracy and accuracy[g] == accuracy[g]]  # not NaN
    labelled = catalog.labelled_faces(source, split=None, groups=groups) if groups else {}
    out = []
    for g in groups:
        given = Counter(labels[g][0] for labels in labelled.values() if g in labels)
        chance = max(given.values()) / sum(given.values()) if given else 0.0
        out.append(JudgeStrength(g, float(accuracy[g]), chance))
    return out


def exclusive_groups(catalog: Catalog, group: str | None) -> list[str]:
    """The groups to look at: `group` (checked to be exclusive) or every exclusive group."""
    if group is None:
        return [g["name"] for g in catalog.groups() if g["exclusive"]]
    g = catalog.group(group)
    if not g["exclusive"]:
        raise CatalogError(f"{group!r} is not an exclusive group (one tag per face): suspects need one")
    return [group]


def rank_group(catalog: Catalog, source: str, group: str, judge: str = JUDGE,
               rank: str = "self_confidence") -> GroupRanking:
    """Confident learning on one group: every face `source` labelled in `group` that the judge
    scored, ordered by its label quality score (`rank`), and which of them it flags."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    if rank not in RANKINGS:
        raise CatalogError(f"rank must be one of {', '.join(RANKINGS)}, not {rank!r}")
    catalog.require_label_source(source)
    catalog.group(group)                                           # raises on an unknown group
    labelled, given_tags = catalog.current_tags(source, group)     # ok faces, ascending
    if not labelled:
        raise CatalogError(f"label source {source!r} has no {group} labels")
    used = sorted(set(given_tags))
    if len(used) < 2:
        raise CatalogError(f"label source {source!r} gives every face the same {group} ({used[0]}): "
                           f"with one tag there is nothing to tell apart")
    m = judge_matrix(catalog, source, group, judge)
    known = {m.tags[j] for j in np.flatnonzero(m.named.any(0))}
    tags = [t for t in catalog.group(group)["tags"] if t in used and t in known]
    tag_index = {t: i for i, t in enumerate(tags)}
    ids, given_index = np.array(labelled, np.int64), np.array([tag_index.get(t, -1) for t in given_tags])
    row = np.minimum(np.searchsorted(m.face_ids, ids), max(len(m.face_ids) - 1, 0))
    keep = (given_index >= 0) & (m.face_ids[row] == ids) if len(m.face_ids) else np.zeros(len(ids), bool)
    faces, labels = ids[keep], given_index[keep]
    if len(tags) < 2 or not len(faces):
        raise CatalogError(f"the {judge!r} probabilities and the {source!r} labels of {group} share "
                           f"{len(tags)} tag(s): rerun `curate tag --tagger judge --labels {source}`")
    probs = m.probs[np.ix_(row[keep], [m.tags.index(t) for t in tags])]
    probs = probs / probs.sum(1, keepdims=True).clip(1e-12)
    scores = get_label_quality_scores(labels, probs, method=rank)
    flagged = np.zeros(len(faces), bool)
    if len(faces) > len(tags):   # fewer faces than tags: no per-class thresholds to estimate
        flagged = find_label_issues(labels, probs, filter_by=FILTER, n_jobs=1)
    order = np.argsort(scores, kind="stable")
    return GroupRanking(group, tags, faces[order].tolist(), [tags[i] for i in labels[order]], probs[order],
                        scores[order], set(faces[flagged].tolist()))


def find_suspects(catalog: Catalog, source: str = "manual", group: str | None = None, judge: str = JUDGE,
                  compare: list[str] | None = None, min_confidence: float = MIN_CONFIDENCE,
                  rank: str = "self_confidence") -> list[Suspect]:
    """Faces whose `source` label is likely wrong, most suspicious first.

    Confident learning on `judge`'s held-out probabilities flags faces, per exclusive group
    (`group`, or all); faces where a `compare` source (default: every other label source)
    names another tag with at least `min_confidence` are added with that reason. Ordered by
    the judge's label quality score, lowest (most likely wrong) first."""
    catalog.require_label_source(source)
    if compare is None:
        compare = [r["source"] for r in catalog.label_sources() if r["source"] not in (source, judge)]
    groups = exclusive_groups(catalog, group)
    if group is None:
        groups = [g for g in groups if catalog.distributions_exist(judge, g)]
        if not groups:
            raise CatalogError(f"no {judge!r} probabilities yet: run `curate tag --tagger judge --labels {source}` "
                               f"first")
    out: list[Suspect] = []
    for name in groups:
        out += _group_suspects(catalog, source, name, judge, compare, min_confidence, rank)[0]
    out.sort(key=lambda s: (s.score, s.face_id))
    return out


def _group_suspects(catalog: Catalog, source: str, group: str, judge: str, compare: list[str],
                    min_confidence: float, rank: str) -> tuple[list[Suspect], GroupRanking]:
    """One exclusive group's suspects (unsorted) and its ranking (see `find_suspects`)."""
    ranking = rank_group(catalog, source, group, judge, rank)
    others: dict[int, list[str]] = {}
    for other in compare:
        for f, tag, value in catalog.confident_disagreements(source, other, group, min_confidence):
            others.setdefault(f, []).append(f"{other} says {tag} {value:.2f}")
    out = []
    faces = np.array(ranking.face_ids, np.int64)
    flagged = np.isin(faces, np.fromiter(ranking.flagged, np.int64, len(ranking.flagged)))
    named = np.fromiter(others, np.int64, len(others))
    for i in np.flatnonzero(flagged | np.isin(faces, named)).tolist():    # the few suspects, in ranking order
        f, given, p = ranking.face_ids[i], ranking.given[i], ranking.probs[i]
        likely, p_given = ranking.tags[int(p.argmax())], float(p[ranking.tags.index(given)])
        reasons = [f"confident learning ({judge})"] if flagged[i] else []
        out.append(Suspect(f, group, given, likely, float(p.max()), p_given, float(ranking.scores[i]),
                           bool(flagged[i]), reasons + others.get(f, [])))
    return out, ranking


def margins(catalog: Catalog, group: str, judge: str = JUDGE) -> dict[int, float]:
    """Face id -> the judge's top probability minus its second (low = undecided) in `group`."""
    ids, margin = margin_arrays(catalog, group, judge)
    return dict(zip(ids.tolist(), margin.tolist()))


def margin_arrays(catalog: Catalog, group: str, judge: str = JUDGE) -> tuple[np.ndarray, np.ndarray]:
    """`margins` as (face ids, margins): the top two of the probabilities a face's distribution
    names, the second 0.0 where it names one."""
    m = catalog.distribution_matrix(judge, group)
    return m.face_ids, m.per_row(("margin",), _margin)


def _margin(m: DistributionMatrix) -> np.ndarray:
    named = np.where(m.named, m.probs, -np.inf)
    if named.shape[1] < 2:
        named = np.hstack([named, np.full((len(named), 1), -np.inf)])
    top = np.partition(named, -2, axis=1)
    return top[:, -1] - np.where(m.named.sum(1) >= 2, top[:, -2], 0.0)


def review_order(catalog: Catalog, source: str, group: str, judge: str = JUDGE) -> list[int]:
    """The faces `source` labelled in `group`, in the order a person should review them: the
    suspects (`find_suspects`) first, then the rest by label quality. The app's "likely label
    errors first" queue."""
    catalog.require_label_source(source)
    compare = [r["source"] for r in catalog.label_sources() if r["source"] not in (source, judge)]
    exclusive_groups(catalog, group)
    ranking = rank_group(catalog, source, group, judge)
    faces = np.array(ranking.face_ids, np.int64)
    disputed = [f for other in compare for f, _, _ in catalog.confident_disagreements(source, other, group,
                                                                                      MIN_CONFIDENCE)]
    suspect = np.isin(faces, np.fromiter(ranking.flagged, np.int64, len(ranking.flagged))) | np.isin(faces, disputed)
    first = faces[suspect][np.lexsort((faces[suspect], ranking.scores[suspect]))]   # as find_suspects sorts them
    return first.tolist() + faces[~suspect].tolist()


def queue_ranking(catalog: Catalog, spec: QueueSpec) -> tuple[np.ndarray, np.ndarray] | None:
    """The sort keys (face ids, their keys: lowest first) of the app's judge orders for a
    validated `spec`, handed to `Catalog.build_queue`: "margin" = most undecided first,
    "suspects" = `review_order`. None for the orders the catalog ranks itself."""
    if spec.order == "margin":
        return margin_arrays(catalog, spec.group, spec.source)
    if spec.order == "suspects":
        order = review_order(catalog, MANUAL, spec.group, spec.source)
        return np.array(order, np.int64), np.arange(len(order), dtype=np.float64)
    return None


def likely_labels(catalog: Catalog, group: str, face_ids: list[int], judge: str = JUDGE
                  ) -> dict[int, tuple[str, float]]:
    """Face id -> (the judge's most probable tag in `group`, its probability)."""
    return {f: max(probs.items(), key=lambda kv: kv[1]) for f, (probs, _, _) in
            catalog.distributions(judge, group, list(face_ids)).items()}
