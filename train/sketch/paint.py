"""Painting sketches with a trained sketch model (`train pix2pix`): the painter of the app's Draw
page (the contract in label_app/painting.py), of `train sample --sketch` and of `train eval`.

Sketches are uint8 line maps at the run's size, ink 0 on paper 255, as train/sketch/drawing.py makes
them from any drawing and as the training sketches were. Tags are the run's condition groups
({"hair_color": "blonde hair"}); groups left out are drawn from the training distribution. The
noise and those draws come from `seed`: the same seed paints the same faces. A run trained with
`--hints` also takes colour hints: a hint picture laid over the drawing (train/sketch/hints.py).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from curate.lineart import params_from_json

from train.conditions import ConditionError
from train.runs import Run, RunError, load_run
from train.sampling import to_uint8
from train.sketch.drawing import DrawingError, normalise_framed
from train.sketch.hint_tags import overruled, settle
from train.sketch.hints import hints_from_picture, read_hint_picture


def sketch_run(run_dir: str | Path) -> Run:
    """The run folder, refused with a one-line reason unless it holds a sketch model."""
    run = load_run(run_dir)
    if run.sketch is None:
        raise RunError(f"{run.dir} is a {run.model} run, not a sketch model: painting a sketch needs a "
                       "`train pix2pix` run")
    return run


def _stamp(run: Run) -> tuple:
    """What the generator is read from, with its modification time: a new checkpoint is a new G."""
    final = run.dir / "G_ema.pt"
    path = final if final.exists() else run.latest_checkpoint()
    return (str(path), path.stat().st_mtime_ns) if path is not None else ()


@lru_cache(maxsize=4)
def _generator(run_dir: str, stamp: tuple) -> torch.nn.Module:
    return load_run(run_dir).generator(ema=True)


def generator(run: Run) -> torch.nn.Module:
    """The run's EMA generator, loaded once per run and checkpoint (the Draw page paints often)."""
    return _generator(str(run.dir.resolve()), _stamp(run))


def complete_tags(run: Run, tags: list[dict], gen: torch.Generator) -> list[dict] | None:
    """Tag dicts (one per painting) with the left-out groups drawn from `gen`; None for a run without tags."""
    spec = run.spec if run.conditional else None
    if spec is None:
        if any(tags):
            raise ConditionError(f"{run.dir.name} paints sketches without tags: leave the tags out")
        return None
    return spec.complete(tags, gen)


def takes_hints(run: Run) -> bool:
    return bool(run.options["arch"]["G"].get("hint_channels"))


def hint_channels(run: Run, picture, name: str | None = None, frame=None) -> torch.Tensor:
    """A hint picture at the run's size as G's hint channels [1, 4, S, S], cut to the drawing's `frame`
    (its face crop; None: whole); refused in one line for a run trained without hints."""
    check_takes_hints(run)
    return hints_from_picture(picture, run.size, name, frame)


def check_takes_hints(run: Run) -> None:
    """A one-line refusal for a run trained without colour hints."""
    if not takes_hints(run):
        raise RunError(f"{run.dir.name} was trained without colour hints: a hint picture needs a run of "
                       "`train pix2pix --hints`")


def paint_batch(run: Run, G: torch.nn.Module, sketches: np.ndarray | torch.Tensor, tags: list[dict],
                seed: int = 0, batch: int = 256, hints: torch.Tensor | None = None,
                hints_decide: bool = True) -> torch.Tensor:
    """One painting per sketch (uint8 [N, S, S] or [N, 1, S, S]) with its tag dict: uint8 [N, 3, S, S].
    `hints`: hint channels (`hint_channels`) for every sketch [N, 4, S, S] or all of them [1, 4, S, S];
    where they disagree with the tags, the hints decide (train/sketch/hint_tags.py) unless
    `hints_decide` is False (the network alone, as `train eval` also measures it)."""
    return paint_with_tags(run, G, sketches, tags, seed, batch, hints, hints_decide)[0]


@torch.no_grad()
def paint_with_tags(run: Run, G: torch.nn.Module, sketches: np.ndarray | torch.Tensor, tags: list[dict],
                    seed: int = 0, batch: int = 256, hints: torch.Tensor | None = None,
                    hints_decide: bool = True) -> tuple[torch.Tensor, list[dict] | None]:
    """`paint_batch`, and the tags each sketch was painted with: complete (left-out groups as drawn)
    and settled by the hints; None for a run without tags."""
    s = torch.as_tensor(np.asarray(sketches))
    s = s[:, None] if s.ndim == 3 else s
    size = run.size
    if s.dtype != torch.uint8 or s.ndim != 4 or s.shape[1:] != (1, size, size):
        raise ValueError(f"{run.dir.name} paints uint8 {size}x{size} sketches, not {s.dtype} "
                         f"{'x'.join(map(str, s.shape[-2:]))}: normalise the drawing at the run's size "
                         "(train.sketch.drawing.normalise_drawing)")
    if len(tags) != len(s):
        raise ValueError(f"{len(tags)} tag sets for {len(s)} sketches")
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(len(s), run.z_dim, generator=gen)
    full = complete_tags(run, tags, gen)
    h = None if hints is None else hints.expand(len(s), -1, -1, -1)

    def raw(rows, c, hinted: bool = True) -> torch.Tensor:     # float [len(rows), 3, S, S] in [-1, 1]
        rows = torch.as_tensor(rows, dtype=torch.long)
        out = [G(s[r].float() / 127.5 - 1, None if c is None else c[k:k + batch], z[r],
                 None if h is None else h[r] if hinted else torch.zeros_like(h[r])).float()
               for k, r in ((k, rows[k:k + batch]) for k in range(0, len(rows), batch))]
        return torch.cat(out) if out else torch.zeros(0, 3, size, size)

    if full is not None and h is not None and hints_decide:
        full = settle(run.spec, lambda rows, t: raw(rows, run.spec.encode(t), hinted=False), s, full, h)
    return to_uint8(raw(range(len(s)), None if full is None else run.spec.encode(full))), full


