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

from curate.quality.agreement import worst_disagreements
from db import Catalog, CatalogError
from db.labelling import MANUAL, QueueSpec

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
    if not dists:
        raise CatalogError(f"no {judge!r} probabilities for {group} yet: run "
                           f"`curate tag --tagger judge --labels {source}` first")
    for version in sorted({v for _, _, v in dists.values()}):
        learned = (catalog.tagger_version(version) or {}).get("learned_from")
        if learned != source:
            raise CatalogError(f"the {judge!r} probabilities ({version}) were learned from {learned!r}, not "
                               f"{source!r}: run `curate tag --tagger judge --labels {source}` first")
    return dists


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
    given = {f: labels[group][0] for f, labels in
             catalog.labelled_faces(source, split=None, groups=[group]).items() if group in labels}
    if not given:
        raise CatalogError(f"label source {source!r} has no {group} labels")
    used = sorted(set(given.values()))
    if len(used) < 2:
        raise CatalogError(f"label source {source!r} gives every face the same {group} ({used[0]}): "
                           f"with one tag there is nothing to tell apart")
    dists = judge_distributions(catalog, source, group, judge)
    tags = [t for t in catalog.group(group)["tags"] if t in used and any(t in p for p, _, _ in dists.values())]
    faces = sorted(f for f in given if f in dists and given[f] in tags)
    if len(tags) < 2 or not faces:
        raise CatalogError(f"the {judge!r} probabilities and the {source!r} labels of {group} share "
                           f"{len(tags)} tag(s): rerun `curate tag --tagger judge --labels {source}`")
    probs = np.array([[dists[f][0].get(t, 0.0) for t in tags] for f in faces])
    probs = probs / probs.sum(1, keepdims=True).clip(1e-12)
    labels = np.array([tags.index(given[f]) for f in faces])
    scores = get_label_quality_scores(labels, probs, method=rank)
    flagged = np.zeros(len(faces), bool)
    if len(faces) > len(tags):   # fewer faces than tags: no per-class thresholds to estimate
        flagged = find_label_issues(labels, probs, filter_by=FILTER, n_jobs=1)
    order = np.argsort(scores, kind="stable")
    return GroupRanking(group, tags, [faces[i] for i in order], [given[faces[i]] for i in order], probs[order],
                        scores[order], {faces[i] for i in np.flatnonzero(flagged)})


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
        ranking = rank_group(catalog, source, name, judge, rank)
        others: dict[int, list[str]] = {}
        for other in compare:
            for r in worst_disagreements(catalog, source, other, n=None):
                if r["key"] == name and r["confidence"] >= min_confidence:
                    others.setdefault(r["face_id"], []).append(f"{other} says {r['tag_b']} {r['value_b']:.2f}")
        for f, given, p, score in zip(ranking.face_ids, ranking.given, ranking.probs, ranking.scores):
            flagged = f in ranking.flagged
            if not flagged and f not in others:
                continue
            likely, p_given = ranking.tags[int(p.argmax())], float(p[ranking.tags.index(given)])
            reasons = [f"confident learning ({judge})"] if flagged else []
            out.append(Suspect(f, name, given, likely, float(p.max()), p_given, float(score), flagged,
                               reasons + others.get(f, [])))
    out.sort(key=lambda s: (s.score, s.face_id))
    return out


def margins(catalog: Catalog, group: str, judge: str = JUDGE) -> dict[int, float]:
    """Face id -> the judge's top probability minus its second (low = undecided) in `group`."""
    out = {}
    for f, (probs, _, _) in catalog.distributions(judge, group).items():
        top = sorted(probs.values(), reverse=True) + [0.0]
        out[f] = top[0] - top[1]
    return out


def review_order(catalog: Catalog, source: str, group: str, judge: str = JUDGE) -> list[int]:
    """The faces `source` labelled in `group`, in the order a person should review them: the
    suspects (`find_suspects`) first, then the rest by label quality. The app's "likely label
    errors first" queue."""
    first = [s.face_id for s in find_suspects(catalog, source, group, judge)]
    return list(dict.fromkeys(first + rank_group(catalog, source, group, judge).face_ids))


def queue_ranking(catalog: Catalog, spec: QueueSpec) -> dict[int, float] | None:
    """The sort keys (face id -> key, lowest first) of the app's judge orders for a validated
    `spec`, handed to `Catalog.build_queue`: "margin" = most undecided first, "suspects" =
    `review_order`. None for the orders the catalog ranks itself."""
    if spec.order == "margin":
        return margins(catalog, spec.group, spec.source)
    if spec.order == "suspects":
        return {f: i for i, f in enumerate(review_order(catalog, MANUAL, spec.group, spec.source))}
    return None


def likely_labels(catalog: Catalog, group: str, face_ids: list[int], judge: str = JUDGE
                  ) -> dict[int, tuple[str, float]]:
    """Face id -> (the judge's most probable tag in `group`, its probability)."""
    return {f: max(probs.items(), key=lambda kv: kv[1]) for f, (probs, _, _) in
            catalog.distributions(judge, group, list(face_ids)).items()}
