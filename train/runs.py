"""Run folders: loading a finished (or running) run and generating images from it.

A run lives in `runs/NNNNN-<model>-<labels>/` (e.g. `runs/00003-acgan-manual/`, `-uncond` without
labels). `options.json` holds every option needed to repeat it (model, size, nets, optimiser,
steps, seed, label source, attributes, the catalog path and its content fingerprint) plus
`arch` (the generator's and discriminator's constructor arguments) and `conditions` (the
condition vocabulary with the training label frequencies, absent for unconditional models).
`metrics.csv` has one row every `log_every` steps (losses, D(x), D(G(z)), gradient norms,
auxiliary accuracy on real and fake, mode-collapse diagnostics). `samples/NNNNNN.png` are grids
from a fixed noise and fixed conditions (rows = the first exclusive group's tags, usually hair
colours) at step NNNNNN. `checkpoints/NNNNNN.pt` hold G, D, the EMA of G, both optimisers, RNG
states and the step (the newest few are kept); `G_ema.pt` is the final EMA generator
(`{"arch": ..., "state": ...}`), written when the run ends. `log.txt` has the run's messages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .conditions import ConditionSpec
from .models import Generator


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
        return ConditionSpec.from_json(groups) if groups else None

    @property
    def conditional(self) -> bool:
        return self.options["arch"]["G"]["c_dim"] > 0

    @property
    def metrics_path(self) -> Path:
        return self.dir / "metrics.csv"

    @property
    def samples_dir(self) -> Path:
        return self.dir / "samples"

    @property
    def checkpoints_dir(self) -> Path:
        return self.dir / "checkpoints"

    def checkpoints(self) -> list[Path]:
        return sorted(self.checkpoints_dir.glob("[0-9]*.pt"))

    def latest_checkpoint(self) -> Path | None:
        ckpts = self.checkpoints()
        return ckpts[-1] if ckpts else None

    def generator(self, ema: bool = True, device: str | torch.device = "cpu") -> Generator:
        """The trained generator in eval mode: G(z, c) -> images in [-1, 1], NCHW.

        The final `G_ema.pt` when the run has ended, else the newest checkpoint's
        EMA (or raw, with ema=False) generator.
        """
        final = self.dir / "G_ema.pt"
        if ema and final.exists():
            state = load_checkpoint(final)["state"]
        else:
            ckpt = self.latest_checkpoint()
            if ckpt is None:
                raise RunError(f"{self.dir} has neither G_ema.pt nor a checkpoint yet")
            state = load_checkpoint(ckpt)["G_ema" if ema else "G"]
        G = Generator(**self.options["arch"]["G"])
        G.load_state_dict(state)
        return G.to(device).eval()


def load_run(run_dir: str | Path) -> Run:
    run_dir = Path(run_dir)
    path = run_dir / "options.json"
    if not path.exists():
        raise RunError(f"{run_dir} is not a run folder (no options.json)")
    try:
        options = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunError(f"{path} is not valid JSON: {e}") from e
    for key in ("model", "size", "z_dim", "arch"):
        if key not in options:
            raise RunError(f"{path} lacks {key!r}: not a run of this tool")
    return Run(run_dir, options)


def load_checkpoint(path: str | Path) -> dict:
    """torch.load with a clear error for truncated or foreign files."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises many kinds for a corrupt zip/pickle
        raise RunError(f"checkpoint {path} is corrupt or unreadable ({type(e).__name__}: {e})") from e


@torch.no_grad()
def generate(run: Run, n: int, conditions: list[dict] | None = None, seed: int = 0, batch: int = 256,
             device: str | torch.device = "cpu", ema: bool = True, G: Generator | None = None,
             ) -> tuple[torch.Tensor, list[dict]]:
    """n images as uint8 [n, 3, H, W] and the tag dict each was conditioned on.

    `conditions`: None draws them from the training label distribution; a list of tag
    dicts (length n, or length 1 to repeat) fixes them, groups it leaves out are drawn.
    Unconditional runs return empty tag dicts. Same seed, same images.
    """
    G = G if G is not None else run.generator(ema=ema, device=device)
    gen = torch.Generator().manual_seed(seed)
    spec = run.spec if run.conditional else None
    z = torch.randn(n, run.z_dim, generator=gen)
    if spec is None:
        c, dicts = None, [{} for _ in range(n)]
    else:
        if conditions is None:
            c, dicts = spec.sample(n, gen)
        else:
            if len(conditions) == 1:
                conditions = conditions * n
            if len(conditions) != n:
                raise ValueError(f"{len(conditions)} conditions for {n} images")
            dicts = spec.complete(conditions, gen)
            c = spec.encode(dicts)
    out = []
    for i in range(0, n, batch):
        x = G(z[i:i + batch].to(device), None if c is None else c[i:i + batch].to(device))
        out.append(to_uint8(x.float().cpu()))
    return (torch.cat(out) if out else torch.zeros(0, 3, run.size, run.size, dtype=torch.uint8)), dicts


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float -> uint8 [0, 255]."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def image_grid(images: torch.Tensor, nrow: int, pad: int = 2) -> np.ndarray:
    """uint8 [N, 3, H, W] -> one HxWx3 uint8 array, `nrow` images per row."""
    n, _, h, w = images.shape
    rows = (n + nrow - 1) // nrow
    grid = np.full((rows * (h + pad) + pad, nrow * (w + pad) + pad, 3), 255, np.uint8)
    for i, img in enumerate(images.permute(0, 2, 3, 1).numpy()):
        r, c = divmod(i, nrow)
        grid[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = img
    return grid
