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

    python benchmarks/sketch.py train [--size 64] [--batch 32] [--ngf 32] [--steps 10] [--rounds 3]
                                      [--threads 1]
        `train pix2pix` images/s, side by side in one run, rounds interleaved, medians:
        reference  a loop written like the pix2pix authors' PyTorch code (junyanz/pytorch-CycleGAN-and-
                   pix2pix: `AlignedDataset` of A|B image files, sketch beside face, decoded by PIL in
                   DataLoader workers and resized, flipped, normalised per step; `Pix2PixModel.
                   optimize_parameters`: D on (A, G(A)).detach() and (A, B), then G: GAN + 100 x L1),
                   fp32 as theirs, with the same U-Net and PatchGAN;
        ours       `train pix2pix` on the same faces and sketches (the catalog's, decoded once into a
                   tensor cache), as plain pix2pix (no tags, no noise, no sketch augmentation: the same
                   work), in fp32 and in bf16 (what --precision auto picks on CPUs that compute bf16);
                   and with everything on (--labels manual, noise + mode-seeking term, sketch
                   augmentation), for what the additions cost;
        compute    `train`'s step (train.step with pix2pix's loss) on one batch already in memory.
        Goal: ours >= 1.3x the reference.

    python benchmarks/sketch.py paint --run RUN [--n 4] [--repeat 20]
        `train.sketch.paint.paint` latency (what the app's Draw page waits for per drawing): the first call
        (loads the generator) and the median of the next ones.

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
from db import Catalog  # noqa: E402
from shared_catalog import SHARED, labelled_catalog  # noqa: E402


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the workers, once joined)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def plain_loop(catalog: Catalog, ids: list[int]) -> tuple[float, float]:
    """(wall s, CPU s) of the simplest loop: every crop decoded, turned into line art and PNG-encoded."""
    blobs = [b for _, b in catalog.iter_face_images(ids)]
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
    from train.sketch.drawing import normalise_drawing
    from train.sketch.augment import SketchAugment, ink_tensor

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
                           for _, b in cat.iter_derived_images("sketch", rows)])
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


# -- train pix2pix against a reference loop ---------------------------------------------------

def export_pairs(db: Path, out: Path, n: int) -> int:
    """The first n train faces as A|B files (line art beside the crop), as the authors' datasets are laid out."""
    with Catalog(db, create=False) as cat:
        ids = cat.face_ids("ok", "train")[:n]
        out.mkdir(parents=True, exist_ok=True)
        for (fid, crop), (_, lines) in zip(cat.iter_face_images(ids), cat.iter_derived_images("sketch", ids)):
            face = Image.open(io.BytesIO(crop)).convert("RGB")
            sketch = Image.open(io.BytesIO(lines)).convert("RGB").resize(face.size)
            ab = Image.new("RGB", (2 * face.width, face.height))
            ab.paste(sketch, (0, 0))
            ab.paste(face, (face.width, 0))
            ab.save(out / f"{fid}.png")
    return len(ids)


