"""`train eval`'s core: a run folder scored by its model's own scorer, its eval.json written.

A run's model (options.json) names its loss class (train.losses), which carries the model's
`Evaluation` hook (train.eval.hooks): `evaluation_of` looks it up for the scorer here, for what
`train eval` prints and for what the compare report shows, so none of them asks which model
a run trained.
"""

from __future__ import annotations

from pathlib import Path

from curate.taggers.classifier import load_judge
from db import Catalog

from train.eval.evaluate import write_eval
from train.eval.hooks import EvalSettings, Evaluation
from train.losses import loss_class
from train.runs import Run, load_run


def evaluation_of(run: Run) -> Evaluation:
    """How runs of this run's model are scored and reported."""
    return loss_class(run.model).evaluation


def score_run(run_dir: str | Path, judge_path: str | Path, catalog: Catalog, n: int = 10000, seed: int = 0,
              per_class: int = 500, inception_weights: str | Path | None = None, download: bool = False,
              log=print, drawings: str | Path | None = None, device: str = "cpu") -> dict:
    """Evaluate the run folder with the judge file and write its eval.json, which records the
    judge's path (so a rerun of an experiment knows the evaluation is current). The run's model
    scores it its own way (train.eval.hooks); `drawings`: hand drawings, for models that paint them;
    `device`: where the judge (and a generator painting from noise) runs."""
    run = load_run(run_dir)
    settings = EvalSettings(n=n, seed=seed, per_class=per_class, inception_weights=inception_weights,
                            download=download, drawings=drawings, device=device)
    result = evaluation_of(run).score(run, load_judge(judge_path), catalog, settings, log)
    result["judge"]["path"] = str(judge_path)
    write_eval(run, result)
    return result
