"""Queries of label events: writing, undoing, the labels in force now, label sources, history.

A label is an event (face, key, tag, value, source, annotator); `label_current` (kept by
triggers) holds each (source, face, key)'s newest one.
"""

from __future__ import annotations

import sqlite3
from typing import Iterable, Iterator

from db.base import SPLITS, CatalogError, did_you_mean


class LabelsMixin:
    """Label events and current labels (one of the mixins `Catalog` is made of)."""

    # -- writes ---------------------------------------------------------------

    def add_labels(self, labels: Iterable[tuple[int, str, float | None]], source: str,
                   annotator: str | None = None) -> int:
        """Append label events (face_id, tag, value) for `source`; returns how many.

        For an exclusive group the event says "this face's <group> is <tag>" and
        supersedes that source's earlier choice; for an independent tag, value 1/0
        (people) or a probability (models). All or nothing: one unknown tag or face
        and no event is written.
        """
        if not source or not source.strip():
            raise CatalogError("a label source needs a name")
        index = self.tag_index()
        rows = []
        for face_id, tag, value in labels:
            if tag not in index:
                raise CatalogError(f"unknown tag {tag!r} (see `curate vocab list`)")
            group, exclusive = index[tag]
            rows.append((face_id, group if exclusive else tag, tag, value, source, annotator))
        with self.transaction() as conn:
            ids = {r[0] for r in rows}
            known = _count_existing(conn, "faces", ids)
            if known != len(ids):
                raise CatalogError(f"{len(ids) - known} label(s) name faces that are not in the catalog")
            conn.executemany("INSERT INTO label_events (face_id, key, tag, value, source, annotator) "
                             "VALUES (?, ?, ?, ?, ?, ?)", rows)
        return len(rows)

    def clear_label(self, face_id: int, key: str, source: str, annotator: str | None = None) -> int:
        """Append a 'cleared' event for a group or independent tag."""
        with self.transaction() as conn:
            cur = conn.execute("INSERT INTO label_events (face_id, key, tag, value, source, annotator) "
                               "VALUES (?, ?, NULL, NULL, ?, ?)", (face_id, key, source, annotator))
            return cur.lastrowid

    def undo_last(self, source: str, annotator: str | None = None) -> dict | None:
        """Undo the newest not-yet-undone event of (source, annotator) by appending
        the value that key had before it. Returns the event undone, or None."""
        with self.transaction() as conn:
            undone = "SELECT undoes FROM label_events WHERE undoes IS NOT NULL"
            row = self.query(
                f"SELECT * FROM label_events WHERE source = ? AND annotator IS ? AND undoes IS NULL "
                f"AND id NOT IN ({undone}) ORDER BY id DESC LIMIT 1", [source, annotator])
            if not row:
                return None
            ev = row[0]
            # The state before `ev`: the newest earlier event of that key that is still in
            # effect -- skipping events that were themselves undone.
            prev = conn.execute(
                f"SELECT tag, value FROM label_events WHERE face_id=? AND source=? AND key=? AND id < ? "
                f"AND undoes IS NULL AND id NOT IN ({undone}) ORDER BY id DESC LIMIT 1",
                (ev["face_id"], source, ev["key"], ev["id"])).fetchone()
            tag, value = prev if prev else (None, None)
            conn.execute("INSERT INTO label_events (face_id, key, tag, value, source, annotator, undoes) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (ev["face_id"], ev["key"], tag, value, source, annotator, ev["id"]))
            return ev

    # -- labels in force now --------------------------------------------------

    def current_labels(self, source: str, face_ids: Iterable[int] | None = None,
                       min_prob: float | None = None, annotator: str | None = None) -> list[dict]:
        """The labels of `source` in force now: the newest event per (face, key),
        not cleared. With `annotator`, that person's labels only."""
        if annotator is None:
            # label_current holds each (source, face, key)'s newest event (kept by triggers).
            rows = self.query("SELECT face_id, key, tag, value, annotator, created_at FROM label_current "
                              "WHERE source = ? AND +tag IS NOT NULL", [source])
        else:
            rows = self.query(
                "SELECT e.face_id, e.key, e.tag, e.value, e.annotator, e.created_at FROM label_events e "
                "JOIN (SELECT max(id) AS id FROM label_events WHERE source = ? AND annotator = ? "
                "GROUP BY face_id, key) m ON m.id = e.id WHERE e.tag IS NOT NULL", [source, annotator])
        if face_ids is not None:
            wanted = set(face_ids)
            rows = [r for r in rows if r["face_id"] in wanted]
        if min_prob is not None:
            rows = [r for r in rows if r["value"] is not None and r["value"] >= min_prob]
        return rows

    def iter_current_labels(self, source: str) -> Iterator[tuple[int, str, str, float | None]]:
        """(face id, key, tag, value) of the labels of `source` in force now, in face id order,
        straight from the cursor (at a million faces, 5M labels held at once take gigabytes)."""
        yield from self.conn.execute("SELECT face_id, key, tag, value FROM label_current WHERE source = ? "
                                     "AND +tag IS NOT NULL ORDER BY face_id", (source,))

    def current_for_keys(self, source: str, keys: list[str], face_ids: list[int] | None = None,
                         annotator: str | None = None) -> dict[int, dict[str, tuple[str, float | None]]]:
        """Face id -> {key: (tag, value)} of `source`'s current labels among `keys`
        (with `annotator`: that person's labels, see below)."""
        marks = ",".join("?" * len(keys))
        params: list = [source, *keys]
        extra = ""
        if annotator is not None:
            # One person's labels: their newest event that is neither an undo nor undone. (An undo
            # event restores the *source's* previous value, which may be another person's label.)
            extra += (" AND annotator = ? AND undoes IS NULL AND id NOT IN "
                      "(SELECT undoes FROM label_events WHERE undoes IS NOT NULL)")
            params.append(annotator)
        if face_ids is not None:
            if not face_ids:
                return {}
            extra += f" AND face_id IN ({','.join('?' * len(face_ids))})"
            params += list(face_ids)
        rows = self.conn.execute(
            f"SELECT e.face_id, e.key, e.tag, e.value FROM label_events e JOIN "
            f"(SELECT max(id) AS id FROM label_events WHERE source = ? AND key IN ({marks}){extra} "
            f"GROUP BY face_id, key) m ON m.id = e.id WHERE e.tag IS NOT NULL", params).fetchall()
        out: dict[int, dict[str, tuple[str, float | None]]] = {}
        for face_id, key, tag, value in rows:
            out.setdefault(face_id, {})[key] = (tag, value)
        return out

    def annotator_labels(self, source: str, keys: list[str]) -> list[tuple[int, str, str | None, str]]:
        """(face id, key, annotator, tag) of each person's label in force now, per (face, key,
        annotator), among `keys`, ok faces only: what several people said about the same face.

        A person's label is their newest event of that key that is neither an undo nor undone
        (as in `current_for_keys`: an undo event restores the *source's* previous value, which
        may be another person's), unless that event cleared it. One query, by the
        (source, face, key, id) index."""
        if not keys:
            return []
        marks = ",".join("?" * len(keys))
        return self.conn.execute(
            f"SELECT e.face_id, e.key, e.annotator, e.tag FROM label_events e JOIN "
            f"(SELECT max(id) AS id FROM label_events WHERE source = ? AND key IN ({marks}) AND undoes IS NULL "
            f"AND id NOT IN (SELECT undoes FROM label_events WHERE undoes IS NOT NULL) "
            f"GROUP BY face_id, key, annotator) m ON m.id = e.id JOIN faces f ON f.id = e.face_id "
            f"WHERE e.tag IS NOT NULL AND f.status = 'ok' ORDER BY e.face_id, e.key, e.annotator",
            [source, *keys]).fetchall()

    def labels_of_faces(self, face_ids: list[int]) -> dict[int, dict[str, dict[str, tuple]]]:
        """Face id -> source -> key -> (tag, value, annotator): every source's current labels."""
        if not face_ids:
            return {}
        marks = ",".join("?" * len(face_ids))
        rows = self.conn.execute(
            f"SELECT e.face_id, e.source, e.key, e.tag, e.value, e.annotator FROM label_events e JOIN "
            f"(SELECT max(id) AS id FROM label_events WHERE face_id IN ({marks}) GROUP BY face_id, source, key) m "
            f"ON m.id = e.id WHERE e.tag IS NOT NULL", list(face_ids)).fetchall()
        out: dict[int, dict[str, dict[str, tuple]]] = {}
        for face_id, source, key, tag, value, annotator in rows:
            out.setdefault(face_id, {}).setdefault(source, {})[key] = (tag, value, annotator)
        return out

    def has_labels(self, source: str) -> bool:
        return self.conn.execute("SELECT 1 FROM label_current WHERE source = ? AND +tag IS NOT NULL LIMIT 1",
                                 (source,)).fetchone() is not None

    def label_keys(self, source: str) -> set[str]:
        """The keys (exclusive groups, independent tags) `source` has current labels for."""
        return {k for k, in self.conn.execute("SELECT DISTINCT key FROM label_current WHERE source = ? "
                                              "AND +tag IS NOT NULL", (source,))}

    def labelled_faces(self, source: str, split: str | None = "train", min_prob: float | None = None,
                       common: Iterable[str] = (), groups: Iterable[str] | None = None,
                       ) -> dict[int, dict[str, tuple[str, float]]]:
        """Face id -> {key: (tag, value)} for ok faces of `split` labelled by `source`.

        `common` names other sources a face must also carry a label from, so runs on
        different sources can train on the very same faces. `groups` keeps only the
        labels of those tag groups (what a run conditions on), in both.
        """
        for s in [source, *common]:
            self.require_label_source(s)
        if split is not None and split not in SPLITS:
            raise CatalogError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
        # Filtered in SQL, so only the rows kept cross into Python (500k i2v labels at 100k faces).
        # Faces drive the join (CROSS JOIN fixes the order) and `+tag` keeps the planner off the
        # (source, tag) index, which without ANALYZE statistics it picked for per-face lookups:
        # minutes instead of a fraction of a second at 100k faces.
        sql = ("SELECT l.face_id, l.key, l.tag, l.value FROM faces f CROSS JOIN label_current l "
               "ON l.source = ? AND l.face_id = f.id WHERE f.status = 'ok' AND +l.tag IS NOT NULL")
        params: list = [source]
        keys: list[str] = []
        for name in groups or ():
            g = self.group(name)
            keys += [g["name"]] if g["exclusive"] else g["tags"]
        in_keys = f" AND {{}}.key IN ({', '.join('?' * len(keys))})" if groups is not None else ""
        if split is not None:
            sql += " AND f.id IN (SELECT face_id FROM face_splits WHERE split = ?)"
            params.append(split)
        if min_prob is not None:
            sql += " AND l.value >= ?"
            params.append(min_prob)
        sql += in_keys.format("l")
        params += keys
        for s in common:
            sql += (" AND EXISTS (SELECT 1 FROM label_current c WHERE c.source = ? AND c.face_id = f.id "
                    f"AND +c.tag IS NOT NULL{in_keys.format('c')})")
            params += [s, *keys]
        out: dict[int, dict[str, tuple[str, float]]] = {}
        for face_id, key, tag, value in self.conn.execute(sql, params):
            out.setdefault(face_id, {})[key] = (tag, value)
        return out

    # -- sources and history --------------------------------------------------

    def label_sources(self) -> list[dict]:
        """Every label source with its event count, faces labelled (with a tag), faces tried without
        a result ("nothing found", "unsure", a cleared label, and nothing else) and annotators."""
        # Counts kept by triggers (label_source_counts, label_face_counts, label_labelled_counts):
        # reading 700k events took seconds, counting the faces of 5.6M current labels 2.4 s.
        tried = dict(self.conn.execute("SELECT source, faces FROM label_face_counts"))
        faces = dict(self.conn.execute("SELECT source, faces FROM label_labelled_counts"))
        return [{"source": r["source"], "events": r["events"], "faces": faces.get(r["source"], 0),
                 "tried_without_result": tried.get(r["source"], 0) - faces.get(r["source"], 0),
                 "annotators": r["annotators"]} for r in self.query(
            "SELECT source, sum(events) AS events, group_concat(nullif(annotator, '')) AS annotators "
            "FROM label_source_counts GROUP BY source ORDER BY source")]

    def source_writers(self, source: str) -> set[str | None]:
        """Who wrote `source`'s events (people's names, tagger versions; None for events without
        one), from the counts kept by triggers."""
        return {a or None for a, in self.conn.execute("SELECT annotator FROM label_source_counts WHERE source = ?",
                                                       (source,))}

    def label_source_names(self) -> list[str]:
        """Every source with label events, fast on millions of events (skip-scan of the index)."""
        rows = self.conn.execute(
            "WITH RECURSIVE s(x) AS (SELECT min(source) FROM label_events UNION ALL "
            "SELECT (SELECT min(source) FROM label_events WHERE source > s.x) FROM s WHERE s.x IS NOT NULL) "
            "SELECT x FROM s WHERE x IS NOT NULL").fetchall()
        return [r[0] for r in rows]

    def require_label_source(self, source: str) -> None:
        """CatalogError naming the known sources unless `source` has labels."""
        if not self.conn.execute("SELECT 1 FROM label_current WHERE source = ? LIMIT 1", (source,)).fetchone():
            known = [r["source"] for r in self.label_sources()]
            raise CatalogError(f"label source {source!r} has no labels in this catalog{did_you_mean(source, known)} "
                               f"(known: {', '.join(sorted(known)) or 'none'})")

    def label_history(self, face_id: int) -> list[dict]:
        return self.query("SELECT * FROM label_events WHERE face_id = ? ORDER BY id", [face_id])


def _count_existing(conn: sqlite3.Connection, table: str, ids: set[int]) -> int:
    ids = list(ids)
    n = 0
    for i in range(0, len(ids), 900):
        chunk = ids[i:i + 900]
        n += conn.execute(f"SELECT count(*) FROM {table} WHERE id IN ({','.join('?' * len(chunk))})",
                          chunk).fetchone()[0]
    return n
