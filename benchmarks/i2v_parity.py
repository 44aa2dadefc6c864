"""Parity of curate.taggers.i2v with the original `illustration2vec` package (chainer) on a fake model.

Writes an i2v-shaped caffemodel of the real format (tiny widths, 1,539 outputs, random
weights) in both the modern `layer` and the legacy V1 `layers` encoding, runs the
original package's `make_i2v_with_chainer(...)._estimate(images)` in a throw-away
virtualenv that has chainer, runs ours on the same pictures, and prints the largest
difference. Pictures: real 96x96 shared faces (upscaled), a large one (downscaled with
anti-aliasing), greyscale, RGBA and a constant one.

Note: illustration2vec 0.1.0 on chainer >= 2 leaves dropout ON at inference (it calls
`chainer.using_config('train', False)` outside a `with`), so its own outputs are random;
the reference below runs it inside `with chainer.using_config('train', False)`.

    # once: python -m venv /tmp/i2v_chainer_venv && \\
    #   venv/bin/pip install "numpy<2" "setuptools<81" wheel "protobuf<4" scipy scikit-image pillow && \\
    #   venv/bin/pip install --no-build-isolation chainer illustration2vec
    python benchmarks/i2v_parity.py --venv /tmp/i2v_chainer_venv
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from curate.taggers.i2v.caffemodel import i2v_layers, write_caffemodel  # noqa: E402
from curate.taggers.i2v.network import load_model  # noqa: E402
from curate.taggers.i2v.preprocess import preprocess_batch  # noqa: E402

REFERENCE = r"""
import sys, numpy as np
from PIL import Image
import chainer, i2v
model, tags, out = sys.argv[1], sys.argv[2], sys.argv[3]
net = i2v.make_i2v_with_chainer(model, tags)
images = [Image.open(p) for p in sys.argv[4:]]
# i2v 0.1.0 calls `chainer.using_config('train', False)` without `with`, so on chainer >= 2
# its dropout layers stay on at inference: we switch them off as the authors meant.
with chainer.using_config('train', False):
    np.save(out, net._estimate(images))
"""


def pictures(folder: Path, shared: Path) -> list[Path]:
    rng = np.random.default_rng(1)
    paths = sorted((shared / "data/anime_faces_labelled/images").glob("*.jpg"))[:4]
    out = []
    for i, p in enumerate(paths):
        out.append(folder / f"face{i}.png")
        Image.open(p).convert("RGB").save(out[-1])
    big = (rng.random((480, 360, 3)) * 255).astype(np.uint8)
    extra = {"large.png": Image.fromarray(big), "grey.png": Image.open(paths[0]).convert("L"),
             "rgba.png": Image.open(paths[1]).convert("RGBA"),
             "constant.png": Image.new("RGB", (50, 70), (200, 120, 40))}
    for name, im in extra.items():
        im.save(folder / name)
        out.append(folder / name)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--venv", type=Path, default=Path("/tmp/i2v_chainer_venv"))
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--width", type=int, default=8, help="channels of every hidden conv of the fake model")
    args = ap.parse_args()
    tags = args.shared / "models/i2v_tag_list.json"
    n_tags = len(json.loads(tags.read_text()))
    env = dict(os.environ, PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION="python")
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        images = pictures(tmp, args.shared)
        for v1 in (False, True):
            model = tmp / f"fake_{'v1' if v1 else 'v2'}.caffemodel"
            write_caffemodel(model, i2v_layers(n_tags, {s: args.width for s in range(1, 7)}, seed=3), v1=v1)
            ref_out = tmp / "ref.npy"
            subprocess.run([str(args.venv / "bin/python"), "-c", REFERENCE, str(model), str(tags), str(ref_out),
                            *map(str, images)], check=True, env=env)
            ref = np.load(ref_out)
            ours_model = load_model(model=model, tags=tags, cache=False)
            with torch.inference_mode():
                ours = ours_model.net(torch.from_numpy(preprocess_batch([Image.open(p) for p in images]))).numpy()
            diff = np.abs(ref - ours)
            worst = max(worst, float(diff.max()))
            print(f"{'V1 layers' if v1 else 'layer    '}: {len(images)} pictures x {n_tags} tags, "
                  f"max |chainer - torch| = {diff.max():.2e}, mean = {diff.mean():.2e}, "
                  f"prob range {ours.min():.3f}..{ours.max():.3f}; per picture max: "
                  + ", ".join(f"{p.stem} {d:.1e}" for p, d in zip(images, diff.max(1))))
    print(f"parity {'OK' if worst <= 1e-5 else 'FAILED'}: max difference {worst:.2e} (goal 1e-5)")
    sys.exit(0 if worst <= 1e-5 else 1)


if __name__ == "__main__":
    main()
