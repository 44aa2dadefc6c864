"""Every option of a training run in one plain structure (saved as the run's options.json),
the rules on which combinations make sense, and how a resumed run's options are merged.

A model's own defaults (optimiser, adversarial loss, spectral norm) live on its loss class
(train.losses) and fill whatever the command line leaves out, so the study's models keep
exactly the values they always had.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from train.augment import parse_policy
from train.losses import LOSS_CHOICES, loss_class
from train.models import ARCHS, SIZES, SN_CHOICES

PRECISIONS = ("auto", "fp32", "bf16")
SKETCH_OPTIONS = ("l1_weight", "ms_weight", "tag_swap", "sketch_aug")


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
    drop_tags: list[str] = field(default_factory=list)   # tags left out by name (an experiment's shared set)
    same_faces: bool = False               # keep only faces every source (labels + common) labels alike
    split: str = "train"
    size: int = 64
    iters: int | None = None               # generator steps; or
    epochs: float | None = None            # passes over the training faces
    batch: int = 64
    z_dim: int | None = None               # noise dimensions [the model's: 100; pix2pix 8]
    ngf: int = 64
    ndf: int = 64
    deep: bool = False
    backbone: str = "dcgan"                # --arch dcgan | resnet (SNGAN-style blocks); options.json's
                                           # "arch" is the nets' constructor arguments
    loss: str | None = None                # bce | hinge | wasserstein [the model's]
    sn: str | None = None                  # spectral norm in none | d | g | both [the model's]
    diffaug: str = ""                      # DiffAugment policy, e.g. "color,translation,cutout"
    lr_g: float | None = None
    lr_d: float | None = None
    beta1: float | None = None
    beta2: float | None = None
    n_critic: int | None = None            # D steps per G step
    gp_weight: float = 10.0
    aux_weight: float = 1.0
    # sketch models (pix2pix) only [the model's defaults]: None elsewhere
    l1_weight: float | None = None         # L1 between the painting and the real face (pix2pix: 100)
    ms_weight: float | None = None         # mode-seeking term (MSGAN) that keeps the noise in use
    tag_swap: float | None = None          # share of fakes painted with other faces' tags (no L1 for them)
    sketch_aug: bool | None = None         # hand-drawn-like augmentation of the training sketches
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
    device: str = "auto"                 # auto | cpu | cuda ...: options.json records the one that ran
    precision: str = "auto"              # fp32 | bf16 (autocast) | auto: resolved when the run starts
    tensorboard: bool = False
    wandb: bool = False
    progress: bool = True
    experiment: str | None = None        # the experiment folder the run belongs to (its judge scores it)

    def __post_init__(self):
        cls = loss_class(self.model)
        if self.size not in SIZES:
            raise ValueError(f"--size must be one of {', '.join(map(str, SIZES))}, not {self.size}")
        for key, value in cls.defaults.items():
            if getattr(self, key) is None:
                setattr(self, key, value)
        for name, value, choices in (("precision", self.precision, PRECISIONS), ("loss", self.loss, LOSS_CHOICES),
                                     ("sn", self.sn, SN_CHOICES), ("arch", self.backbone, tuple(ARCHS))):
            if value not in choices:
                raise ValueError(f"--{name} must be one of {', '.join(choices)}, not {value!r}")
        self.diffaug = ",".join(parse_policy(self.diffaug))
        if self.iters is not None and self.epochs is not None:
            raise ValueError("give --iters or --epochs, not both")
        for name in ("batch", "ngf", "ndf", "log_every", "diag_every", "checkpoint_every", "n_critic"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
        if self.iters is not None and self.iters < 0:
            raise ValueError("--iters must be >= 0")
        if self.z_dim < (0 if cls.needs_sketch else 1):     # a sketch model may paint without noise
            raise ValueError(f"--z-dim must be at least {0 if cls.needs_sketch else 1}")
        for name in SKETCH_OPTIONS:
            if getattr(self, name) is not None and not cls.needs_sketch:
                raise ValueError(f"--{name.replace('_', '-')} is for sketch models (pix2pix), not {self.model}")
        for name in ("l1_weight", "ms_weight", "aux_weight"):
            if (getattr(self, name) or 0) < 0:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 0")
        if self.tag_swap is not None and not 0 <= self.tag_swap <= 1:
            raise ValueError("--tag-swap is a share: between 0 and 1")
        unfit = [p for p in parse_policy(self.diffaug) if p not in cls.diffaug_policies]
        if unfit:
            raise ValueError(f"--diffaug {','.join(unfit)} does not fit {self.model}: it would move the face away "
                             f"from its sketch (use {','.join(cls.diffaug_policies) or 'none'})")
        if cls.own_nets and (self.backbone != "dcgan" or self.deep):
            raise ValueError(f"{self.model} has its own nets (U-Net and PatchGAN): --arch and --deep are for the "
                             "other models")
        # combinations that make no sense
        if self.loss == "wasserstein" and not cls.lipschitz and self.sn not in ("d", "both"):
            raise ValueError(f"--loss wasserstein needs a Lipschitz discriminator: add --sn d, or train wgan-gp "
                             f"(gradient penalty); {self.model} has neither")
        if self.deep and self.backbone != "dcgan":
            raise ValueError("--deep is the DCGAN study's extra layers; --arch resnet already has two convolutions "
                             "per resolution")

    @property
    def conditional(self) -> bool:
        """G takes tag conditions (a sketch model: when --labels are given)."""
        return loss_class(self.model).takes_conditions(self)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainOptions":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def flag(name: str) -> str:
    """The command-line spelling of a TrainOptions field."""
    return "--" + {"backbone": "arch", "catalog": "db"}.get(name, name).replace("_", "-")


# What a resumed run may change: where and how it runs, what it logs, and where it ends.
# Everything else is the run: a different value is refused, never silently ignored.
RESUMABLE = ("iters", "epochs", "catalog", "device", "precision", "progress", "log_every", "diag_every",
             "sample_every", "checkpoint_every", "keep_checkpoints", "tensorboard", "wandb", "cache_dir")


def resume_options(saved: dict, given: dict) -> tuple[TrainOptions, list[str]]:
    """The options of a resumed run: the run's own (`saved`, its options.json) with what the user
    `given` may change. Returns them and notes on changes worth saying; raises ValueError naming
    every given option that contradicts the run."""
    run = TrainOptions.from_dict(saved)
    clashes = [f"{flag(k)} {v} (the run has {getattr(run, k)})" for k, v in given.items()
               if k not in RESUMABLE and hasattr(run, k) and v != getattr(run, k)]
    if clashes:
        raise ValueError("a resumed run keeps its options, and these contradict it: " + "; ".join(clashes)
                         + ". Leave them out, or start a new run")
    merged = {**saved, "device": "auto"}     # the saved device is where it ran, not a wish
    merged.update({k: v for k, v in given.items() if k in RESUMABLE})
    if "iters" in given or "epochs" in given:          # a new end: the one given
        merged["epochs" if "iters" in given else "iters"] = None
    notes = [f"{flag(k)}: {saved.get(k)} -> {merged[k]}" for k in ("precision", "catalog")
             if k in given and given[k] != saved.get(k)]
    return TrainOptions.from_dict(merged), notes
