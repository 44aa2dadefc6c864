"""A million faces on one machine: the catalog, the app, the CLI and training at 1,000,000 faces.

    python benchmarks/scale.py [--faces 1000000] [--small 10000] [--dir /tmp/scale_bench]
                               [--stages build,queries,app,cli,cache,train] [--keep]

Stages (each reuses what the earlier ones left in --dir, so one can be rerun alone):

build    a synthetic catalog of --faces faces (and one of --small faces): 24x24 PNG crops made
         from 300 smooth templates, each with its index written into its first pixels so every
         crop's bytes and hash differ; ingested with the calls `curate crop` makes (save_source +
         add_face, 256 per transaction, timed: the ingest rate); labels as benchmarks/catalog.py
         makes them (i2v: 5 per face), but manual hair + eye colour on 30% of the faces only, as
         benchmarks/label_app.py's, so the app has unlabelled faces to queue.
queries  every query of benchmarks/catalog.py (splits, stats, label sources, the training
         queries). Goal: under 1 s (the 100k goal x 2); bulk reads whose answer grows with the
         catalog (indented) have none.
app      the labelling app's own functions (benchmarks/label_app.py [1]): queue builds, one
         action, a grid page. Goals: one action p95 < 300 ms, a grid page < 2 s (100k goals x 2).
cli      `curate stats`, `curate split` (nothing new), `curate export --format webdataset` of
         every face, as commands (a process each, start-up included).
cache    building the training cache (train/face_cache.py) of the train split at 64x64: on
         --cache-sample faces with 1 and with 2 workers, alternately, twice (goal: 2 workers >=
         1.8x one); then the whole train split with 2 workers, for the next stage.
train    `train dcgan --size 64 --iters 50` on the --small catalog and on the big one, each in
         a process of its own with its cache built: peak RSS (ru_maxrss of that process) and the
         time to the first step (launch -> metrics.csv's first row). Goal: RSS at 1M within 1.2x
         of RSS at --small.

The crops are not pictures of faces: speed and memory do not depend on what they show. The
source pictures do not exist on disk (the app's context picture is then the "missing"
caption: its drawing does not depend on the catalog's size; benchmarks/label_app.py times it).
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from db import Catalog  # noqa: E402


def benchmark(name: str):
    """benchmarks/NAME.py as a module (`label_app` is also the name of the app's package)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


catalog_bench = benchmark("catalog")

QUERY_GOAL_S, ACTION_GOAL_MS, GRID_GOAL_MS = 1.0, 300.0, 2000.0
RSS_GOAL, CACHE_GOAL = 1.2, 1.8
MANUAL_SHARE = 0.3           # faces with manual labels (the app's queue of unlabelled faces is the rest)
SIZE = 24                    # the synthetic crops' side
TEMPLATES = 300


def templates(n: int = TEMPLATES) -> list[np.ndarray]:
    """Smooth 24x24 pictures (they compress like real crops, ~1 KB as PNG)."""
    rng = np.random.default_rng(0)
    return [np.asarray(Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).resize(
        (SIZE, SIZE), Image.BICUBIC)) for _ in range(n)]


def face_png(bank: list[np.ndarray], i: int) -> bytes:
    """Face i: a template with i's bytes in its first pixels, so no two crops are the same."""
    pixels = bank[i % len(bank)].copy()
    pixels[0, :3] = np.frombuffer(i.to_bytes(9, "big"), dtype=np.uint8).reshape(3, 3)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def build(path: Path, n: int) -> None:
    if path.exists():
        with Catalog(path) as cat:
            have = cat.conn.execute("SELECT count(*) FROM faces").fetchone()[0]
        if have == n:
            print(f"{path}: {n:,} faces, built before")
            return
        sys.exit(f"{path} has {have:,} faces, not {n:,}: delete it")
    print(f"building {path}: {n:,} faces; load {os.getloadavg()[0]:.2f}", flush=True)
    bank = templates()
    started = time.perf_counter()
    tmp = path.with_suffix(".building")
    for old in tmp.parent.glob(tmp.name + "*"):
        old.unlink()
    with Catalog(tmp) as cat:
        spent, nbytes = catalog_bench.ingest(cat, n, 256, lambda i: face_png(bank, i), size=SIZE)
        print(f"ingest: {n:,} faces ({nbytes / n:,.0f} B each) in {spent:.1f} s of catalog calls = "
              f"{n / spent:,.0f} faces/s", flush=True)
        t_labels = catalog_bench.add_labels(cat, n, manual_share=MANUAL_SHARE)
        events = cat.conn.execute("SELECT count(*) FROM label_events").fetchone()[0]
        print(f"labels: {events:,} events in {t_labels:.1f} s = {events / t_labels:,.0f} events/s", flush=True)
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{tmp}{suffix}").exists():
            os.replace(f"{tmp}{suffix}", f"{path}{suffix}")
    print(f"built in {time.perf_counter() - started:.0f} s: {path.stat().st_size / 1e9:.2f} GB", flush=True)


