"""Queries of the GAN trainer: the catalog's content fingerprint and face crops by id."""

from __future__ import annotations

import hashlib
from typing import Iterator

from db.base import SPLIT_JOIN


class TrainingMixin:
    """What a training run reads (one of the mixins `Catalog` is made of)."""

    def content_fingerprint(self) -> str:
        """A hash of what a training run reads: faces (id, content, status, split), the
        vocabulary and every label event. Changes whenever any of them does."""
        h = hashlib.sha256()
        for row in self.conn.execute(f"SELECT f.id, f.sha256, f.status, coalesce(sp.split, '') FROM faces f "
                                     f"{SPLIT_JOIN} ORDER BY f.id"):
            h.update(repr(row).encode())
        for row in self.conn.execute("SELECT name, group_name, position FROM tags ORDER BY name"):
            h.update(repr(row).encode())
        row = self.conn.execute("SELECT count(*), coalesce(max(id), 0) FROM label_events").fetchone()
        h.update(repr(row).encode())
        return h.hexdigest()[:16]

    def iter_face_hashes(self, face_ids: list[int], batch: int = 500) -> Iterator[tuple[int, str]]:
        """(id, sha256 of its crop) for the given faces, in the given order, a batch at a time
        (a million faces never sit in memory at once)."""
        for i in range(0, len(face_ids), batch):
            chunk = face_ids[i:i + batch]
            marks = ",".join("?" * len(chunk))
            hashes = dict(self.conn.execute(f"SELECT id, sha256 FROM faces WHERE id IN ({marks})", chunk))
            for fid in chunk:
                yield fid, hashes[fid]

    def iter_face_images(self, face_ids: list[int], batch: int = 500) -> Iterator[tuple[int, bytes]]:
        """(id, crop bytes) for the given faces, in the given order, a batch at a time."""
        for i in range(0, len(face_ids), batch):
            chunk = face_ids[i:i + batch]
            marks = ",".join("?" * len(chunk))
            blobs = dict(self.conn.execute(f"SELECT face_id, image FROM face_images WHERE face_id IN ({marks})",
                                           chunk))
            for fid in chunk:
                yield fid, blobs[fid]
