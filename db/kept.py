"""Label arrays the labelling app's queue orders read at a million faces, kept in step with the
catalog's new events instead of read again after every key press.

A source's current labels of a key (`label_column`) and each person's labels of a key
(`annotator_label_column`) are read once per process and catalog file (a million rows of a tagger:
a second or two), then brought up to date from the events written since: label events are
appended, never edited, so the newest event id and the source's event count (kept by triggers)
say exactly when and where something changed, and only the faces those new events touch are read
again. Another count than the new events explain (an event deleted) reads everything again.
Face statuses are not events: the callers drop the faces that are not ok (`not_ok_face_ids`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np

from db.base import FACE_STATUSES

_KEPT: dict[tuple, tuple[int, float, object]] = {}   # (file, what, source, key) -> (newest event, events, value)
_KEPT_LOCK = threading.Lock()
_KEPT_ENTRIES = 16
PATCH_AT_MOST = 20_000     # new events of a source beyond this: read everything again
CHUNK = 900                # face ids per IN (...) list


@dataclass(frozen=True)
class LabelColumn:
    """One source's current labels of one key (tag not NULL), every face, in face id order: the
    tag and the value (`null`: the event's value is NULL, which counts as 1)."""
    face_ids: np.ndarray
    tags: np.ndarray          # object array of str
    values: np.ndarray        # float64, 1.0 where null
    null: np.ndarray


@dataclass(frozen=True)
class AnnotatorColumn:
    """Each person's current label of one key (as `annotator_labels` reads it), every face, in
    (face id, annotator) order; `annotators` None where the events carry no name."""
    face_ids: np.ndarray
    annotators: list
    tags: list


def _shared(texts) -> list:
    """The texts with one str object per distinct text (a million tags are a dozen strings)."""
    seen: dict = {}
    return [seen.setdefault(t, t) for t in texts]


def _label_column(rows: list) -> LabelColumn:
    if not rows:
        return LabelColumn(np.zeros(0, np.int64), np.zeros(0, object), np.zeros(0), np.zeros(0, bool))
    faces, tags, values = zip(*rows)
    return LabelColumn(np.array(faces, np.int64), np.array(_shared(tags), object),
                       np.array([1.0 if v is None else v for v in values], np.float64),
                       np.array([v is None for v in values], bool))


def _patched_column(old: LabelColumn, faces: list[int], rows: list) -> LabelColumn:
    keep = ~np.isin(old.face_ids, faces)
    new = _label_column(rows)
    both = [np.concatenate([getattr(old, name)[keep], getattr(new, name)]) for name in ("face_ids", "tags", "values",
                                                                                        "null")]
    order = np.argsort(both[0], kind="stable")
    return LabelColumn(*(a[order] for a in both))


def _annotator_column(rows: list) -> AnnotatorColumn:
    return AnnotatorColumn(np.array([f for f, _, _ in rows], np.int64), _shared(a for _, a, _ in rows),
                           _shared(t for _, _, t in rows))


def _patched_annotators(old: AnnotatorColumn, faces: list[int], rows: list) -> AnnotatorColumn:
    keep = ~np.isin(old.face_ids, faces)          # a face's rows are all old or all read again
    new = _annotator_column(rows)
    face_ids = np.concatenate([old.face_ids[keep], new.face_ids])
    annotators = [a for a, k in zip(old.annotators, keep.tolist()) if k] + new.annotators
    tags = [t for t, k in zip(old.tags, keep.tolist()) if k] + new.tags
    order = np.argsort(face_ids, kind="stable").tolist()
    return AnnotatorColumn(face_ids[order], [annotators[i] for i in order], [tags[i] for i in order])


class KeptMixin:
    """Label arrays kept in step with new events (one of the mixins `Catalog` is made of)."""

    def label_column(self, source: str, key: str) -> LabelColumn:
        """`source`'s current labels of `key` (label_current, tag not NULL), every face."""
        sql = "SELECT face_id, tag, value FROM label_current WHERE source = ? AND key = ? AND +tag IS NOT NULL"
        return self._kept("column", source, key,
                          lambda: _label_column(self.conn.execute(f"{sql} ORDER BY face_id", (source, key)).fetchall()),
                          lambda faces, marks: self.conn.execute(f"{sql} AND face_id IN ({marks})",
                                                                 (source, key, *faces)).fetchall(),
                          _patched_column)

    def annotator_label_column(self, source: str, key: str) -> AnnotatorColumn:
        """Each person's label of `key` in force now, every face: their newest event of that key that
        is neither an undo nor undone, unless it cleared the label (see `annotator_labels`)."""
        def read(where: str = "", faces: tuple = ()) -> list:
            return self.conn.execute(
                "SELECT e.face_id, e.annotator, e.tag FROM label_events e JOIN (SELECT max(id) AS id "
                f"FROM label_events WHERE source = ? AND key = ?{where} AND undoes IS NULL AND id NOT IN "
                "(SELECT undoes FROM label_events WHERE undoes IS NOT NULL) GROUP BY face_id, key, annotator) m "
                "ON m.id = e.id WHERE e.tag IS NOT NULL "
                "ORDER BY e.face_id, e.annotator", (source, key, *faces)).fetchall()

        return self._kept("annotators", source, key, lambda: _annotator_column(read()),
                          lambda faces, marks: read(f" AND face_id IN ({marks})", faces), _patched_annotators)

    def current_tags(self, source: str, key: str) -> tuple[list[int], list[str]]:
        """(face ids ascending, their tags): `source`'s current label of `key` on ok faces, as
        `labelled_faces(source, split=None, ...)` reads it."""
        column = self.label_column(source, key)
        ok = ~np.isin(column.face_ids, self.not_ok_face_ids())
        return column.face_ids[ok].tolist(), column.tags[ok].tolist()

    def confident_disagreements(self, a: str, b: str, key: str, min_confidence: float
                                ) -> list[tuple[int, str, float]]:
        """(face id, b's tag, b's value) of the ok faces whose current labels of `key` (an exclusive
        group) from `a` and `b` name different tags with confidence (the product of the two values,
        a value of NULL counting as 1) >= `min_confidence`, by face id:
        `curate.quality.agreement.worst_disagreements`'s rows of that key."""
        ca, cb = self.label_column(a, key), self.label_column(b, key)
        faces, ia, ib = np.intersect1d(ca.face_ids, cb.face_ids, assume_unique=True, return_indices=True)
        keep = ((ca.tags[ia] != cb.tags[ib]) & (ca.values[ia] * cb.values[ib] >= min_confidence)
                & ~np.isin(faces, self.not_ok_face_ids()))
        return list(zip(faces[keep].tolist(), cb.tags[ib][keep].tolist(), cb.values[ib][keep].tolist()))

    def not_ok_face_ids(self) -> np.ndarray:
        """The faces whose status is not ok (few: read through the status index), ascending."""
        others = [s for s in FACE_STATUSES if s != "ok"]
        return np.array(sorted(f for f, in self.conn.execute(
            f"SELECT id FROM faces WHERE status IN ({','.join('?' * len(others))})", others)), np.int64)

    def _kept(self, what: str, source: str, key: str, read_all: Callable[[], object],
              read_faces: Callable[[tuple, str], list], patch: Callable[[object, list, list], object]) -> object:
        """The kept answer `what` about (source, key), brought up to date (see the module's note)."""
        newest, events = self.conn.execute(
            "SELECT (SELECT coalesce(max(id), 0) FROM label_events), "
            "(SELECT total(events) FROM label_source_counts WHERE source = ?)", (source,)).fetchone()
        cache_key = None if self.path is None else (str(self.path.resolve()), what, source, key)
        with _KEPT_LOCK:
            kept = _KEPT.get(cache_key)
        if kept is not None and kept[:2] == (newest, events):
            return kept[2]
        value = None
        if kept is not None and kept[0] <= newest:
            new = self.conn.execute("SELECT face_id, key FROM label_events WHERE id > ? AND id <= ? AND +source = ?",
                                    (kept[0], newest, source)).fetchall()
            if kept[1] + len(new) == events and len(new) <= PATCH_AT_MOST:
                faces = sorted({f for f, k in new if k == key})
                rows = [r for i in range(0, len(faces), CHUNK)
                        for r in read_faces(tuple(faces[i:i + CHUNK]), ",".join("?" * len(faces[i:i + CHUNK])))]
                value = patch(kept[2], faces, rows) if faces else kept[2]
        if value is None:
            value = read_all()
        if cache_key is not None:
            with _KEPT_LOCK:
                _KEPT.pop(cache_key, None)
                _KEPT[cache_key] = (newest, events, value)
                while len(_KEPT) > _KEPT_ENTRIES:
                    _KEPT.pop(next(iter(_KEPT)))
        return value
