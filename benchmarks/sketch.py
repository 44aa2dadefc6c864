"""Benchmarks and pictures of the sketch toolchain, measured side by side in one run.

    python benchmarks/sketch.py extract [--faces 3000] [--repeat 2]
        `curate sketch` (the library call `derive`, as the command makes it) on the shared
        labelled faces with 1 worker and with 2, alternating, on a copy of the catalog emptied
        of line art before each run, against a plain loop over the same crops (decode, XDoG,
        PNG-encode, nothing stored). Prints faces/s (wall), CPU ms per face (all processes:
        what the work costs whatever else runs) and the 2-worker speed-up. The catalog is the one
        benchmarks/shared_catalog.py builds (once); it is copied, never written to.

    python benchmarks/sketch.py pictures [--out docs]
        docs/sketch_pairs.png: crop | XDoG line art of 16 shared faces (`curate stats --sheet
        --kind crop,sketch`); docs/sketch_augment.png: rows of an XDoG sketch at 64x64 and five
        training augmentations of it, and a last row with the two shared hand drawings
        normalised as `train sample --sketch` will (they are shown, not tuned to).

(`train pix2pix` images/s against a reference loop is part 2 of issue 13.)
Other jobs on the machine skew timings: run when `uptime` shows the lowest load you can get.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from curate.derive import derive  # noqa: E402
from curate.lineart import XDoGParams, line_art_png  # noqa: E402
from db import Catalog, derived  # noqa: E402
from db.training import iter_face_images  # noqa: E402
from shared_catalog import SHARED, labelled_catalog  # noqa: E402


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the workers, once joined)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def plain_loop(catalog: Catalog, ids: list[int]) -> tuple[float, float]:
    """(wall s, CPU s) of the simplest loop: every crop decoded, turned into line art and PNG-encoded."""
    blobs = [b for _, b in iter_face_images(catalog, ids)]
    started, cpu = time.perf_counter(), cpu_seconds()
    for blob in blobs:
        line_art_png(blob, "xdog", XDoGParams())
    return time.perf_counter() - started, cpu_seconds() - cpu


def extract(args) -> None:
    source = labelled_catalog(args.db)
    plain = "plain loop (1 process, nothing stored)"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "bench.db"
        shutil.copy(source, work)
        with Catalog(work) as cat:
            ids = cat.face_ids("ok")[:args.faces]
            n = len(ids)
            print(f"{n} shared faces ({source}), load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
            runs: dict[str, list[tuple[float, float]]] = {plain: [], "curate sketch -j 1": [],
                                                          "curate sketch -j 2": []}
            for _ in range(args.repeat):
                runs[plain].append(plain_loop(cat, ids))
                for workers in (1, 2):
                    cat.conn.execute("DELETE FROM face_derived")
                    cat.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    cpu = cpu_seconds()
                    s = derive(cat, workers=workers, limit=n)
                    assert s.made == n and not s.errors, s
                    runs[f"curate sketch -j {workers}"].append((s.wall_s, cpu_seconds() - cpu))
    print(f"\n{'':40s} {'faces/s':>8s} {'CPU ms/face':>12s}  runs (faces/s)")
    rate = {}
    for name, times in runs.items():
        rate[name] = statistics.median(n / wall for wall, _ in times)
        cpu_ms = statistics.median(cpu / n * 1000 for _, cpu in times)
        print(f"{name:40s} {rate[name]:8.0f} {cpu_ms:12.2f}  {', '.join(f'{n / w:.0f}' for w, _ in times)}")
    one, two = rate["curate sketch -j 1"], rate["curate sketch -j 2"]
    print(f"\n2 workers / 1 worker: {two / one:.2f}x;  1 worker / plain loop: {one / rate[plain]:.2f}x "
          f"(the cost of reading and storing); load average now {os.getloadavg()[0]:.2f}")


def pictures(args) -> None:
    from curate.sheet import contact_sheet
    import torch
    from train.sketch import normalise_drawing
    from train.sketch_augment import SketchAugment, ink_tensor

    out = Path(args.out)
    source = labelled_catalog(args.db)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "pictures.db"
        shutil.copy(source, work)
        with Catalog(work) as cat:
            ids = cat.face_ids("ok")
            picked = [ids[int(i * len(ids) / 16)] for i in range(16)]
            derive(cat, workers=2)
            contact_sheet(cat, out / "sketch_pairs.png", faces=picked, n=16, columns=4, tile=96,
                          kinds=("crop", "sketch"))
            rows = [ids[int(i * len(ids) / 6) + 3] for i in range(6)]
            sk = np.stack([np.asarray(Image.open(io.BytesIO(b)).resize((64, 64), Image.Resampling.LANCZOS))
                           for _, b in derived.iter_derived_images(cat, "sketch", rows)])
    x = ink_tensor(torch.from_numpy(sk)[:, None])
    columns = [x] + [SketchAugment()(x, torch.Generator().manual_seed(seed)) for seed in range(5)]
    grid = [torch.cat([c[i, 0] for c in columns], 1) for i in range(len(rows))]
    drawings = sorted((SHARED / "data" / "sketches").glob("*.png"))
    real = [torch.from_numpy(normalise_drawing(p, 64)).float() / 127.5 - 1 for p in drawings]
    grid.append(torch.cat(real + [torch.ones(64, 64)] * (6 - len(real)), 1))
    pad = torch.ones(2, 6 * 64)
    img = torch.cat([torch.cat([r, pad]) for r in grid])
    arr = ((img + 1) * 127.5).clamp(0, 255).to(torch.uint8).numpy()
    Image.fromarray(arr).resize((arr.shape[1] * 2, arr.shape[0] * 2), Image.Resampling.NEAREST).save(
        out / "sketch_augment.png", optimize=True)
    print(f"wrote {out / 'sketch_pairs.png'} and {out / 'sketch_augment.png'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="job", required=True)
    p = sub.add_parser("extract", help="line-art extraction faces/s, 1 vs 2 workers")
    p.add_argument("--faces", type=int, default=3000)
    p.add_argument("--repeat", type=int, default=2)
    p = sub.add_parser("pictures", help="the docs/ pictures of sketches and augmentations")
    p.add_argument("--out", default=str(ROOT / "docs"))
    for p in sub.choices.values():
        p.add_argument("--db", type=Path, help="the labelled catalog (default: benchmarks/shared_catalog.py's, "
                       "built once); it is copied, never written to")
    args = parser.parse_args()
    {"extract": extract, "pictures": pictures}[args.job](args)


if __name__ == "__main__":
    main()
