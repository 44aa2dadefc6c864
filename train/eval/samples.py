"""The compare report's sample grid of a run that paints faces from noise: rows = the requested
tags of one group, GRID_COLUMNS faces per row, the same noise in every row and every run. It is
the generic `sample_grid` hook (train.eval.hooks); a model with pictures of its own brings another.
"""

from __future__ import annotations

from pathlib import Path

import torch

from train.eval.report_pages import short_tag
from train.runs import Run
from train.sampling import generate, labelled_grid

GRID_COLUMNS = 8


def sample_grid(run: Run, group: str | None, tags: list[str], path: Path, seed: int = 0) -> Path:
    """Rows = the requested tags (same noise in every row and every run), GRID_COLUMNS per row."""
    G = run.generator(ema=True)
    spec = run.spec if run.conditional else None
    if spec is None or group is None or not tags:
        images, _ = generate(run, GRID_COLUMNS * max(1, len(tags)), seed=seed, G=G)
    else:
        known = next((g.tags for g in spec.groups if g.name == group), [])
        rows = []
        for tag in tags:
            if tag in known:
                rows.append(generate(run, GRID_COLUMNS, conditions=[{group: tag}], seed=seed, G=G)[0])
            else:   # a tag this run never saw: a blank row keeps the runs' rows aligned
                rows.append(np_blank(GRID_COLUMNS, run.size))
        images = torch.cat(rows)
    labels = [short_tag(t) for t in tags] if spec is not None and group is not None and tags else None
    labelled_grid(images, GRID_COLUMNS, labels).save(path)
    return path


def np_blank(n: int, size: int):
    return torch.full((n, 3, size, size), 230, dtype=torch.uint8)
