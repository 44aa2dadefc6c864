"""Label quality on ../shared's 7,971 labelled faces: can the suspects machinery find wrong labels?

    python benchmarks/label_quality.py            # ~15 min on one core (three cross-fitted judges)
    python benchmarks/label_quality.py --quick    # 2 folds x 1 epoch at 16 px: checks the script runs
    python benchmarks/label_quality.py --size 48  # another judge tagger (--size, --width, --epochs)

Side by side, in one run, on copies of the shared catalog (benchmarks/shared_catalog.py):
1. The judge tagger (`curate tag --tagger judge`, 5-fold cross-fitted) on the real manual labels:
   held-out accuracy on the test split against animeface's colours and the old judge (trained on
   the train split only). The top 48 suspects of the real labels go on a sheet
   (docs/suspects_manual.png) for a person to look at.
2. Injected noise: 10% of the manual hair and of the eye labels flipped (seeded), (a) uniformly to
   another tag, (b) to the tag most confused with it (the clean judge's most frequent confusion).
   Precision and recall of the flipped faces among the top k suspects (k = number flipped), for the
   judge and for a 5-fold logistic regression on colour histograms, both through the same
   confident learning (curate/quality/suspects.py). Goal: recall >= 0.75 for uniform flips. The judge's top-k
   faces that were not flipped are checked against the real labels' own top k suspects: how many
   of its "false" suspects it doubted before any flip (the shared labels' own errors, mostly).
3. Labelling effort (uniform flips): a simulated labeller walks the app's own queue
   (label_app.session.LabelSession) and fixes every flipped face it meets; errors fixed after
   reviewing 5%, 10%, 20% of the faces, "likely label errors first" vs "random" vs "unlabelled
   first". Goal: >= 7x random at 10%.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.shared_catalog import labelled_catalog  # noqa: E402
from curate.taggers.judge import JudgeTaggerOptions, cross_fit  # noqa: E402
from db import Catalog  # noqa: E402
from db import labelling as q  # noqa: E402
from curate.quality.suspects import find_suspects  # noqa: E402

GROUPS = ("hair_color", "eye_color")
FRACTION = 0.10
BUDGETS = (0.05, 0.10, 0.20)


def copy_catalog(src: Path, dst: Path) -> Path:
    """A consistent copy (WAL included) without opening the source through Catalog, which would migrate it."""
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    return dst


def given_labels(cat: Catalog, group: str) -> dict[int, str]:
    return {f: v[group][0] for f, v in cat.labelled_faces("manual", split=None, groups=[group]).items() if group in v}


def inject(cat: Catalog, mode: str, confusable: dict[str, dict[str, str]], seed: int) -> dict[str, dict]:
    """Flip FRACTION of each group's manual labels (new events by annotator 'noise'); group -> face -> truth."""
    flipped = {}
    for k, group in enumerate(GROUPS):
        given = given_labels(cat, group)
        tags = sorted(set(given.values()))
        rng = np.random.default_rng(seed + k)
        faces = sorted(given)
        chosen = rng.choice(faces, int(round(FRACTION * len(faces))), replace=False)
        rows = []
        for f in sorted(int(x) for x in chosen):
            truth = given[f]
            new = rng.choice([t for t in tags if t != truth]) if mode == "uniform" else confusable[group][truth]
            rows.append((f, str(new), 1.0))
        cat.add_labels(rows, "manual", f"noise-{mode}")
        flipped[group] = {f: given[f] for f, _, _ in rows}
    return flipped


