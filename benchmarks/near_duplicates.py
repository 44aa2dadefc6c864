"""What `train eval`'s near-duplicate share counts in a sketch model's paintings: variety, or image quality?

    python benchmarks/near_duplicates.py --judge JUDGE.pt [--run pretrained:sketch] [--db CATALOG]
                                         [--picture docs/sketch_near_duplicates.jpg]

The share is `train eval`'s own (train.eval.evaluate.realism): judge features, "near" calibrated on as
many real train faces as faces scored, so that 1% of real faces are that close to another. Printed side
by side, with each set's judge FID against the real test faces:

- the real test faces, as they are and degraded (Gaussian blur, down- and up-sampled, JPEG, pixel noise,
  low-resolution colour blotches like the paintings'): as varied as real faces by construction, only
  worse pictures. If these scored like the paintings at a like FID, the share would measure quality;
- the run's paintings of the same faces' test sketches with their own tags, one noise each (what
  `train eval` scores), with the share of near-duplicate pairs that were asked for the same hair and
  the same eyes, and how far apart those pairs' real faces are (in units of the threshold); `--picture`
  draws 12 of those pairs: a painting, its nearest painting, then the two real faces;
- for a hints model, the same paintings given 5 colour hint patches of their real face (as `train eval`'s
  hint measure gives them): what a few of each face's own colours do to the share.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))     # before benchmarks/, whose label_app.py is not the package

from curate.taggers.classifier import JudgeError, load_judge, load_labelled  # noqa: E402
from curate.text import visible  # noqa: E402
from db import Catalog  # noqa: E402
from shared_catalog import labelled_catalog  # noqa: E402
from train.eval import metrics as M  # noqa: E402
from train.eval.evaluate import realism, run_conditions  # noqa: E402
from train.runs import RunError, load_run  # noqa: E402
from train.sketch.evaluate import HINT_POINTS, hwc, test_sketches  # noqa: E402
from train.sketch.hints import sample_hints  # noqa: E402
from train.sketch.paint import generator, paint_batch  # noqa: E402

SEED = 0


def per_image(images: torch.Tensor, fn) -> torch.Tensor:
    """uint8 [N, 3, S, S] through a PIL function, picture by picture."""
    out = [np.array(fn(Image.fromarray(x.permute(1, 2, 0).numpy())).convert("RGB")) for x in images]
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()


def jpeg(quality: int):
    def encode(im: Image.Image) -> Image.Image:
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=quality)
        return Image.open(buf)
    return encode


def noisy(images: torch.Tensor, sd: float, cells: int | None = None) -> torch.Tensor:
    """Gaussian noise of `sd` grey levels, per pixel or (`cells`) drawn on a cells x cells grid and
    smoothly upsampled: blotches."""
    gen = torch.Generator().manual_seed(SEED)
    shape = images.shape if cells is None else (len(images), 3, cells, cells)
    noise = torch.randn(shape, generator=gen)
    if cells is not None:
        noise = F.interpolate(noise, size=images.shape[-2:], mode="bilinear", align_corners=False)
    return (images.float() + sd * noise).clamp(0, 255).to(torch.uint8)


def degraded(images: torch.Tensor) -> dict[str, torch.Tensor]:
    side = images.shape[-1]
    return {"real test faces": images,
            "blur, radius 1": per_image(images, lambda im: im.filter(ImageFilter.GaussianBlur(1))),
            "blur, radius 1.5": per_image(images, lambda im: im.filter(ImageFilter.GaussianBlur(1.5))),
            "down to half and up": per_image(images, lambda im: im.resize((side // 2,) * 2, Image.BILINEAR)
                                             .resize((side,) * 2, Image.BILINEAR)),
            "JPEG quality 20": per_image(images, jpeg(20)),
            "pixel noise, sd 40": noisy(images, 40),
            "colour blotches, sd 20": noisy(images, 20, cells=16),
            "colour blotches, sd 40": noisy(images, 40, cells=16)}


def same_tag_pairs(nearest: np.ndarray, dup: np.ndarray, real_features: np.ndarray, tags: list[dict],
                   threshold: float) -> dict:
    """Among near-duplicate paintings (`dup`) and their nearest painting: the share asked for the same hair
    and the same eyes, and the median distance between the two real faces, in thresholds."""
    if not len(dup):
        return {"pairs": 0}
    real = M.pairwise_distances(real_features)
    same = {g: float(np.mean([tags[i].get(g) == tags[nearest[i]].get(g) for i in dup]))
            for g in ("hair_color", "eye_color")}
    return {"pairs": int(len(dup)), **same,
            "real_apart": float(np.median([real[i, nearest[i]] for i in dup]) / threshold)}


def pairs_picture(paintings: torch.Tensor, real: torch.Tensor, nearest: np.ndarray, dup: np.ndarray,
                  out: Path, pairs: int = 12) -> None:
    """Near-duplicate paintings beside their nearest painting and the two real faces, two pairs a row."""
    dup = dup[:pairs]
    quads = [np.concatenate(list(hwc(torch.cat([paintings[[i, nearest[i]]], real[[i, nearest[i]]]]))), 1)
             for i in dup]
    quads += [np.full_like(quads[0], 255)] * (len(quads) % 2)
    gap = np.full((quads[0].shape[0], 8, 3), 255, np.uint8)
    rows = [np.concatenate([quads[k], gap, quads[k + 1]], 1) for k in range(0, len(quads), 2)]
    grid = Image.fromarray(np.concatenate(rows, 0))
    grid.resize((grid.width * 2, grid.height * 2), Image.NEAREST).save(out, quality=90)
    print(f"{visible(out)}: {len(dup)} near-duplicate pairs (painting, nearest painting, their real faces)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--judge", type=Path, required=True, help="a judge (`train judge`) trained on this catalog")
    ap.add_argument("--run", default="pretrained:sketch", help="a sketch run folder or pretrained:NAME")
    ap.add_argument("--db", type=Path, help="the labelled catalog with line art (`curate sketch`) [the "
                    "benchmarks' shared catalog]")
    ap.add_argument("--picture", type=Path, help="draw 12 near-duplicate pairs of the run's paintings here")
    args = ap.parse_args()
    try:
        run, judge = load_run(args.run), load_judge(args.judge)
    except (RunError, JudgeError) as e:
        sys.exit(f"error: {visible(e)}")
    with Catalog(args.db or labelled_catalog(None)) as cat:
        test = load_labelled(cat, judge.options.source, "test", run.size)
        train = load_labelled(cat, judge.options.source, "train", run.size)
        sketches = test_sketches(cat, test.face_ids, run)
    own = run_conditions(run, test.tags)[0]
    f_test, f_train = judge.features(test.images), judge.features(train.images)
    sets, G = degraded(test.images), generator(run)
    painted = f"{visible(run.dir.name)}'s paintings"
    sets[painted] = paint_batch(run, G, sketches, own, SEED)
    if run.options.get("hints"):
        hints = sample_hints(test.images.float() / 127.5 - 1, torch.Generator().manual_seed(SEED),
                             points=HINT_POINTS)
        sets[f"  with {HINT_POINTS} hints of their face"] = paint_batch(run, G, sketches, own, SEED, hints=hints,
                                                                        hints_decide=False)
    print(f"{len(test.images)} test faces, judge {visible(args.judge.name)}, run {visible(run.dir.name)}")
    print(f"{'':32s} {'near-dups':>9s} {'judge FID':>9s}")
    for name, images in sets.items():
        features = judge.features(images)
        r = realism(features, f_test, f_train, SEED)
        print(f"{name:32s} {r['diversity']['fake']['near_duplicates']:9.1%} {r['judge_fid']:9.2f}", flush=True)
        if name == painted:
            threshold = r["diversity"]["duplicate_threshold"]
            nearest, distance = M.nearest_neighbours(features)
            dup = np.flatnonzero(distance < threshold)
            pairs = same_tag_pairs(nearest, dup, f_test, own, threshold)
            if args.picture and len(dup):
                pairs_picture(images, test.images, nearest, dup, args.picture)
    if pairs["pairs"]:
        print(f"near-duplicate paintings: {pairs['pairs']}; asked for the same hair {pairs['hair_color']:.0%}, "
              f"the same eyes {pairs['eye_color']:.0%}; their real faces {pairs['real_apart']:.1f} thresholds "
              f"apart (median)")


if __name__ == "__main__":
    main()
