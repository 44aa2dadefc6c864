"""Queries of sources and faces: the files `curate crop`/`curate import` read, their crops and
the pipeline's bookkeeping (what is done, near-duplicate candidates), bulk inserts for benchmarks."""

from __future__ import annotations

import hashlib
import os
from typing import Iterator

from db.base import FACE_STATUSES, IMAGE_JOIN, SPLIT_JOIN, SPLITS, CatalogError


class FacesMixin:
    """Sources and faces (one of the mixins `Catalog` is made of)."""

    # -- sources --------------------------------------------------------------

    def source_by_path(self, path: str | os.PathLike) -> dict | None:
        rows = self.query("SELECT * FROM sources WHERE path = ?", [str(path)])
        return rows[0] if rows else None

    def done_source_paths(self) -> dict[str, int]:
        """Path -> size of every source already processed (status other than pending)."""
        return {p: s for p, s in self.conn.execute(
            "SELECT path, size FROM sources WHERE status != 'pending'")}

    def source_with_sha256(self, sha256: str, exclude_path: str | None = None) -> dict | None:
        """The first processed source with these bytes (exact-duplicate detection)."""
        rows = self.query(
            "SELECT * FROM sources WHERE sha256 = ? AND path != ? AND status IN ('ok', 'no_face', 'error') "
            "ORDER BY id LIMIT 1", [sha256, exclude_path or ""])
        return rows[0] if rows else None

    def save_source(self, path: str, *, sha256: str | None, size: int | None, width: int | None = None,
                    height: int | None = None, status: str, message: str | None = None,
                    detector: str | None = None) -> int:
        """Insert or update the source row for `path`; returns its id."""
        with self.transaction() as conn:
            row = conn.execute("SELECT id FROM sources WHERE path = ?", (str(path),)).fetchone()
            values = (sha256, size, width, height, status, message, detector)
            if row:
                conn.execute("UPDATE sources SET sha256=?, size=?, width=?, height=?, status=?, message=?, "
                             "detector=? WHERE id=?", values + (row[0],))
                return row[0]
            cur = conn.execute("INSERT INTO sources (sha256, size, width, height, status, message, detector, "
                               "path) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", values + (str(path),))
            return cur.lastrowid

    def source_is_done(self, path: str, size: int | None) -> bool:
        """Is this source finished, by an earlier run or another writer meanwhile? (checked inside the
        write transaction). A file recorded as an error is not finished once its size has changed."""
        return self.conn.execute(
            "SELECT 1 FROM sources WHERE path = ? AND status != 'pending' AND NOT (status = 'error' AND size IS NOT ?)",
            (path, size)).fetchone() is not None

    def error_source_sizes(self) -> dict[str, int | None]:
        """Path -> recorded size of every source that failed: retried when the file has changed."""
        return dict(self.conn.execute("SELECT path, size FROM sources WHERE status = 'error'"))

    # -- faces ----------------------------------------------------------------

    FACE_COLUMNS = ("source_id", "format", "width", "height", "sha256", "box_x", "box_y", "box_w", "box_h",
                    "crop_x", "crop_y", "crop_size", "detector", "score", "phash", "blur", "monochrome", "status",
                    "reason", "duplicate_of")

    def add_face(self, *, image: bytes, **face) -> int:
        """Insert one crop (`image`, its encoded bytes) and its metadata. `sha256`
        defaults to the hash of `image`."""
        face.setdefault("sha256", hashlib.sha256(image).hexdigest())
        face.setdefault("status", "ok")
        unknown = set(face) - set(self.FACE_COLUMNS)
        if unknown:
            raise CatalogError(f"unknown face fields: {sorted(unknown)}")
        cols = list(face)
        with self.transaction() as conn:
            cur = conn.execute(f"INSERT INTO faces ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                               [face[c] for c in cols])
            conn.execute("INSERT INTO face_images (face_id, image) VALUES (?, ?)", (cur.lastrowid, image))
            return cur.lastrowid

    def face(self, face_id: int, with_image: bool = False) -> dict | None:
        image, join = (", i.image", IMAGE_JOIN) if with_image else ("", "")
        rows = self.query(f"SELECT f.*, sp.split{image} FROM faces f {SPLIT_JOIN} {join} WHERE f.id = ?", [face_id])
        return rows[0] if rows else None

    def face_with_source(self, face_id: int) -> dict | None:
        """A face's row with its split and its source file's path and status (`curate show`)."""
        rows = self.query(f"SELECT f.*, sp.split, s.path AS source_path, s.status AS source_status, "
                          f"s.width AS source_width, s.height AS source_height FROM faces f {SPLIT_JOIN} "
                          f"JOIN sources s ON s.id = f.source_id WHERE f.id = ?", [face_id])
        return rows[0] if rows else None

    def crop_settings(self) -> list[dict]:
        """How the detected faces already here were cropped: per crop size, the faces and their
        mean margin (crop side / long side of the box), so a rerun with other settings can say so."""
        return self.query("SELECT width AS size, round(avg(crop_size * 1.0 / max(box_w, box_h)), 2) AS margin, "
                          "count(*) AS faces FROM faces WHERE detector != 'none' AND box_w > 0 "
                          "GROUP BY width ORDER BY faces DESC")

    def face_image(self, face_id: int) -> bytes:
        row = self.conn.execute("SELECT image FROM face_images WHERE face_id = ?", (face_id,)).fetchone()
        if row is None:
            raise CatalogError(f"no face with id {face_id}")
        return row[0]

    def face_with_sha256(self, sha256: str) -> dict | None:
        rows = self.query("SELECT id, status, duplicate_of FROM faces WHERE sha256 = ? ORDER BY id LIMIT 1",
                          [sha256])
        return rows[0] if rows else None

    def set_face_status(self, face_id: int, status: str, reason: str | None = None,
                        duplicate_of: int | None = None) -> None:
        if status not in FACE_STATUSES:
            raise CatalogError(f"face status must be one of {FACE_STATUSES}, not {status!r}")
        with self.transaction() as conn:
            cur = conn.execute("UPDATE faces SET status=?, reason=?, duplicate_of=? WHERE id=?",
                               (status, reason, duplicate_of, face_id))
            if cur.rowcount == 0:
                raise CatalogError(f"no face with id {face_id}")

    def face_ids(self, status: str | None = "ok", split: str | None = None) -> list[int]:
        where, params = _face_filter(status, split)
        return [r[0] for r in self.conn.execute(f"SELECT f.id FROM faces f {SPLIT_JOIN} {where} ORDER BY f.id",
                                                params)]

    def iter_faces(self, status: str | None = "ok", split: str | None = None, with_image: bool = True,
                   batch: int = 1000) -> Iterator[dict]:
        """Faces in id order, fetched in batches so 100k crops never sit in memory at once."""
        where, params = _face_filter(status, split)
        image, join = (", i.image", IMAGE_JOIN) if with_image else ("", "")
        last = 0
        while True:
            and_ = "AND" if where else "WHERE"
            rows = self.query(f"SELECT f.*, sp.split{image}, s.path AS source_path FROM faces f JOIN sources s "
                              f"ON s.id = f.source_id {SPLIT_JOIN} {join} {where} "
                              f"{and_} f.id > ? ORDER BY f.id LIMIT ?", list(params) + [last, batch])
            if not rows:
                return
            yield from rows
            last = rows[-1]["id"]

    def faces_by_source_path(self) -> dict[str, list[int]]:
        """Source path -> face ids (to match label files to imported faces)."""
        out: dict[str, list[int]] = {}
        for path, face_id in self.conn.execute(
                "SELECT s.path, f.id FROM faces f JOIN sources s ON s.id = f.source_id ORDER BY f.id"):
            out.setdefault(path, []).append(face_id)
        return out

    def ok_phashes_after(self, after_id: int) -> list[tuple[int, int]]:
        """(id, phash) of ok faces with id > after_id, oldest first: the near-duplicate candidates."""
        return list(self.conn.execute(
            "SELECT id, phash FROM faces WHERE id > ? AND status = 'ok' AND phash IS NOT NULL ORDER BY id",
            (after_id,)))

    def max_face_id(self) -> int:
        return self.conn.execute("SELECT coalesce(max(id), 0) FROM faces").fetchone()[0]

    # -- bulk inserts (synthetic catalogs for benchmarks and demos) -----------

    def add_sources_many(self, sources: list[dict]) -> list[int]:
        """Insert many source rows in one transaction; returns their ids in order."""
        cols = ("path", "sha256", "size", "width", "height", "status", "detector")
        with self.transaction() as conn:
            start = conn.execute("SELECT coalesce(max(id), 0) FROM sources").fetchone()[0]
            conn.executemany(f"INSERT INTO sources (id, {', '.join(cols)}) VALUES (?{', ?' * len(cols)})",
                             [(start + i + 1, *(s.get(c) for c in cols)) for i, s in enumerate(sources)])
        return list(range(start + 1, start + len(sources) + 1))

    def add_faces_many(self, faces: list[dict]) -> list[int]:
        """Insert many faces (dicts of `image` and self.FACE_COLUMNS) with one executemany each
        for metadata and crops; returns their ids."""
        cols = [c for c in self.FACE_COLUMNS if any(c in f for f in faces[:1])]
        with self.transaction() as conn:
            start = conn.execute("SELECT coalesce(max(id), 0) FROM faces").fetchone()[0]
            conn.executemany(f"INSERT INTO faces (id, {', '.join(cols)}) VALUES (?{', ?' * len(cols)})",
                             [(start + i + 1, *(f.get(c) for c in cols)) for i, f in enumerate(faces)])
            conn.executemany("INSERT INTO face_images (face_id, image) VALUES (?, ?)",
                             [(start + i + 1, f["image"]) for i, f in enumerate(faces)])
        return list(range(start + 1, start + len(faces) + 1))


def _face_filter(status: str | None, split: str | None) -> tuple[str, list]:
    """WHERE clause over `faces f` joined with SPLIT_JOIN."""
    clauses, params = [], []
    if status is not None:
        clauses.append("f.status = ?")
        params.append(status)
    if split is not None:
        if split not in SPLITS:
            raise CatalogError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
        clauses.append("sp.split = ?")
        params.append(split)
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params
