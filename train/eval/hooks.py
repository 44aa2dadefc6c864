"""What a model brings to `train eval` and `train compare`: its `Evaluation` hook, which its loss
class carries (`Loss.evaluation`, train/losses/base.py), so scoring and reporting never ask which
model a run trained.

An `Evaluation` names the model's scorer (a run -> the dict written as eval.json), the lines
`train eval` prints after the table every run gets, the section the compare report adds for the
model's runs (after the samples) and the picture of a run in the report's Samples section.
`GENERIC_EVALUATION` is what every model painting faces from noise uses: train.eval.evaluate's
scorer and train.eval.samples' grid, nothing more. A model with other inputs brings its own
(train/sketch/hooks.py), built on these pieces.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from curate.taggers.classifier import Judge
from db import Catalog

from train.eval.evaluate import evaluate_run
from train.eval.report_pages import Section
from train.eval.samples import sample_grid
from train.runs import Run


@dataclass(frozen=True)
class EvalSettings:
    """What `train eval` asks of a scorer (its options); each scorer takes what applies to its model."""
    n: int = 10000                                  # generated faces
    seed: int = 0                                   # noise and conditions
    per_class: int = 500                            # generated faces per tag for intra-class FID
    inception_weights: str | Path | None = None     # InceptionV3 weights, else the cached download
    download: bool = False                          # download them when not cached (only when asked)
    drawings: str | Path | None = None              # a folder of hand drawings, for models that paint them
    device: str = "cpu"                             # where the judge (and a generator from noise) runs


Scorer = Callable[[Run, Judge, Catalog, EvalSettings, Callable[[str], None]], dict]
Printer = Callable[[object, dict], None]                                      # (rich console, eval.json)
ReportSection = Callable[[list[Run], list[dict], Path], Optional[Section]]    # (runs, their evals, report folder)
SampleGrid = Callable[[Run, Optional[str], list[str], Path, int], Path]      # (run, group, tags, png, seed)


@dataclass(frozen=True)
class Evaluation:
    score: Scorer                              # the run scored: what eval.json holds
    sample_grid: SampleGrid                    # its picture in the report's Samples section
    print_details: Optional[Printer] = None    # `train eval`: printed after the table every run gets
    report_section: Optional[ReportSection] = None   # `train compare`: the section on this model's runs


def score_from_noise(run: Run, judge: Judge, catalog: Catalog, settings: EvalSettings, log) -> dict:
    """The generic scorer (train.eval.evaluate.evaluate_run) with `train eval`'s settings."""
    return evaluate_run(run, judge, catalog, n=settings.n, seed=settings.seed, per_class=settings.per_class,
                        inception_weights=settings.inception_weights, download=settings.download, log=log,
                        device=settings.device)


GENERIC_EVALUATION = Evaluation(score=score_from_noise, sample_grid=sample_grid)
