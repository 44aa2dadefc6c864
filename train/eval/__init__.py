"""Scoring runs and comparing them, for every model.

- metrics: the distribution metrics (FID/KID, diversity, Inception features);
- evaluate: the generic scorer of a model painting faces from noise, and eval.json;
- hooks: `Evaluation`, what a model brings (its scorer, what `train eval` prints after the common
  table, its own report section, its sample grid), and the generic one;
- score: `train eval`'s core: the run's model's hook looked up (its loss class's `evaluation`), eval.json written;
- report (+ report_pages, samples, spread): `train compare`'s report over evaluated runs, grouped
  by configuration over seeds, each run pictured and each model's section added by its hook.

A model with other inputs (train/sketch) builds its hook on these pieces; nothing here imports it.
"""
