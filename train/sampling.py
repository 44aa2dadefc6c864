"""Images from a generator: a run's samples for given (or drawn) conditions, the fixed inputs
of the sample grids a run writes while it trains, and grids as pictures."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from train.conditions import ConditionSpec
from train.runs import Run


@torch.no_grad()
def generate(run: Run, n: int, conditions: list[dict] | None = None, seed: int = 0, batch: int = 256,
             device: str | torch.device = "cpu", ema: bool = True, G: torch.nn.Module | None = None,
             ) -> tuple[torch.Tensor, list[dict]]:
    """n images as uint8 [n, 3, H, W] and the tag dict each was conditioned on.

    `conditions`: None draws them from the training label distribution; a list of tag
    dicts (length n, or length 1 to repeat) fixes them, groups it leaves out are drawn.
    Unconditional runs return empty tag dicts. Same seed, same images.
    """
    G = G if G is not None else run.generator(ema=ema, device=device)
    gen = torch.Generator().manual_seed(seed)
    spec = run.spec if run.conditional else None
    z = torch.randn(n, run.z_dim, generator=gen)
    if spec is None:
        c, dicts = None, [{} for _ in range(n)]
    else:
        if conditions is None:
            c, dicts = spec.sample(n, gen)
        else:
            if len(conditions) == 1:
                conditions = conditions * n
            if len(conditions) != n:
                raise ValueError(f"{len(conditions)} conditions for {n} images")
            dicts = spec.complete(conditions, gen)
            c = spec.encode(dicts)
    out = []
    for i in range(0, n, batch):
        x = G(z[i:i + batch].to(device), None if c is None else c[i:i + batch].to(device))
        out.append(to_uint8(x.float().cpu()))
    return (torch.cat(out) if out else torch.zeros(0, 3, run.size, run.size, dtype=torch.uint8)), dicts


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float -> uint8 [0, 255]."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def image_grid(images: torch.Tensor, nrow: int, pad: int = 2) -> np.ndarray:
    """uint8 [N, 3, H, W] -> one HxWx3 uint8 array, `nrow` images per row."""
    n, _, h, w = images.shape
    rows = (n + nrow - 1) // nrow
    grid = np.full((rows * (h + pad) + pad, nrow * (w + pad) + pad, 3), 255, np.uint8)
    for i, img in enumerate(images.permute(0, 2, 3, 1).numpy()):
        r, c = divmod(i, nrow)
        grid[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = img
    return grid


GRID_MIN_TILE = 64     # px: smaller faces are enlarged (nearest neighbour) to at least this in grids


def labelled_grid(images: torch.Tensor, nrow: int, row_labels: list[str] | None = None,
                 title: str | None = None, pad: int = 2) -> Image.Image:
    """A grid people can read: tiles under GRID_MIN_TILE px enlarged by a whole factor (nearest:
    no invented detail), each row's label written to its left, and an optional title above."""
    scale = max(1, math.ceil(GRID_MIN_TILE / images.shape[-1]))
    img = Image.fromarray(image_grid(images, nrow, pad))
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    font = ImageFont.load_default(size=14)
    rows = (len(images) + nrow - 1) // nrow
    if row_labels and len(row_labels) == rows:
        row_height = (images.shape[-2] + pad) * scale
        margin = 12 + max(int(font.getlength(t)) for t in row_labels)
        out = Image.new("RGB", (img.width + margin, img.height), "white")
        out.paste(img, (margin, 0))
        draw = ImageDraw.Draw(out)
        for i, text in enumerate(row_labels):
            draw.text((6, pad * scale + i * row_height + (row_height - pad * scale) // 2), text, fill="black",
                      font=font, anchor="lm")
        img = out
    if title:
        out = Image.new("RGB", (max(img.width, 12 + int(font.getlength(title))), img.height + 22), "white")
        out.paste(img, (0, 22))
        ImageDraw.Draw(out).text((6, 11), title, fill="black", font=font, anchor="lm")
        img = out
    return img


def page_paths(output: Path, pages: int) -> list[Path]:
    """out.png, out-2.png, out-3.png ...: one file a page."""
    return [output if k == 0 else output.with_name(f"{output.stem}-{k + 1}{output.suffix}") for k in range(pages)]


def write_pages(images: torch.Tensor, columns: int, output: Path, rows_per_page: int,
                row_labels: list[str] | None = None, title: str | None = None) -> list[Path]:
    """`labelled_grid`s of at most `rows_per_page` rows each, as out.png, out-2.png ...: a grid of
    hundreds of rows is a picture no one can open. Returns the files written."""
    rows = (len(images) + columns - 1) // columns
    pages = max(1, (rows + rows_per_page - 1) // rows_per_page)
    per_page = rows_per_page * columns
    written = []
    for k, path in enumerate(page_paths(output, pages)):
        labels = row_labels[k * rows_per_page:(k + 1) * rows_per_page] if row_labels else None
        labelled_grid(images[k * per_page:(k + 1) * per_page], columns, labels, title).save(path)
        written.append(path)
    return written


def fixed_sample_rows(spec: ConditionSpec | None) -> list[str] | None:
    """The row labels of the grids `fixed_sample_inputs` draws: the first exclusive group's tags."""
    first = next((g for g in spec.groups if g.exclusive), None) if spec is not None else None
    return list(first.tags) if first is not None else None


def fixed_sample_inputs(z_dim: int, seed: int, spec: ConditionSpec | None, cols: int = 8):
    """The noise and conditions of the grids a run writes: rows = tags of the first exclusive group,
    the other groups one fixed draw per column. (noise, conditions or None, columns)."""
    gen = torch.Generator().manual_seed(seed + 7)
    if spec is None:
        return torch.randn(64, z_dim, generator=gen), None, 8
    first = next((g for g in spec.groups if g.exclusive), None)
    rows = first.tags if first is not None else [None]
    z_cols = torch.randn(cols, z_dim, generator=gen)
    _, base = spec.sample(cols, gen)
    dicts = [dict(base[j], **({first.name: tag} if first is not None else {})) for tag in rows for j in range(cols)]
    return z_cols.repeat(len(rows), 1), spec.encode(dicts), cols
