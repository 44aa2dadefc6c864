"""Progress counts without slowing a labelling action.

Counting current manual labels over a 100k-face catalog takes a few hundred ms,
more than one key press may cost. So the page shows the last count, and when it
is older than `max_age` a background thread (with its own connection) refreshes
it: stale-while-revalidate, shared by every session of the same catalog.
"""

from __future__ import annotations

import threading
import time

from db import Catalog

_lock = threading.Lock()
_cache: dict[str, dict] = {}   # db path -> {"at", "value", "busy"}


def _refresh(path: str) -> None:
    try:
        with Catalog(path, create=False) as cat:
            value = {"groups": cat.progress(), "annotators": cat.annotator_counts()}
        with _lock:
            _cache[path].update(at=time.monotonic(), value=value)
    finally:
        with _lock:
            _cache[path]["busy"] = False


def progress(path: str, max_age: float = 10.0, wait: bool = False) -> tuple[dict, float]:
    """({"groups": [...], "annotators": [...]}, age in seconds). Blocks only on the first call
    for a catalog, or with `wait`."""
    with _lock:
        entry = _cache.setdefault(path, {"at": None, "value": None, "busy": False})
        stale = entry["at"] is None or time.monotonic() - entry["at"] > max_age
        start = stale and not entry["busy"]
        if start:
            entry["busy"] = True
    if start:
        if entry["value"] is None or wait:
            _refresh(path)
        else:
            threading.Thread(target=_refresh, args=(path,), daemon=True).start()
    with _lock:
        return entry["value"], time.monotonic() - entry["at"]
