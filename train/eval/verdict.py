"""The report's answer to its question: for each pair of label sources trained alike (the same
model and options but the labels), which one is better on each figure, and whether by more than
the spread over seeds.

Pure functions of the figures: per configuration, its name, label source, what it trained but
the labels (`alike`: configurations with the same one form the pairs) and each figure's values
over its seeds; out come the verdict's rows and one sentence per pair.

The rule, stated in the report: on each figure, one configuration is better than the other
beyond the spread when their ranges over seeds (lowest to highest seed) do not overlap: every
seed of one beats every seed of the other. Overlapping ranges: no difference beyond the spread.
It takes at least 2 seeds per configuration (better 3): one seed is an anecdote.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

# Figures where lower is better (distances, repetition); every other figure: higher is better.
LOWER_IS_BETTER = ("FID", "KID", "near-dup")
# Figures the verdict leaves out: derived from another one it shows (judge accuracy / ceiling).
NOT_IN_VERDICT = ("% of ceiling",)
# Options that differ between label sources as a consequence of the labels, not of the training.
FOLLOW_THE_LABELS = ("labels", "faces", "classes")
VERDICT_RULE = ("a figure differs beyond the spread when the ranges over seeds (lowest to highest seed) of the "
                "two configurations do not overlap: every seed of one is better than every seed of the other")
MIN_SEEDS, GOOD_SEEDS = 2, 3


def lower_is_better(figure: str) -> bool:
    return any(word in figure for word in LOWER_IS_BETTER)


def with_arrow(figure: str) -> str:
    """The figure's name with the direction that is better: ↓ lower, ↑ higher."""
    return f"{figure} {'↓' if lower_is_better(figure) else '↑'}"


def alike_key(options: dict) -> str:
    """What a configuration trained but its label source (and what follows from it): two
    configurations with the same key differ only in their labels."""
    return json.dumps({k: v for k, v in options.items() if k not in FOLLOW_THE_LABELS}, sort_keys=True)


@dataclass
class Comparison:
    figure: str
    better: int | None         # 0 or 1: which of the pair is better on average; None: equal means
    beyond: bool               # the ranges over seeds do not overlap
    decidable: bool            # both have at least MIN_SEEDS seeds


def compare_figure(figure: str, a: list[float], b: list[float]) -> Comparison:
    """Which of two configurations' values over seeds is better on `figure`, and whether beyond the spread."""
    sign = -1 if lower_is_better(figure) else 1
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    better = None if ma == mb else (0 if sign * (ma - mb) > 0 else 1)
    decidable = len(a) >= MIN_SEEDS and len(b) >= MIN_SEEDS
    beyond = decidable and (max(a) < min(b) or max(b) < min(a))
    return Comparison(figure, better, beyond, decidable)


@dataclass
class Finding:
    """One figure of one pair, as data (what the rows say in words)."""
    labels: tuple[str | None, str | None]   # the pair's label sources
    alike: str                     # what both trained but the labels (alike_key)
    figure: str
    better: str | None             # the better label source on average; None: equal means
    beyond: bool
    decidable: bool


@dataclass
class Verdict:
    rows: list[list[str]]          # header first: pair, figure, better, other, beyond the spread?
    sentences: list[str]           # one per pair (or why there is none)
    findings: list[Finding] = field(default_factory=list)


def _seeds_text(na: int, nb: int) -> str:
    return (f"{na} seed" + ("s" if na != 1 else "")) if na == nb else f"{na} and {nb} seeds"


def _values(values: list[float], fmt, kind: str) -> str:
    mean = fmt(sum(values) / len(values), kind)
    return mean if len(values) < 2 else f"{mean} ({fmt(min(values), kind)} to {fmt(max(values), kind)})"


def pair_sentence(names: tuple[str, str], seeds: tuple[int, int], comparisons: list[Comparison]) -> str:
    """What the pair's figures mean, in one sentence."""
    a, b = names
    if min(seeds) < MIN_SEEDS:
        return (f"{a} vs {b}: no verdict is possible with {_seeds_text(*seeds)}: it needs at least {MIN_SEEDS} "
                f"(better {GOOD_SEEDS}) seeds per configuration.")
    wins = {k: [c.figure for c in comparisons if c.beyond and c.better == k] for k in (0, 1)}
    within = [c.figure for c in comparisons if not c.beyond]
    parts = [f"{names[k]} beats {names[1 - k]} on {', '.join(wins[k])} beyond the spread of {_seeds_text(*seeds)}"
             for k in (0, 1) if wins[k]]
    if not parts:
        return f"{a} vs {b}: no difference beyond the spread of {_seeds_text(*seeds)} on any figure."
    if within:
        parts.append(f"{', '.join(within)} {'differs' if len(within) == 1 else 'differ'} within the spread")
    return "; ".join(parts) + "."


def verdict(names: list[str], labels: list[str | None], alike: list[str], figures: list[dict[str, list[float]]],
            kinds: dict[str, str], fmt) -> Verdict:
    """Per pair of configurations with the same `alike` key and other labels: every figure both
    have, which is better and whether beyond the spread, and the pair's sentence. `figures[k]`:
    configuration k's values over its seeds per figure; `fmt(value, kinds[figure])` writes one."""
    rows = [["label sources compared", "figure", "better", "worse", "beyond the spread over seeds?"]]
    sentences, findings = [], []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            if alike[i] != alike[j] or labels[i] == labels[j]:
                continue
            shared = [f for f in figures[i] if f in figures[j] and figures[i][f] and figures[j][f]
                      and not f.startswith(NOT_IN_VERDICT)]
            comparisons = [compare_figure(f, figures[i][f], figures[j][f]) for f in shared]
            seeds = (max((len(v) for v in figures[i].values()), default=0),
                     max((len(v) for v in figures[j].values()), default=0))
            pair = (names[i], names[j])
            sentences.append(pair_sentence(pair, seeds, comparisons))
            for c in comparisons:
                findings.append(Finding((labels[i], labels[j]), alike[i], c.figure,
                                        None if c.better is None else (labels[i], labels[j])[c.better],
                                        c.beyond, c.decidable))
                first = 0 if c.better is None else c.better
                order = (i, j) if first == 0 else (j, i)
                rows.append([f"{labels[i] or 'unconditional'} vs {labels[j] or 'unconditional'}", with_arrow(c.figure)]
                            + [f"{names[k]}: {_values(figures[k][c.figure], fmt, kinds[c.figure])}" for k in order]
                            + [("yes" if c.beyond else "no" if c.better is not None else "no (equal means)")
                               if c.decidable else f"no verdict (needs {MIN_SEEDS}+ seeds)"])
    if not sentences:
        sentences.append("No two configurations differ only in their label source: nothing for the verdict to "
                         "compare (the tables below compare every configuration).")
    return Verdict(rows, sentences, findings)
