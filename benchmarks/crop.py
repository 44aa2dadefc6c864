"""Benchmarks of `curate crop`, measured side by side in one run.

    python benchmarks/crop.py throughput [--detector animeface] [--workers 2] [--limit N]
        curate's pipeline (library `run`, as the command calls it) with N workers and with 1,
        against a plain single-process loop over the same files with the same detector
        (read, decode, shrink for detection, detect, crop, PNG-encode), and against that
        plain loop run in N processes on a fair share of the files each (the most parallel
        work gives on this machine). Prints images/s, faces/s, the speed-up, and the overhead
        beyond detection (time outside detect calls / total).
        Goals: N=2 workers >= 1.8x the plain loop; overhead < 15%.

    python benchmarks/crop.py ray [--workers 2] [--limit N]
        `curate crop -j N` against `curate crop --ray` on a local Ray of N CPUs, twice each, each
        kind first once, on the same files (the -j runs in a process of their own, where no Ray runs). Ray's
        own start-up (once per cluster) is timed apart; each --ray run includes what a command
        pays each time: the dataset, the actors and their detectors. Prints the ratio of the
        best runs and checks that both catalogs hold the same faces.

    python benchmarks/crop.py detectors
        precision / recall of every detector on ../shared/data/face_patches (146 faces, 218
        non-faces). A patch counts as "face" when the detector finds at least one box. Patches are
        tight face crops, so each is first given the context a real crop has: padded by 25% of its
        side on every side (edge pixels; the face then fills 1/1.5 of the picture, as with
        --margin 1.5) and resized to 192 px.

Other jobs on the machine skew timings: run when `uptime` shows the lowest load you can get.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from curate import detectors  # noqa: E402
from curate.cropping import crop_square, cut  # noqa: E402
from curate.images import decode, iter_image_files, png_bytes  # noqa: E402
from curate.pipeline import CropOptions, run  # noqa: E402
from db import Catalog  # noqa: E402

SHARED = ROOT.parent / "shared"
RAW = SHARED / "data" / "raw_illustrations"
PATCHES = SHARED / "data" / "face_patches"
LBP = SHARED / "models" / "lbpcascade_animeface.xml"


def plain_loop(files: list[Path], options: CropOptions) -> dict:
    """The simplest correct loop: what curate must not be slower than per core."""
    detector = detectors.build(_spec(options.detector))
    faces = 0
    detect_s = 0.0
    started = time.perf_counter()
    for path in files:
        rgb = decode(path.read_bytes()).image
        w, h = rgb.size
        scale, small = 1.0, rgb
        if max(w, h) > options.detect_max:
            scale = max(w, h) / options.detect_max
            small = rgb.resize((round(w / scale), round(h / scale)), reducing_gap=2.0)
        t0 = time.perf_counter()
        boxes = detector.detect(small)
        detect_s += time.perf_counter() - t0
        for box in boxes:
            png_bytes(cut(rgb, crop_square(box.scaled(scale), w, h, options.margin), options.size))
            faces += 1
    return {"wall": time.perf_counter() - started, "detect": detect_s, "faces": faces, "workers": 1}


def plain_parallel(files: list[Path], options: CropOptions, workers: int) -> dict:
    """The plain loop in `workers` processes, files dealt out largest first to the least loaded:
    the most this machine gives for this work in parallel, with no catalog at all. (A static
    deal by file size: on a handful of files it understates that, curate's queue does not.)"""
    shares: list[list[Path]] = [[] for _ in range(workers)]
    loads = [0] * workers
    for size, f in sorted(((f.stat().st_size, f) for f in files), reverse=True):
        i = loads.index(min(loads))
        shares[i].append(f)
        loads[i] += size
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        parts = pool.starmap(plain_loop, [(share, options) for share in shares])
    return {"wall": time.perf_counter() - started, "detect": sum(p["detect"] for p in parts),
            "faces": sum(p["faces"] for p in parts), "workers": workers}


def pipeline(folder: Path, options: CropOptions, ray: str | None = None, keep: Path | None = None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        catalog = Catalog(keep or Path(tmp) / "bench.db")
        summary = run(catalog, folder, options, ray=ray)
        catalog.close()
    faces = sum(summary.faces.values())
    return {"wall": summary.wall_s, "detect": summary.detect_s, "faces": faces, "workers": options.workers}


FACES = ("SELECT s.path, s.status, f.box_x, f.box_y, f.box_w, f.box_h, f.sha256, f.status, f.reason "
         "FROM sources s LEFT JOIN faces f ON f.source_id = s.id ORDER BY s.path, f.id")


def ray_vs_local(args) -> None:
    import json
    import subprocess

    import ray

    files = sorted(iter_image_files(RAW))[: args.limit or None]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "raw"
        folder.mkdir()
        for f in files:
            os.symlink(f, folder / f.name)
        print(f"{len(files)} illustrations from {RAW}, animeface, cores {os.cpu_count()}, "
              f"load before {os.getloadavg()[0]:.2f}")
        t = time.perf_counter()
        ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
        print(f"local Ray of {args.workers} CPUs started in {time.perf_counter() - t:.1f} s (once per cluster)")
        local = ("import json, sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path; "
                 "from benchmarks.crop import CropOptions, pipeline; "
                 "print(json.dumps(pipeline(Path(sys.argv[2]), CropOptions(workers=int(sys.argv[3])), "
                 "keep=Path(sys.argv[4]))))")
        walls: dict[str, list[float]] = {"-j": [], "ray": []}
        for rep in range(2):
            for kind in (("-j", "ray") if rep == 0 else ("ray", "-j")):   # each first once
                db = Path(tmp) / f"{kind}{rep}.db"
                if kind == "-j":
                    out = subprocess.run([sys.executable, "-c", local, str(ROOT), str(folder), str(args.workers),
                                          str(db)], check=True, capture_output=True, text=True).stdout
                    walls[kind].append(json.loads(out.splitlines()[-1])["wall"])
                else:
                    walls[kind].append(pipeline(folder, CropOptions(workers=args.workers), ray="auto", keep=db)["wall"])
                name = f"-j {args.workers}" if kind == "-j" else "--ray"
                print(f"  curate crop {name:<6} {walls[kind][-1]:6.1f} s  (load {os.getloadavg()[0]:.2f})", flush=True)
        ray.shutdown()
        same = [Catalog(Path(tmp) / f"{k}0.db").query(FACES) for k in ("-j", "ray")]
        best = {k: min(v) for k, v in walls.items()}
        print(f"best of two: -j {args.workers} {best['-j']:.1f} s ({len(files) / best['-j']:.2f} images/s), --ray "
              f"{best['ray']:.1f} s ({len(files) / best['ray']:.2f} images/s): Ray takes "
              f"{best['ray'] / best['-j']:.2f}x the time of -j {args.workers}; same faces: {same[0] == same[1]}; "
              f"load after {os.getloadavg()[0]:.2f}")


def throughput(args) -> None:
    files = sorted(iter_image_files(RAW))[: args.limit or None]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "raw"
        folder.mkdir()
        for f in files:  # links, so --limit can pick a subset (never copies of shared data)
            os.symlink(f, folder / f.name)
        base = CropOptions(detector=args.detector, cascade=str(LBP) if args.detector == "lbp" else None)
        print(f"{len(files)} illustrations from {RAW}, detector {args.detector}, cores {os.cpu_count()}, "
              f"load before {os.getloadavg()[0]:.2f}")
        results = {
            "plain loop": plain_loop(files, base),
            "curate, 1 worker": pipeline(folder, _with(base, workers=1)),
            f"plain loop x {args.workers} procs": plain_parallel(files, base, args.workers),
            f"curate, {args.workers} workers": pipeline(folder, _with(base, workers=args.workers)),
        }
    plain = results["plain loop"]["wall"]
    print(f"{'':22} {'wall s':>7} {'images/s':>9} {'faces/s':>8} {'vs plain':>9} {'overhead':>9}")
    for name, r in results.items():
        # overhead: the share of worker time not spent inside detect calls
        overhead = 1 - r["detect"] / (r["wall"] * r["workers"])
        print(f"{name:22} {r['wall']:7.1f} {len(files) / r['wall']:9.2f} {r['faces'] / r['wall']:8.2f} "
              f"{plain / r['wall']:8.2f}x {overhead:9.1%}")
    found = ", ".join(f"{n}: {r['faces']}" for n, r in results.items())
    print(f"faces found: {found}; "
          f"load after {os.getloadavg()[0]:.2f}")


def detector_accuracy(args) -> None:
    patches = {kind: [decode(p.read_bytes()).image for p in sorted((PATCHES / kind).iterdir())]
               for kind in ("face", "nonface")}
    print(f"{len(patches['face'])} face and {len(patches['nonface'])} non-face patches from {PATCHES}")
    print(f"{'detector':10} {'TP':>4} {'FN':>4} {'FP':>4} {'TN':>4} {'precision':>10} {'recall':>7} {'s':>6}")
    for name in args.detectors.split(","):
        detector = detectors.build(_spec(name))
        started = time.perf_counter()
        found = {kind: sum(bool(detector.detect(with_context(im))) for im in ims) for kind, ims in patches.items()}
        tp, fp = found["face"], found["nonface"]
        fn, tn = len(patches["face"]) - tp, len(patches["nonface"]) - fp
        precision = f"{tp / (tp + fp):.3f}" if tp + fp else "n/a"
        print(f"{name:10} {tp:4} {fn:4} {fp:4} {tn:4} {precision:>10} {tp / (tp + fn):7.3f} "
              f"{time.perf_counter() - started:6.1f}")


def with_context(im: Image.Image, pad: float = 0.25, side: int = 192) -> Image.Image:
    p = round(max(im.size) * pad)
    arr = np.pad(np.asarray(im), ((p, p), (p, p), (0, 0)), mode="edge")
    out = Image.fromarray(arr)
    s = side / max(out.size)
    return out.resize((round(out.width * s), round(out.height * s)), Image.Resampling.LANCZOS)


def _spec(name: str) -> detectors.DetectorSpec:
    return detectors.resolve(name, LBP if name == "lbp" else None)


def _with(options: CropOptions, **changes) -> CropOptions:
    from dataclasses import replace
    return replace(options, **changes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--detector", default="animeface", choices=detectors.DETECTORS)
    t.add_argument("--workers", type=int, default=2)
    t.add_argument("--limit", type=int, default=0, help="only the first N illustrations")
    r = sub.add_parser("ray")
    r.add_argument("--workers", type=int, default=2)
    r.add_argument("--limit", type=int, default=0, help="only the first N illustrations")
    d = sub.add_parser("detectors")
    d.add_argument("--detectors", default=",".join(detectors.DETECTORS))
    args = parser.parse_args()
    if not RAW.is_dir():
        sys.exit(f"{SHARED} is missing: these benchmarks use ../shared")
    {"throughput": throughput, "ray": ray_vs_local, "detectors": detector_accuracy}[args.what](args)


if __name__ == "__main__":
    main()