def colour_lr(cat: Catalog, seed: int = 0) -> None:
    """The baseline: a 5-fold logistic regression on 8x8x8 RGB histograms, stored as source colour-lr
    with held-out distributions, so the same confident learning ranks it."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from curate.taggers.classifier import decode_face
    ids = cat.face_ids()
    feats = []
    for f in ids:
        px = decode_face(cat.face_image(f), 32).reshape(-1, 3) // 32
        feats.append(np.sqrt(np.bincount(px[:, 0] * 64 + px[:, 1] * 8 + px[:, 2], minlength=512) / len(px)))
    feats = np.array(feats)
    labels, dists = [], []
    for group in GROUPS:
        given = given_labels(cat, group)
        rows = [i for i, f in enumerate(ids) if f in given]
        y = np.array([given[ids[i]] for i in rows])
        p = cross_val_predict(LogisticRegression(max_iter=1000), feats[rows], y, method="predict_proba",
                              cv=StratifiedKFold(5, shuffle=True, random_state=seed))
        tags = sorted(set(y))
        for i, row in zip(rows, p):
            labels.append((ids[i], tags[int(row.argmax())], float(row.max())))
            dists.append((ids[i], group, dict(zip(tags, map(float, row))), True))
    cat.save_learned_labels("colour-lr", "colour-lr-5fold", {"learned_from": "manual"}, labels, dists)


def ranked_suspects(cat: Catalog, judge: str = "judge") -> dict[str, list[int]]:
    """Group -> the manual labels' suspects by `judge`'s probabilities, most suspicious first."""
    return {g: [s.face_id for s in find_suspects(cat, "manual", g, judge, compare=[])] for g in GROUPS}


def top_k(ranked: dict[str, list[int]], flipped: dict[str, dict]) -> dict[str, tuple[float, float, int]]:
    """Group -> (precision, recall, k) of the flipped faces among the top k suspects."""
    out = {}
    for group, truth in flipped.items():
        k = len(truth)
        hits = len(set(ranked[group][:k]) & set(truth))
        out[group] = (hits / max(1, min(k, len(ranked[group]))), hits / k, k)
    return out


def already_suspects(ranked: dict[str, list[int]], before: dict[str, list[int]], flipped: dict[str, dict]
                     ) -> dict[str, tuple[int, int]]:
    """Group -> (top-k suspects that were not flipped, how many of them the real labels' own top k
    suspects (`before`) held already): "false" suspects that are the shared labels' own errors."""
    out = {}
    for group, truth in flipped.items():
        k = len(truth)
        others = [f for f in ranked[group][:k] if f not in truth]
        out[group] = (len(others), len(set(others) & set(before[group][:k])))
    return out


def walk(path: Path, order: str, flipped: dict[str, dict]) -> dict[str, list[int]]:
    """A labeller reviewing the app's queue in order, fixing flipped faces; group -> fixed at each budget."""
    from label_app.session import LabelSession
    out = {}
    with Catalog(path) as cat:
        total = len(cat.face_ids())
        for group in GROUPS:
            spec = q.QueueSpec(order=order, group=group, source="judge" if order == "suspects" else None)
            lab = LabelSession(cat, "reviewer", spec)
            budgets, fixed, reviewed, counts = [int(total * b) for b in BUDGETS], 0, 0, []
            while lab.current is not None and reviewed < budgets[-1]:
                f, truth = lab.current, flipped[group].get(lab.current)
                if truth is not None:
                    likely = lab.review(f) or {}
                    if likely.get("likely") == truth:
                        lab.accept_likely()
                    else:
                        lab.press_tag(truth, auto_advance=False)
                        lab.skip()
                    fixed += 1
                elif order == "suspects":
                    lab.keep_given()
                else:
                    lab.skip()
                reviewed += 1
                if reviewed in budgets:
                    counts.append(fixed)
            now = given_labels(cat, group)
            assert sum(now[f] == t for f, t in flipped[group].items()) >= fixed   # the fixes are in the catalog
            out[group] = counts
    return out


def held_out_accuracy(cat: Catalog, source: str, split: str | None) -> dict[str, tuple[float, int]]:
    truth = cat.labelled_faces("manual", split=split)
    got = cat.labelled_faces(source, split=split)
    out = {}
    for group in GROUPS:
        faces = [f for f in truth if group in truth[f]]
        hits = sum(1 for f in faces if got.get(f, {}).get(group, (None,))[0] == truth[f][group][0])
        out[group] = (hits / len(faces), sum(1 for f in faces if group in got.get(f, {})))
    return out


