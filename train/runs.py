"""Run folders: their layout, what is written into them, and loading them back.

A run lives in `runs/NNNNN-<model>-<labels>/` (e.g. `runs/00003-acgan-manual/`, `-uncond` without
labels; the label source's name is made safe as one folder name). `options.json` holds every
option needed to repeat it (model, size, nets, optimiser, steps, seed, label source,
attributes, the catalog path and its content fingerprint, the device that ran) plus `arch`
(the generator's and discriminator's constructor arguments) and `conditions` (the condition
vocabulary with the training label frequencies, absent for unconditional models).
`metrics.csv` has one row every `log_every` steps (losses, D(x), D(G(z)), gradient norms,
auxiliary accuracy on real and fake, mode-collapse diagnostics). `samples/NNNNNN.png` are grids
from a fixed noise and fixed conditions (rows = the first exclusive group's tags, usually hair
colours) at step NNNNNN. `checkpoints/NNNNNN.pt` hold G, D, the EMA of G, both optimisers, RNG
states and the step (the newest few are kept); `G_ema.pt` is the final EMA generator
(`{"arch": ..., "state": ...}`), written when the run ends. `log.txt` has the run's messages.

Every file of a run is written whole or not at all (train.disk): a full disk leaves no
half-written checkpoint, sample grid, G_ema.pt, options.json or metrics row, and the previous
checkpoint is removed only once the new one is on the disk.

Checkpoints hold tensors and plain values only and are loaded that way (curate.safe_load): a
run folder from someone else cannot run code here.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from curate import safe_load
from train import pretrained
from train.conditions import ConditionSpec
from train.disk import append_whole, save_atomic, write_whole
from train.models import build_generator
from train.run_checks import RunOptionsError, check_run_options

CHECKPOINT_KEYS = ("step", "G", "D", "G_ema", "opt_G", "opt_D")
METRICS = ["step", "epoch", "kimg", "seconds", "images_per_s", "loss_d", "loss_g", "d_real", "d_fake", "gp",
           "grad_norm_d", "grad_norm_g", "aux_loss_real", "aux_acc_real", "aux_acc_fake", "grad_cosine",
           "sample_distance", "d_wins", "l1", "mode_seeking", "noise_spread", "twin_loss_fake", "twin_acc_fake",
           "lecam", "ada_p", "ada_rt", "hint_l1", "line_l1"]


class RunError(Exception):
    """A run folder that is missing, incomplete or corrupt."""


@dataclass
class Run:
    dir: Path
    options: dict

    @property
    def size(self) -> int:
        return int(self.options["size"])

    @property
    def z_dim(self) -> int:
        return int(self.options["z_dim"])

    @property
    def model(self) -> str:
        return self.options["model"]

    @property
    def spec(self) -> ConditionSpec | None:
        groups = self.options.get("conditions")
        return ConditionSpec.from_json(groups, self.options.get("left_out")) if groups else None

    @property
    def conditional(self) -> bool:
        return self.options["arch"]["G"]["c_dim"] > 0

    @property
    def sketch(self) -> dict | None:
        """A sketch model's line-art settings ({"kind", "method", "params"}), None for other runs."""
        return self.options.get("sketch")

    @property
    def metrics_path(self) -> Path:
        return self.dir / "metrics.csv"

    @property
    def samples_dir(self) -> Path:
        return self.dir / "samples"

    @property
    def checkpoints_dir(self) -> Path:
        return self.dir / "checkpoints"

    @property
    def total_steps(self) -> int:
        """The generator steps the run was set to train (train.training.sampler.Schedule's arithmetic)."""
        o = self.options
        if o.get("iters") is not None:
            return int(o["iters"])
        per_epoch = max(1, int(o.get("faces") or 0) // int(o.get("batch") or 64))
        return max(1, round((o.get("epochs") or 10) * per_epoch / int(o.get("n_critic") or 1)))

    def checkpoints(self) -> list[Path]:
        return sorted(self.checkpoints_dir.glob("[0-9]*.pt"))

    def latest_checkpoint(self) -> Path | None:
        ckpts = self.checkpoints()
        return ckpts[-1] if ckpts else None

    def load_latest(self, keys=CHECKPOINT_KEYS, warn=print) -> tuple[Path, dict]:
        """The newest checkpoint that loads. A corrupt one (a crash while writing, a bad disk) is
        passed over for the one before it, with a warning; an unsafe one stops everything."""
        first_error = None
        for path in reversed(self.checkpoints()):
            try:
                ckpt = load_checkpoint(path)
                missing = [k for k in keys if k not in ckpt]
                if missing:
                    raise RunError(f"checkpoint {path} lacks {', '.join(map(repr, missing))}: not a checkpoint "
                                   "of this tool")
            except RunError as e:
                if isinstance(e.__cause__, safe_load.UnsafeFileError):
                    raise
                first_error = first_error or e
                warn(f"warning: {e}; trying the checkpoint before it")
                continue
            if first_error is not None:
                warn(f"warning: using {path} (step {ckpt['step']}) instead")
            return path, ckpt
        if first_error is not None:
            raise first_error
        raise RunError(f"{self.dir} has no checkpoint yet")

    def generator(self, ema: bool = True, device: str | torch.device = "cpu", warn=print) -> torch.nn.Module:
        """The trained generator in eval mode: G(z, c) -> images in [-1, 1], NCHW (a sketch model's:
        G(sketch, c, z), train.models.pix2pix).

        The final `G_ema.pt` when the run has ended, else the newest checkpoint's
        EMA (or raw, with ema=False) generator.
        """
        final = self.dir / "G_ema.pt"
        key = "G_ema" if ema else "G"
        if ema and final.exists():
            state = load_checkpoint(final)["state"]
        elif not self.checkpoints():
            raise RunError(f"{self.dir} has neither G_ema.pt nor a checkpoint yet")
        else:
            state = self.load_latest((key,), warn)[1][key]
        G = build_generator(self.options["arch"]["G"])
        try:
            G.load_state_dict(state)
        except (RuntimeError, KeyError) as e:
            raise RunError(f"the generator weights of {self.dir} do not fit its options.json: {e}") from e
        return G.to(device).eval()


def read_json(path: Path, missing: str, error: type[Exception] = RunError):
    """The JSON file at `path`, or `error` with `missing` (when it is absent) or why it does not parse."""
    if not path.is_file():
        raise error(missing)
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise error(f"{path} is not valid JSON: {e}") from e


def run_folder(name: str | Path) -> Path:
    """A user's RUN argument as a folder: a path as it is, `pretrained:NAME` a model shipped with the
    package (train.pretrained), its files checked against their recorded hashes."""
    if not pretrained.is_pretrained(name):
        return Path(name)
    try:
        return pretrained.resolve(name)
    except pretrained.PretrainedError as e:
        raise RunError(str(e)) from None


def load_run(run_dir: str | Path) -> Run:
    run_dir = run_folder(run_dir)
    path = run_dir / "options.json"
    options = read_json(path, f"{run_dir} is not a run folder (no options.json)")
    try:
        check_run_options(options, path)    # a hostile or damaged folder: one line, not a traceback
    except RunOptionsError as e:
        raise RunError(str(e)) from None
    return Run(run_dir, options)


def load_checkpoint(path: str | Path) -> dict:
    """A checkpoint or G_ema.pt, tensors and plain values only, with a clear error for truncated,
    foreign or unsafe files."""
    try:
        ckpt = safe_load.load(path)
    except safe_load.UnsafeFileError as e:
        raise RunError(str(e)) from e
    except Exception as e:  # torch raises many kinds for a corrupt zip/pickle
        raise RunError(f"checkpoint {path} is corrupt or unreadable ({type(e).__name__}: {e})") from e
    if not isinstance(ckpt, dict):
        raise RunError(f"checkpoint {path} is not a checkpoint of this tool")
    return ckpt


# -- writing -------------------------------------------------------------------------


def safe_slug(name: str, default: str) -> str:
    """A name from users and catalogs as one folder name: everything but letters, digits, `.`, `_`
    and `-` becomes `_`; never a path."""
    return re.sub(r"[^\w.-]+", "_", name).strip("._-")[:40] or default


def run_name(number: int, model: str, labels: str | None) -> str:
    """`NNNNN-<model>-<labels>`, the label source's name made safe (safe_slug)."""
    return f"{number:05d}-{model}-{safe_slug(labels or 'uncond', 'labels')}"


def numbered_dir(parent: str | Path, name) -> Path:
    """Create the next numbered folder `parent/NNNNN-...` (`name(number)` gives its name), atomically:
    two processes starting together get two."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    while True:
        numbers = [int(p.name[:5]) for p in parent.iterdir() if p.name[:5].isdigit()]
        path = parent / name(max(numbers, default=-1) + 1)
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path


def new_run_dir(runs_dir: str | Path, model: str, labels: str | None) -> Path:
    """Create the next numbered run folder."""
    path = numbered_dir(runs_dir, lambda number: run_name(number, model, labels))
    (path / "samples").mkdir()
    (path / "checkpoints").mkdir()
    return path


def write_options(run_dir: Path, options: dict) -> None:
    text = json.dumps(options, indent=2)
    write_whole(run_dir / "options.json", lambda f: f.write(text.encode()))


def rng_state() -> dict:
    """The global RNG states as tensors and plain values (loadable with weights_only)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}}