def queries(path: Path) -> None:
    """catalog.py's queries; the splits reassigned leave the catalog as it was (seed 0)."""
    with Catalog(path) as cat:
        cat.conn.execute("DELETE FROM face_splits")     # catalog.py's first split starts from none
        n = cat.conn.execute("SELECT count(*) FROM faces").fetchone()[0]
        missed, goals = catalog_bench.print_queries(catalog_bench.timed_queries(cat, naive=False), QUERY_GOAL_S,
                                                    f"{n:,} faces")
        cat.assign_splits(0.05, 0.05, seed=0, reassign=True)
    print(f"{goals - missed}/{goals} queries with a goal under {QUERY_GOAL_S} s; load {os.getloadavg()[0]:.2f}")


def app(path: Path, actions: int) -> None:
    benchmark("label_app").bench_functions(path, actions, ACTION_GOAL_MS, GRID_GOAL_MS)


PROBE = """
import resource, subprocess, sys, time
t = time.perf_counter()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
"""


def run_timed(args: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of a command, in a probe process of its own (its only child)."""
    out = subprocess.run([sys.executable, "-c", PROBE, *args], check=True, capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout.split()
    return float(out[0]), float(out[1])


def cli(path: Path, work: Path) -> None:
    py = [sys.executable, "-m", "curate.cli"]
    print(f"\n{'command':<64} {'s':>7} {'peak RSS MB':>12}")
    for name, args in [("curate --help (start-up alone)", ["--help"]),
                       ("curate stats", ["stats", "--db", str(path)]),
                       ("curate split --val 0.05 --test 0.05 (nothing new)",
                        ["split", "--val", "0.05", "--test", "0.05", "--db", str(path)])]:
        print(f"{name:<64} {'%7.2f %12.0f' % run_timed(py + args)}", flush=True)
    out = work / "export-wds"
    shutil.rmtree(out, ignore_errors=True)
    seconds, rss = run_timed(py + ["export", str(out), "--format", "webdataset", "--labels", "i2v",
                                   "--shard-size", "100000", "--db", str(path)])
    faces = Catalog(path).conn.execute("SELECT count(*) FROM faces WHERE status = 'ok'").fetchone()[0]
    size = sum(p.stat().st_size for p in out.glob("*.tar"))
    print(f"{'curate export --format webdataset (every face, i2v labels)':<64} {seconds:>7.2f} {rss:>12.0f}  "
          f"{faces / seconds:,.0f} faces/s, {len(list(out.glob('*.tar')))} shards, {size / 1e9:.2f} GB")
    shutil.rmtree(out)


def train_ids(path: Path) -> list[int]:
    with Catalog(path) as cat:
        return cat.face_ids("ok", "train")


def _build_alone(path: str, ids: list[int], folder: str) -> None:
    from train.face_cache import cached_images
    with Catalog(path) as cat:
        cached_images(cat, ids, 64, Path(folder), workers=1)


def cache(path: Path, work: Path, sample: int) -> None:
    """Faces/s of the cache build with 1 and 2 workers, and of two 1-worker builds of half the
    faces each at the same time: what this machine gives two processes now (a busy machine
    shows there, not in the build)."""
    import multiprocessing
    from train.face_cache import cached_images
    ids = train_ids(path)
    sub = ids[:sample]
    print(f"\ntraining cache, 64x64, {len(sub):,} faces per build (load {os.getloadavg()[0]:.2f}):")
    rates: dict[str, list[float]] = {"1 worker": [], "2 workers": [], "2 processes of 1 worker, half each": []}
    with Catalog(path) as cat:
        for _ in range(2):
            for name in rates:
                folders = [work / f"cache-{i}" for i in range(2)]
                for f in folders:
                    shutil.rmtree(f, ignore_errors=True)
                t = time.perf_counter()
                if name.startswith("2 processes"):
                    half = len(sub) // 2
                    with multiprocessing.get_context("fork").Pool(2) as pool:
                        pool.starmap(_build_alone, [(str(path), sub[:half], str(folders[0])),
                                                    (str(path), sub[half:], str(folders[1]))])
                else:
                    cached_images(cat, sub, 64, folders[0], workers=int(name[0]))
                rates[name].append(len(sub) / (time.perf_counter() - t))
                print(f"  {name:<36} {rates[name][-1]:7,.0f} faces/s", flush=True)
                for f in folders:
                    shutil.rmtree(f, ignore_errors=True)
        best = {name: max(r) for name, r in rates.items()}
        ratio = best["2 workers"] / best["1 worker"]
        ceiling = best["2 processes of 1 worker, half each"] / best["1 worker"]
        print(f"  2 workers / 1 worker: {ratio:.2f}x (best of two each; goal >= {CACHE_GOAL}x: "
              f"{'ok' if ratio >= CACHE_GOAL else 'MISSED'}); two separate processes got {ceiling:.2f}x; "
              f"load {os.getloadavg()[0]:.2f}")
        for old in (work / "cache").glob(f"faces-64px-{len(ids)}-*"):   # built by an earlier run: timed anew
            old.unlink()
        t = time.perf_counter()
        images = cached_images(cat, ids, 64, work / "cache", workers=2)
        seconds = time.perf_counter() - t
    print(f"  the whole train split: {len(ids):,} faces in {seconds:.0f} s ({len(ids) / seconds:,.0f} faces/s), "
          f"{images.path.stat().st_size / 1e9:.2f} GB on disk")


TRAIN_PROBE = """
import resource, subprocess, sys, time, glob
t0 = time.perf_counter()
proc = subprocess.Popen(sys.argv[2:], stdout=subprocess.DEVNULL)
first, peak = None, {"RssAnon:": 0, "RssFile:": 0}
while proc.poll() is None:
    if first is None:
        for m in glob.glob(sys.argv[1] + "/*/metrics.csv"):
            if sum(1 for _ in open(m)) >= 2:
                first = time.perf_counter() - t0
    try:
        for line in open(f"/proc/{proc.pid}/status"):
            if line.split()[0] in peak:
                peak[line.split()[0]] = max(peak[line.split()[0]], int(line.split()[1]))
    except (OSError, IndexError):
        pass
    time.sleep(0.05)
assert proc.returncode == 0, proc.returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, peak["RssAnon:"], peak["RssFile:"], first,
      time.perf_counter() - t0)
