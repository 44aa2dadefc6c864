"""The catalog most benchmarks measure on: ../shared's 7,971 labelled faces, imported once.

Built with the same library calls as `curate import --no-detect`, `curate labels import
--target manual` and `curate split --val 0.05 --test 0.05`, and kept (default
~/.cache/animeface-gan-study/bench/labelled.db) so later benchmarks start at once.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
LABELLED = SHARED / "data" / "anime_faces_labelled"
DEFAULT = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "animeface-gan-study" / "bench" \
    / "labelled.db"


def labelled_catalog(path: Path | None = None) -> Path:
    """The path of the labelled catalog, building it first when it is missing."""
    path = Path(path or DEFAULT)
    if path.exists():
        return path
    if not (LABELLED / "labels.csv").is_file():
        sys.exit(f"{LABELLED} is missing: this benchmark needs ../shared beside the checkout (or give --db)")
    from curate.labels_io import import_labels
    from curate.pipeline import CropOptions, run
    from db import Catalog

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".building")
    for leftover in tmp.parent.glob(tmp.name + "*"):
        leftover.unlink()
    print(f"building {path} from {LABELLED} (once)", flush=True)
    with Catalog(tmp) as catalog:
        run(catalog, LABELLED / "images", CropOptions(no_detect=True))
        import_labels(catalog, LABELLED / "labels.csv", "manual")
        catalog.assign_splits(val=0.05, test=0.05, seed=0)
        catalog.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    os.replace(tmp, path)
    return path
