"""How long an experiment's plan will take, from a few timed steps, said before it starts: a quick
look that takes an hour is no quick look, and the one who asked should know before, not after.

Timed on this machine, now: decoding real faces (a test split), a few batches of the judge on a
subset, and 4 steps of the first configuration (a throwaway run in a temporary folder, so its
setup, face cache included, is counted once); each multiplied by what the plan asks. Other
configurations are taken to cost what the first does: an estimate, said as one.
"""

from __future__ import annotations

import csv
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from curate.taggers.classifier import JudgeOptions, build_net, fit, load_labelled
from db import Catalog

from train.experiment import Plan
from train.loop import stopped_early, train
from train.runs import load_run
from train.sampling import generate

TIMED_STEPS = 4          # the first is a warm-up: the time per step is the last three's
TIMED_BATCHES = 3
NOT_NOW = 10 ** 9        # checkpoints, grids and diagnostics: none during the timed steps


class EstimateStopped(Exception):
    """Ctrl-C (or SIGTERM) while the plan was being timed: nothing of the experiment has started."""


@dataclass
class Estimate:
    judge: float         # seconds
    training: float
    evaluation: float
    runs: int
    steps: int

    @property
    def total(self) -> float:
        return self.judge + self.training + self.evaluation

    def __str__(self) -> str:
        def minutes(s: float) -> str:
            return f"{s / 60:.1f}" if s < 600 else f"{s / 60:.0f}"
        return (f"about {minutes(self.total)} minutes: judge ~{minutes(self.judge)}, training ~"
                f"{minutes(self.training)} ({self.runs} runs x {self.steps} steps), evaluation ~"
                f"{minutes(self.evaluation)}")


def plan_steps(plan: Plan) -> int:
    """Generator steps of the first configuration (--epochs: passes over the shared faces)."""
    o = plan.configurations[0].options
    if o.get("iters") is not None:
        return int(o["iters"])
    return math.ceil((o.get("epochs") or 10) * plan.shared.get("faces", 0) / max(1, o["batch"]))


def _decode_seconds_per_face(catalog: Catalog, plan: Plan, size: int) -> float:
    started = time.perf_counter()
    test = load_labelled(catalog, plan.judge_labels, "test", size)
    return (time.perf_counter() - started) / max(1, len(test.face_ids))


def _judge_seconds(plan: Plan, size: int, faces: int, per_face: float) -> tuple[float, torch.nn.Module]:
    """The judge: its epochs over the faces from a few timed batches, and decoding them."""
    options = JudgeOptions(source=plan.judge_labels, size=size, epochs=1)
    counts = plan.shared.get("counts", {})
    groups = counts.get(plan.judge_labels) or next(iter(counts.values()), {}) or {"tags": {"a": 1, "b": 1}}
    heads = [{"name": g, "exclusive": True, "tags": list(tags)} for g, tags in groups.items()]
    net = build_net(options, heads, seed=0)
    n = options.batch * TIMED_BATCHES
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8)
    y = [torch.randint(0, len(h["tags"]), (n,)) for h in heads]
    started = time.perf_counter()
    fit(net, heads, images, y, options)
    per_batch = (time.perf_counter() - started) / TIMED_BATCHES
    seconds = 0.0 if plan.judge_file else plan.judge_epochs * math.ceil(faces / options.batch) * per_batch
    return seconds + (0.0 if plan.judge_file else faces * per_face), net


def _training_seconds(plan: Plan, overrides: dict, folder: Path) -> tuple[float, float, Path]:
    """(seconds a step, seconds of a run's setup) of the first configuration, and the throwaway run."""
    # its face cache in the throwaway folder unless one is given: a dry run leaves nothing behind
    opts = plan.run_options(plan.configurations[0], plan.seeds[0], folder,
                            {"cache_dir": str(folder / "cache"), **overrides, "progress": False})
    opts.iters, opts.epochs, opts.experiment = TIMED_STEPS, None, None
    opts.log_every, opts.diag_every, opts.checkpoint_every, opts.sample_every = 1, NOT_NOW, NOT_NOW, NOT_NOW
    started = time.perf_counter()
    run_dir = Path(train(opts))
    if stopped_early(run_dir):   # the user stopped the timing run: stop the command, not just the timing
        raise EstimateStopped("stopped while timing the plan: no run was started")
    wall = time.perf_counter() - started
    with open(run_dir / "metrics.csv") as f:
        seconds = [float(r["seconds"]) for r in csv.DictReader(f)]
    per_step = (seconds[-1] - seconds[0]) / max(1, len(seconds) - 1)
    return per_step, max(0.0, wall - seconds[-1]), run_dir


def _generated_seconds_per_face(run_dir: Path, judge_net: torch.nn.Module, size: int) -> float:
    run = load_run(run_dir)
    started = time.perf_counter()
    if run.sketch is None:
        images, _ = generate(run, 64, seed=0, G=run.generator(ema=True, warn=lambda text: None))
    else:       # a sketch model paints drawings: its generator's time is left out of the estimate
        images = torch.randint(0, 256, (64, 3, size, size), dtype=torch.uint8)
    judge_net.eval()
    with torch.no_grad():
        judge_net(images.float() / 127.5 - 1)
    return (time.perf_counter() - started) / 64


def estimate_plan(plan: Plan, overrides: dict | None = None) -> Estimate:
    """How long `plan` will take here, from a few timed steps (see the module docstring)."""
    size = plan.configurations[0].options["size"]
    with Catalog(plan.catalog, create=False) as catalog:
        per_face = _decode_seconds_per_face(catalog, plan, size)
        faces = sum(catalog.split_counts().values())
    judge, judge_net = _judge_seconds(plan, size, faces, per_face)
    with tempfile.TemporaryDirectory(prefix="estimate-") as folder:      # the throwaway run
        per_step, setup, run_dir = _training_seconds(plan, overrides or {}, Path(folder))
        per_generated = _generated_seconds_per_face(run_dir, judge_net, size)
    runs, steps = len(plan.configurations) * len(plan.seeds), plan_steps(plan)
    classes = max((len(tags) for tags in next(iter(plan.shared.get("counts", {}).values()), {}).values()),
                  default=0)
    generated = plan.n + plan.per_class * classes
    evaluation = runs * (generated * per_generated + faces * per_face)
    return Estimate(judge=judge, training=setup + runs * steps * per_step, evaluation=evaluation, runs=runs,
                    steps=steps)