class AlignedDataset:
    """The authors' `AlignedDataset`: one A|B file per pair, split in two, resized, flipped alike."""

    def __init__(self, folder: Path, size: int):
        from train.compat import import_torchvision
        import_torchvision()
        from torchvision import transforms
        self.paths, self.size, self.t = sorted(folder.glob("*.png")), size, transforms

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        import random
        t = self.t
        ab = Image.open(self.paths[i]).convert("RGB")
        w, h = ab.size
        a, b = ab.crop((0, 0, w // 2, h)), ab.crop((w // 2, 0, w, h))
        flip = random.random() > 0.5
        def tf(grey):   # noqa: E306
            ops = ([t.Grayscale(1)] if grey else []) + [t.Resize([self.size, self.size], t.InterpolationMode.BICUBIC)]
            ops += [t.RandomHorizontalFlip(1.0)] if flip else []
            ops += [t.ToTensor(), t.Normalize((0.5,) * (1 if grey else 3), (0.5,) * (1 if grey else 3))]
            return t.Compose(ops)
        return {"A": tf(True)(a), "B": tf(False)(b)}


def pix2pix_nets(size: int, ngf: int):
    import torch
    from train.models.pix2pix import arch_kwargs, build
    torch.manual_seed(0)
    G, D = build(arch_kwargs(size, c_dim=0, z_dim=0, ngf=ngf, ndf=ngf))
    opt_G = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
    return G, D, opt_G, opt_D


def reference(folder: Path, size: int, batch: int, ngf: int, steps: int, workers: int) -> float:
    """images/s of a loop written like the authors' `train.py` + `Pix2PixModel.optimize_parameters`."""
    import torch
    import torch.nn.functional as F
    G, D, opt_G, opt_D = pix2pix_nets(size, ngf)
    loader = torch.utils.data.DataLoader(AlignedDataset(folder, size), batch_size=batch, shuffle=True,
                                         num_workers=workers, drop_last=True)
    gan = lambda pred, real: F.binary_cross_entropy_with_logits(  # noqa: E731  (their vanilla GANLoss)
        pred, torch.ones_like(pred) if real else torch.zeros_like(pred))
    done, t0 = 0, None
    while done < steps + 1:
        for data in loader:
            if done == 1:
                t0 = time.perf_counter()     # the first step warms up (worker start, allocator)
            real_A, real_B = data["A"], data["B"]
            fake_B = G(real_A)                                        # forward()
            for p in D.parameters():
                p.requires_grad_(True)
            opt_D.zero_grad()                                         # backward_D()
            loss_D = (gan(D(real_A, fake_B.detach())[0], False) + gan(D(real_A, real_B)[0], True)) * 0.5
            loss_D.backward()
            opt_D.step()
            for p in D.parameters():
                p.requires_grad_(False)
            opt_G.zero_grad()                                         # backward_G()
            loss_G = gan(D(real_A, fake_B)[0], True) + F.l1_loss(fake_B, real_B) * 100.0
            loss_G.backward()
            opt_G.step()
            done += 1
            if done == steps + 1:
                break
    return steps * batch / (time.perf_counter() - t0)


def compute_limit(size: int, batch: int, ngf: int, steps: int, precision: str) -> float:
    """`train`'s step (train.step.Step, pix2pix's loss, plain pix2pix) on one batch in memory."""
    import copy

    import torch
    from train.losses import loss_class
    from train.options import TrainOptions
    from train.step import Step
    opts = TrainOptions(model="pix2pix", size=size, batch=batch, ngf=ngf, ndf=ngf, z_dim=0, ms_weight=0,
                        sketch_aug=False, precision=precision)
    cls = loss_class("pix2pix")
    G, D, opt_G, opt_D = pix2pix_nets(size, ngf)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    G.to(memory_format=torch.channels_last)
    D.to(memory_format=torch.channels_last)
    x = (torch.rand(batch, 3, size, size) * 2 - 1).contiguous(memory_format=torch.channels_last)
    sketch = (torch.rand(batch, 1, size, size) > 0.1).float() * 2 - 1
    loss = cls(opts, None, D, None, torch.device("cpu"))
    data = lambda i: (x, loss.real_condition(None, sketch, torch.Generator().manual_seed(i)),  # noqa: E731
                      torch.Generator().manual_seed(i))
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")
    step = Step(G, D, G_ema, opt_G, opt_D, loss, data, opts, 1, autocast)
    step(0, False)
    t0 = time.perf_counter()
    for i in range(steps):
        step(i + 1, False)
    return steps * batch / (time.perf_counter() - t0)


def train_speed(args) -> None:
    import torch
    from train.device import pick_precision
    from train_throughput import ours
    if args.threads:
        torch.set_num_threads(args.threads)
    source = labelled_catalog(args.db)
    auto = pick_precision("auto", torch.device("cpu"))
    plain = dict(ngf=args.ngf, ndf=args.ngf, z_dim=0, ms_weight=0, sketch_aug=False, labels=None, attrs=[])
    full = dict(ngf=args.ngf, ndf=args.ngf, labels="manual", attrs=["hair_color", "eye_color"], drop_rare=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        work = tmp / "bench.db"
        shutil.copy(source, work)
        with Catalog(work) as cat:
            if cat.faces_to_derive("sketch", derived_hash()):
                derive(cat, workers=2)
        n = export_pairs(work, tmp / "pairs", args.faces)
        print(f"{n} A|B pairs exported for the reference; {args.size}x{args.size}, batch {args.batch}, ngf = ndf = "
              f"{args.ngf}, {args.steps} timed steps x {args.rounds} rounds, torch threads {torch.get_num_threads()}, "
              f"load average {os.getloadavg()[0]:.2f}; --precision auto here: {auto}")
        kinds = {"reference (authors' loop, fp32)": lambda: reference(tmp / "pairs", args.size, args.batch, args.ngf,
                                                                      args.steps, args.workers),
                 "ours fp32": lambda: ours("pix2pix", work, args.size, args.batch, args.steps, tmp, "fp32", **plain),
                 f"ours {auto}": lambda: ours("pix2pix", work, args.size, args.batch, args.steps, tmp, auto, **plain),
                 f"ours {auto}, tags + noise + sketch augmentation": lambda: ours(
                     "pix2pix", work, args.size, args.batch, args.steps, tmp, auto, **full),
                 "compute limit fp32": lambda: compute_limit(args.size, args.batch, args.ngf, args.steps, "fp32"),
                 f"compute limit {auto}": lambda: compute_limit(args.size, args.batch, args.ngf, args.steps, auto)}
        if auto == "fp32":
            kinds = {k: v for k, v in kinds.items() if not k.endswith("fp32") or k.startswith("ours fp32")}
        got: dict[str, list[float]] = {k: [] for k in kinds}
        for r in range(args.rounds):
            for name, measure in kinds.items():
                got[name].append(measure())
            print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in got.items()), flush=True)
    med = {k: statistics.median(v) for k, v in got.items()}
    ref = med["reference (authors' loop, fp32)"]
    print(f"\n{'':50s} {'img/s':>7s} {'/ reference':>12s}  runs")
    for name, value in med.items():
        print(f"{name:50s} {value:7.1f} {value / ref:11.2f}x  {', '.join(f'{v:.1f}' for v in got[name])}")
    print(f"goal: ours >= 1.3x the reference; ours {auto} / compute limit {auto}: "
          f"{med[f'ours {auto}'] / med[f'compute limit {auto}']:.2f}")


def derived_hash() -> str:
    from curate.lineart import params_hash
    return params_hash("xdog", XDoGParams())


def paint_latency(args) -> None:
    import torch
    from train.sketch.paint import paint
    from train.runs import load_run
    if args.threads:
        torch.set_num_threads(args.threads)
    run = load_run(args.run)
    sketch = np.full((run.size, run.size), 255, np.uint8)
    sketch[run.size // 4:3 * run.size // 4, run.size // 2] = 0
    t0 = time.perf_counter()
    paint(run.dir, sketch, {}, args.n, 0)
    first = time.perf_counter() - t0
    times = []
    for seed in range(args.repeat):
        t0 = time.perf_counter()
        paint(run.dir, sketch, {}, args.n, seed)
        times.append(time.perf_counter() - t0)
    print(f"paint() of {args.n} faces at {run.size}x{run.size} ({run.dir.name}, torch threads "
          f"{torch.get_num_threads()}, load average {os.getloadavg()[0]:.2f}): first call {1000 * first:.0f} ms "
          f"(loads G), then median {1000 * statistics.median(times):.1f} ms, max {1000 * max(times):.1f} ms "
          f"over {args.repeat}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="job", required=True)
    p = sub.add_parser("extract", help="line-art extraction faces/s, 1 vs 2 workers")
    p.add_argument("--faces", type=int, default=3000)
    p.add_argument("--repeat", type=int, default=2)
    p = sub.add_parser("pictures", help="the docs/ pictures of sketches and augmentations")
    p.add_argument("--out", default=str(ROOT / "docs"))
    p = sub.add_parser("train", help="train pix2pix images/s against the authors' loop and the compute limit")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--ngf", type=int, default=32, help="width of G and D (ngf = ndf)")
    p.add_argument("--steps", type=int, default=10, help="timed steps per measurement")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--faces", type=int, default=1000, help="A|B pairs exported for the reference")
    p.add_argument("--workers", type=int, default=2, help="the reference's DataLoader workers")
    p = sub.add_parser("paint", help="train.sketch.paint.paint latency (the Draw page)")
    p.add_argument("--run", type=Path, required=True)
    p.add_argument("--n", type=int, default=4)
    p.add_argument("--repeat", type=int, default=20)
    for p in sub.choices.values():
        p.add_argument("--db", type=Path, help="the labelled catalog (default: benchmarks/shared_catalog.py's, "
                       "built once); it is copied, never written to")
        p.add_argument("--threads", type=int, default=None, help="torch threads [torch's default]; 1 keeps "
                       "the figures steady on a machine other jobs share")
    args = parser.parse_args()
    {"extract": extract, "pictures": pictures, "train": train_speed, "paint": paint_latency}[args.job](args)


if __name__ == "__main__":
    main()