def confusions(cat: Catalog) -> dict[str, dict[str, str]]:
    """Group -> tag -> the tag the clean judge most often puts on faces labelled with it."""
    out = {}
    for group in GROUPS:
        given, said = given_labels(cat, group), {f: v[group][0] for f, v in
                                                 cat.labelled_faces("judge", split=None).items() if group in v}
        counts: dict[str, dict[str, int]] = {}
        for f, t in given.items():
            if f in said and said[f] != t:
                counts.setdefault(t, {}).setdefault(said[f], 0)
                counts[t][said[f]] += 1
        tags = sorted(set(given.values()))
        out[group] = {t: max(counts[t], key=counts[t].get) if t in counts else
                      next(x for x in tags if x != t) for t in tags}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", type=Path, help="the labelled catalog (default: built by benchmarks/shared_catalog.py)")
    ap.add_argument("--quick", action="store_true", help="2 folds x 1 epoch at 16 px: only checks that it runs")
    ap.add_argument("--sheet", type=Path, default=ROOT / "docs" / "suspects_manual.png")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=int, help=f"the judge tagger's image size [{JudgeTaggerOptions.size}]")
    ap.add_argument("--width", type=int, help=f"the judge tagger's width [{JudgeTaggerOptions.width}]")
    ap.add_argument("--epochs", type=int, help=f"the judge tagger's epochs [{JudgeTaggerOptions.epochs}]")
    args = ap.parse_args()
    chosen = {k: v for k, v in dict(size=args.size, width=args.width, epochs=args.epochs).items() if v is not None}
    opts = JudgeTaggerOptions(seed=args.seed, **(dict(folds=2, epochs=1, size=16) if args.quick else chosen))
    work = Path(tempfile.mkdtemp(prefix="label_quality_"))
    src = labelled_catalog(args.db)
    started = time.time()
    print(f"judge tagger: {opts.folds} folds x {opts.epochs} epochs at {opts.size} px, width {opts.width}; "
          f"copies in {work}", flush=True)

    # 1. the real labels
    clean = copy_catalog(src, work / "clean.db")
    with Catalog(clean) as cat:
        t = time.time()
        summary = cross_fit(cat, opts)
        print(f"\n[1] judge tagger on the real manual labels: {summary.labelled} faces in {time.time() - t:.0f} s; "
              f"held-out accuracy (all faces): " + ", ".join(f"{g} {a:.1%}" for g, a in summary.accuracy.items()))
        from curate.taggers.tagging import AnimefaceTagger, TagOptions, tag_catalog
        t = time.time()
        tagged = tag_catalog(cat, AnimefaceTagger(), TagOptions())
        print(f"animeface: {tagged.faces} faces in {time.time() - t:.0f} s, {tagged.other_way} read as whole crops "
              f"(no face found), {tagged.faces - tagged.labelled} without labels")
        from curate.taggers.classifier import JudgeOptions, train_judge
        t = time.time()
        old = train_judge(cat, JudgeOptions(source="manual", seed=args.seed, **(
            dict(epochs=1, size=16) if args.quick else {})), log=lambda *a: None)
        print(f"old judge (train split, best epoch on val): {time.time() - t:.0f} s")
        rows = [("judge tagger (cross-fitted)", held_out_accuracy(cat, "judge", "test")),
                ("old judge (train split)", {g: (old.scores["test"][g]["accuracy"], old.scores["test"][g]["n"])
                                             for g in GROUPS}),
                ("animeface colours", held_out_accuracy(cat, "animeface", "test"))]
        print(f"\nheld-out accuracy against the manual labels, test split ({old.scores['faces']['test']} faces)")
        print(f"{'':30s} {'hair':>8s} {'eyes':>8s}  faces labelled")
        for name, acc in rows:
            print(f"{name:30s} {acc['hair_color'][0]:8.1%} {acc['eye_color'][0]:8.1%}  {acc['hair_color'][1]}")
        whole = [r["face_id"] for r in cat.current_labels("animeface") if r["annotator"].endswith("(whole crop)")]
        acc = {g: held_out_accuracy(cat, "animeface", None)[g] for g in GROUPS}
        truth = cat.labelled_faces("manual", split=None)
        got = cat.labelled_faces("animeface", split=None)
        w = sorted(set(whole))
        wacc = {g: np.mean([got[f][g][0] == truth[f][g][0] for f in w]) if w else float("nan") for g in GROUPS}
        print(f"animeface, all {len(truth)} faces: hair {acc['hair_color'][0]:.1%}, eyes {acc['eye_color'][0]:.1%}; "
              f"the {len(w)} read as whole crops: hair {wacc['hair_color']:.1%}, eyes {wacc['eye_color']:.1%}")
        suspects = find_suspects(cat, "manual")
        from curate.commands.quality import write_sheet
        args.sheet.parent.mkdir(parents=True, exist_ok=True)
        write_sheet(cat, suspects[:48], args.sheet)
        print(f"{len(suspects)} suspects among the real labels; the top 48 -> {args.sheet}")
        for s in suspects[:48]:
            print(f"  #{s.face_id} {s.group}: {s.given} -> {s.likely} {s.p_likely:.2f}  {'; '.join(s.reasons)}")
        confusable = confusions(cat)
        before = ranked_suspects(cat)

    # 2. injected noise, judge vs colour histograms, through the same confident learning
    noisy = {}
    for mode in ("uniform", "confusable"):
        path = copy_catalog(src, work / f"{mode}.db")
        with Catalog(path) as cat:
            flipped = inject(cat, mode, confusable, args.seed)
            t = time.time()
            s = cross_fit(cat, opts)
            judge_s = time.time() - t
            t = time.time()
            colour_lr(cat, args.seed)
            lr_s = time.time() - t
            print(f"\n[2] {mode} flips: {', '.join(f'{g} {len(f)}' for g, f in flipped.items())} faces; judge "
                  f"{judge_s:.0f} s (held-out accuracy vs the noisy labels: "
                  f"{', '.join(f'{g} {a:.1%}' for g, a in s.accuracy.items())}), colour-histogram LR {lr_s:.0f} s")
            print(f"{'top-k suspects':30s} {'group':10s} {'k':>5s} {'precision':>10s} {'recall':>8s}")
            ranked = {judge: ranked_suspects(cat, judge) for judge in ("judge", "colour-lr")}
            for name, judge in (("judge (cross-fitted CNN)", "judge"), ("colour histograms + LR", "colour-lr")):
                res = top_k(ranked[judge], flipped)
                for g, (p, r, k) in res.items():
                    print(f"{name:30s} {g:10s} {k:5d} {p:10.3f} {r:8.3f}")
                k = sum(v[2] for v in res.values())
                print(f"{name:30s} {'both':10s} {k:5d} {'':10s} {sum(v[1] * v[2] for v in res.values()) / k:8.3f}")
            for g, (n, known) in already_suspects(ranked["judge"], before, flipped).items():
                print(f"judge's top-k in {g} not flipped: {n}, of which {known} were among the real labels' own "
                      f"top {len(flipped[g])} suspects (doubted before the flips)")
        noisy[mode] = (path, flipped)

    # 3. labelling effort on the uniform flips
    path, flipped = noisy["uniform"]
    print(f"\n[3] errors fixed by a labeller walking the app's queue (uniform flips, "
          f"{sum(len(f) for f in flipped.values())} errors in {len(GROUPS)} groups)")
    print(f"{'queue order':32s} " + " ".join(f"{f'{b:.0%} reviewed':>14s}" for b in BUDGETS))
    results = {}
    for order, name in (("suspects", "likely label errors first"), ("random", "random"),
                        ("unlabelled", "unlabelled first")):
        copy = copy_catalog(path, work / f"walk-{order}.db")
        fixed = walk(copy, order, flipped)
        results[order] = [sum(v[i] for v in fixed.values()) for i in range(len(BUDGETS))]
        total = sum(len(f) for f in flipped.values())
        print(f"{name:32s} " + " ".join(f"{n:6d} ({n / total:5.1%})" for n in results[order]))
    ratio = results["suspects"][1] / max(1, results["random"][1])
    print(f"at 10% reviewed: likely label errors first fixes {ratio:.1f}x as many as random (goal >= 7x)")
    print(f"\ntotal {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
