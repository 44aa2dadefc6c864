"""The sketch model's evaluation hook, which pix2pix's loss class carries (train/losses/pix2pix.py):
`train eval` scores a sketch run with train/sketch/evaluate.py and prints its fidelity, tags,
noise and hand drawings after the common table; `train compare` adds the "Sketch models" section
and shows each sketch run's newest training grid as its sample (train/sketch/report.py).
"""

from __future__ import annotations

from pathlib import Path

from curate.taggers.classifier import Judge
from db import Catalog

from train.eval.hooks import EvalSettings, Evaluation
from train.runs import Run
from train.sketch.evaluate import evaluate_sketch_run
from train.sketch.report import print_sketch_eval, sketch_grid, sketch_section


def score_sketch_run(run: Run, judge: Judge, catalog: Catalog, settings: EvalSettings, log) -> dict:
    """The test split's sketches painted and scored, and the hand drawings of `settings.drawings`
    if given (`--n` and `--per-class` do not apply: every test sketch is painted, and it says so)."""
    judge.to(settings.device)         # the paintings are made on the CPU (train.sketch.paint's cached generator)
    return evaluate_sketch_run(run, judge, catalog, seed=settings.seed, drawings=settings.drawings,
                               inception_weights=settings.inception_weights, download=settings.download, log=log,
                               requested_n=settings.n)


def newest_training_grid(run: Run, group: str | None, tags: list[str], path: Path, seed: int = 0) -> Path:
    """A sketch model paints sketches, not tags from noise: its sample is its own grid of held-out
    sketches, whatever rows the other runs show."""
    return sketch_grid(run, path)


SKETCH_EVALUATION = Evaluation(score=score_sketch_run, sample_grid=newest_training_grid,
                               print_details=print_sketch_eval, report_section=sketch_section)
