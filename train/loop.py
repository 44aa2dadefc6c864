"""The training loop: one function, `train(options)`, for all four models.

Determinism: the data order, flips, noise and fake conditions of step s are a pure function
of (seed, s, rank), so a run resumed from a checkpoint (weights, EMA, optimisers, step)
continues exactly as if it had never stopped.
"""

from __future__ import annotations

import copy
import csv
import json
import math
import os
import random
import signal
import time
from collections import deque
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from db import Catalog
from db.training import content_fingerprint

from .conditions import ConditionSpec
from .data import DataError, load_training_set
from .models import arch_kwargs, build
from .options import TrainOptions
from .runs import RunError, image_grid, load_checkpoint, load_run, to_uint8

METRICS = ["step", "epoch", "kimg", "seconds", "images_per_s", "loss_d", "loss_g", "d_real", "d_fake", "gp",
           "grad_norm_d", "grad_norm_g", "aux_loss_real", "aux_acc_real", "aux_acc_fake", "grad_cosine",
           "sample_distance", "d_wins"]


class TrainingStopped(Exception):
    """NaN/inf losses: the run stopped with a checkpoint."""


# -- small helpers -------------------------------------------------------------


def new_run_dir(runs_dir: str | Path, model: str, labels: str | None) -> Path:
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    numbers = [int(p.name[:5]) for p in runs_dir.iterdir() if p.name[:5].isdigit()]
    return runs_dir / f"{max(numbers, default=-1) + 1:05d}-{model}-{labels or 'uncond'}"


def step_generator(seed: int, index: int, rank: int) -> torch.Generator:
    """The RNG of one data step: independent of everything that came before it."""
    return torch.Generator().manual_seed((seed * 1_000_003 + index) * 1_009 + rank)


def pick_precision(name: str, device: torch.device) -> str:
    """`auto`: bf16 autocast where the hardware computes in bf16 natively (recent GPUs; CPUs
    with AVX512-BF16 or AMX: 1.4-1.6x the images/s on 2 cores), fp32 elsewhere, where bf16 is
    emulated and slower than fp32."""
    if name != "auto":
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu":   # torch's own probes (private, hence getattr: absent means no)
        probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return "bf16" if any(getattr(torch.cpu, p, lambda: False)() for p in probes) else "fp32"
    return "fp32"


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def aux_loss(spec: ConditionSpec, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy per exclusive group, sigmoid BCE for independent tags."""
    loss = logits.new_zeros(())
    for g, sl in spec.loss_slices():
        if g.exclusive:
            loss = loss + F.cross_entropy(logits[:, sl].float(), target[:, sl].argmax(1))
        else:
            loss = loss + F.binary_cross_entropy_with_logits(logits[:, sl].float(), target[:, sl])
    return loss


def aux_accuracy(spec: ConditionSpec, logits: torch.Tensor, target: torch.Tensor) -> float:
    """Mean over exclusive groups of argmax accuracy (NaN without exclusive groups)."""
    accs = [(logits[:, sl].argmax(1) == target[:, sl].argmax(1)).float().mean().item()
            for g, sl in spec.loss_slices() if g.exclusive]
    return sum(accs) / len(accs) if accs else float("nan")


def fake_conditions(labels: torch.Tensor, m: int, gen: torch.Generator) -> torch.Tensor:
    """Conditions for m fakes: the label vectors of random training faces. So each group comes at
    its share and each independent tag at its frequency, AND tags co-occur as they do on real
    faces. Drawn group by group instead, fakes carry combinations real faces rarely have (green
    hair with red eyes), which a CGAN discriminator, seeing c, learns to reject whatever the image:
    on the shared faces it then won outright (judge hair accuracy 53% -> 70% after 600 steps)."""
    return labels[torch.randint(len(labels), (m,), generator=gen)]


def discriminator_wins(d_real: float, d_fake: float, loss_g: float) -> bool:
    """The original study's failure, averaged over a window: D(x) -> 1, D(G(z)) -> 0, G loss exploding."""
    return d_real > 0.99 and d_fake < 0.01 and loss_g > 5


def grad_norm(module: torch.nn.Module) -> float:
    norms = [p.grad.detach().float().norm() for p in module.parameters() if p.grad is not None]
    return torch.stack(norms).norm().item() if norms else 0.0


def flat_grad(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.detach().float().flatten() for p in module.parameters() if p.grad is not None])


