"""What every table family of the catalog shares: its error, its constants and joins.

(Below the mixins and `db/catalog.py`, so that each can name them without a circle.)
"""

from __future__ import annotations

import difflib
import os
import shlex
import sqlite3

DEFAULT_DB = "catalog.db"
BUSY_TIMEOUT_S = 60
SPLITS = ("train", "val", "test")
FACE_STATUSES = ("ok", "duplicate", "rejected")
SPLIT_JOIN = "LEFT JOIN face_splits sp ON sp.face_id = f.id"   # faces f -> their split sp.split (or NULL)
IMAGE_JOIN = "JOIN face_images i ON i.face_id = f.id"         # faces f -> their crop i.image


class CatalogError(Exception):
    """A problem the user can fix: bad input, unknown tag, a catalog from the future."""


def did_you_mean(word: str, choices) -> str:
    """` (did you mean 'x'?)` with the known name closest to `word`, or "" when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def explain(path: str | os.PathLike | None, e: sqlite3.Error) -> CatalogError:
    """A SQLite error as one line that names the catalog and says what to do about it."""
    where = str(path) if path is not None else ":memory:"
    text, low = str(e), str(e).lower()
    if "readonly" in low or "read-only" in low:
        return CatalogError(f"{where} is read-only ({text}): make the file and its folder writable, "
                            f"or work on a copy")
    if "locked" in low or "busy" in low:
        return CatalogError(f"{where} stayed busy for {BUSY_TIMEOUT_S} s ({text}): another process holds "
                            f"it; try again once it is done")
    if "unable to open" in low:
        return CatalogError(f"{where} cannot be opened ({text}): check that its folder exists and that "
                            f"you may read and write there")
    if "disk i/o" in low or "full" in low:
        return CatalogError(f"{where}: the disk failed or is full ({text}); free space or move the catalog")
    q = shlex.quote(where)
    return CatalogError(f"{where} is damaged ({text}); the command stopped, and what it was writing was "
                        f"rolled back. Recover what is left with `sqlite3 {q} .recover | sqlite3 recovered.db` "
                        f"and use --db recovered.db, or use a copy")
