"""Training throughput (images/s), side by side in one run:

  ours       `train dcgan|acgan` (the catalog's crops decoded once into a uint8 tensor cache), in fp32
             and, where the CPU computes bf16 natively (what `--precision auto` then picks), in bf16
  reference  a loop written like the PyTorch examples' DCGAN: torchvision ImageFolder of image
             files decoded by PIL in DataLoader workers, the same networks and losses
  compute    the same step on one batch already in memory (the compute limit)

Prints images/s and the ratios ours/reference (goal >= 1.3) and ours/compute (goal >= 0.95).
The three are interleaved round by round so a machine shared with other jobs loads them alike.

`--options` measures instead what the newer options cost per step: `train`'s own step
(train.step with each model's loss object) on a batch in memory at the default precision,
the variants interleaved step-chunk by step-chunk, each against plain `acgan`:
`--diffaug color,translation,cutout`, `--sn d`, `--sn both`, `--arch resnet`, and the
models `cgan-pd` (hinge, SN in D) and `reacgan` (hinge, SN in D, D2D-CE); issue 23's `tacgan`
(ACGAN + a twin classifier), `--lecam 0.3` and `--ada 0.6` (DiffAugment per image, p at its start).

    python benchmarks/train_throughput.py --size 64 --steps 20      # ../shared's labelled faces
    python benchmarks/train_throughput.py --db catalog.db --size 32
    python benchmarks/train_throughput.py --options --size 32 --steps 3 --rounds 10
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from db import Catalog  # noqa: E402
from benchmarks.shared_catalog import labelled_catalog  # noqa: E402
from train.compat import import_torchvision  # noqa: E402
from train.device import pick_precision  # noqa: E402
from train.loop import train  # noqa: E402
from train.losses import loss_class  # noqa: E402
from train.models import arch_kwargs, build  # noqa: E402
from train.options import TrainOptions  # noqa: E402


def export_faces(db: Path, out: Path, n: int) -> int:
    """The first n labelled train faces as files, one folder per hair colour (ImageFolder)."""
    with Catalog(db, create=False) as cat:
        labelled = cat.labelled_faces("manual", "train")
        ids = sorted(labelled)[:n]
        for fid in ids:
            hair = labelled[fid]["hair_color"][0].replace(" ", "_")
            (out / hair).mkdir(parents=True, exist_ok=True)
            face = cat.face(fid)
            (out / hair / f"{fid}.{face['format'].replace('jpeg', 'jpg')}").write_bytes(cat.face_image(fid))
    return len(ids)


def step_fn(model: str, G, D, opt_G, opt_D, z_dim: int, n_classes: int):
    """One DCGAN/ACGAN step as the PyTorch example writes it: D on real and G(z).detach(), then G."""
    def step(x, y):
        b = len(x)
        z = torch.randn(b, z_dim)
        c = None
        if model == "acgan":
            yf = torch.randint(0, n_classes, (b,))
            c = F.one_hot(yf, n_classes).float()
        fake = G(z, c)
        adv_r, aux_r = D(x)
        adv_f, _ = D(fake.detach())
        loss_d = F.softplus(-adv_r).mean() + F.softplus(adv_f).mean()
        if model == "acgan":
            loss_d = loss_d + F.cross_entropy(aux_r, y)
        opt_D.zero_grad()
        loss_d.backward()
        opt_D.step()
        adv_g, aux_g = D(fake)
        loss_g = F.softplus(-adv_g).mean()
        if model == "acgan":
            loss_g = loss_g + F.cross_entropy(aux_g, yf)
        opt_G.zero_grad()
        loss_g.backward()
        opt_G.step()
    return step


def nets(model: str, size: int, n_classes: int):
    torch.manual_seed(0)
    cls = loss_class(model)
    G, D = build(arch_kwargs("dcgan", size, 100, 64, 64, False, "none", n_classes if cls.conditional else 0,
                             cls.d_norm, {"aux_dim": n_classes} if model == "acgan" else {}))
    opt_G = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
    return G, D, opt_G, opt_D


def reference(model: str, folder: Path, size: int, batch: int, steps: int, workers: int) -> float:
    tv = import_torchvision()
    from torchvision import transforms

    ds = tv.datasets.ImageFolder(str(folder), transform=transforms.Compose([
        transforms.Resize(size), transforms.CenterCrop(size), transforms.ToTensor(),
        transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))]))
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True)
    step = step_fn(model, *nets(model, size, len(ds.classes)), 100, len(ds.classes))
    done, t0 = 0, None
    while done < steps + 1:
        for x, y in loader:
            if done == 1:
                t0 = time.perf_counter()     # the first step warms up (worker start, allocator)
            step(x, y)
            done += 1
            if done == steps + 1:
                break
    return steps * batch / (time.perf_counter() - t0)


def compute_limit(model: str, size: int, batch: int, steps: int, n_classes: int) -> float:
    step = step_fn(model, *nets(model, size, n_classes), 100, n_classes)
    x = torch.rand(batch, 3, size, size) * 2 - 1
    y = torch.randint(0, n_classes, (batch,))
    step(x, y)
    t0 = time.perf_counter()
    for _ in range(steps):
        step(x, y)
    return steps * batch / (time.perf_counter() - t0)


def ours(model: str, db: Path, size: int, batch: int, steps: int, tmp: Path, precision: str, **extra) -> float:
    """`train`'s own images/s (its metrics.csv), the first step (warm-up) and the last (final samples and
    checkpoint) left out. `extra`: more TrainOptions."""
    kw = dict(ngf=64, ndf=64, labels="manual", attrs=["hair_color"] if model == "acgan" else [])
    kw.update(extra)
    opts = TrainOptions(model=model, catalog=str(db), size=size, batch=batch, iters=steps + 1, precision=precision,
                        runs_dir=str(tmp / "runs"), cache_dir=str(tmp / "cache"), log_every=1,
                        diag_every=10**9, sample_every=10**9, checkpoint_every=10**9, progress=False, **kw)
    run_dir = train(opts)
    import csv
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    first, last = rows[0], rows[-2]     # skip the warm-up step, and the last (final samples, checkpoint)
    last = rows[-1] if len(rows) < 3 else last
    imgs = (float(last["kimg"]) - float(first["kimg"])) * 1000
    return imgs / (float(last["seconds"]) - float(first["seconds"]))


# what --options compares, each against plain acgan in the same round
VARIANTS = {
    "acgan": ("acgan", {}),
    "acgan --diffaug color,translation,cutout": ("acgan", {"diffaug": "color,translation,cutout"}),
    "acgan --diffaug translation,cutout": ("acgan", {"diffaug": "translation,cutout"}),
    "acgan --sn d": ("acgan", {"sn": "d"}),
    "acgan --sn both": ("acgan", {"sn": "both"}),
    "acgan --arch resnet": ("acgan", {"backbone": "resnet"}),
    "cgan-pd (hinge, --sn d)": ("cgan-pd", {}),
    "reacgan (hinge, --sn d)": ("reacgan", {}),
    "tacgan": ("tacgan", {}),
    "acgan --lecam 0.3": ("acgan", {"lecam": 0.3}),
    "acgan --ada 0.6 (translation,cutout)": ("acgan", {"ada": 0.6}),
}


def variant_step(model: str, extra: dict, size: int, batch: int, precision: str):
    """One training step of `train` (train.step.Step with the model's loss object) on a batch
    already in memory: what an option costs in compute, with nothing else in the way."""
    import copy

    from train.conditions import ConditionGroup, ConditionSpec
    from train.step import Step

    opts = TrainOptions(model=model, size=size, batch=batch, labels="manual", attrs=["hair_color"],
                        precision=precision, **extra)
    cls = loss_class(model)
    spec = ConditionSpec([ConditionGroup("hair_color", True, [f"hair {i}" for i in range(12)], [1 / 12] * 12)])
    torch.manual_seed(0)
    labels = torch.eye(12)[torch.randint(12, (1024,))]
    G, D = build(cls.arch(opts, spec))
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    G.to(memory_format=torch.channels_last)
    D.to(memory_format=torch.channels_last)
    opt_G = torch.optim.Adam(G.parameters(), opts.lr_g, betas=(opts.beta1, opts.beta2))
    opt_D = torch.optim.Adam(D.parameters(), opts.lr_d, betas=(opts.beta1, opts.beta2))
    x = (torch.rand(batch, 3, size, size) * 2 - 1).contiguous(memory_format=torch.channels_last)
    data = lambda i: (x, labels[:batch], torch.Generator().manual_seed(i))  # noqa: E731
    loss = cls(opts, spec, D, labels, torch.device("cpu"))
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")
    return Step(G, D, G_ema, opt_G, opt_D, loss, data, opts, 1, autocast)


def options_costs(args) -> None:
    precision = pick_precision("auto", torch.device("cpu"))
    print(f"seconds per training step by option, {args.size}x{args.size}, batch {args.batch}, ngf = ndf = 64, "
          f"{precision}, torch threads {torch.get_num_threads()}; {args.rounds} rounds of {args.steps} steps "
          f"per variant, interleaved; medians")
    steps = {name: variant_step(model, extra, args.size, args.batch, precision)
             for name, (model, extra) in VARIANTS.items()}
    got: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for r in range(args.rounds + 1):
        for name, step in steps.items():
            t0 = time.perf_counter()
            for i in range(args.steps):
                step(r * args.steps + i, False)
            if r:       # round 0 warms up
                got[name].append((time.perf_counter() - t0) / args.steps)
    base = statistics.median(got["acgan"])
    for name, values in got.items():
        med = statistics.median(values)
        print(f"{name:45s} {1000 * med:7.1f} ms/step | {args.batch / med:6.1f} img/s | {med / base:.2f}x "
              f"plain acgan's time (spread {min(values) / base:.2f}-{max(values) / base:.2f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", type=Path, default=None, help="a catalog with manual labels [../shared's labelled faces]")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--faces", type=int, default=3000, help="faces exported for the reference")
    ap.add_argument("--workers", type=int, default=2, help="reference DataLoader workers")
    ap.add_argument("--models", default="dcgan,acgan")
    ap.add_argument("--options", action="store_true", help="measure the newer options' cost per step instead")
    ap.add_argument("--threads", type=int, default=None, help="torch threads [torch's default]; 1 keeps the "
                    "figures steady on a machine other jobs share")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.options:
        options_costs(args)
        return
    args.db = labelled_catalog(args.db)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        n = export_faces(args.db, tmp / "faces", args.faces)
        n_classes = len(list((tmp / "faces").iterdir()))
        print(f"{n} faces exported to files for the reference; {args.size}x{args.size}, batch {args.batch}, "
              f"ngf = ndf = 64, {args.steps} timed steps, {args.rounds} round(s), torch threads "
              f"{torch.get_num_threads()}")
        # `train`'s default precision: bf16 autocast where this CPU computes bf16 natively
        auto = pick_precision("auto", torch.device("cpu"))
        ours_kinds = ["fp32"] + (["bf16"] if auto == "bf16" else [])
        print(f"train --precision auto on this machine: {auto}")
        for model in args.models.split(","):
            got: dict[str, list[float]] = {k: [] for k in ["reference", "compute"] + ours_kinds}
            for _ in range(args.rounds):
                got["reference"].append(reference(model, tmp / "faces", args.size, args.batch, args.steps,
                                                  args.workers))
                for kind in ours_kinds:
                    got[kind].append(ours(model, args.db, args.size, args.batch, args.steps, tmp, kind))
                got["compute"].append(compute_limit(model, args.size, args.batch, args.steps, n_classes))
            med = {k: statistics.median(v) for k, v in got.items()}
            print(f"{model:6s} reference {med['reference']:6.1f} img/s | compute limit {med['compute']:6.1f} img/s")
            for kind in ours_kinds:   # goals: >= 1.3x the reference, >= 0.95x the compute limit
                print(f"{'':6s} ours {kind} {med[kind]:6.1f} img/s | ours/reference {med[kind] / med['reference']:.2f} "
                      f"(goal >= 1.3) | ours/compute {med[kind] / med['compute']:.2f} (goal >= 0.95)")


if __name__ == "__main__":
    main()
