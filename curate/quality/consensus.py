"""One label per face from several annotators and a model, and how good each annotator is.

CROWDLAB (Goh, Tkachenko and Mueller 2022, through cleanlab's
`get_label_quality_multiannotator`): per exclusive group, the annotators' labels (a faces x
annotators matrix of class indices, NaN where a person did not label the face) and a model's
held-out probabilities (faces x classes) are averaged, each annotator weighted by how often
they agree with the others and the model by how often it agrees with the majority. The
consensus label is the most probable class of that average ("best_quality"); its quality
score says how sure it is. A face only one person labelled gets the same model-weighted view:
a sure model outvotes a lone, unreliable annotator there too.

Why a model is required: without probabilities cleanlab can still take a majority vote
(`get_majority_vote_label` accepts no pred_probs), but neither a consensus quality score nor
an annotator's quality (CROWDLAB needs pred_probs for both), and a face one person labelled
would just keep that label. So a consensus without a model is refused, not approximated.

Pure functions of arrays; the catalog is read and written around them
(curate/quality/consensus_source.py).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from curate.quality.agreement import cohen_kappa
from db import CatalogError

METHOD = {"quality_method": "crowdlab", "consensus_method": "best_quality",
          "function": "cleanlab.multiannotator.get_label_quality_multiannotator"}


@dataclass
class LabelMatrix:
    """One exclusive group's labels by person: `labels[i, j]` = index into `tags` of annotator j's
    label of face i, NaN where j did not label it."""
    group: str
    face_ids: list[int]
    annotators: list[str]
    tags: list[str]
    labels: np.ndarray

    def labelled_by(self) -> np.ndarray:
        """Per face, how many annotators labelled it."""
        return (~np.isnan(self.labels)).sum(1)


@dataclass
class GroupConsensus:
    """CROWDLAB's answer for one group (rows in the order of the matrix's faces and annotators)."""
    matrix: LabelMatrix
    consensus: np.ndarray            # per face: index into tags
    quality: np.ndarray              # per face: consensus quality score, 0..1
    agreement: np.ndarray            # per face: fraction of its annotators who gave the consensus
    annotator_quality: np.ndarray    # per annotator: CROWDLAB's estimated quality, 0..1
    agreement_with_consensus: np.ndarray   # per annotator: on faces another person labelled too
    faces_labelled: np.ndarray       # per annotator
    kappa: np.ndarray                # annotators x annotators: Cohen's kappa on faces both labelled
    model_weight: float              # how far CROWDLAB trusts the model, against the annotators
    annotator_weight: np.ndarray     # and each annotator

    def consensus_tags(self) -> list[str]:
        return [self.matrix.tags[i] for i in self.consensus]


def label_matrix(group: str, rows: list[tuple[int, str, str]], tags: list[str]) -> LabelMatrix:
    """(face id, annotator, tag) rows -> the matrix, faces and annotators sorted, over the `tags`
    (in that order) that the rows use."""
    return label_matrix_of(group, [f for f, _, _ in rows], [a for _, a, _ in rows], [t for _, _, t in rows], tags)


def label_matrix_of(group: str, face_ids: list[int], annotators: list[str], row_tags: list[str],
                    tags: list[str]) -> LabelMatrix:
    """`label_matrix` of rows given as three columns (one (face, annotator) pair per row)."""
    used = set(row_tags)
    tags = [t for t in tags if t in used]
    faces, face_row = np.unique(np.asarray(face_ids, np.int64), return_inverse=True)
    who = sorted(set(annotators))
    who_pos = {a: j for j, a in enumerate(who)}
    tag_pos = {t: k for k, t in enumerate(tags)}
    labels = np.full((len(faces), len(who)), np.nan)
    labels[face_row.reshape(-1), [who_pos[a] for a in annotators]] = [tag_pos[t] for t in row_tags]
    return LabelMatrix(group, faces.tolist(), who, tags, labels)


def check_matrix(m: LabelMatrix, source: str) -> None:
    """CatalogError, one line, unless CROWDLAB can work on `m`: two annotators or more, a face that
    two of them labelled, and two tags or more."""
    if len(m.annotators) < 2:
        who = m.annotators[0] if m.annotators else "nobody"
        raise CatalogError(f"{source!r} has one annotator ({who!r}) for {m.group}: a consensus needs two or "
                           f"more (`curate suspects --labels {source}` checks one person's labels)")
    if not (m.labelled_by() >= 2).any():
        raise CatalogError(f"no face has {m.group} labels from two annotators of {source!r}: nothing to agree "
                           f"on yet (label some faces twice)")
    if len(m.tags) < 2:
        raise CatalogError(f"every {source!r} annotator gives every face the same {m.group} ({m.tags[0]}): "
                           f"with one tag there is nothing to tell apart (--group picks another group)")


def model_probabilities(face_ids: list[int], tags: list[str], dists: dict[int, dict[str, float]]) -> np.ndarray:
    """Faces x tags: the model's probabilities of `tags`, renormalised over them (a tag the model
    does not know gets 0; a face whose probability mass lies wholly outside them, uniform)."""
    probs = np.array([[dists[f].get(t, 0.0) for t in tags] for f in face_ids], float).reshape(len(face_ids), len(tags))
    return renormalised(probs)


def renormalised(probs: np.ndarray) -> np.ndarray:
    """Each row over its sum (uniform where the row sums to 0)."""
    total = probs.sum(1, keepdims=True)
    if (total > 0).all():
        return probs / total
    return np.where(total > 0, probs / np.where(total > 0, total, 1), 1 / probs.shape[1])


def crowdlab(m: LabelMatrix, pred_probs: np.ndarray) -> GroupConsensus:
    """CROWDLAB on a checked matrix (`check_matrix`) and the model's probabilities (faces x tags)."""
    # cleanlab brings pandas and scikit-learn: loaded when a consensus is computed, not by `-h`
    from cleanlab.multiannotator import get_label_quality_multiannotator

    with warnings.catch_warnings():   # cleanlab's notes (no agreement, unused classes) are ours to say
        warnings.simplefilter("ignore")
        out = get_label_quality_multiannotator(m.labels, pred_probs, consensus_method=METHOD["consensus_method"],
                                               quality_method=METHOD["quality_method"], return_weights=True,
                                               return_detailed_quality=False, verbose=False)
    faces, stats = out["label_quality"], out["annotator_stats"].sort_index()   # back to the matrix's columns
    return GroupConsensus(
        m, faces["consensus_label"].to_numpy(int), faces["consensus_quality_score"].to_numpy(float),
        faces["annotator_agreement"].to_numpy(float), stats["annotator_quality"].to_numpy(float),
        stats["agreement_with_consensus"].to_numpy(float), (~np.isnan(m.labels)).sum(0),
        pairwise_kappa(m.labels, len(m.tags)), float(out["model_weight"]), np.asarray(out["annotator_weight"], float))


