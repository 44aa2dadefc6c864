"""The consensus of several annotators as a label source: the catalog read around
curate/quality/consensus.py (each person's labels, the judge's held-out probabilities) and the
write (`curate consensus`), or the read alone (`curate annotators`).

The consensus is written like a learned tagger's output (`Catalog.save_learned_labels`): one
label event per face and exclusive group, tag = the consensus label, value = its quality
score, annotator = the version; the version's record (tagger_versions) holds the method, what
it read and each group's annotator figures. The version is a fingerprint of every input
(each person's labels, the model's probabilities, the method, cleanlab's version and the
target): a rerun on unchanged inputs finds it and writes nothing. (`labels_fingerprint`, the
judge's, is recorded too, but it hashes the source's newest label per face only: a second
person agreeing with the first would not change it.)
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from importlib.metadata import version as package_version

import numpy as np

from curate.quality.consensus import (METHOD, GroupConsensus, LabelMatrix, annotator_rows, check_matrix, crowdlab,
                                      label_matrix, model_probabilities)
from curate.quality.suspects import JUDGE, exclusive_groups, judge_distributions
from db import Catalog, CatalogError
from db.labelling import MANUAL

CONSENSUS = "consensus"          # the label source `curate consensus` writes by default
VERSION_PREFIX = "consensus-"    # its versions, the annotator of its events
NO_NAME = "(none)"               # an annotator of events written without a name
TAGGERS = ("i2v", "animeface", "judge")


@dataclass
class ConsensusInputs:
    """What CROWDLAB reads, per group: the label matrix and the model's probabilities."""
    labels: str
    judge: str
    matrices: list[LabelMatrix]
    pred_probs: list[np.ndarray]
    judge_versions: list[str]
    left_out: dict[str, int] = field(default_factory=dict)   # group -> faces without probabilities

    def fingerprint(self, target: str) -> str:
        h = hashlib.sha256(json.dumps({"method": METHOD, "cleanlab": package_version("cleanlab"), "target": target,
                                       "labels": self.labels, "judge": self.judge}, sort_keys=True).encode())
        for m, p in zip(self.matrices, self.pred_probs):
            h.update(json.dumps([m.group, m.tags, m.annotators, m.face_ids]).encode())
            h.update(np.nan_to_num(m.labels, nan=-1).astype(np.int32).tobytes())
            h.update(np.round(p, 6).tobytes())
        return h.hexdigest()[:12]


@dataclass
class ConsensusSummary:
    target: str
    version: str
    results: list[GroupConsensus]
    left_out: dict[str, int]
    events: int = 0
    cleared: int = 0                 # faces whose earlier consensus label was withdrawn
    skipped: bool = False            # this version was written before: nothing to do
    seconds: float = 0.0


def read_inputs(catalog: Catalog, labels: str = MANUAL, judge: str = JUDGE, group: str | None = None
                ) -> ConsensusInputs:
    """Each person's current labels of `labels` per exclusive group (`group`, or every one they
    labelled) and `judge`'s probabilities of those faces, checked (CatalogError, one line)."""
    catalog.require_label_source(labels)
    if judge not in catalog.distribution_sources():
        raise CatalogError(f"no {judge!r} probabilities yet: run `curate tag --tagger judge --labels {labels}` "
                           f"first (a consensus needs a model: a bare majority vote gives no quality scores)")
    if group is not None and not catalog.group(group)["exclusive"]:
        raise CatalogError(f"{group!r} is not an exclusive group (one tag per face): a consensus needs one")
    names = exclusive_groups(catalog, group)
    by_group: dict[str, list[tuple[int, str, str]]] = {}
    for face_id, key, annotator, tag in catalog.annotator_labels(labels, names):
        by_group.setdefault(key, []).append((face_id, NO_NAME if annotator is None else annotator, tag))
    if not by_group:
        raise CatalogError(f"{labels!r} has no labels of {group or 'any exclusive group'} on ok faces")
    inputs = ConsensusInputs(labels, judge, [], [], [])
    versions: set[str] = set()
    for name in [n for n in names if n in by_group]:
        dists = judge_distributions(catalog, labels, name, judge)
        versions |= {v for _, _, v in dists.values()}
        rows = [r for r in by_group[name] if r[0] in dists]
        if not rows:
            raise CatalogError(f"no face {labels!r} labelled in {name} has {judge!r} probabilities: rerun "
                               f"`curate tag --tagger judge --labels {labels}`")
        inputs.left_out[name] = len({r[0] for r in by_group[name]}) - len({r[0] for r in rows})
        m = label_matrix(name, rows, catalog.group(name)["tags"])
        check_matrix(m, labels)
        inputs.matrices.append(m)
        inputs.pred_probs.append(model_probabilities(m.face_ids, m.tags, {f: dists[f][0] for f in m.face_ids}))
    inputs.judge_versions = sorted(versions)
    return inputs


