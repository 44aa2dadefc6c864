"""The project's one cache folder: `$XDG_CACHE_HOME/animeface-gan-study` (or ~/.cache/...),
holding the decoded-crop caches of training, the i2v model (`i2v/`) and the LBP cascade
(`cascades/`). Before 2026-12 curate kept the last two under `~/.cache/curate`: a file already
there is still used (with a hint to move it), so nobody downloads 180 MB again."""

from __future__ import annotations

import os
import sys
from pathlib import Path

NAME = "animeface-gan-study"
OLD_CURATE = "curate"   # the older second folder (i2v model, cascade)


def _base() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


def cache_root() -> Path:
    return _base() / NAME


def cache_path(*parts: str, old: tuple[str, ...] | None = None) -> Path:
    """`<cache root>/<parts>`; with `old` (parts under the former ~/.cache/curate), that older
    place when it exists and the new one does not."""
    new = cache_root().joinpath(*parts)
    if old is not None and not new.exists():
        former = _base().joinpath(OLD_CURATE, *old)
        if former.exists():
            print(f"note: using {former}; the cache is now {new} (move it there)", file=sys.stderr)
            return former
    return new
