"""i2v tagging speed with a model of the real size (random weights of the true shapes).

Writes `illust2vec_tag_ver200.caffemodel` with i2v's true layer shapes (~188 MB, V1
`layers` encoding like the 2015 release) and the real tag list into --model-dir once,
then measures side by side: loading from the caffemodel vs from the safetensors cache,
and tagging N shared faces (a temporary copy of the labelled catalog) at each batch size,
in faces/s, with the time for 5,000 and 7,971 faces extrapolated.

    python benchmarks/i2v_throughput.py --faces 96 --batch 16 32
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.shared_catalog import DEFAULT, labelled_catalog  # noqa: E402
from curate.taggers.i2v.caffemodel import i2v_layers, write_caffemodel  # noqa: E402
from curate.taggers.i2v.network import MODEL_FILE, load_model  # noqa: E402
from curate.taggers.tagging import I2VTagger, TagOptions, tag_catalog  # noqa: E402
from db import Catalog  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", type=Path, default=DEFAULT.parent / "i2v_real_shape",
                    help="where the random-weight model of the real shape is written once")
    ap.add_argument("--catalog", type=Path, default=None, help="catalog to tag a copy of [../shared's labelled faces]")
    ap.add_argument("--tags", type=Path, default=ROOT.parent / "shared/models/i2v_tag_list.json")
    ap.add_argument("--faces", type=int, default=96)
    ap.add_argument("--batch", type=int, nargs="+", default=[16, 32])
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = ap.parse_args()
    args.catalog = labelled_catalog(args.catalog)
    if args.threads:
        torch.set_num_threads(args.threads)
    model_path = args.model_dir / MODEL_FILE
    if not model_path.is_file():
        args.model_dir.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        write_caffemodel(model_path, i2v_layers(len(json.loads(args.tags.read_text()))), v1=True)
        print(f"wrote {model_path} ({model_path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s")
        shutil.copy(args.tags, args.model_dir / "tag_list.json")
    cache = model_path.with_suffix(".safetensors")
    cache.unlink(missing_ok=True)
    t = time.perf_counter()
    load_model(args.model_dir)
    t_caffe = time.perf_counter() - t
    t = time.perf_counter()
    model = load_model(args.model_dir)
    t_cache = time.perf_counter() - t
    print(f"load: caffemodel {t_caffe:.2f} s, safetensors cache {t_cache:.2f} s ({t_caffe / t_cache:.1f}x faster)")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{sum(p.numel() for p in model.net.parameters()) / 1e6:.1f} M parameters")
    results = []
    for batch in args.batch:
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "bench.db"
            shutil.copy(args.catalog, db)
            catalog = Catalog(db)
            tagger = I2VTagger(model)
            s = tag_catalog(catalog, tagger, TagOptions(batch=batch, limit=args.faces))
            done = len(catalog.tagged_face_ids(tagger.source, tagger.version))
            catalog.close()
        results.append((batch, s.faces_per_s))
        print(f"batch {batch:3d}: {s.faces} faces in {s.seconds:.1f} s = {s.faces_per_s:.2f} faces/s "
              f"-> 5,000 faces ~{5000 / s.faces_per_s / 60:.0f} min, 7,971 ~{7971 / s.faces_per_s / 60:.0f} min; "
              f"({done} faces recorded as tagged by {tagger.version}: a re-run skips them)")
    best = max(results, key=lambda r: r[1])
    print(f"best batch {best[0]}: {best[1]:.2f} faces/s; batch ratio "
          + ", ".join(f"{b}: {r / results[0][1]:.2f}x" for b, r in results))


if __name__ == "__main__":
    main()