def analyse(inputs: ConsensusInputs, progress=None) -> list[GroupConsensus]:
    """CROWDLAB on every group; `progress(done, total)` before the first and after each."""
    out = []
    for m, p in zip(inputs.matrices, inputs.pred_probs):
        if progress:
            progress(len(out), len(inputs.matrices))
        out.append(crowdlab(m, p))
    if progress:
        progress(len(out), len(inputs.matrices))
    return out


def check_target(catalog: Catalog, target: str, labels: str, judge: str) -> str:
    """The target's name, stripped, or CatalogError unless it is a source of its own: never the
    people's, the labels read, a tagger's, nor one something else wrote."""
    name = target.strip()
    theirs = {MANUAL, labels, judge, *TAGGERS, *catalog.distribution_sources()}
    if not name or name in theirs:
        raise CatalogError(f"--target {target!r}: the consensus goes into a source of its own (manual is the "
                           f"people's, {labels} the labels it reads, i2v, animeface and judge the taggers')")
    others = [w for w in catalog.source_writers(name) if w is None or not w.startswith(VERSION_PREFIX)]
    if others:
        raise CatalogError(f"--target {target!r} holds labels that `curate consensus` did not write: give "
                           f"another name")
    return name


def run_consensus(catalog: Catalog, labels: str = MANUAL, judge: str = JUDGE, target: str = CONSENSUS,
                  group: str | None = None, progress=None) -> ConsensusSummary:
    """Compute the consensus of `labels`' annotators with `judge`'s probabilities and write it into
    `target`, unless this very version was written before (see the module doc)."""
    started = time.time()
    target = check_target(catalog, target, labels, judge)
    inputs = read_inputs(catalog, labels, judge, group)
    version = f"{VERSION_PREFIX}{labels}-{inputs.fingerprint(target)}"
    if catalog.latest_tagger_version(target) == version:   # not merely written once: A, then B, then A again
        return ConsensusSummary(target, version, [], inputs.left_out, skipped=True)
    results = analyse(inputs, progress)
    summary = ConsensusSummary(target, version, results, inputs.left_out)
    summary.events, summary.cleared = write_consensus(catalog, summary, info(catalog, inputs, results))
    summary.seconds = round(time.time() - started, 1)
    return summary


def info(catalog: Catalog, inputs: ConsensusInputs, results: list[GroupConsensus]) -> dict:
    """The version's record: the method, what it read, and each group's figures."""
    return {"method": METHOD, "cleanlab": package_version("cleanlab"), "learned_from": inputs.labels,
            "labels_fingerprint": catalog.labels_fingerprint(inputs.labels), "with": inputs.judge,
            "judge_versions": inputs.judge_versions, "left_out": inputs.left_out,
            "groups": {r.matrix.group: group_figures(r) for r in results}}


def group_figures(r: GroupConsensus) -> dict:
    """One group's figures (what `curate annotators --json` prints, and the version records)."""
    m = r.matrix
    return {"faces": len(m.face_ids), "faces_with_two_or_more": int((m.labelled_by() >= 2).sum()),
            "tags": m.tags, "mean_quality": float(r.quality.mean()) if len(r.quality) else None,
            "model_weight": r.model_weight, "annotators": annotator_rows(r)}


def write_consensus(catalog: Catalog, summary: ConsensusSummary, record: dict) -> tuple[int, int]:
    """Write the labels (value = quality) and withdraw (a cleared event) the target's earlier
    consensus of faces that no longer have one in those groups; one transaction."""
    events = [(f, tag, round(float(q), 6)) for r in summary.results
              for f, tag, q in zip(r.matrix.face_ids, r.consensus_tags(), r.quality)]
    keys = [r.matrix.group for r in summary.results]
    now = {(f, r.matrix.group) for r in summary.results for f in r.matrix.face_ids}
    before = catalog.current_for_keys(summary.target, keys) if catalog.has_labels(summary.target) else {}
    stale = sorted((f, key) for f, held in before.items() for key in held if (f, key) not in now)
    with catalog.transaction():
        written = catalog.save_learned_labels(summary.target, summary.version, record, events, [])
        for face_id, key in stale:
            catalog.clear_label(face_id, key, summary.target, summary.version)
    return written, len(stale)


def annotator_report(catalog: Catalog, labels: str = MANUAL, judge: str = JUDGE, group: str | None = None
                     ) -> list[dict]:
    """Per group, its figures (`group_figures`) from a fresh consensus; writes nothing."""
    results = analyse(read_inputs(catalog, labels, judge, group))
    return [{"group": r.matrix.group, **group_figures(r)} for r in results]
