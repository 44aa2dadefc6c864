"""Every option of a training run in one plain structure (saved as the run's options.json)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .models import MODELS, SIZES

# Per-model optimiser defaults: DCGAN's Adam(2e-4, 0.5) and WGAN-GP's Adam(1e-4, 0, 0.9), n_critic 5.
MODEL_DEFAULTS = {
    "dcgan": dict(lr_g=2e-4, lr_d=2e-4, beta1=0.5, beta2=0.999, n_critic=1),
    "cgan": dict(lr_g=2e-4, lr_d=2e-4, beta1=0.5, beta2=0.999, n_critic=1),
    "acgan": dict(lr_g=2e-4, lr_d=2e-4, beta1=0.5, beta2=0.999, n_critic=1),
    "wgan-gp": dict(lr_g=1e-4, lr_d=1e-4, beta1=0.0, beta2=0.9, n_critic=5),
}

PRECISIONS = ("auto", "fp32", "bf16")


@dataclass
class TrainOptions:
    model: str = "dcgan"
    catalog: str = "catalog.db"
    catalog_fingerprint: str = ""
    labels: str | None = None              # label source; None = all ok faces, no conditions
    attrs: list[str] = field(default_factory=list)   # tag groups to condition on
    min_prob: float | None = None
    common: list[str] = field(default_factory=list)
    min_per_tag: int = 10
    drop_rare: bool = False
    split: str = "train"
    size: int = 64
    iters: int | None = None               # generator steps; or
    epochs: float | None = None            # passes over the training faces
    batch: int = 64
    z_dim: int = 100
    ngf: int = 64
    ndf: int = 64
    deep: bool = False
    lr_g: float | None = None
    lr_d: float | None = None
    beta1: float | None = None
    beta2: float | None = None
    n_critic: int | None = None            # D steps per G step
    gp_weight: float = 10.0
    aux_weight: float = 1.0
    ema_beta: float = 0.995              # half-life ~140 steps: short CPU runs still get a current EMA
    flip: bool = True
    seed: int = 0
    runs_dir: str = "runs"
    cache_dir: str | None = None
    log_every: int = 50
    diag_every: int = 200
    sample_every: int | None = None         # default: once per epoch
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    dwin_window: int = 200
    device: str = "auto"
    precision: str = "auto"              # fp32 | bf16 (autocast) | auto: resolved when the run starts
    tensorboard: bool = False
    wandb: bool = False
    progress: bool = True

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; one of {', '.join(MODELS)}")
        if self.size not in SIZES:
            raise ValueError(f"--size must be one of {', '.join(map(str, SIZES))}, not {self.size}")
        for key, value in MODEL_DEFAULTS[self.model].items():
            if getattr(self, key) is None:
                setattr(self, key, value)
        if self.precision not in PRECISIONS:
            raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")
        if self.iters is not None and self.epochs is not None:
            raise ValueError("give --iters or --epochs, not both")
        for name in ("batch", "z_dim", "ngf", "ndf", "log_every", "diag_every", "checkpoint_every", "n_critic"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
        if self.iters is not None and self.iters < 0:
            raise ValueError("--iters must be >= 0")

    @property
    def conditional(self) -> bool:
        return self.model in ("cgan", "acgan")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainOptions":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})
