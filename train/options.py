"""Every option of a training run, defined once (saved as the run's options.json), the rules
on which combinations make sense, and how a resumed run's options are merged.

Each option is a field whose metadata (train.option_fields) gives its help text, flag and
group, and whether a resume may change it: `train <model>`'s options are made from these
(train.commands.option_params). Options of one model only are declared by its loss class
(`Loss.options`, e.g. pix2pix's) and spliced in here, so options.json keeps every key for
every model (None where a model has no use for it). A model's own defaults (optimiser,
adversarial loss, spectral norm) live on its loss class and fill whatever the command line
leaves out, so the study's models keep exactly the values they always had.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass

from train.augment import parse_policy
from train.losses import LOSS_CHOICES, LOSSES, loss_class
from train.losses.d_score_terms import check_options as check_score_options
from train.models import ARCHS, SIZES, SN_CHOICES
from train.option_fields import cli_name, cli_of, option

PRECISIONS = ("auto", "fp32", "bf16")
MODEL_OPTIONS_AFTER = "aux_weight"     # where the models' own options go (in --help and options.json)


def _with_model_options(cls):
    """Splice the options every model declares on its loss class (`Loss.options`) in after
    MODEL_OPTIONS_AFTER, before @dataclass reads the fields."""
    notes = {}
    for name, note in cls.__annotations__.items():
        notes[name] = note
        if name == MODEL_OPTIONS_AFTER:
            for loss in dict.fromkeys(LOSSES.values()):
                for key, declared in loss.options.items():
                    notes.setdefault(key, declared.type)
                    setattr(cls, key, declared.field)
    cls.__annotations__ = notes
    return cls


@dataclass
@_with_model_options
class TrainOptions:
    model: str = option("dcgan", group="nets", shown=False)   # the command's name
    catalog: str = option("catalog.db", "", "run", flag="db", convention="DbOption", path=True, unset=True,
                          resumable=True)
    catalog_fingerprint: str = option("", group="run", shown=False)
    labels: str | None = option(None, "The label source read (manual, i2v, animeface, any imported name); "
                                "unconditional models: which faces to use.", "data")  # None: all ok faces, no conditions
    attrs: list[str] = option(help="Tag groups to condition on, comma-separated [conditional models: "
                              "hair_color,eye_color].", group="data", factory=list)
    min_prob: float | None = option(None, "Probabilistic sources: keep labels >= this.", "data")
    common: list[str] = option(help="Keep only faces also labelled by these sources (comma-separated): same "
                               "faces across label sources.", group="data", factory=list)
    min_per_tag: int = option(10, "Refuse tags with fewer faces than this.", "data")
    drop_rare: bool = option(False, "Leave rare tags (and their faces) out instead of refusing.", "data")
    # tags left out by name (an experiment's shared set)
    drop_tags: list[str] = option(group="data", factory=list, shown=False)
    # keep only faces every source (labels + common) labels alike
    same_faces: bool = option(False, group="data", shown=False)
    split: str = option("train", group="data", shown=False)
    size: int = option(64, "Image size: 32, 64 or 128.", "data")
    iters: int | None = option(None, "Generator steps.", "optimiser", resumable=True)       # or
    epochs: float | None = option(None, "Passes over the faces [default 10].", "optimiser", resumable=True)
    batch: int = option(64, "Batch size (over all processes).", "optimiser")
    z_dim: int | None = option(None, "Noise dimensions [the model's: {z_dim}].", "nets")
    ngf: int = option(64, "Generator width.", "nets")
    ndf: int = option(64, "Discriminator width.", "nets")
    deep: bool = option(False, "Extra stride-1 conv per resolution (the study's 'DCGAN with extra layers'; "
                        "--arch dcgan only).", "nets")
    # --arch dcgan | resnet; options.json's "arch" is the nets' constructor arguments
    backbone: str = option("dcgan", "Network backbone: dcgan (the study's) or resnet (SNGAN-style residual "
                           "blocks).", "nets", flag="arch")
    loss: str | None = option(None, "Adversarial loss: bce, hinge, or wasserstein (needs --sn d or wgan-gp) "
                              "[the model's: {loss}].", "optimiser")
    sn: str | None = option(None, "Spectral normalisation in none, d, g or both nets [the model's: {sn}].", "nets")
    diffaug: str = option("", "DiffAugment policy applied to real and fake faces before D: a subset of "
                          "color,translation,cutout [none].", "data", unset=True)
    # ADA (Karras et al. 2020): the --diffaug policy on each image with a probability tuned from D
    ada: float | None = option(None, "Adaptive augmentation (ADA): apply --diffaug [translation,cutout] to each image "
                               "with a probability tuned so E[sign(D(real))] stays near this target (the paper's "
                               "0.6) [off].", "data")
    ada_kimg: float | None = option(None, "--ada: thousands of images for its probability to go from 0 to 1 [500, "
                                    "the paper's; less for short runs].", "data")
    lr_g: float | None = option(None, "Generator learning rate.", "optimiser")
    lr_d: float | None = option(None, "Discriminator learning rate.", "optimiser")
    beta1: float | None = option(None, "Adam beta1.", "optimiser")
    beta2: float | None = option(None, "Adam beta2.", "optimiser")
    n_critic: int | None = option(None, "D steps per G step [wgan-gp: 5, else 1].", "optimiser")
    gp_weight: float = option(10.0, "WGAN-GP gradient penalty weight.", "optimiser")
    lecam: float = option(0.0, "LeCam regularisation weight (Tseng et al. 2021: D's scores anchored to their moving "
                          "averages, for few faces; e.g. 0.3 beside --diffaug) [0: off].", "optimiser")
    aux_weight: float = option(1.0, "Auxiliary classifier loss weight (acgan, reacgan, tacgan, pix2pix with --labels).",
                               "optimiser")
    # (here: the models' own options, Loss.options)
    # half-life ~140 steps: short CPU runs still get a current EMA
    ema_beta: float = option(0.995, "EMA decay of G per step.", "optimiser")
    flip: bool = option(True, "Random horizontal flips.", "data")
    seed: int = option(0, "Random seed (init, noise, data order).", "run")
    runs_dir: str = option("runs", "Where run folders go.", "run", path=True)
    cache_dir: str | None = option(None, "Decoded-crop cache [~/.cache/animeface-gan-study].", "run", path=True,
                                   resumable=True)
    log_every: int = option(50, "metrics.csv row every N steps.", "run", resumable=True)
    diag_every: int = option(200, "Mode-collapse diagnostics every N steps.", "run", resumable=True)
    sample_every: int | None = option(None, "Sample grid every N steps [once per epoch].", "run",
                                      resumable=True)
    checkpoint_every: int = option(1000, "Checkpoint every N steps.", "run", resumable=True)
    keep_checkpoints: int = option(3, group="run", shown=False, resumable=True)
    dwin_window: int = option(200, group="run", shown=False)
    # options.json records the device that ran
    device: str = option("auto", "", "run", convention="DeviceOption", resumable=True)
    # resolved when the run starts
    precision: str = option("auto", "fp32, bf16 (autocast), or auto: bf16 where the GPU or CPU computes it "
                            "natively (AVX512-BF16, AMX), else fp32.", "run", resumable=True)
    tensorboard: bool = option(False, "Also log to TensorBoard (RUN/tensorboard).", "run", resumable=True)
    wandb: bool = option(False, "Also log to Weights & Biases (offline unless WANDB_MODE=online).", "run",
                         resumable=True)
    progress: bool = option(True, "", "run", convention="ProgressOption", resumable=True)
    # the experiment folder the run belongs to (its judge scores it)
    experiment: str | None = option(None, group="run", shown=False)

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
        for name, owners in MODEL_OPTIONS.items():
            if getattr(self, name) is not None and name not in cls.options:
                raise ValueError(f"{flag(name)} is for {' and '.join(o.options_are_for for o in owners)}, "
                                 f"not {self.model}")
        if self.aux_weight < 0:
            raise ValueError("--aux-weight must be >= 0")
        cls.check_options(self)
        check_score_options(self, cls)
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
        """Saved options (a run's options.json, a plan's configuration) as TrainOptions; a value of
        the wrong type or beyond SAVED_LIMITS is refused (ValueError naming the key)."""
        names = {f.name for f in dataclasses.fields(cls)}
        saved = {k: v for k, v in d.items() if k in names}
        check_saved_types(saved)
        return cls(**saved)


FIELDS = {f.name: f for f in dataclasses.fields(TrainOptions)}
HINTS = typing.get_type_hints(TrainOptions)      # the fields' types, evaluated
# saved options beyond these are refused: a run folder from elsewhere must not ask for a net that fills the memory
SAVED_LIMITS = {"ngf": 1024, "ndf": 1024, "z_dim": 4096, "batch": 65536}


def _fits(value, hint) -> bool:
    """Whether a JSON value is of a field's type (a whole number passes for a float, never a boolean)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_fits(value, h) for h in typing.get_args(hint))
    if typing.get_origin(hint) is list:
        return isinstance(value, list) and all(_fits(v, typing.get_args(hint)[0]) for v in value)
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def check_saved_types(saved: dict) -> None:
    """Raise ValueError naming the first saved option of the wrong type or beyond SAVED_LIMITS."""
    for key, value in saved.items():
        if not _fits(value, HINTS[key]):
            hint = HINTS[key]
            raise ValueError(f"option {key!r} is {value!r}, not {getattr(hint, '__name__', None) or hint}")
        if key in SAVED_LIMITS and value is not None and value > SAVED_LIMITS[key]:
            raise ValueError(f"option {key!r} is {value}, more than {SAVED_LIMITS[key]}")
# the models' own options, each with the loss classes that declare it
MODEL_OPTIONS = {name: [loss for loss in dict.fromkeys(LOSSES.values()) if name in loss.options]
                 for name in FIELDS if any(name in loss.options for loss in LOSSES.values())}


def flag(name: str) -> str:
    """The command-line spelling of a TrainOptions field (backbone: --arch, catalog: --db)."""
    return "--" + (cli_name(FIELDS[name]) if name in FIELDS else name).replace("_", "-")


def in_group(group: str) -> set[str]:
    """The options of one group (train.option_fields.GROUPS)."""
    return {name for name, f in FIELDS.items() if cli_of(f).group == group}


# What a resumed run may change: where and how it runs, what it logs, and where it ends.
# Everything else is the run: a different value is refused, never silently ignored.
RESUMABLE = tuple(name for name, f in FIELDS.items() if cli_of(f).resumable)


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
