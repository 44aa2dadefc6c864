"""Queries of the auto-taggers (curate/taggers/tagging.py, curate/taggers/judge.py): what a tagger
already did, and a learned tagger's versions and whole distributions."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

# A tagger looked at the face and had nothing to say (animeface found no face there): an
# event of the tagger's source whose key is no tag or group and whose tag is NULL, so it is
# never a label, but a rerun of the same version knows the face was tried and skips it.
NOTHING_KEY = "_nothing_found"


# Parsed distributions (`distribution_matrix`) of the catalogs this process read, by (file, source,
# key): parsing a million rows of JSON takes seconds, and they change only when a tagger rewrites them.
_MATRICES: dict[tuple[str, str, str], tuple[tuple, "DistributionMatrix"]] = {}
_MATRICES_LOCK = threading.Lock()
_MATRICES_KEPT = 4


@dataclass(frozen=True)
class DistributionMatrix:
    """A learned tagger's distributions of one exclusive group as arrays: row i is face
    `face_ids[i]` (ascending), column j tag `tags[j]`; `named[i, j]` says whether that row's
    distribution names the tag (`probs` holds 0.0 where it does not)."""
    face_ids: np.ndarray
    tags: list[str]
    probs: np.ndarray
    named: np.ndarray
    held_out: np.ndarray
    version: np.ndarray          # per row: index into all_versions
    all_versions: list[str]
    whole: "DistributionMatrix | None" = None     # the parsed matrix these rows were taken from
    keep: np.ndarray | None = None
    memo: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def versions(self) -> list[str]:
        """The versions the rows were written by."""
        return [self.all_versions[i] for i in np.unique(self.version)]

    def rows(self, keep: np.ndarray) -> "DistributionMatrix":
        return DistributionMatrix(self.face_ids[keep], self.tags, self.probs[keep], self.named[keep],
                                  self.held_out[keep], self.version[keep], self.all_versions, self, keep)

    def per_row(self, name: tuple, compute: Callable[["DistributionMatrix"], np.ndarray]) -> np.ndarray:
        """`compute(matrix)`, a value per row that depends on that row alone (a face's margin), for
        these rows: computed once per parsed matrix, over all its rows, and kept with it."""
        whole = self.whole if self.whole is not None else self
        with _MATRICES_LOCK:
            value = whole.memo.get(name)
        if value is None:
            value = compute(whole)
            with _MATRICES_LOCK:
                whole.memo[name] = value
        return value if self.whole is None else value[self.keep]


def _parse_distributions(cursor, chunk: int = 20_000) -> DistributionMatrix:
    """A cursor's (face id, probs JSON, held out, version) rows, in face id order -> a
    DistributionMatrix. `chunk` rows at a time: their JSON parsed as one array (faster than a
    parse per row), then each tag's column read off the dicts into an array."""
    face_ids, held, version_of, blocks = [], [], [], []
    columns: dict[str, int] = {}
    versions: dict[str, int] = {}
    while rows := cursor.fetchmany(chunk):
        ids, texts, held_out, version = zip(*rows)
        face_ids += ids
        held += held_out
        version_of += [versions.setdefault(v, len(versions)) for v in version]
        dicts = json.loads("[" + ",".join(texts) + "]")
        every, tags = set().union(*dicts), []
        for d in dicts:                 # the tags in the order they first appear (mostly: the first row's)
            tags += [t for t in d if t not in tags]
            if len(tags) == len(every):
                break
        for tag in tags:
            columns.setdefault(tag, len(columns))
        blocks.append((len(dicts), [(columns[t], np.array([d.get(t, 0.0) for d in dicts], np.float64),
                                     np.array([t in d for d in dicts], bool)) for t in tags]))
    probs = np.zeros((len(face_ids), len(columns)))
    named = np.zeros((len(face_ids), len(columns)), bool)
    start = 0
    for n, block in blocks:
        for j, values, present in block:
            probs[start:start + n, j] = values
            named[start:start + n, j] = present
        start += n
    return DistributionMatrix(np.array(face_ids, np.int64), list(columns), probs, named, np.array(held, bool),
                              np.array(version_of, np.int64), list(versions))


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

    def distribution_matrix(self, source: str, key: str) -> DistributionMatrix:
        """`distributions(source, key)` as arrays (ok faces only): what the judge orders rank a
        million faces with. Parsed once per process and catalog file while `source`'s tagger
        records and events stay as they are (every write of distributions, `save_learned_labels`,
        records its version anew and adds events); the faces' statuses are read each time."""
        state = (tuple(self.conn.execute("SELECT version, created_at FROM tagger_versions WHERE source = ? "
                                         "ORDER BY version", (source,))),
                 tuple(self.conn.execute("SELECT annotator, events FROM label_source_counts WHERE source = ? "
                                         "ORDER BY annotator", (source,))))
        cache_key = None if self.path is None else (str(self.path.resolve()), source, key)
        with _MATRICES_LOCK:
            cached = _MATRICES.get(cache_key)
        if cached is not None and cached[0] == state:
            matrix = cached[1]
        else:
            matrix = _parse_distributions(self.conn.execute(
                "SELECT face_id, probs, held_out, version FROM label_distributions WHERE source = ? AND key = ? "
                "ORDER BY face_id", (source, key)))
            if cache_key is not None:
                with _MATRICES_LOCK:
                    _MATRICES.pop(cache_key, None)
                    _MATRICES[cache_key] = (state, matrix)
                    while len(_MATRICES) > _MATRICES_KEPT:
                        _MATRICES.pop(next(iter(_MATRICES)))
        not_ok = self.not_ok_face_ids()
        return matrix.rows(~np.isin(matrix.face_ids, not_ok)) if len(not_ok) else matrix

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