"""


def train_probe(path: Path, work: Path, label: str) -> tuple[float, float, float, float, float]:
    """(peak RSS, its anonymous and file-backed parts sampled every 50 ms, in MB; seconds to the
    first step, seconds in all) of 50 DCGAN steps, in a process of its own (ru_maxrss of the
    probe's only child), with the cache built beforehand."""
    runs = work / f"runs-{label}"
    shutil.rmtree(runs, ignore_errors=True)
    cmd = [sys.executable, "-m", "train.cli", "dcgan", "--size", "64", "--iters", "50", "--db", str(path),
           "--cache-dir", str(work / "cache"), "--runs-dir", str(runs), "--log-every", "1", "--no-progress"]
    out = subprocess.run([sys.executable, "-c", TRAIN_PROBE, str(runs), *cmd], check=True, capture_output=True,
                         text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout.split()
    shutil.rmtree(runs)
    return int(out[0]) / 1024, int(out[1]) / 1024, int(out[2]) / 1024, float(out[3]), float(out[4])


def train(big: Path, small: Path, work: Path) -> None:
    from train.face_cache import cached_images
    for path in (small, big):   # (the cache stage built the big one already, if it ran)
        with Catalog(path) as cat:
            if not cat.split_counts()["train"]:
                cat.assign_splits(0.05, 0.05, seed=0)
            cached_images(cat, cat.face_ids("ok", "train"), 64, work / "cache", workers=2)
    print(f"\ntrain dcgan --size 64 --iters 50 (batch 64), cache built beforehand; load {os.getloadavg()[0]:.2f}")
    print(f"  {'catalog':<16} {'train faces':>12} {'peak RSS MB':>12} {'anon':>6} {'file':>6} {'first step s':>13} "
          f"{'all s':>7}")
    results = {}
    for label, path in (("small", small), ("big", big)):
        rss, anon, file, first, total = train_probe(path, work, label)
        results[label] = rss
        print(f"  {path.name:<16} {len(train_ids(path)):>12,} {rss:>12.0f} {anon:>6.0f} {file:>6.0f} {first:>13.1f} "
              f"{total:>7.1f}", flush=True)
    ratio = results["big"] / results["small"]
    print(f"  peak RSS big / small: {ratio:.3f}x (goal <= {RSS_GOAL}x: {'ok' if ratio <= RSS_GOAL else 'MISSED'}); "
          f"load {os.getloadavg()[0]:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=int, default=1_000_000)
    ap.add_argument("--small", type=int, default=10_000)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/scale_bench"))
    ap.add_argument("--stages", default="build,queries,app,cli,cache,train")
    ap.add_argument("--actions", type=int, default=100, help="labelling actions timed in the app stage")
    ap.add_argument("--cache-sample", type=int, default=100_000, help="faces per timed cache build")
    ap.add_argument("--keep", action="store_true", help="keep the catalogs and the cache in --dir")
    args = ap.parse_args()
    stages = args.stages.split(",")
    args.dir.mkdir(parents=True, exist_ok=True)
    big, small = args.dir / f"{args.faces}.db", args.dir / f"{args.small}.db"
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}, "
          f"{big.name} and {small.name} in {args.dir}")
    if "build" in stages:
        build(big, args.faces)
        build(small, args.small)
    if "queries" in stages:
        queries(big)
    if "app" in stages:
        app(big, args.actions)
    if "cli" in stages:
        cli(big, args.dir)
    if "cache" in stages:
        cache(big, args.dir, args.cache_sample)
    if "train" in stages:
        train(big, small, args.dir)
    if not args.keep:
        shutil.rmtree(args.dir / "cache", ignore_errors=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\ndone {time.strftime('%H:%M')}; this process's peak RSS {peak:.0f} MB; load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
