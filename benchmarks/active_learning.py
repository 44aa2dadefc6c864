"""Labelling that learns, simulated on ../shared's labelled faces: which face to label next, and
what a consensus of several people is worth.

    python benchmarks/active_learning.py                 # both parts, 3 seeds (~1 h on one busy core)
    python benchmarks/active_learning.py --part queue    # [1] only;  --part consensus: [2] only
    python benchmarks/active_learning.py --quick         # 2 rounds, 1 seed, 1 epoch: checks the script runs
    python benchmarks/active_learning.py --from-log a.log b.log   # [1]'s summary and plot again, from outputs

[1] The next face. The shared labels are the oracle. Start from --start faces labelled at random
    (train split), then add batches of --batch faces chosen by one queue order, retrain the judge
    (curate/taggers/classifier.py, a fresh net each time, --steps steps whatever the labels: with a
    fixed number of epochs a small set would also get fewer steps) on what is labelled and score it
    on the test split (mean accuracy over hair and eye colour). Orders, side by side on the same start:
      useful      the app's "most useful next": ActiveLab (curate/quality/active.py) over labelled
                  and unlabelled faces together, the mean of the two groups' scores, lowest first;
                  as in the app, a face is never ranked for the person who labelled it, so with one
                  labeller (the oracle) it picks new faces, the labelled ones weighing the scores
      confidence  the app's "lowest confidence": the judge's top probability, mean of the groups
      random
    Reported: the curves (docs/active_learning.png) and, per seed, the labels each order spent
    until the judge reached 95% of the accuracy of a judge trained on every train face.
    Goal: "useful" needs at most half of what random needs, beyond the spread over seeds.
[2] Consensus. Three simulated annotators of every labelled face's hair and eye colour: careful
    (5% of labels changed at random), noisy (20%) and a confuser (20% of labels changed to a
    close colour: blonde to orange, blue to aqua, pink to purple, grey to white, ...). Every train
    face is labelled by two of them, drawn at random. The model: a judge cross-fitted (5 folds)
    on one of each face's two labels. Reported, against the original labels: majority vote (a tie
    broken at random, as a person without a model would), CROWDLAB's consensus
    (curate/quality/consensus.py) and each annotator alone; and the annotators ranked by
    CROWDLAB's estimated quality (the noisy one should be last).
    Goal: consensus beats majority vote beyond the spread over seeds.

The judge here is smaller than `curate tag --tagger judge`'s (defaults --size 24 --width 8
--epochs 6, against 32 / 16 / 10): the runs retrain it ~100 times on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.shared_catalog import labelled_catalog  # noqa: E402
from curate.quality.active import active_learning_scores  # noqa: E402
from curate.quality.consensus import LabelMatrix, crowdlab  # noqa: E402
from curate.taggers.classifier import (JudgeOptions, accuracy, fit_judge, load_labelled,  # noqa: E402
                                       mean_accuracy, targets, vocabulary)
from db import Catalog  # noqa: E402

ORDERS = ("useful", "confidence", "random")
OUT = ROOT / "docs" / "active_learning.png"
# one round as `simulate` prints it (older outputs also said "(faces N)")
ROUND_LINE = re.compile(r"  (\w+) +seed (\d+) labels +(\d+)(?: \(faces +\d+\))?  accuracy ([\d.]+)")


# -- data ---------------------------------------------------------------------------------------

def load(size: int):
    """The train pool and the test split at `size` px, the heads, and per head the class index of
    every face (-1 where the group is unlabelled)."""
    with Catalog(labelled_catalog()) as catalog:
        pool = load_labelled(catalog, "manual", "train", size)
        test = load_labelled(catalog, "manual", "test", size)
        heads = [h for h in vocabulary(catalog, pool) if h["exclusive"]]
    return pool, test, heads


def train_and_score(opts: JudgeOptions, heads, pool, rows: np.ndarray, test, seed: int, steps: int = 0):
    """A judge trained on `rows` of the pool (for `steps` steps, else `opts.epochs` epochs): (its mean
    test accuracy, per head the pool's probabilities)."""
    idx = torch.from_numpy(np.sort(rows))
    if steps:   # the same number of steps whatever the labels: accuracy then follows the labels, not the compute
        opts = replace(opts, epochs=max(1, math.ceil(steps * opts.batch / len(rows))))
    judge = fit_judge(opts, heads, pool.images[idx], [pool.tags[i] for i in idx.tolist()], seed=seed)
    score = mean_accuracy(accuracy(heads, judge.predict(test.images), test.tags))
    return score, judge.outputs(pool.images)[1]


# -- [1] the next face --------------------------------------------------------------------------

def choose(order: str, k: int, labelled: np.ndarray, y: list[np.ndarray],
           probs: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Indices into the pool of the next `k` faces to label by `order` (`labelled`: a mask of the
    pool; the oracle is the only labeller, so a face is labelled once)."""
    new = np.flatnonzero(~labelled)
    if order == "random":
        return rng.choice(new, size=min(k, len(new)), replace=False)
    if order == "confidence":
        top = np.mean([p[new].max(1) for p in probs], axis=0)
        return new[np.argsort(top, kind="stable")[:k]]
    old = np.flatnonzero(labelled)
    score_new = np.zeros(len(new))
    for truth, p in zip(y, probs):       # faces x one annotator (the oracle), NaN where the group is unlabelled
        labels = np.where(truth[old] >= 0, truth[old], np.nan)[:, None]
        keep = ~np.isnan(labels[:, 0])
        _, s_new = active_learning_scores(labels[keep], p[old][keep], p[new])
        score_new += s_new / len(y)
    # the app never ranks a face for the person who labelled it (a second opinion from the same
    # person teaches nothing): with one oracle labeller, the labelled faces only weigh the scores
    return new[np.argsort(score_new, kind="stable")[:k]]


def simulate(order: str, seed: int, args, data, full: float) -> list[tuple[int, float]]:
    """(labels spent, test accuracy) after each round of one order and seed."""
    pool, test, heads = data
    y = [t.numpy() for t in targets(heads, pool.tags)]
    rng = np.random.default_rng(seed)
    labelled = np.zeros(len(pool.face_ids), bool)
    labelled[rng.choice(len(labelled), size=args.start, replace=False)] = True
    curve = []
    for r in range(args.rounds + 1):
        started = time.time()
        score, probs = train_and_score(args.judge, heads, pool, np.flatnonzero(labelled), test, seed * 1000 + r,
                                       args.steps)
        spent = int(labelled.sum())
        curve.append((spent, score))
        print(f"  {order:<10} seed {seed} labels {spent:5d}  "
              f"accuracy {score:.3f} ({score / full:.1%} of all labels)  {time.time() - started:.0f} s", flush=True)
        if r < args.rounds:
            probs = [p / p.sum(1, keepdims=True) for p in probs]
            labelled[choose(order, args.batch, labelled, y, probs, rng)] = True
    return curve


def labels_to_reach(curve: list[tuple[int, float]], target: float) -> int | None:
    return next((spent for spent, score in curve if score >= target), None)


def part_queue(args, data) -> dict:
    pool, test, heads = data
    results = {"full": {}, "curves": {o: {} for o in ORDERS}, "needed": {o: {} for o in ORDERS}}
    for seed in args.seeds:
        full, _ = train_and_score(args.judge, heads, pool, np.arange(len(pool.face_ids)), test, seed * 1000 + 999,
                                  args.steps)
        results["full"][seed] = full
        print(f"[1] seed {seed}: a judge on all {len(pool.face_ids)} train faces: test accuracy {full:.3f}; "
              f"target {args.reach:.0%} of it = {args.reach * full:.3f}", flush=True)
        for order in args.orders:
            curve = simulate(order, seed, args, data, full)
            results["curves"][order][seed] = curve
            results["needed"][order][seed] = labels_to_reach(curve, args.reach * full)
    return results


def from_logs(paths: list[Path]) -> tuple[dict, list[int]]:
    """The results of [1] read back from the per-round lines of earlier runs' output (several
    runs may each hold some seeds or orders): to print the summary and plot again without training."""
    results = {"full": {}, "curves": {o: {} for o in ORDERS}, "needed": {o: {} for o in ORDERS}}
    for path in paths:
        text = path.read_text()
        for seed, acc in re.findall(r"\[1\] seed (\d+): a judge on all \d+ train faces: test accuracy ([\d.]+)", text):
            results["full"][int(seed)] = float(acc)
        for order, seed, spent, acc in ROUND_LINE.findall(text):
            results["curves"][order].setdefault(int(seed), []).append((int(spent), float(acc)))
    return results, sorted(results["full"])


def summary_queue(results: dict, args) -> list[str]:
    most = args.start + args.rounds * args.batch
    lines = [f"labels needed to reach {args.reach:.0%} of the all-labels judge's test accuracy "
             f"(start {args.start}, batches of {args.batch}; '>{most}': not within the rounds)",
             f"{'order':<12}" + "".join(f"{'seed ' + str(s):>10}" for s in args.seeds) + f"{'mean':>10}{'range':>14}"]
    spans = {}
    for order in args.orders:
        vals = [results["needed"][order][s] for s in args.seeds]
        shown = [f"{v:>10}" if v is not None else f"{'>' + str(most):>10}" for v in vals]
        nums = [v if v is not None else most + args.batch for v in vals]   # a lower bound where never reached
        spans[order] = (min(nums), max(nums), float(np.mean(nums)))
        lines.append(f"{order:<12}" + "".join(shown) + f"{np.mean(nums):>10.0f}{f'{min(nums)}-{max(nums)}':>14}")
    budgets = [b for b in (args.start + args.batch, args.start + 4 * args.batch, args.start + 9 * args.batch)
               if b <= most]
    lines.append("judge test accuracy at a budget, mean over seeds (range): "
                 + "; ".join(f"{b} labels: " + ", ".join(
                     f"{o} {np.mean(at(results, o, args.seeds, b)):.3f} ({min(at(results, o, args.seeds, b)):.3f}-"
                     f"{max(at(results, o, args.seeds, b)):.3f})" for o in args.orders) for b in budgets))
    if not {"useful", "random"} <= spans.keys():
        return lines
    u, r = spans["useful"], spans["random"]
    met = u[1] <= 0.5 * r[0]
    lines.append(f"goal (useful at most half of random, beyond the spread: worst useful {u[1]} <= half the best "
                 f"random {r[0] / 2:.0f}): {'MET' if met else 'NOT MET'}; mean ratio useful/random {u[2] / r[2]:.2f}"
                 + (" (random never reached it: a lower bound)" if None in results["needed"]["random"].values()
                    else ""))
    return lines


def at(results: dict, order: str, seeds: list[int], spent: int) -> list[float]:
    """Each seed's accuracy after `spent` labels."""
    return [dict(results["curves"][order][s])[spent] for s in seeds]


def plot_queue(results: dict, args, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    colours = {"useful": "tab:green", "confidence": "tab:orange", "random": "tab:grey"}
    for order in args.orders:
        for i, seed in enumerate(args.seeds):
            xs, ys = zip(*results["curves"][order][seed])
            ax.plot(xs, ys, color=colours[order], alpha=0.8, marker=".", label=order if i == 0 else None)
    full = np.mean(list(results["full"].values()))
    ax.axhline(args.reach * full, color="black", ls="--", lw=1,
               label=f"{args.reach:.0%} of the all-labels judge ({full:.3f})")
    ax.set_xlabel("labels spent")
    ax.set_ylabel("judge test accuracy (mean of hair, eyes)")
    ax.set_title(f"Which face to label next ({len(args.seeds)} seeds)")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


# -- [2] consensus ------------------------------------------------------------------------------

# the colour a confuser gives instead of each colour: the first of these the group has
CLOSE = {"blonde": ["orange", "yellow"], "orange": ["blonde", "yellow", "red"], "yellow": ["orange", "blonde"],
         "brown": ["black", "orange"], "black": ["brown", "grey"], "blue": ["aqua", "purple"],
         "aqua": ["blue", "green"],
         "green": ["aqua", "blue"], "pink": ["purple", "red"], "purple": ["pink", "blue"], "red": ["pink", "orange"],
         "grey": ["white", "black"], "white": ["grey", "blonde"]}


def confusers(tags: list[str]) -> np.ndarray:
    """Per class: the close colour a confuser says instead (itself where none is in the group)."""
    colours = [t.split()[0] for t in tags]
    return np.array([next((colours.index(c) for c in CLOSE.get(colour, []) if c in colours), i)
                     for i, colour in enumerate(colours)])


def annotate(truth: np.ndarray, n: int, who: str, close: np.ndarray, rng) -> np.ndarray:
    """One annotator's labels of faces with true classes `truth`."""
    out = truth.copy()
    rate = {"careful": 0.05, "noisy": 0.20, "confuser": 0.20}[who]
    hit = rng.random(len(truth)) < rate
    if who == "confuser":
        out[hit] = close[truth[hit]]
    else:
        out[hit] = (truth[hit] + rng.integers(1, n, hit.sum())) % n   # another class, uniformly
    return out


def cross_fitted(args, heads, data, labels_for_judge: list[np.ndarray], seed: int) -> list[np.ndarray]:
    """Per head, held-out probabilities of every face from a 5-fold judge trained on the given labels."""
    images = data.images
    folds = np.random.default_rng(seed).integers(0, 5, len(images))
    out = [np.zeros((len(images), len(h["tags"]))) for h in heads]
    for k in range(5):
        rows = np.flatnonzero(folds != k)
        tags = [{h["name"]: h["tags"][lab[i]] for h, lab in zip(heads, labels_for_judge) if lab[i] >= 0}
                for i in rows]
        judge = fit_judge(args.judge, heads, images[torch.from_numpy(rows)], tags, seed=seed * 100 + k)
        held = np.flatnonzero(folds == k)
        for o, p in zip(out, judge.outputs(images[torch.from_numpy(held)])[1]):
            o[held] = p
        print(f"  seed {seed}: fold {k + 1}/5 of the judge", flush=True)
    return out


def part_consensus(args, data) -> dict:
    pool, test, heads = data
    faces = pool     # the train split: the judge is cross-fitted over it
    truth = [t.numpy() for t in targets(heads, faces.tags)]
    who = ["careful", "noisy", "confuser"]
    results = {}
    for seed in args.seeds:
        rng = np.random.default_rng(seed)
        pair = np.argsort(rng.random((len(faces.face_ids), 3)), axis=1)[:, :2]   # two of three per face
        matrices, first_label = [], []
        for h, (t, head) in enumerate(zip(truth, heads)):
            n = len(head["tags"])
            close = confusers(head["tags"])
            given = np.stack([annotate(t, n, w, close, rng) for w in who], 1).astype(float)
            mask = np.zeros_like(given, bool)
            mask[np.arange(len(t))[:, None], pair] = True
            given[~mask] = np.nan
            given[t < 0] = np.nan
            matrices.append(given)
            pick = pair[np.arange(len(t)), rng.integers(0, 2, len(t))]
            first_label.append(np.where(t >= 0, given[np.arange(len(t)), pick], -1).astype(int))
        probs = cross_fitted(args, heads, faces, first_label, seed)
        per_group = {}
        for h, head in enumerate(heads):
            t, given = truth[h], matrices[h]
            keep = t >= 0
            m = LabelMatrix(head["name"], list(np.flatnonzero(keep)), who, head["tags"], given[keep])
            result = crowdlab(m, probs[h][keep] / probs[h][keep].sum(1, keepdims=True))
            per_group[head["name"]] = {
                "majority": float((majority(given[keep], rng) == t[keep]).mean()),
                "crowdlab": float((result.consensus == t[keep]).mean()),
                "model": float((probs[h][keep].argmax(1) == t[keep]).mean()),
                "alone": {w: float(np.nanmean(np.where(np.isnan(given[keep][:, j]), np.nan,
                                                       given[keep][:, j] == t[keep]))) for j, w in enumerate(who)},
                "quality": {w: float(q) for w, q in zip(who, result.annotator_quality)}}
        results[seed] = per_group
        print(f"[2] seed {seed}: " + json.dumps(per_group), flush=True)
    return results


def majority(given: np.ndarray, rng) -> np.ndarray:
    """Per face the commonest label of its annotators; a tie broken at random."""
    out = np.zeros(len(given), int)
    for i, row in enumerate(given):
        vals, counts = np.unique(row[~np.isnan(row)], return_counts=True)
        out[i] = int(rng.choice(vals[counts == counts.max()]))
    return out


def summary_consensus(results: dict, args) -> list[str]:
    groups = list(next(iter(results.values())))
    lines = ["accuracy against the original labels (mean over seeds, range); every face labelled by 2 of 3"]
    rows = [("majority vote", lambda g: g["majority"]), ("CROWDLAB consensus", lambda g: g["crowdlab"]),
            ("the model alone (cross-fitted)", lambda g: g["model"])]
    rows += [(f"{w} alone", lambda g, w=w: g["alone"][w]) for w in ("careful", "noisy", "confuser")]
    lines.append(f"{'':<32}" + "".join(f"{g:>26}" for g in groups))
    for name, get in rows:
        cells = []
        for g in groups:
            vals = [get(results[s][g]) for s in args.seeds]
            cells.append(f"{np.mean(vals):.3f} ({min(vals):.3f}-{max(vals):.3f})")
        lines.append(f"{name:<32}" + "".join(f"{c:>26}" for c in cells))
    for g in groups:
        order = [sorted(results[s][g]["quality"], key=results[s][g]["quality"].get, reverse=True) for s in args.seeds]
        last = sum(o[-1] == "noisy" for o in order)
        worst_c = min(results[s][g]["crowdlab"] for s in args.seeds)
        best_m = max(results[s][g]["majority"] for s in args.seeds)
        lines.append(f"{g}: CROWDLAB's annotator ranking {' > '.join(order[0])} (seed {args.seeds[0]}); noisy last "
                     f"in {last}/{len(order)} seeds; goal (worst consensus {worst_c:.3f} > best majority "
                     f"{best_m:.3f}): {'MET' if worst_c > best_m else 'NOT MET'}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("both", "queue", "consensus"), default="both")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--start", type=int, default=300)
    ap.add_argument("--batch", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--reach", type=float, default=0.95)
    ap.add_argument("--size", type=int, default=24)
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--steps", type=int, default=700, help="[1]: judge steps per round, whatever the labels "
                    "(700 = 6.3 epochs of the whole pool); 0: --epochs epochs of what is labelled")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--orders", default=",".join(ORDERS), help="[1]: the orders to simulate")
    ap.add_argument("--from-log", type=Path, nargs="+", help="[1]: print the summary and plot again from the "
                    "output of earlier runs (their per-round lines), training nothing")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    if args.quick:
        args.seeds, args.rounds, args.epochs, args.size, args.steps = "0", 2, 1, 16, 20
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.orders = [o for o in args.orders.split(",") if o]
    if args.from_log:
        results, args.seeds = from_logs(args.from_log)
        longest = max(len(c) for o in ORDERS for c in results["curves"][o].values())
        args.orders = [o for o in ORDERS if all(len(results["curves"][o].get(s, ())) == longest for s in args.seeds)]
        args.rounds = longest - 1
        for order in args.orders:
            for seed in args.seeds:
                results["needed"][order][seed] = labels_to_reach(results["curves"][order][seed],
                                                                 args.reach * results["full"][seed])
        plot_queue(results, args, args.out)
        print("\n".join(["[1] the next face"] + summary_queue(results, args) + [f"plot: {args.out}"]))
        return
    args.judge = JudgeOptions(size=args.size, width=args.width, epochs=args.epochs)
    torch.set_num_threads(args.threads)
    started = time.time()
    data = load(args.size)
    print(f"{len(data[0].face_ids)} train faces (the pool), {len(data[1].face_ids)} test faces; judge "
          f"{args.size} px, width {args.width}, {args.epochs} epochs; seeds {args.seeds}", flush=True)
    report = []
    if args.part in ("both", "queue"):
        q = part_queue(args, data)
        plot_queue(q, args, args.out)
        report += ["[1] the next face"] + summary_queue(q, args) + [f"plot: {args.out}"]
    if args.part in ("both", "consensus"):
        c = part_consensus(args, data)
        report += ["[2] consensus of simulated annotators"] + summary_consensus(c, args)
    print("\n".join(report + [f"{time.time() - started:.0f} s"]))


if __name__ == "__main__":
    main()
