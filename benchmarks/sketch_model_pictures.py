"""The README's pictures of a sketch model (by default the one that ships, `pretrained:sketch`).

    python benchmarks/sketch_model_pictures.py [--run pretrained:sketch] [--db CATALOG] [--out docs]

- sketch_hints.png: each shared hand drawing (../shared/data/sketches) as the model sees it with the
  hints over it, then painted with the tags "blonde hair, blue eyes" three ways (three noises), then
  the same three with colour hints that disagree with those tags (pink hair, green eyes), first by
  the network alone (`hints_decide=False`), then as the painter paints for users, the hints
  deciding the tags they speak for (train/sketch/hint_tags.py): the hints should win. The hint
  pictures are made here from the face animeface finds in each drawing (dots over the fringe and
  the sides, one on each eye's likely place), laid over the whole drawing as a user's hint picture
  is (`train sample --hints`).
- sketch_widening.png: each shared drawing with its lines as drawn, then widened to the training
  sketches' stroke width (what the model is given), each painted the same 6 ways.
- sketch_noises.png: 6 test sketches (the catalog's line art of test faces), the real face, then
  the sketch painted with that face's own tags and 8 noises: how much the noise changes a face.

The hand drawings painted without hints are `train sample pretrained:sketch --sketch
../shared/data/sketches -n 6 -o docs/sketch_drawings.png` (the README's command).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))     # before benchmarks/, whose label_app.py is not the package

from curate.lineart import params_from_json  # noqa: E402
from curate.taggers.classifier import load_labelled  # noqa: E402
from db import Catalog  # noqa: E402
from label_app.draw_hints import framed, with_hints  # noqa: E402
from shared_catalog import SHARED, labelled_catalog  # noqa: E402
from train.eval.evaluate import run_conditions  # noqa: E402
from train.runs import load_run  # noqa: E402
from train.sampling import image_grid  # noqa: E402
from train.sketch.drawing import find_face, normalise_drawing, normalise_framed, read_drawing  # noqa: E402
from train.sketch.evaluate import test_sketches  # noqa: E402
from train.sketch.paint import generator, hint_channels, paint_batch  # noqa: E402

TAGS = {"hair_color": "blonde hair", "eye_color": "blue eyes"}
HAIR, EYES = (250, 120, 190), (60, 200, 90)       # pink hair, green eyes: what the hints say
NOISES = 8


def hint_picture(drawing: Path) -> Image.Image:
    """Colour hints over `drawing`'s face (RGBA, the drawing's size, transparent elsewhere)."""
    rgb = read_drawing(drawing)
    box = find_face(rgb)
    if box is None:
        raise SystemExit(f"{drawing}: animeface finds no face to put hints on")
    im = Image.new("RGBA", (rgb.shape[1], rgb.shape[0]), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    x, y, w, h = box.x, box.y, box.w, box.h
    r = max(2, round(0.035 * h))          # dots of about a training hint's size (3 px of the 64 px crop)
    dots = [(0.2, 0.05, HAIR), (0.5, 0.0, HAIR), (0.8, 0.05, HAIR), (0.05, 0.45, HAIR), (0.95, 0.45, HAIR),
            (0.3, 0.47, EYES), (0.7, 0.47, EYES)]                       # fringe and sides; the eyes' likely places
    for fx, fy, colour in dots:
        cx, cy = x + fx * w, y + fy * h
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(*colour, 255))
    return im


def grid(rows: list[list[np.ndarray]], out: Path) -> None:
    """Rows of uint8 [S, S, 3] tiles (as many in each) as one picture, twice the size (nearest)."""
    tiles = torch.from_numpy(np.stack([a for row in rows for a in row])).permute(0, 3, 1, 2)
    picture = Image.fromarray(image_grid(tiles, len(rows[0])))
    picture.resize((picture.width * 2, picture.height * 2), Image.Resampling.NEAREST).save(out, optimize=True)
    print(f"wrote {out}")


def hints_picture(run, out: Path) -> None:
    _, params = params_from_json(run.sketch["params"])
    G = generator(run)
    rows = []
    for path in sorted((SHARED / "data" / "sketches").glob("*.png")):
        hints = np.asarray(hint_picture(path))
        lines, frame = normalise_framed(path, run.size, params)
        h = hint_channels(run, hints, frame=frame)
        seeds = range(3)
        plain = [paint_batch(run, G, lines[None], [TAGS], s)[0] for s in seeds]
        alone = [paint_batch(run, G, lines[None], [TAGS], s, hints=h, hints_decide=False)[0] for s in seeds]
        hinted = [paint_batch(run, G, lines[None], [TAGS], s, hints=h)[0] for s in seeds]
        rows.append([with_hints(lines, framed(hints, frame))]
                    + [f.permute(1, 2, 0).numpy() for f in plain + alone + hinted])
    grid(rows, out)


def widening_picture(run, out: Path) -> None:
    """Each shared drawing as drawn (first row) and widened to the training sketches' stroke width (second
    row, what `train sample` gives the model), each painted with the same 6 noises and tags."""
    _, params = params_from_json(run.sketch["params"])
    G = generator(run)
    rows = []
    for path in sorted((SHARED / "data" / "sketches").glob("*.png")):
        for widen in (False, True):
            lines = normalise_drawing(path, run.size, params, widen=widen)
            faces = [paint_batch(run, G, lines[None], [TAGS], seed)[0].permute(1, 2, 0).numpy() for seed in range(6)]
            rows.append([np.repeat(lines[..., None], 3, -1)] + faces)
    grid(rows, out)


def noises_picture(run, db: Path, out: Path) -> None:
    with Catalog(db) as cat:
        test = load_labelled(cat, "manual", "test", run.size)
        picked = list(range(0, len(test.face_ids), len(test.face_ids) // 6))[:6]
        sketches = test_sketches(cat, [test.face_ids[i] for i in picked], run)
    own = run_conditions(run, [test.tags[i] for i in picked])[0]
    G = generator(run)
    rows = []
    for k, i in enumerate(picked):
        tags = run.spec.complete([own[k]], torch.Generator().manual_seed(0))[0]
        faces = [paint_batch(run, G, sketches[k][None], [tags], seed)[0].permute(1, 2, 0).numpy()
                 for seed in range(NOISES)]
        real = test.images[i].permute(1, 2, 0).numpy()
        rows.append([np.repeat(sketches[k][..., None], 3, -1), real] + faces)
    grid(rows, out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="pretrained:sketch", help="a sketch run folder or pretrained:NAME")
    ap.add_argument("--db", type=Path, help="the labelled catalog with line art (`curate sketch`) [the "
                    "benchmarks' shared catalog]")
    ap.add_argument("--out", type=Path, default=ROOT / "docs")
    ap.add_argument("--hints-only", action="store_true", help="only sketch_hints.png")
    args = ap.parse_args()
    run = load_run(args.run)
    hints_picture(run, args.out / "sketch_hints.png")
    if args.hints_only:
        return
    widening_picture(run, args.out / "sketch_widening.png")
    noises_picture(run, args.db or labelled_catalog(None), args.out / "sketch_noises.png")


if __name__ == "__main__":
    main()
