"""Queries of the auto-taggers (curate/taggers/tagging.py, curate/taggers/judge.py): what a tagger
already did, and a learned tagger's versions and whole distributions."""

from __future__ import annotations

import hashlib
import json

# A tagger looked at the face and had nothing to say (animeface found no face there): an
# event of the tagger's source whose key is no tag or group and whose tag is NULL, so it is
# never a label, but a rerun of the same version knows the face was tried and skips it.
NOTHING_KEY = "_nothing_found"


class TaggingMixin:
    """Tagger bookkeeping (one of the mixins `Catalog` is made of)."""

    def tagged_face_ids(self, source: str, version: str) -> set[int]:
        """Faces that already carry events from `source` written by this model `version`
        (the taggers store the version as the event's annotator, "<version> (<how>)" when a
        face was read another way than usual): a re-run skips them."""
        return {r[0] for r in self.conn.execute(
            "SELECT DISTINCT face_id FROM label_events WHERE source = ? AND (annotator = ? OR "
            "substr(annotator, 1, ?) = ?)", (source, version, len(version) + 2, version + " ("))}

    def record_nothing_found(self, face_ids: list[int], source: str, version: str) -> int:
        """Remember that `version` tried these faces and found nothing (see NOTHING_KEY)."""
        with self.transaction() as conn:
            conn.executemany("INSERT INTO label_events (face_id, key, tag, value, source, annotator) "
                             "VALUES (?, ?, NULL, NULL, ?, ?)", [(f, NOTHING_KEY, source, version) for f in face_ids])
        return len(face_ids)

    def imported_face_ids(self, face_ids: list[int]) -> set[int]:
        """Those of `face_ids` that were imported as they are (detector 'none'): already face crops."""
        marks = ",".join("?" * len(face_ids))
        return {r[0] for r in self.conn.execute(
            f"SELECT id FROM faces WHERE detector = 'none' AND id IN ({marks})", list(face_ids))} if face_ids else set()

    # -- learned taggers: their versions and whole distributions --------------

    def labels_fingerprint(self, source: str) -> str:
        """A hash of `source`'s current labels (face, key, tag, value): what a tagger learned from."""
        h = hashlib.sha256()
        for row in self.conn.execute("SELECT face_id, key, tag, value FROM label_current WHERE source = ? "
                                     "AND +tag IS NOT NULL ORDER BY face_id, key", (source,)):
            h.update(repr(row).encode())
        return h.hexdigest()[:12]

    def tagger_version(self, version: str) -> dict | None:
        """What `save_learned_labels` recorded about a tagger version: {version, source, created_at, **info}."""
        rows = self.query("SELECT version, source, info, created_at FROM tagger_versions WHERE version = ?",
                          [version])
        if not rows:
            return None
        row = rows[0]
        return {**json.loads(row.pop("info")), **row}

    def latest_tagger_version(self, source: str) -> str | None:
        """The version recorded last for label source `source` (a rewrite of a version counts as new)."""
        row = self.conn.execute("SELECT version FROM tagger_versions WHERE source = ? ORDER BY rowid DESC LIMIT 1",
                                (source,)).fetchone()
        return row[0] if row else None

    def save_learned_labels(self, source: str, version: str, info: dict,
                            labels: list[tuple[int, str, float]],
                            distributions: list[tuple[int, str, dict[str, float], bool]]) -> int:
        """Write a learned tagger's output in one transaction: its version record, its label
        events (face, tag, probability) and, per (face, exclusive group), the whole distribution
        with whether the face's own label was held out. Returns the events written."""
        with self.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO tagger_versions (version, source, info) VALUES (?, ?, ?)",
                         (version, source, json.dumps(info, sort_keys=True)))
            n = self.add_labels(labels, source, version)
            conn.executemany("INSERT OR REPLACE INTO label_distributions (source, face_id, key, version, probs, "
                             "held_out) VALUES (?, ?, ?, ?, ?, ?)",
                             [(source, f, key, version, json.dumps(p), int(held)) for f, key, p, held in distributions])
        return n

    def distributions(self, source: str, key: str, face_ids: list[int] | None = None
                      ) -> dict[int, tuple[dict[str, float], bool, str]]:
        """Face id -> (tag probabilities, held out, version) of `source` for one exclusive group,
        ok faces (only `face_ids` when given)."""
        sql = ("SELECT d.face_id, d.probs, d.held_out, d.version FROM label_distributions d JOIN faces f "
               "ON f.id = d.face_id WHERE d.source = ? AND d.key = ? AND f.status = 'ok'")
        params: list = [source, key]
        if face_ids is not None:
            sql += f" AND d.face_id IN ({','.join('?' * len(face_ids))})"
            params += list(face_ids)
        return {f: (json.loads(p), bool(held), v) for f, p, held, v in self.conn.execute(sql, params)}

    def distributions_exist(self, source: str, key: str) -> bool:
        return self.conn.execute("SELECT 1 FROM label_distributions WHERE source = ? AND key = ? LIMIT 1",
                                 (source, key)).fetchone() is not None

    def distribution_versions(self, source: str) -> list[str]:
        """The tagger versions whose distributions `source` holds now."""
        return [r[0] for r in self.conn.execute("SELECT DISTINCT version FROM label_distributions WHERE source = ?",
                                                (source,))]

    def distribution_sources(self) -> list[str]:
        """Label sources with stored distributions (learned taggers), by name."""
        return [r[0] for r in self.conn.execute("SELECT DISTINCT source FROM label_distributions ORDER BY 1")]
