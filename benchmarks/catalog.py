"""Benchmark of the catalog at 100,000 faces: ingest rate and the queries training and `curate` run.

    python benchmarks/catalog.py [--faces 100000] [--batch 256] [--keep catalog.db]

1. Ingest N synthetic crops (24x24 noise PNGs, ~1.8 KB each, distinct) with the calls
   `curate crop` / `curate import` make -- `save_source` + `add_face`, one transaction per
   batch -- and time only those calls (making the PNGs is not counted). Goal >= 500 faces/s.
2. Add labels as the label import and the taggers do: source `manual` (hair + eye colour
   for every face) and `i2v` (hair + eye colour with probabilities, plus 3 independent tags).
3. Time the queries (best of 3): `assign_splits` over every face, `stats()`, and
   `labelled_faces(S, "train", groups=[hair_color, eye_color])` for both sources, as
   `train cgan|acgan` calls it. Goal < 0.5 s each. Bulk reads of every label
   (`current_labels(S)`, for label export/import) are shown too, without a goal.
   Beside each, where it applies, the same answer computed naively from the append-only
   events (newest event per key found by GROUP BY over every event; crops summed by
   reading them all), with the ratio naive / catalog: what the triggers-kept tables buy.

Other jobs on the machine skew timings: run when `uptime` shows the lowest load you can get.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from db import Catalog  # noqa: E402
from db.vocabulary import EYE_COLORS, HAIR_COLORS  # noqa: E402

INGEST_GOAL = 500      # faces/s
QUERY_GOAL_S = 0.5
GROUPS = ["hair_color", "eye_color"]


def synthetic_png(rng: np.random.Generator, size: int = 24) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def ingest(cat: Catalog, n: int, batch: int, make_png=None, size: int = 24) -> tuple[float, int]:
    """Seconds spent in catalog calls, and total blob bytes. `make_png(i)` gives face i's crop
    (default: 24x24 noise)."""
    rng = np.random.default_rng(0)
    make_png = make_png or (lambda i: synthetic_png(rng))
    spent, nbytes = 0.0, 0
    for start in range(0, n, batch):
        blobs = [make_png(i) for i in range(start, min(start + batch, n))]
        nbytes += sum(map(len, blobs))
        t = time.perf_counter()
        with cat.transaction():
            for i, blob in enumerate(blobs, start=start):
                sid = cat.save_source(f"/bench/raw/{i // 1000:03d}/{i}.jpg", sha256=f"{i:064x}", size=len(blob),
                                      width=size, height=size, status="ok", detector="none")
                cat.add_face(source_id=sid, image=blob, format="png", width=size, height=size, box_x=0, box_y=0,
                             box_w=size, box_h=size, detector="none", phash=i, blur=100.0, monochrome=20.0)
        spent += time.perf_counter() - t
        if (start // batch) % (40 if n <= 100_000 else 400) == 0:
            print(f"  ingested {start + len(blobs):>9,} faces, {(start + len(blobs)) / spent:,.0f} faces/s",
                  flush=True)
    return spent, nbytes


def add_labels(cat: Catalog, n: int, chunk: int = 100_000, manual_share: float = 1.0) -> float:
    """manual: hair + eye colour on every face (or on `manual_share` of them); i2v: both with
    probabilities plus 3 independent tags. Written `chunk` faces at a time, so a million faces'
    events never sit in memory at once."""
    rng = np.random.default_rng(1)
    t = time.perf_counter()
    all_ids = cat.face_ids(status=None)
    for start in range(0, len(all_ids), chunk):
        ids = all_ids[start:start + chunk]
        hair = rng.integers(0, len(HAIR_COLORS), len(ids))
        eyes = rng.integers(0, len(EYE_COLORS), len(ids))
        people = np.ones(len(ids), bool) if manual_share >= 1 else rng.random(len(ids)) < manual_share
        manual = [(f, HAIR_COLORS[h], 1.0) for f, h, p in zip(ids, hair, people) if p] + \
                 [(f, EYE_COLORS[e], 1.0) for f, e, p in zip(ids, eyes, people) if p]
        cat.add_labels(manual, "manual", "bench")
        probs = rng.random((len(ids), 5)).round(3)
        i2v = []
        for k, f in enumerate(ids):
            i2v += [(f, HAIR_COLORS[(hair[k] + (probs[k, 0] < 0.3)) % len(HAIR_COLORS)], float(probs[k, 0])),
                    (f, EYE_COLORS[eyes[k]], float(probs[k, 1])),
                    (f, "long hair", float(probs[k, 2])), (f, "smile", float(probs[k, 3])),
                    (f, "blush", float(probs[k, 4]))]
        cat.add_labels(i2v, "i2v")
        if len(all_ids) > chunk:
            print(f"  labelled {start + len(ids):>9,} faces, {time.perf_counter() - t:.0f} s", flush=True)
    return time.perf_counter() - t


# -- the naive way, for the side-by-side ratios ----------------------------------

NAIVE_CURRENT = ("SELECT e.face_id, e.key, e.tag, e.value, e.annotator, e.created_at FROM label_events e "
               "JOIN (SELECT max(id) AS id FROM label_events WHERE source = ? GROUP BY face_id, key) m "
               "ON m.id = e.id WHERE e.tag IS NOT NULL")


def naive_current_labels(cat: Catalog, source: str) -> list[dict]:
    return cat.query(NAIVE_CURRENT, [source])


def naive_label_sources(cat: Catalog) -> list[dict]:
    return cat.query("SELECT source, count(*) AS events, count(DISTINCT face_id) AS faces, "
                     "group_concat(DISTINCT annotator) AS annotators FROM label_events GROUP BY source ORDER BY source")


def naive_labelled_faces(cat: Catalog, source: str, split: str, min_prob=None, common=(), groups=None) -> dict:
    naive_label_sources(cat)  # the known-source check read every event
    keys = None if groups is None else set(groups)      # hair_color, eye_color: exclusive, key = group
    in_split = set(cat.face_ids("ok", split))
    for s in common:
        in_split &= {r["face_id"] for r in naive_current_labels(cat, s) if keys is None or r["key"] in keys}
    out: dict = {}
    for r in naive_current_labels(cat, source):
        if r["face_id"] in in_split and (min_prob is None or (r["value"] is not None and r["value"] >= min_prob)) \
                and (keys is None or r["key"] in keys):
            out.setdefault(r["face_id"], {})[r["key"]] = (r["tag"], r["value"])
    return out


def naive_stats_extra(cat: Catalog) -> None:
    """The parts of stats() the kept tables answer: tag counts, crop bytes, label sources."""
    naive_label_sources(cat)
    cat.query("SELECT e.source, e.tag, count(*) AS n FROM label_events e JOIN "
              "(SELECT max(id) AS id FROM label_events GROUP BY source, face_id, key) m ON m.id = e.id "
              "WHERE e.tag IS NOT NULL AND (e.value IS NULL OR e.value >= 0.5) GROUP BY e.source, e.tag")
    cat.conn.execute("SELECT coalesce(sum(length(image)), 0) FROM face_images").fetchone()


def stats_rest(cat: Catalog) -> None:
    """The parts of stats() both ways share (added to the naive figure)."""
    cat.conn.execute("SELECT status, count(*) FROM sources GROUP BY status").fetchall()
    cat.conn.execute("SELECT status, count(*) FROM faces GROUP BY status").fetchall()
    cat.split_counts()


def best_of(fn, repeat: int = 3) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def timed_queries(cat: Catalog, naive: bool = True, bulk_repeat: int = 3) -> list[tuple]:
    """(name, seconds, result, naive function or None) of every query, the splits first (on a
    catalog without splits). With `naive`, the catalog's answers are checked against it too.
    The bulk reads are timed best of `bulk_repeat` (at a million faces one answer takes GBs)."""
    t_first = time.perf_counter()
    counts = cat.assign_splits(0.05, 0.05, seed=0)
    t_first = time.perf_counter() - t_first
    if naive:
        same = lambda a, b: sorted(a, key=str) == sorted(b, key=str)  # noqa: E731
        assert same(cat.current_labels("i2v"), naive_current_labels(cat, "i2v"))
        assert cat.labelled_faces("i2v", "train", min_prob=0.5) == naive_labelled_faces(cat, "i2v", "train", 0.5)
        assert cat.labelled_faces("i2v", "train", common=["manual"], groups=GROUPS) == \
            naive_labelled_faces(cat, "i2v", "train", common=["manual"], groups=GROUPS)
    maybe = (lambda fn: fn) if naive else (lambda fn: None)
    return [  # (name, seconds, result, naive function or None)
        ("split (first: every face)", t_first, counts, None),
        ("split --reassign (other seed)",
         *best_of(lambda: cat.assign_splits(0.05, 0.05, seed=1, reassign=True), 1), None),
        ("split --reassign (same seed)",
         *best_of(lambda: cat.assign_splits(0.05, 0.05, seed=1, reassign=True)), None),
        ("split (nothing new)", *best_of(lambda: cat.assign_splits(0.05, 0.05, seed=0)), None),
        ("split --stratify manual --reassign",
         *best_of(lambda: cat.assign_splits(0.05, 0.05, seed=0, stratify="manual", reassign=True), 1), None),
        ("stats()", *best_of(cat.stats), maybe(lambda: (naive_stats_extra(cat), stats_rest(cat)))),
        ("label_sources()", *best_of(cat.label_sources), maybe(lambda: naive_label_sources(cat))),
        # what `train cgan|acgan --labels S --attrs hair_color,eye_color` asks
        ("labelled_faces('manual', 'train', GROUPS)", *best_of(lambda: cat.labelled_faces(
            "manual", "train", groups=GROUPS)),
         maybe(lambda: naive_labelled_faces(cat, "manual", "train", groups=GROUPS))),
        ("labelled_faces('i2v', 'train', GROUPS, min_prob=0.5)", *best_of(lambda: cat.labelled_faces(
            "i2v", "train", min_prob=0.5, groups=GROUPS)),
         maybe(lambda: naive_labelled_faces(cat, "i2v", "train", 0.5, groups=GROUPS))),
        ("labelled_faces('i2v', 'train', GROUPS, common=['manual'])", *best_of(lambda: cat.labelled_faces(
            "i2v", "train", common=["manual"], groups=GROUPS)),
         maybe(lambda: naive_labelled_faces(cat, "i2v", "train", common=["manual"], groups=GROUPS))),
        # bulk reads of every label (curate labels export/import, export --format csv): no goal
        ("  labelled_faces('i2v', 'train'), every tag", *best_of(lambda: cat.labelled_faces("i2v", "train"),
                                                                 bulk_repeat),
         maybe(lambda: naive_labelled_faces(cat, "i2v", "train"))),
        ("  current_labels('manual')", *best_of(lambda: cat.current_labels("manual"), bulk_repeat),
         maybe(lambda: naive_current_labels(cat, "manual"))),
        ("  current_labels('i2v')", *best_of(lambda: cat.current_labels("i2v"), bulk_repeat),
         maybe(lambda: naive_current_labels(cat, "i2v"))),
    ]


def print_queries(queries: list[tuple], goal_s: float, title: str) -> tuple[int, int]:
    """The table of `timed_queries`; returns (queries over the goal, queries with a goal)."""
    print(f"\n{'query (' + title + ')':<58} {'s':>7} {'goal':>5} {'naive s':>7} {'ratio':>7}  result")
    missed = 0
    for name, seconds, out, naive in queries:
        if isinstance(out, dict) and "faces" in out:
            size = f"{sum(out['faces'].values()):,} faces"
        elif isinstance(out, (list, dict)) and "split" not in name:
            size = f"{len(out):,} rows"
        else:
            size = out
        naive_s = best_of(naive, 1)[0] if naive else None
        bulk = name.startswith("  ")
        missed += seconds >= goal_s and not bulk
        goal = "-" if bulk else "ok" if seconds < goal_s else "MISS"
        naive_txt = ("", "") if naive_s is None else (f"{naive_s:.3f}", f"{naive_s / seconds:.1f}x")
        print(f"{name:<58} {seconds:>7.3f} {goal:>5} {naive_txt[0]:>7} {naive_txt[1]:>7}  {size}", flush=True)
    return missed, sum(not q[0].startswith("  ") for q in queries)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=256, help="faces per write transaction")
    ap.add_argument("--keep", type=Path, help="write the catalog here (default: a temp file, deleted)")
    args = ap.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="bench_catalog_")
    path = args.keep or Path(tmp.name) / "bench.db"
    if path.exists():
        sys.exit(f"{path} exists; give a new file")
    print(f"catalog: {path}; {args.faces:,} faces, {args.batch} per transaction; load: {os.getloadavg()[0]:.2f}")
    with Catalog(path) as cat:
        spent, nbytes = ingest(cat, args.faces, args.batch)
        rate = args.faces / spent
        print(f"ingest: {args.faces:,} faces ({nbytes / args.faces:,.0f} B each) in {spent:.1f} s = "
              f"{rate:,.0f} faces/s  (goal >= {INGEST_GOAL}: {'ok' if rate >= INGEST_GOAL else 'MISSED'})")
        t_labels = add_labels(cat, args.faces)
        events = cat.conn.execute("SELECT count(*) FROM label_events").fetchone()[0]
        print(f"labels: {events:,} events (manual: 2/face, i2v: 5/face) in {t_labels:.1f} s = "
              f"{events / t_labels:,.0f} events/s")
        print(f"catalog file: {os.path.getsize(path) / 1e6:,.0f} MB")

        missed, goals = print_queries(timed_queries(cat), QUERY_GOAL_S, "100k = --faces")
        print(f"\n{goals - missed}/{goals} queries with a goal under {QUERY_GOAL_S} s (indented: bulk reads, "
              f"no goal); load average now {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    tmp.cleanup()


if __name__ == "__main__":
    main()
