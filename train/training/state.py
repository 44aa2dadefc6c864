"""The state of a run: G, D, the EMA of G, both optimisers, the step and the loss's own state
(LeCam's anchors, ADA's probability: `Loss.state_dict`); built from the nets' `arch`, restored
from a checkpoint, and written back as one (format 2, see train.runs).

The global RNG travels with it (train.runs.rng_state) so a resumed run continues exactly.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from train import runs
from train.models import build

CHECKPOINT_FORMAT = 2


class RunState:
    """Everything a checkpoint holds that changes while the run trains."""

    def __init__(self, G, D, G_ema, opt_G, opt_D, step: int = 0):
        self.G, self.D, self.G_ema, self.opt_G, self.opt_D = G, D, G_ema, opt_G, opt_D
        self.step = step
        self.loss = None      # the model's loss, once built (attach_loss)

    @classmethod
    def build(cls, arch: dict, opts) -> "RunState":
        """Fresh nets (initialised from the run's seed), their EMA copy and Adam for each."""
        torch.manual_seed(opts.seed)
        G, D = build(arch)
        G_ema = copy.deepcopy(G).eval().requires_grad_(False)
        opt_G = torch.optim.Adam(G.parameters(), lr=opts.lr_g, betas=(opts.beta1, opts.beta2))
        opt_D = torch.optim.Adam(D.parameters(), lr=opts.lr_d, betas=(opts.beta1, opts.beta2))
        return cls(G, D, G_ema, opt_G, opt_D)

    def parts(self) -> tuple:
        return (self.G, "G"), (self.D, "D"), (self.G_ema, "G_ema"), (self.opt_G, "opt_G"), (self.opt_D, "opt_D")

    def load(self, ckpt: dict, run_dir: Path) -> None:
        """Weights, optimisers, step and the global RNG from a checkpoint of `run_dir`."""
        try:
            for part, key in self.parts():
                part.load_state_dict(ckpt[key])
        except (RuntimeError, ValueError, KeyError) as e:
            raise runs.RunError(f"checkpoint of {run_dir} does not fit the run's options: {e}") from e
        self.step = int(ckpt["step"])
        runs.restore_rng(ckpt["rng"])

    def attach_loss(self, loss, ckpt: dict | None) -> None:
        """The model's loss, whose own state checkpoints keep from now on; restored from `ckpt` when
        resuming (checkpoints written before it had none: nothing to restore)."""
        self.loss = loss
        if ckpt is not None:
            loss.load_state_dict(ckpt.get("loss") or {})

    def to(self, device: torch.device) -> None:
        # NHWC suits both cuDNN and oneDNN's convolutions (on 2 CPU cores: +9% images/s at 64x64)
        self.G.to(device, memory_format=torch.channels_last)
        self.D.to(device, memory_format=torch.channels_last)
        self.G_ema.to(device)
        for opt in (self.opt_G, self.opt_D):   # optimiser state follows the parameters
            for state in opt.state.values():
                for k, v in state.items():
                    if torch.is_tensor(v) and k != "step":
                        state[k] = v.to(device)

    def checkpoint(self, options: dict) -> dict:
        """The checkpoint of this moment (`options`: the run's options.json, kept with it)."""
        return {"format": CHECKPOINT_FORMAT, "step": self.step, "G": self.G.state_dict(), "D": self.D.state_dict(),
                "G_ema": self.G_ema.state_dict(), "opt_G": self.opt_G.state_dict(),
                "opt_D": self.opt_D.state_dict(), "rng": runs.rng_state(), "options": options,
                "loss": self.loss.state_dict() if self.loss is not None else {}}