def restore_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np_state = state["numpy"]
    if isinstance(np_state, dict):
        np_state = (np_state["name"], np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                    np_state["has_gauss"], np_state["cached_gaussian"])
    np.random.set_state(np_state)      # a tuple with a numpy array in checkpoints of earlier versions


def save_checkpoint(run_dir: Path, state: dict, keep: int) -> Path:
    """The new checkpoint beside the others; the oldest beyond `keep` are removed only once it is
    whole on the disk (and the temp files a killed run left)."""
    path = run_dir / "checkpoints" / f"{state['step']:06d}.pt"
    save_atomic(state, path)
    for old in load_run(run_dir).checkpoints()[:-keep] + list(path.parent.glob("*.pt.tmp")):
        old.unlink(missing_ok=True)
    return path


def save_final_generator(run_dir: Path, arch_g: dict, state: dict) -> None:
    save_atomic({"arch": arch_g, "state": state}, run_dir / "G_ema.pt")


def csv_text(rows: list[dict], header: bool = False) -> str:
    """metrics.csv rows (and its header) as text, the METRICS columns in order."""
    out = io.StringIO()
    writer = csv.DictWriter(out, METRICS, extrasaction="ignore")
    if header:
        writer.writeheader()
    writer.writerows({k: row.get(k, "") for k in METRICS} for row in rows)
    return out.getvalue()


