"""A label source with the top suspects relabelled by the judge: for "does cleaning the labels help a GAN?".

    python benchmarks/relabel_suspects.py --db study.db --top 800 --into manual-fixed

Copies `--source`'s current labels into a new source `--into` (label events, annotator
`relabel-suspects`), then gives the `--top` suspects of `curate suspects` (confident learning
on the judge tagger's held-out probabilities, no other source compared) the judge's likely
label there. `--source` itself is not touched. Needs `curate tag --tagger judge --labels
SOURCE` first. Then, e.g. (BENCHMARKS.md, "Label quality", says what to run and compare):

    train experiment --db study.db --runs acgan:manual,acgan:manual-fixed --seed 0 -o report-fixed-0
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from db import Catalog, CatalogError  # noqa: E402
from curate.quality.suspects import find_suspects  # noqa: E402

ANNOTATOR = "relabel-suspects"


def relabel(catalog: Catalog, source: str, into: str, top: int, judge: str = "judge") -> tuple[int, int]:
    """Write `into` = `source` with its `top` suspects relabelled; returns (labels copied, relabelled)."""
    if catalog.conn.execute("SELECT 1 FROM label_current WHERE source = ? LIMIT 1", (into,)).fetchone():
        raise CatalogError(f"label source {into!r} exists already: pick another --into")
    suspects = find_suspects(catalog, source, judge=judge, compare=[])[:top]
    current = [(r["face_id"], r["tag"], r["value"]) for r in catalog.current_labels(source)]
    fixed = {(s.face_id, s.group): s.likely for s in suspects}
    index = catalog.tag_index()
    rows = [(f, fixed.get((f, index[tag][0]), tag) if index[tag][1] else tag, value) for f, tag, value in current]
    with catalog.transaction():
        catalog.add_labels(rows, into, ANNOTATOR)
    return len(rows), len(fixed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", type=Path, required=True)
    ap.add_argument("--source", default="manual")
    ap.add_argument("--judge", default="judge")
    ap.add_argument("--into", default="manual-fixed")
    ap.add_argument("--top", type=int, default=800, help="suspects to relabel (~10%% of 7,971 faces)")
    args = ap.parse_args()
    try:
        with Catalog(args.db, create=False) as cat:
            copied, fixed = relabel(cat, args.source, args.into, args.top, args.judge)
    except CatalogError as e:
        sys.exit(f"error: {e}")
    print(f"{args.into}: {copied} labels of {args.source}, {fixed} of them relabelled by {args.judge}")


if __name__ == "__main__":
    main()
