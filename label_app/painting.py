"""What the Draw page needs from a sketch model, and how it finds one. No Streamlit here.

The contract a sketch-to-face trainer (`train pix2pix`) fulfils:

- A sketch run is a run folder (`runs/NNNNN-pix2pix-<labels>/`) whose `options.json` holds
  `"model": "pix2pix"`, `"size"` (32, 64 or 128), `"sketch"` = {"kind": "sketch", "method":
  "xdog", "params": the line-art parameters as `curate.lineart.params_json` wrote them, which
  `params_from_json` reads back}, and, for tag-conditioned runs, `"conditions"` (the
  `train.conditions.ConditionSpec` JSON: groups with their tags), and, for runs trained with colour
  hints (`train pix2pix --hints`), `"hints": true` (or G's arch with `hint_channels`). The page lists such runs, then
  the sketch models shipped with the package (`pretrained:NAME`, train.pretrained), whose `dir` is
  that name: the painter resolves it, and checks the shipped files' hashes, as `train sample` does.
- A painter: `train.sketch.paint.paint(run_dir, sketch, tags, n, seed, hints=None, on_hinted_tags=None)`
  -> a list of uint8 [S, S, 3]:
  `sketch` is the drawing as `train.sketch.drawing.normalise_drawing` made it at the run's size with
  the run's parameters (uint8 [S, S], ink 0, paper 255); `tags` maps a condition group to one
  of its tags ({"hair_color": "blonde hair"}); groups left out are drawn from the training
  distribution; `n` paintings, the same for the same seed. `hints`: None, or a hint picture laid over
  the sketch (uint8 RGBA, transparent where there is no hint; train/sketch/hints.py): only for runs
  trained with hints. The page cuts the hints drawn over the whole drawing to the drawing's face crop
  first (`normalise_framed`'s Frame), as `train sample --hints` does, so they stay where they were drawn.
  Where hints and tags disagree, the hints decide the tags they speak for (train/sketch/hint_tags.py),
  and the painter calls `on_hinted_tags({group: (asked tag, chosen tag)})` (the page says so).
  It raises `train.runs.RunError`
  or `train.conditions.ConditionError` (ValueErrors) with a one-line reason.

`find_painter()` gives the painter; where there is none (None) or no sketch run, the page says
that no sketch model is available: it never shows pictures that no model painted.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import numpy as np
import torch

from curate.lineart import LineArtError, XDoGParams, params_from_json
from train import pretrained
from train.sketch.paint import paint   # written with `train pix2pix` (issue 13, part 2)

SKETCH_MODELS = ("pix2pix",)


class Painter(Protocol):
    def __call__(self, run_dir: Path, sketch: np.ndarray, tags: dict[str, str], n: int,
                 seed: int, hints: np.ndarray | None = None,
                 on_hinted_tags: Callable[[dict], None] | None = None) -> list[np.ndarray]: ...


@dataclass
class SketchRun:
    dir: Path
    size: int
    params: XDoGParams
    groups: dict[str, list[str]] = field(default_factory=dict)   # exclusive condition group -> tags
    hints: bool = False                                           # trained with colour hints (--hints)

    @property
    def name(self) -> str:
        return self.dir.name


def read_sketch_run(run_dir: Path, named: Path | None = None) -> SketchRun | None:
    """The run's sketch settings, or None when the folder is not a (readable) sketch run. `named`: what
    the painter is given instead of the folder (a `pretrained:NAME`)."""
    try:
        options = json.loads((run_dir / "options.json").read_text())
        if options.get("model") not in SKETCH_MODELS:
            return None
        _, params = params_from_json(options["sketch"]["params"])
        groups = {g["name"]: list(g["tags"]) for g in options.get("conditions") or [] if g.get("exclusive")}
        hints = bool(options.get("hints") or ((options.get("arch") or {}).get("G") or {}).get("hint_channels"))
        return SketchRun(named or run_dir, int(options["size"]), params, groups, hints)
    except (OSError, ValueError, KeyError, TypeError, LineArtError):
        return None


def sketch_runs(runs_dir: Path) -> list[SketchRun]:
    """Sketch runs in `runs_dir`, newest (highest number) first, then the shipped sketch models."""
    own = sorted((d for d in runs_dir.iterdir() if d.is_dir()), reverse=True) if runs_dir.is_dir() else []
    found = [read_sketch_run(d) for d in own]
    found += [read_sketch_run(pretrained.PRETRAINED_DIR / name, Path(pretrained.PREFIX + name))
              for name in pretrained.known()]
    return [r for r in found if r is not None]


def find_painter() -> Callable | None:
    """The painter the page uses: `train.sketch.paint.paint` (the tests put others in its place,
    None among them)."""
    return paint


def limit_threads() -> None:
    """The torch threads the page paints with, as `label-app --paint-threads` set them
    (LABEL_APP_PAINT_THREADS; unset or 0: torch's own). OpenMP keeps this setting per thread, so it is
    called in the script thread that paints, before each painting."""
    n = int(os.environ.get("LABEL_APP_PAINT_THREADS") or 0)
    if n > 0 and torch.get_num_threads() != n:
        torch.set_num_threads(n)