def kept_rows(path: Path, resume_step: int) -> list[dict]:
    """The rows of metrics.csv a resumed run keeps: those up to its checkpoint, whole (a row cut
    short by a crash or a full disk has missing columns, or a step that is not a number)."""
    if not path.exists():
        return []
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if None not in r and None not in r.values()
                and r["step"].isdigit()]
    return [r for r in rows if int(r["step"]) <= resume_step]


class RunLogger:
    """metrics.csv (always), log.txt, and optionally TensorBoard / W&B. Only rank 0 has one."""

    def __init__(self, run_dir: Path, options: dict, console, resume_step: int | None):
        self.run_dir, self.console = run_dir, console
        self.metrics_path = run_dir / "metrics.csv"
        rows = kept_rows(self.metrics_path, resume_step) if resume_step is not None else []
        text = csv_text(rows, header=True)
        write_whole(self.metrics_path, lambda f: f.write(text.encode()))
        # unbuffered, and every row or line appended whole (train.disk): a full disk leaves no half row
        self.file = open(self.metrics_path, "ab", buffering=0)
        self.log_path = run_dir / "log.txt"
        self.log_file = open(self.log_path, "ab", buffering=0)
        self.tb = self.wandb = None
        if options["tensorboard"]:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:
                raise RunError("--tensorboard needs the tensorboard package: pip install tensorboard") from e
            self.tb = SummaryWriter(str(run_dir / "tensorboard"))
        if options["wandb"]:
            try:
                import wandb
            except ImportError as e:
                raise RunError("--wandb needs the wandb package: pip install wandb "
                               "(runs offline unless WANDB_MODE=online)") from e
            self.wandb = wandb.init(project="animeface-gan-study", name=run_dir.name, dir=str(run_dir),
                                    config=options, mode=os.environ.get("WANDB_MODE", "offline"),
                                    resume="allow", id=run_dir.name)

    def message(self, text: str, style: str = "", echo: bool = True) -> None:
        """A line into log.txt and (echo) onto the console (as text: names in it are data, never markup)."""
        line = f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {text}\n"
        append_whole(self.log_file, line.encode(), self.log_path)
        if echo and self.console is not None:
            self.console.print(text, style=style or None, markup=False)

    def row(self, row: dict) -> None:
        append_whole(self.file, csv_text([row]).encode(), self.metrics_path)
        scalars = {k: v for k, v in row.items() if isinstance(v, (int, float)) and math.isfinite(v)}
        if self.tb is not None:
            for k, v in scalars.items():
                if k != "step":
                    self.tb.add_scalar(k, v, row["step"])
        if self.wandb is not None:
            self.wandb.log(scalars, step=row["step"])

    def image(self, path: Path, step: int) -> None:
        if self.tb is not None:
            from PIL import Image
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
