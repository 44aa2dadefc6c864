"""cleanlab's ActiveLab scores and CROWDLAB consensus quality, their per-face Python loops done
as array operations: the same steps, the same floats, a hundred times faster on many faces.

cleanlab 2.9's `get_active_learning_scores` walks every labelled face in Python twice (the
annotators' empirical label distribution, once per candidate temperature: 18 times; the final
weighted average) and `get_label_quality_multiannotator(consensus_method="best_quality")` once
(the most probable class of each face): at 300,000 labelled faces that was minutes. Here those
steps are numpy over all faces at once and the rest is cleanlab's own helpers, so the results are
those of cleanlab's functions, bit for bit (tests/test_active_learning.py compares them on random
data, one annotator and several, with ties). Pure functions of arrays; cleanlab is imported when
used (it brings pandas and scikit-learn).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

COARSE_TEMPERATURES = [0.1, 0.2, 0.5, 0.8, 1, 2, 3, 5, 8]   # find_best_temp_scaler's defaults
FINE_STEPS = 4


def active_learning_scores(labels: np.ndarray | None, pred_probs: np.ndarray | None,
                           pred_probs_unlabelled: np.ndarray | None,
                           scaled_top: Callable[[float], np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """cleanlab.multiannotator.get_active_learning_scores(labels, pred_probs, pred_probs_unlabelled)
    for checked input (a faces x annotators matrix of class indices, NaN where missing, with no
    empty row or column; None for a side without faces). `scaled_top(temperature)`: each unlabelled
    face's highest temperature-scaled probability, where the caller keeps it (it depends on the face
    alone); else computed here from pred_probs_unlabelled."""
    from cleanlab.internal.multiannotator_utils import temp_scale_pred_probs
    from cleanlab.multiannotator import get_majority_vote_label
    from cleanlab.rank import get_label_quality_scores

    if pred_probs is None and pred_probs_unlabelled is None:
        raise ValueError("pred_probs and pred_probs_unlabelled cannot both be None")
    temperature, model_weight, mean_annotator_weight = 1.0, 1, 1
    scores = np.array([])
    if pred_probs is not None:
        num_classes = pred_probs.shape[1]
        if ((~np.isnan(labels)).sum(1) == 1).all():      # one label per face: no temperature, no weights
            quality = get_label_quality_scores(get_majority_vote_label(labels, pred_probs, verbose=False),
                                               pred_probs)
            annotator_weight = np.full(labels.shape[1], 1)
        else:
            temperature = best_temperature(labels, pred_probs)
            pred_probs = temp_scale_pred_probs(pred_probs, temperature)
            quality, model_weight, annotator_weight = consensus_quality(labels, pred_probs)
        mean_annotator_weight = np.mean(annotator_weight)
        # per face: average(quality, 1 / classes; weights: its annotators' weights + the model's, the mean)
        present = ~np.isnan(labels)
        if labels.shape[1] <= 62:       # each face's set of annotators as the bits of one number
            codes, which = np.unique(present @ (1 << np.arange(labels.shape[1], dtype=np.int64)), return_inverse=True)
            patterns = [(c >> np.arange(labels.shape[1])) & 1 == 1 for c in codes.tolist()]
        else:
            patterns, which = np.unique(present, axis=0, return_inverse=True)
        own = np.array([np.sum(annotator_weight[p]) + model_weight for p in patterns])[which.reshape(-1)]
        scores = (quality * own + (1 / num_classes) * mean_annotator_weight) / (own + mean_annotator_weight)
    else:
        num_classes = pred_probs_unlabelled.shape[1]
    scores_unlabelled = np.array([])
    if pred_probs_unlabelled is not None:
        top = (scaled_top(temperature) if scaled_top is not None
               else np.max(temp_scale_pred_probs(pred_probs_unlabelled, temperature), axis=1))
        scores_unlabelled = np.average(np.stack([top, np.full(len(top), 1 / num_classes)]),
                                       weights=[model_weight, mean_annotator_weight], axis=0)
    return scores, scores_unlabelled


def consensus_quality(labels: np.ndarray, pred_probs: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """(consensus quality per face, model weight, annotator weights) of
    get_label_quality_multiannotator(labels, pred_probs, consensus_method="best_quality",
    quality_method="crowdlab"): CROWDLAB."""
    from cleanlab.multiannotator import _get_consensus_stats, get_majority_vote_label

    num_annotations = np.sum(~np.isnan(labels), axis=1)
    majority = get_majority_vote_label(labels, pred_probs, verbose=False)
    post = _get_consensus_stats(labels, pred_probs, num_annotations, majority, quality_method="crowdlab",
                                verbose=False)[2]
    # best quality: a face's one most probable class afterwards, or its majority vote where several tie
    top = post == np.max(post, axis=1, keepdims=True)
    consensus = np.where(top.sum(1) == 1, np.argmax(top, axis=1), majority).astype(int)
    _, quality, _, model_weight, annotator_weight = _get_consensus_stats(
        labels, pred_probs, num_annotations, consensus, quality_method="crowdlab", verbose=False)
    return np.asarray(quality, float), model_weight, annotator_weight


def best_temperature(labels: np.ndarray, pred_probs: np.ndarray) -> float:
    """cleanlab's find_best_temp_scaler: the temperature whose scaled probabilities are closest (soft
    cross entropy) to the annotators' empirical label distribution, coarse then fine search.

    The empirical distribution is 0 past each face's first `used` columns (see
    `empirical_label_distribution`), so of the scaled probabilities only those columns are divided,
    clipped and logged (the row sums still take every column): the products elsewhere are 0 either
    way, and each row's sum is taken over the same width, so the cross entropies are cleanlab's."""
    from cleanlab.internal.constants import EPSILON
    from cleanlab.internal.multiannotator_utils import SMALL_CONST, _set_fine_search_range

    num_classes = pred_probs.shape[1]
    empirical = empirical_label_distribution(labels, num_classes)
    used = int(np.max(np.flatnonzero(empirical.any(0)), initial=0)) + 1
    log_pred_probs = np.log(pred_probs, where=pred_probs > 0, out=np.full(pred_probs.shape, -np.inf))
    terms = np.zeros(pred_probs.shape)

    def cross_entropy(temperature: float) -> float:
        # cleanlab's softmax(log_pred_probs, temperature, axis=1, shift=False), then its clip and log
        exp_x = np.exp(log_pred_probs / max(temperature, EPSILON))
        scaled = exp_x[:, :used] / np.sum(exp_x, axis=1, keepdims=True)
        terms[:, :used] = empirical[:, :used] * np.log(np.clip(scaled, a_min=SMALL_CONST, a_max=None))
        return np.mean(-np.sum(terms, axis=1) / np.log(num_classes))

    coarse = np.array([cross_entropy(t) for t in COARSE_TEMPERATURES])
    fine = _set_fine_search_range(COARSE_TEMPERATURES, FINE_STEPS, np.argmin(coarse))
    return fine[np.argmin([cross_entropy(t) for t in fine])]


def empirical_label_distribution(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Faces x classes as cleanlab's compute_soft_cross_entropy builds it, row by row, with
    `value_counts(row's labels, num_classes) / len(row's labels)`. Its labels are floats (NaN marks
    a missing one), and for float labels value_counts puts the counts of the row's distinct labels,
    smallest first, in the first columns, not in their classes' columns (unless the row holds every
    class): this does the same, as it must to give the same temperature."""
    ordered = np.sort(labels, axis=1)                    # NaN last
    present = ~np.isnan(ordered)
    new = present.copy()
    new[:, 1:] &= ordered[:, 1:] != ordered[:, :-1]      # the first of each run of one label
    column = np.cumsum(new, axis=1) - 1                  # the run's rank among the row's labels
    counts = np.zeros((len(labels), num_classes), np.int64)
    rows = np.broadcast_to(np.arange(len(labels))[:, None], labels.shape)
    np.add.at(counts, (rows[present], column[present]), 1)
    return counts / present.sum(1, keepdims=True)