def mean_pairwise_distance(images: torch.Tensor) -> float:
    """Mean L2 distance between the images of a batch, per pixel (RMS): falls toward 0 in mode collapse."""
    flat = images.float().flatten(1)
    return (torch.pdist(flat).mean() / math.sqrt(flat.shape[1])).item()


def all_reduce_grads(module: torch.nn.Module, world: int) -> None:
    """Average gradients over processes (what DistributedDataParallel does after backward)."""
    import torch.distributed as dist

    grads = [p.grad for p in module.parameters() if p.grad is not None]
    flat = torch.cat([g.flatten() for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def save_atomic(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


# -- the run -------------------------------------------------------------------


class RunLogger:
    """metrics.csv (always), log.txt, and optionally TensorBoard / W&B. Only rank 0 has one."""

    def __init__(self, run_dir: Path, opts: TrainOptions, console, resume_step: int | None):
        self.run_dir, self.console = run_dir, console
        self.metrics_path = run_dir / "metrics.csv"
        rows = []
        if resume_step is not None and self.metrics_path.exists():
            with open(self.metrics_path, newline="") as f:   # drop rows logged after the checkpoint
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        self.file = open(self.metrics_path, "w", newline="")
        self.writer = csv.DictWriter(self.file, METRICS)
        self.writer.writeheader()
        self.writer.writerows(rows)
        self.file.flush()
        self.log_file = open(run_dir / "log.txt", "a")
        self.tb = self.wandb = None
        if opts.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:
                raise DataError("--tensorboard needs the tensorboard package: pip install tensorboard") from e
            self.tb = SummaryWriter(str(run_dir / "tensorboard"))
        if opts.wandb:
            try:
                import wandb
            except ImportError as e:
                raise DataError("--wandb needs the wandb package: pip install wandb "
                                "(runs offline unless WANDB_MODE=online)") from e
            self.wandb = wandb.init(project="animeface-gan-study", name=run_dir.name, dir=str(run_dir),
                                    config=opts.to_dict(), mode=os.environ.get("WANDB_MODE", "offline"),
                                    resume="allow", id=run_dir.name)

    def message(self, text: str, style: str = "") -> None:
        self.log_file.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {text}\n")
        self.log_file.flush()
        if self.console is not None:
            self.console.print(f"[{style}]{text}[/{style}]" if style else text)

    def row(self, row: dict) -> None:
        self.writer.writerow({k: row.get(k, "") for k in METRICS})
        self.file.flush()
        scalars = {k: v for k, v in row.items() if isinstance(v, (int, float)) and math.isfinite(v)}
        if self.tb is not None:
            for k, v in scalars.items():
                if k != "step":
                    self.tb.add_scalar(k, v, row["step"])
        if self.wandb is not None:
            self.wandb.log(scalars, step=row["step"])

    def image(self, path: Path, step: int) -> None:
        if self.tb is not None:
            self.tb.add_image("samples", np.asarray(Image.open(path)), step, dataformats="HWC")
        if self.wandb is not None:
            import wandb
            self.wandb.log({"samples": wandb.Image(str(path))}, step=step)

    def close(self) -> None:
        self.file.close()
        self.log_file.close()
        if self.tb is not None:
            self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()


def fixed_sample_inputs(opts: TrainOptions, spec: ConditionSpec | None, cols: int = 8):
    """The noise and conditions of the sample grids: rows = tags of the first exclusive group."""
    gen = torch.Generator().manual_seed(opts.seed + 7)
    if spec is None:
        return torch.randn(64, opts.z_dim, generator=gen), None, 8
    first = next((g for g in spec.groups if g.exclusive), None)
    rows = first.tags if first is not None else [None]
    z_cols = torch.randn(cols, opts.z_dim, generator=gen)
    _, base = spec.sample(cols, gen)   # the other groups: one fixed draw per column
    dicts = [dict(base[j], **({first.name: tag} if first is not None else {})) for tag in rows for j in range(cols)]
    return z_cols.repeat(len(rows), 1), spec.encode(dicts), cols


def train(opts: TrainOptions, resume: str | Path | None = None, console=None,
          stop_after: int | None = None, return_state: bool = False):
    """Train (or resume) a run; returns its folder (and, with return_state, the final state
    dict of this process). `stop_after` stops after that many steps of this call with a
    checkpoint (tests; the run is then resumable)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        import torch.distributed as dist
        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    main = rank == 0
    console = console if main else None
    device = pick_device(opts.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)

    ckpt = None
    if resume is not None:
        run = load_run(resume)
        ckpt_path = run.latest_checkpoint()
        if ckpt_path is None:
            raise RunError(f"{run.dir} has no checkpoint to resume from")
        ckpt = load_checkpoint(ckpt_path)
        for key in ("step", "G", "D", "G_ema", "opt_G", "opt_D"):
            if key not in ckpt:
                raise RunError(f"checkpoint {ckpt_path} lacks {key!r}: not a checkpoint of this tool")
        saved = run.options
        new_total = opts.iters if opts.iters is not None else saved.get("iters")
        opts = TrainOptions.from_dict({**saved, "iters": new_total, "epochs": None if new_total else saved["epochs"],
                                       "progress": opts.progress, "device": opts.device})
        run_dir = run.dir
    if opts.batch % world:
        raise DataError(f"--batch {opts.batch} is not divisible by the {world} processes")

    catalog = Catalog(opts.catalog, create=False)
    try:
        fingerprint = content_fingerprint(catalog)
        if ckpt is not None and fingerprint != opts.catalog_fingerprint and console is not None:
            console.print(f"[yellow]warning: {opts.catalog} changed since this run began "
                          f"(fingerprint {opts.catalog_fingerprint} -> {fingerprint}); resuming on the new content")
        opts.catalog_fingerprint = opts.catalog_fingerprint or fingerprint
        progress = make_progress(console) if (main and opts.progress and console is not None) else None
        if progress is not None:
            progress.start()
        try:
            data = load_training_set(catalog, opts, progress)
        finally:
            if progress is not None:
                progress.stop()
    finally:
        catalog.close()
    spec = data.spec
    if ckpt is not None and spec is not None and spec.to_json() != run.options.get("conditions"):
        spec = run.spec   # keep the vocabulary the run was built with
    n = len(data.face_ids)
    per_rank = opts.batch // world
    steps_per_epoch = max(1, n // opts.batch)
    batch = min(opts.batch, n)
    d_steps_per_epoch = steps_per_epoch
    total = opts.iters if opts.iters is not None else \
        max(1, round((opts.epochs or 10) * d_steps_per_epoch / opts.n_critic))
    c_dim = spec.dim if spec is not None else 0
    arch = arch_kwargs(opts.model, opts.size, opts.z_dim, c_dim, opts.ngf, opts.ndf, opts.deep)
    if main and console is not None:
        console.print(f"{n} faces, {steps_per_epoch} batches of {batch} per epoch, {total} generator steps "
                      f"({total * opts.n_critic / steps_per_epoch:.1f} epochs) on {device}"
                      + (f", {world} processes" if world > 1 else ""))

    torch.manual_seed(opts.seed)
    G, D = build(opts.model, opts.size, opts.z_dim, c_dim, opts.ngf, opts.ndf, opts.deep)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    opt_G = torch.optim.Adam(G.parameters(), lr=opts.lr_g, betas=(opts.beta1, opts.beta2))
    opt_D = torch.optim.Adam(D.parameters(), lr=opts.lr_d, betas=(opts.beta1, opts.beta2))
    start = 0
    if ckpt is not None:
        try:
            G.load_state_dict(ckpt["G"])
            D.load_state_dict(ckpt["D"])
            G_ema.load_state_dict(ckpt["G_ema"])
            opt_G.load_state_dict(ckpt["opt_G"])
            opt_D.load_state_dict(ckpt["opt_D"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise RunError(f"checkpoint of {run_dir} does not fit the run's options: {e}") from e
        start = int(ckpt["step"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        np.random.set_state(ckpt["rng"]["numpy"])
        random.setstate(ckpt["rng"]["python"])
    # NHWC suits both cuDNN and oneDNN's convolutions (on 2 CPU cores: +9% images/s at 64x64)
    mf = torch.channels_last
    G.to(device, memory_format=mf)
    D.to(device, memory_format=mf)
    G_ema.to(device)
    for opt in (opt_G, opt_D):   # optimiser state follows the parameters
        for state in opt.state.values():
            for k, v in state.items():
                if torch.is_tensor(v) and k != "step":
                    state[k] = v.to(device)
    opts.precision = pick_precision(opts.precision, device)   # options.json records what ran
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=opts.precision == "bf16")

    # -- the run folder (rank 0 writes; others only compute) --
    if ckpt is None:
        run_dir = new_run_dir(opts.runs_dir, opts.model, opts.labels)
    options_json = {**opts.to_dict(), "arch": arch, "conditions": spec.to_json() if spec is not None else None,
                    "faces": n, "tag_counts": data.counts, "world_size": world}
    logger = None
    if main:
        (run_dir / "samples").mkdir(parents=True, exist_ok=True)
        (run_dir / "checkpoints").mkdir(exist_ok=True)
        (run_dir / "options.json").write_text(json.dumps(options_json, indent=2))
        logger = RunLogger(run_dir, opts, console, start if ckpt is not None else None)
        logger.message(("resumed at step %d" % start) if ckpt is not None else f"new run {run_dir}")

    images = data.images           # uint8 on CPU; batches are moved as uint8 (4x less to copy)
    labels = data.labels
    sample_z, sample_c, sample_cols = fixed_sample_inputs(opts, spec)
    sample_every = opts.sample_every or max(1, round(steps_per_epoch / opts.n_critic))
    diversity_z = torch.randn(64, opts.z_dim, generator=torch.Generator().manual_seed(opts.seed + 11))
    diversity_c = spec.sample_tensor(64, torch.Generator().manual_seed(opts.seed + 11)) if spec is not None and \
        opts.conditional else None
    if logger is not None and ckpt is None:
        real = images[torch.randperm(n, generator=torch.Generator().manual_seed(1))[:64]]
        logger.message(f"sample distance of 64 real faces: {mean_pairwise_distance(real / 127.5 - 1):.4f} "
                       "(the generator's falls far below this in mode collapse)")

    def run_state(step: int) -> dict:
        return {"step": step, "G": G.state_dict(), "D": D.state_dict(), "G_ema": G_ema.state_dict(),
                "opt_G": opt_G.state_dict(), "opt_D": opt_D.state_dict(),
                "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                        "python": random.getstate()},
                "options": options_json}

    def save_checkpoint(step: int) -> Path | None:
        if not main:
            return None
        path = run_dir / "checkpoints" / f"{step:06d}.pt"
        save_atomic(run_state(step), path)
        for old in load_run(run_dir).checkpoints()[:-opts.keep_checkpoints]:
            old.unlink()
        return path

    @torch.no_grad()
    def save_samples(step: int) -> None:
        if not main:
            return
        x = torch.cat([G_ema(sample_z[i:i + 128].to(device),
                             None if sample_c is None else sample_c[i:i + 128].to(device)).float().cpu()
                       for i in range(0, len(sample_z), 128)])
        path = run_dir / "samples" / f"{step:06d}.png"
        Image.fromarray(image_grid(to_uint8(x), sample_cols)).save(path)
        logger.image(path, step)

    def data_batch(index: int):
        """Images (float, flipped), labels of data step `index` for this rank."""
        epoch, i = divmod(index, steps_per_epoch)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(opts.seed * 7919 + epoch))
        idx = perm[i * batch:(i + 1) * batch][rank * per_rank:(rank + 1) * per_rank] if batch == opts.batch \
            else perm[:batch]
        gen = step_generator(opts.seed, index, rank)
        x = images[idx].to(device, non_blocking=True).float().div_(127.5).sub_(1)
        if opts.flip:
            flip = (torch.rand(len(idx), generator=gen) < 0.5).to(device)
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        x = x.contiguous(memory_format=mf)
        y = labels[idx].to(device) if labels is not None else None
        return x, y, gen

    def fake_inputs(gen: torch.Generator, m: int):
        z = torch.randn(m, opts.z_dim, generator=gen).to(device)
        c = fake_conditions(labels, m, gen).to(device) if spec is not None and opts.conditional else None
        return z, c

    def d_forward(x, c):
        return D(x, c if opts.model == "cgan" else None)

    # -- Ctrl-C: finish the step, then checkpoint --
    interrupted = []
    old_handler = None
    if main:
        def on_sigint(signum, frame):
            if interrupted:
                raise KeyboardInterrupt
            interrupted.append(True)
        try:
            old_handler = signal.signal(signal.SIGINT, on_sigint)
        except ValueError:     # not the main thread
            old_handler = None

    ema_params, g_params = list(G_ema.parameters()), [p.detach() for p in G.parameters()]
    acc: dict[str, list[float]] = {}
    window = deque(maxlen=opts.dwin_window)
    d_wins_flagged = False
    prev_grad = None
    t_last, imgs_last = time.perf_counter(), 0
    t0 = time.perf_counter()
    progress = make_progress(console, metrics=True) if (main and opts.progress and console is not None) else None
    task = progress.add_task(run_dir.name, total=total, completed=start, ips=0.0, ld=0.0, lg=0.0) \
        if progress else None
    if progress is not None:
        progress.start()
    if start == 0:
        save_samples(0)
    step = start
    stopped = None
    try:
        while step < total:
            bce = opts.model != "wgan-gp"
            # ---- discriminator / critic ----
            for k in range(opts.n_critic):
                x_real, c_real, gen = data_batch(step * opts.n_critic + k)
                z, c_fake = fake_inputs(gen, len(x_real))
                reuse = opts.n_critic == 1
                with autocast:
                    with torch.set_grad_enabled(reuse):
                        fake = G(z, c_fake)
                    adv_real, aux_real = d_forward(x_real, c_real)
                    adv_fake, _ = d_forward(fake.detach(), c_fake)
                    if bce:
                        loss_d = F.softplus(-adv_real.float()).mean() + F.softplus(adv_fake.float()).mean()
                    else:
                        loss_d = adv_fake.float().mean() - adv_real.float().mean()
                    if opts.model == "acgan":
                        l_aux = aux_loss(spec, aux_real, c_real)
                        loss_d = loss_d + opts.aux_weight * l_aux
                gp = torch.zeros(())
                if not bce:
                    alpha = torch.rand(len(x_real), 1, 1, 1, generator=gen).to(device)
                    inter = (alpha * x_real + (1 - alpha) * fake.detach().float()).requires_grad_(True)
                    with autocast:
                        out, _ = d_forward(inter, c_fake)
                    g, = torch.autograd.grad(out.float().sum(), inter, create_graph=True)
                    gp = ((g.flatten(1).norm(dim=1) - 1) ** 2).mean()
                    loss_d = loss_d + opts.gp_weight * gp
                if not torch.isfinite(loss_d):
                    raise TrainingStopped(f"discriminator loss is {loss_d.item()} at step {step}")
                opt_D.zero_grad(set_to_none=True)
                loss_d.backward()
                if world > 1:
                    all_reduce_grads(D, world)
                log_now = (step + 1) % opts.log_every == 0 or step + 1 == total
                if log_now and k == opts.n_critic - 1:
                    acc.setdefault("grad_norm_d", []).append(grad_norm(D))
                opt_D.step()
            # ---- generator ----
            if not reuse:
                z, c_fake = fake_inputs(gen, len(x_real))
            for p in D.parameters():
                p.requires_grad_(False)
            with autocast:
                if not reuse:
                    fake = G(z, c_fake)
                adv_g, aux_g = d_forward(fake, c_fake)
                loss_g = F.softplus(-adv_g.float()).mean() if bce else -adv_g.float().mean()
                if opts.model == "acgan":
                    loss_g = loss_g + opts.aux_weight * aux_loss(spec, aux_g, c_fake)
            for p in D.parameters():
                p.requires_grad_(True)
            if not torch.isfinite(loss_g):
                raise TrainingStopped(f"generator loss is {loss_g.item()} at step {step}")
            opt_G.zero_grad(set_to_none=True)
            loss_g.backward()
            if world > 1:
                all_reduce_grads(G, world)
            diag_now = (step + 1) % opts.diag_every == 0
            if diag_now or (step + 2) % opts.diag_every == 0:
                grad_now = flat_grad(G)
                if diag_now and prev_grad is not None:
                    acc["grad_cosine"] = [F.cosine_similarity(grad_now, prev_grad, dim=0).item()]
                prev_grad = grad_now if not diag_now else None
            if log_now:
                acc.setdefault("grad_norm_g", []).append(grad_norm(G))
            opt_G.step()

            # ---- EMA of G (ramped up, so early samples are not stuck at the init) ----
            with torch.no_grad():
                beta = min(opts.ema_beta, (1 + step) / (10 + step))
                torch._foreach_lerp_(ema_params, g_params, 1 - beta)
                for be, b in zip(G_ema.buffers(), G.buffers()):
                    be.copy_(b)

            # ---- bookkeeping ----
            step += 1
            ld, lg = loss_d.item(), loss_g.item()
            if bce:
                d_real = torch.sigmoid(adv_real.float()).mean().item()
                d_fake = torch.sigmoid(adv_fake.float()).mean().item()
            else:
                d_real, d_fake = adv_real.float().mean().item(), adv_fake.float().mean().item()
            for key, v in (("loss_d", ld), ("loss_g", lg), ("d_real", d_real), ("d_fake", d_fake),
                           ("gp", gp.item())):
                acc.setdefault(key, []).append(v)
            if opts.model == "acgan":
                acc.setdefault("aux_loss_real", []).append(l_aux.item())
                acc.setdefault("aux_acc_real", []).append(aux_accuracy(spec, aux_real.float(), c_real))
                acc.setdefault("aux_acc_fake", []).append(aux_accuracy(spec, aux_g.float(), c_fake))
            if bce:
                window.append((d_real, d_fake, lg))
                if len(window) == window.maxlen:
                    mr, mf_, mg = (sum(v) / len(window) for v in zip(*window))
                    wins = discriminator_wins(mr, mf_, mg)
                    if wins and not d_wins_flagged and logger is not None:
                        logger.message(f"step {step}: the discriminator wins outright (D(x) {mr:.3f}, "
                                       f"D(G(z)) {mf_:.3f}, G loss {mg:.1f} over {len(window)} steps): "
                                       "G gets no useful gradient; try a lower --lr-d, wgan-gp, or a smaller "
                                       "--ndf", style="bold red")
                    d_wins_flagged = wins
            if diag_now:
                with torch.no_grad():
                    G.eval()
                    acc["sample_distance"] = [mean_pairwise_distance(
                        G(diversity_z.to(device), None if diversity_c is None else diversity_c.to(device)))]
                    G.train()
            if main and (log_now or step == total):
                now = time.perf_counter()
                imgs = (step - start) * opts.batch * opts.n_critic
                ips = (imgs - imgs_last) / max(now - t_last, 1e-9)
                t_last, imgs_last = now, imgs
                row = {"step": step, "epoch": round(step * opts.n_critic / steps_per_epoch, 3),
                       "kimg": round(step * opts.batch * opts.n_critic / 1000, 3),
                       "seconds": round(now - t0, 2), "images_per_s": round(ips, 1),
                       "d_wins": int(d_wins_flagged)}
                for key, vs in acc.items():
                    row[key] = round(sum(vs) / len(vs), 5)
                acc = {}
                logger.row(row)
                if progress is not None:
                    progress.update(task, ips=ips, ld=row["loss_d"], lg=row["loss_g"])
            if progress is not None:
                progress.update(task, completed=step)
            if step % sample_every == 0 or step == total:
                save_samples(step)
            if step % opts.checkpoint_every == 0 and step != total:
                save_checkpoint(step)
            if interrupted:
                break
            if stop_after is not None and step - start >= stop_after:
                break
    except TrainingStopped as e:
        stopped = e
    finally:
        if progress is not None:
            progress.stop()
        if old_handler is not None:
            signal.signal(signal.SIGINT, old_handler)
    if stopped is not None:
        path = save_checkpoint(step)
        if logger is not None:
            logger.message(f"stopped: {stopped}; checkpoint {path} (the weights before the bad step). "
                           "Lower the learning rates or try wgan-gp.", style="bold red")
            logger.close()
        raise stopped
    path = save_checkpoint(step)
    if main:
        if step >= total:
            save_atomic({"arch": arch["G"], "state": G_ema.state_dict()}, run_dir / "G_ema.pt")
            logger.message(f"done: {step} steps in {time.perf_counter() - t0:.0f} s; {run_dir}", style="green")
        else:
            logger.message(f"stopped at step {step} of {total}; checkpoint {path}. Continue with "
                           f"`train {opts.model} --resume {run_dir}`", style="yellow")
        logger.close()
    return (run_dir, run_state(step)) if return_state else run_dir


def make_progress(console, metrics: bool = False):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    if metrics:
        columns += [TextColumn("{task.fields[ips]:.0f} img/s  D {task.fields[ld]:.3f}  G {task.fields[lg]:.3f}")]
    return Progress(*columns, console=console, transient=False)