def paint(run_dir: Path, sketch: np.ndarray, tags: dict[str, str], n: int, seed: int,
          hints=None, on_hinted_tags=None) -> list[np.ndarray]:
    """`n` paintings of one sketch (uint8 [S, S], ink 0 on paper 255) with `tags`, as uint8 [S, S, 3].
    `hints`: a hint picture (RGBA array, file, bytes or PIL image; train.sketch.hints) over the drawing;
    `on_hinted_tags({group: (asked, chosen)})` when the hints overrule tags given in `tags`."""
    if n < 1:
        raise ValueError(f"n must be at least 1, not {n}")
    run = sketch_run(run_dir)
    sketch = np.asarray(sketch)
    if sketch.ndim != 2:
        raise ValueError(f"a sketch is one grey picture [S, S], not an array of shape {sketch.shape}")
    h = None if hints is None else hint_channels(run, hints)
    faces, painted = paint_with_tags(run, generator(run), np.repeat(sketch[None], n, 0), [dict(tags)] * n, seed,
                                     hints=h)
    changes = overruled(tags, painted)
    if changes and on_hinted_tags is not None:
        on_hinted_tags(changes)
    return list(faces.permute(0, 2, 3, 1).numpy())


DRAWING_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff")


def drawing_files(path: Path) -> list[Path]:
    """A drawing file, or the picture files of a folder (sorted); refused when there are none."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in DRAWING_SUFFIXES)
        if not files:
            raise ValueError(f"{path} holds no pictures ({', '.join(DRAWING_SUFFIXES)})")
        return files
    if not path.exists():
        raise ValueError(f"{path}: no such file or folder")
    return [path]


def same_proportions(size: tuple[int, int], hint_size: tuple[int, int]) -> bool:
    """Whether a drawing of `size` (w, h) and a hint picture of `hint_size` have the same proportions
    (2% apart at most), so that the hint picture can be laid over the drawing."""
    return abs(size[0] / size[1] - hint_size[0] / hint_size[1]) <= 0.02 * hint_size[0] / hint_size[1]


def check_proportions(path: Path, hint_size: tuple[int, int]) -> None:
    """A DrawingError when the drawing's proportions are not the hint picture's (2% apart): laid over it,
    the hints would land elsewhere than drawn. An unreadable drawing is left to normalise_drawing."""
    try:
        with Image.open(path) as im:
            w, h = im.size
    except (OSError, ValueError):
        return
    if not same_proportions((w, h), hint_size):
        raise DrawingError(f"{path}: {w}x{h} is not of the hint picture's proportions ({hint_size[0]}x"
                           f"{hint_size[1]}): hints are laid over the drawing, draw them on a copy of it")


def paint_drawings(run: Run, paths: list[Path], tags: dict, n: int, seed: int = 0, warn=None,
                   hints: Path | None = None, on_drawing=None, on_hinted_tags=None) -> tuple[list[Path], torch.Tensor]:
    """Each drawing normalised as training sketches are (train/sketch/drawing.py), then painted n ways:
    (the drawings used, uint8 [rows x (1 + n), 3, S, S]: per row the sketch, then its paintings).
    With `warn`, a drawing that cannot be used is named through it and left out (several files);
    without, its DrawingError stops everything. `hints`: a hint picture laid over every drawing, cut to
    each drawing's face crop as the drawing is, so that the hints stay where they were drawn.
    `on_drawing()` after each drawing (for a bar); `on_hinted_tags(path, {group: (asked, chosen)})`
    for a drawing whose hints overruled tags given in `tags` (train/sketch/hint_tags.py)."""
    _, params = params_from_json(run.sketch["params"])
    if hints is not None:                   # a run without hints, or an unreadable picture: refused first
        check_takes_hints(run)
        hints = read_hint_picture(hints)    # read once, cut to each drawing's face below
    hint_size = None if hints is None else hints.size
    G = generator(run)
    used, tiles = [], []
    for path in paths:
        try:
            if hint_size is not None:
                check_proportions(path, hint_size)
            lines, frame = normalise_framed(path, run.size, params, name=str(path))
        except DrawingError as e:
            if warn is None:
                raise
            warn(f"skipped: {e}")
            continue
        finally:
            if on_drawing is not None:
                on_drawing()
        h = None if hints is None else hint_channels(run, hints, frame=frame)
        faces, painted = paint_with_tags(run, G, np.repeat(lines[None], n, 0), [dict(tags)] * n, seed, hints=h)
        changes = overruled(tags, painted)
        if changes and on_hinted_tags is not None:
            on_hinted_tags(path, changes)
        used.append(path)
        tiles += [torch.from_numpy(lines)[None].expand(3, -1, -1)[None], faces]
    if not used:
        raise DrawingError(f"none of the {len(paths)} pictures can be used as a drawing")
    return used, torch.cat(tiles)