def pairwise_kappa(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Annotators x annotators: Cohen's kappa of each pair on the faces both labelled (NaN where
    they share none or kappa is undefined; 1 on the diagonal)."""
    n = labels.shape[1]
    out = np.eye(n)
    for a in range(n):
        for b in range(a + 1, n):
            both = ~np.isnan(labels[:, a]) & ~np.isnan(labels[:, b])
            conf = np.zeros((n_classes, n_classes), int)
            np.add.at(conf, (labels[both, a].astype(int), labels[both, b].astype(int)), 1)
            out[a, b] = out[b, a] = cohen_kappa(conf)
    return out


def annotator_rows(result: GroupConsensus) -> list[dict]:
    """One row per annotator, best estimated quality first: name, faces, agreement with the
    consensus, quality, CROWDLAB's weight, and kappa with each other annotator (None: undefined)."""
    m = result.matrix
    rows = []
    for j, name in enumerate(m.annotators):
        kappas = {other: _number(result.kappa[j, k]) for k, other in enumerate(m.annotators) if k != j}
        rows.append({"annotator": name, "faces": int(result.faces_labelled[j]),
                     "agreement_with_consensus": _number(result.agreement_with_consensus[j]),
                     "quality": _number(result.annotator_quality[j]), "weight": _number(result.annotator_weight[j]),
                     "kappa": kappas})
    rows.sort(key=lambda r: (-(r["quality"] if r["quality"] is not None else -1), r["annotator"]))
    return rows


def _number(x: float) -> float | None:
    """A float for JSON and tables, None for NaN."""
    return None if np.isnan(x) else float(x)
