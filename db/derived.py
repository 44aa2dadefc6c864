"""Queries of derived images: pictures made from a crop (line art for sketch models), stored
beside the crops in `face_derived`, one per face and kind.

A derived image is current while it was made from the face's present crop (`face_sha256`)
with the parameters asked for now (`params_hash`); anything else is recomputed. Readers only
ever see current, successful rows, so a half-finished rerun with new parameters never mixes
old and new line art silently: `derived_summary` tells which parameters the rows carry.
"""

from __future__ import annotations

from typing import Iterable, Iterator

from db.base import CatalogError

CURRENT = "JOIN faces f ON f.id = d.face_id AND f.sha256 = d.face_sha256"   # rows made from today's crop


class DerivedMixin:
    """Derived images (one of the mixins `Catalog` is made of)."""

    def faces_to_derive(self, kind: str, params_hash: str) -> list[int]:
        """Ok faces whose `kind` image is missing, made from another crop, or with other parameters
        (errors included: they are retried only then, as `curate crop` retries a changed file)."""
        return [r[0] for r in self.conn.execute(
            "SELECT f.id FROM faces f LEFT JOIN face_derived d ON d.face_id = f.id AND d.kind = ? "
            "WHERE f.status = 'ok' AND (d.face_id IS NULL OR d.params_hash != ? OR d.face_sha256 != f.sha256) "
            "ORDER BY f.id", (kind, params_hash))]

    def crops_with_hashes(self, face_ids: list[int]) -> Iterator[tuple[int, str, bytes]]:
        """(id, crop sha256, crop bytes) of the given faces, in order (a face gone meanwhile is left out)."""
        for i in range(0, len(face_ids), 500):
            chunk = face_ids[i:i + 500]
            marks = ",".join("?" * len(chunk))
            rows = {r[0]: r for r in self.conn.execute(
                f"SELECT f.id, f.sha256, i.image FROM faces f JOIN face_images i ON i.face_id = f.id "
                f"WHERE f.id IN ({marks})", chunk)}
            yield from (rows[fid] for fid in chunk if fid in rows)

    def save_derived(self, rows: Iterable[dict]) -> int:
        """Insert or replace derived images in one transaction. Each row: face_id, kind, method,
        params (JSON text), params_hash, face_sha256, and either format/width/height/image/sha256
        or error. A face deleted meanwhile is skipped. Returns how many rows were written."""
        cols = ("face_id", "kind", "method", "params", "params_hash", "face_sha256", "format", "width", "height",
                "image", "sha256", "error")
        written = 0
        with self.transaction() as conn:
            for row in rows:
                if conn.execute("SELECT 1 FROM faces WHERE id = ?", (row["face_id"],)).fetchone() is None:
                    continue
                conn.execute(f"INSERT OR REPLACE INTO face_derived ({', '.join(cols)}) "
                             f"VALUES ({', '.join('?' * len(cols))})", [row.get(c) for c in cols])
                written += 1
        return written

    def derived_summary(self, kind: str) -> list[dict]:
        """Per (method, params) of current rows: how many images and errors, newest first."""
        return self.query(
            f"SELECT d.method, d.params, d.params_hash, count(d.image) AS images, count(d.error) AS errors, "
            f"max(d.created_at) AS newest FROM face_derived d {CURRENT} WHERE d.kind = ? "
            f"GROUP BY d.params_hash ORDER BY newest DESC", [kind])

    def derived_errors(self, kind: str, limit: int = 20) -> list[tuple[int, str]]:
        """(face id, error) of current failed rows."""
        return list(self.conn.execute(
            f"SELECT d.face_id, d.error FROM face_derived d {CURRENT} WHERE d.kind = ? AND d.error IS NOT NULL "
            f"ORDER BY d.face_id LIMIT ?", (kind, limit)))

    def derived_face_ids(self, kind: str, status: str | None = "ok", split: str | None = None) -> list[int]:
        """Faces (with this status and split) that have a current `kind` image, in id order."""
        where, params = ["d.kind = ?", "d.image IS NOT NULL"], [kind]
        if status:
            where.append("f.status = ?")
            params.append(status)
        if split:
            where.append("f.id IN (SELECT face_id FROM face_splits WHERE split = ?)")
            params.append(split)
        return [r[0] for r in self.conn.execute(
            f"SELECT d.face_id FROM face_derived d {CURRENT} WHERE {' AND '.join(where)} ORDER BY d.face_id", params)]

    def derived_hashes(self, kind: str, face_ids: Iterable[int]) -> dict[int, str]:
        """Face id -> sha256 of its current `kind` image (faces without one are left out): a cache key."""
        wanted = set(face_ids)
        return {fid: sha for fid, sha in self.conn.execute(
            f"SELECT d.face_id, d.sha256 FROM face_derived d {CURRENT} WHERE d.kind = ? AND d.image IS NOT NULL",
            (kind,)) if fid in wanted}

    def derived_params(self, kind: str, face_ids: Iterable[int]) -> dict[str, dict]:
        """What made the faces' current `kind` images, per parameter set: params_hash -> {"method",
        "params" (JSON text), "faces": [ids]}. Faces without a current image are in none of them."""
        wanted, out = set(face_ids), {}
        for fid, method, params, phash in self.conn.execute(
                f"SELECT d.face_id, d.method, d.params, d.params_hash FROM face_derived d {CURRENT} "
                f"WHERE d.kind = ? AND d.image IS NOT NULL ORDER BY d.face_id", (kind,)):
            if fid in wanted:
                out.setdefault(phash, {"method": method, "params": params, "faces": []})["faces"].append(fid)
        return out

    def iter_derived_images(self, kind: str, face_ids: list[int], batch: int = 500,
                            ) -> Iterator[tuple[int, bytes]]:
        """(id, image bytes) of the faces' current `kind` images, in the given order, a batch at a time.
        A face without one raises a CatalogError naming it and the command that makes it."""
        for i in range(0, len(face_ids), batch):
            chunk = face_ids[i:i + batch]
            marks = ",".join("?" * len(chunk))
            blobs = dict(self.conn.execute(
                f"SELECT d.face_id, d.image FROM face_derived d {CURRENT} WHERE d.kind = ? AND d.image IS NOT NULL "
                f"AND d.face_id IN ({marks})", [kind, *chunk]))
            for fid in chunk:
                if fid not in blobs:
                    raise CatalogError(f"face {fid} has no current {kind} image in {self.path or 'the catalog'} "
                                       f"(run `curate {kind}`)")
                yield fid, blobs[fid]

    def derived_image(self, kind: str, face_id: int) -> bytes:
        return next(self.iter_derived_images(kind, [face_id]))[1]
