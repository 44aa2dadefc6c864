"""Queries of the crop/import pipeline, beyond what `Catalog` offers."""

from __future__ import annotations

from db.catalog import Catalog


def source_is_done(catalog: Catalog, path: str, size: int | None) -> bool:
    """Is this source finished, by an earlier run or another writer meanwhile? (checked inside the
    write transaction). A file recorded as an error is not finished once its size has changed."""
    return catalog.conn.execute(
        "SELECT 1 FROM sources WHERE path = ? AND status != 'pending' AND NOT (status = 'error' AND size IS NOT ?)",
        (path, size)).fetchone() is not None


def error_source_sizes(catalog: Catalog) -> dict[str, int | None]:
    """Path -> recorded size of every source that failed: retried when the file has changed."""
    return dict(catalog.conn.execute("SELECT path, size FROM sources WHERE status = 'error'"))


def ok_phashes_after(catalog: Catalog, after_id: int) -> list[tuple[int, int]]:
    """(id, phash) of ok faces with id > after_id, oldest first: the near-duplicate candidates."""
    return list(catalog.conn.execute(
        "SELECT id, phash FROM faces WHERE id > ? AND status = 'ok' AND phash IS NOT NULL ORDER BY id",
        (after_id,)))


def max_face_id(catalog: Catalog) -> int:
    return catalog.conn.execute("SELECT coalesce(max(id), 0) FROM faces").fetchone()[0]
