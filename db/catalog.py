"""The catalog: one SQLite file holding sources, face crops, vocabulary and label events.

Every query of the project lives in this package. Writers take `BEGIN IMMEDIATE`
so that two processes (the labelling app, a running `curate crop`) queue on the
busy timeout instead of failing on a lock upgrade, and WAL lets readers go on
while one writes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import sqlite3
import urllib.parse
from pathlib import Path
from typing import Iterable, Iterator

import sqlite_utils

from db.schema import MIGRATIONS, SCHEMA_VERSION
from db.vocabulary import DEFAULT_GROUPS

DEFAULT_DB = "catalog.db"
BUSY_TIMEOUT_S = 60
SPLITS = ("train", "val", "test")
FACE_STATUSES = ("ok", "duplicate", "rejected")
SPLIT_JOIN = "LEFT JOIN face_splits sp ON sp.face_id = f.id"   # faces f -> their split sp.split (or NULL)
IMAGE_JOIN = "JOIN face_images i ON i.face_id = f.id"         # faces f -> their crop i.image


class CatalogError(Exception):
    """A problem the user can fix: bad input, unknown tag, a catalog from the future."""


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


class Catalog:
    """A catalog file (or `Catalog()` in memory, for tests).

    A catalog its user may not write (the file, or its folder, which holds SQLite's
    journal) is opened read-only: everything that reads works, and a write is refused
    with a line that says why, before anything is written."""

    last_opened: Path | None = None   # named by errors that reach the command line unexplained

    def __init__(self, path: str | os.PathLike | None = None, *, create: bool = True):
        self.path = None if path is None else Path(path)
        if self.path is not None and not create and not self.path.exists():
            raise CatalogError(f"no catalog at {self.path} (run `curate crop` or `curate import` first)")
        if self.path is not None and self.path.is_dir():
            raise CatalogError(f"{self.path} is a directory, not a catalog file")
        self.read_only = _not_writable(self.path) if self.path is not None and self.path.exists() else None
        target = ":memory:" if self.path is None else str(self.path)
        Catalog.last_opened = self.path
        try:
            if self.read_only:
                # without a writable folder SQLite cannot make the WAL index: read the file as it is
                immutable = "&immutable=1" if "folder" in self.read_only else ""
                uri = f"file:{urllib.parse.quote(str(self.path.resolve()))}?mode=ro{immutable}"
                self.conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                            check_same_thread=False)
            else:
                self.conn = sqlite3.connect(target, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                            check_same_thread=False)
            self.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
            if self.path is not None and not self.read_only:
                self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA foreign_keys = ON")
            self.conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.DatabaseError as e:
            if "not a database" in str(e) or "malformed" in str(e):
                raise CatalogError(f"{target} is not a usable SQLite catalog: {e}") from e
            raise explain(target, e) from e
        self.db = sqlite_utils.Database(self.conn)
        self._depth = 0
        try:
            self.migrate()
        except BaseException:
            self.conn.close()
            raise

    # -- plumbing -----------------------------------------------------------

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Catalog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; nested calls join the outer one."""
        if self._depth:
            self._depth += 1
            try:
                yield self.conn
            finally:
                self._depth -= 1
            return
        if self.read_only:
            raise CatalogError(f"{self.path} is read-only ({self.read_only}): nothing was written; make it "
                               f"writable (chmod u+w, and the folder too), or work on a copy")
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")
        finally:
            self._depth = 0

    def query(self, sql: str, params: Iterable = ()) -> list[dict]:
        cur = self.conn.execute(sql, tuple(params))
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]

    def schema_version(self) -> int:
        if "schema_version" not in self.db.table_names():
            return 0
        try:
            version = self.conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
        except sqlite3.DatabaseError as e:
            raise CatalogError(f"{self.path}: its schema_version table is damaged ({e}); use a copy") from e
        if version is not None and (not isinstance(version, int) or version < 1):
            raise CatalogError(f"{self.path}: its schema_version table is damaged (version {version!r}); "
                               f"use a copy")
        return version or 0

    def migrate(self) -> None:
        try:
            current = self.schema_version()
            tables = set(self.db.table_names())
        except sqlite3.DatabaseError as e:
            raise CatalogError(f"{self.path} is not a usable SQLite catalog: {e}") from e
        if current > SCHEMA_VERSION:
            raise CatalogError(
                f"{self.path} is at schema version {current}, newer than this program "
                f"({SCHEMA_VERSION}): upgrade the program")
        if current == SCHEMA_VERSION:
            return
        if current == 0 and tables & {"sources", "faces", "label_events"}:
            # Migrating it from scratch would fail half-way, or stack a schema on a damaged one.
            what = "empty" if "schema_version" in tables else "missing"
            raise CatalogError(f"{self.path} holds a catalog but its schema_version table is {what}: the record "
                               f"of its version is lost; nothing was written; use a copy")
        if self.read_only:
            raise CatalogError(f"{self.path} is at schema version {current} and needs upgrading to "
                               f"{SCHEMA_VERSION}, but it is read-only ({self.read_only}): make it writable "
                               f"or upgrade a copy")
        with self.transaction() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, "
                         "applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))")
            # Another process may have migrated while we waited for the lock.
            current = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in _statements(MIGRATIONS[version - 1]):
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
                if version == 1:
                    self._insert_default_vocabulary()

    # -- sources ------------------------------------------------------------

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

    def delete_faces_of_source(self, source_id: int) -> None:
        """Drop the crops of a source being re-processed (a crash mid-source left them)."""
        with self.transaction() as conn:
            ids = [r[0] for r in conn.execute("SELECT id FROM faces WHERE source_id=?", (source_id,))]
            if ids and conn.execute(
                    f"SELECT 1 FROM label_events WHERE face_id IN ({','.join('?' * len(ids))}) LIMIT 1",
                    ids).fetchone():
                raise CatalogError(f"source {source_id} has labelled faces; refusing to delete them")
            conn.execute("DELETE FROM faces WHERE source_id=?", (source_id,))

    # -- faces --------------------------------------------------------------

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

    def face_phashes(self) -> list[tuple[int, int]]:
        """(id, phash) of every face that is not itself a duplicate, oldest first."""
        return list(self.conn.execute(
            "SELECT id, phash FROM faces WHERE status != 'duplicate' AND phash IS NOT NULL ORDER BY id"))

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

    # -- vocabulary ---------------------------------------------------------

    def _insert_default_vocabulary(self) -> None:
        for gpos, (group, exclusive, tags) in enumerate(DEFAULT_GROUPS):
            self.conn.execute("INSERT INTO tag_groups (name, exclusive, position) VALUES (?, ?, ?)",
                              (group, int(exclusive), gpos))
            for tpos, tag in enumerate(tags):
                self.conn.execute("INSERT INTO tags (name, group_name, position) VALUES (?, ?, ?)",
                                  (tag, group, tpos))

    def groups(self) -> list[dict]:
        """[{name, exclusive, tags: [names in order]}] in vocabulary order."""
        groups = self.query("SELECT name, exclusive FROM tag_groups ORDER BY position, name")
        tags = self.conn.execute("SELECT name, group_name FROM tags ORDER BY position, name").fetchall()
        for g in groups:
            g["exclusive"] = bool(g["exclusive"])
            g["tags"] = [t for t, grp in tags if grp == g["name"]]
        return groups

    def group(self, name: str) -> dict:
        for g in self.groups():
            if g["name"] == name:
                return g
        raise CatalogError(f"unknown tag group {name!r}; known: {', '.join(g['name'] for g in self.groups())}")

    def tag_index(self) -> dict[str, tuple[str, bool]]:
        """Tag -> (group, group is exclusive)."""
        return {t: (g, bool(e)) for t, g, e in self.conn.execute(
            "SELECT t.name, t.group_name, g.exclusive FROM tags t JOIN tag_groups g ON g.name = t.group_name")}

    def add_group(self, name: str, exclusive: bool) -> None:
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM tag_groups WHERE name=?", (name,)).fetchone():
                raise CatalogError(f"tag group {name!r} exists already")
            pos = conn.execute("SELECT coalesce(max(position), -1) + 1 FROM tag_groups").fetchone()[0]
            conn.execute("INSERT INTO tag_groups (name, exclusive, position) VALUES (?, ?, ?)",
                         (name, int(exclusive), pos))

    def add_tag(self, tag: str, group: str) -> None:
        tag = tag.strip()
        if not tag:
            raise CatalogError("a tag needs a name")
        with self.transaction() as conn:
            if not conn.execute("SELECT 1 FROM tag_groups WHERE name=?", (group,)).fetchone():
                raise CatalogError(f"unknown tag group {group!r} (add it first)")
            if conn.execute("SELECT 1 FROM tags WHERE name=?", (tag,)).fetchone():
                raise CatalogError(f"tag {tag!r} exists already")
            pos = conn.execute("SELECT coalesce(max(position), -1) + 1 FROM tags WHERE group_name=?",
                               (group,)).fetchone()[0]
            conn.execute("INSERT INTO tags (name, group_name, position) VALUES (?, ?, ?)", (tag, group, pos))

    def remove_tag(self, tag: str) -> None:
        with self.transaction() as conn:
            if not conn.execute("SELECT 1 FROM tags WHERE name=?", (tag,)).fetchone():
                raise CatalogError(f"unknown tag {tag!r}")
            if conn.execute("SELECT 1 FROM label_events WHERE tag=? LIMIT 1", (tag,)).fetchone():
                raise CatalogError(f"tag {tag!r} has label events; it stays so no history is lost")
            conn.execute("DELETE FROM tags WHERE name=?", (tag,))

    # -- labels -------------------------------------------------------------

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

    def has_labels(self, source: str) -> bool:
        return self.conn.execute("SELECT 1 FROM label_current WHERE source = ? AND +tag IS NOT NULL LIMIT 1",
                                 (source,)).fetchone() is not None

    def label_keys(self, source: str) -> set[str]:
        """The keys (exclusive groups, independent tags) `source` has current labels for."""
        return {k for k, in self.conn.execute("SELECT DISTINCT key FROM label_current WHERE source = ? "
                                              "AND +tag IS NOT NULL", (source,))}

    def label_sources(self) -> list[dict]:
        """Every label source with its event count, faces labelled and annotators."""
        # Counts kept by triggers (label_source_counts, label_face_counts): reading 700k events took
        # seconds, counting the faces of 5.6M current labels 2.4 s.
        faces = dict(self.conn.execute("SELECT source, faces FROM label_face_counts"))
        return [{"source": r["source"], "events": r["events"], "faces": faces.get(r["source"], 0),
                 "annotators": r["annotators"]} for r in self.query(
            "SELECT source, sum(events) AS events, group_concat(nullif(annotator, '')) AS annotators "
            "FROM label_source_counts GROUP BY source ORDER BY source")]

    def require_label_source(self, source: str) -> None:
        """CatalogError naming the known sources unless `source` has labels."""
        if not self.conn.execute("SELECT 1 FROM label_current WHERE source = ? LIMIT 1", (source,)).fetchone():
            known = [r["source"] for r in self.label_sources()]
            raise CatalogError(f"label source {source!r} has no labels in this catalog "
                               f"(known: {', '.join(sorted(known)) or 'none'})")

    def label_history(self, face_id: int) -> list[dict]:
        return self.query("SELECT * FROM label_events WHERE face_id = ? ORDER BY id", [face_id])

    # -- splits -------------------------------------------------------------

    def assign_splits(self, val: float, test: float, seed: int = 0, stratify: str | None = None,
                      reassign: bool = False) -> dict[str, int]:
        """Give every ok face without a split one of train/val/test.

        Without `stratify`, a face's split is a pure function of (seed, its content
        hash), so adding faces never moves existing ones. With `stratify=SOURCE`,
        faces are grouped by that source's current label of the first exclusive
        group, and each new face goes, in hash order, to the split furthest below
        its share within its stratum: still never moving a face that has a split.
        `reassign` clears all splits first. Returns counts of faces assigned now.
        """
        if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
            raise CatalogError(f"--val {val} and --test {test} must be fractions with val + test < 1")
        with self.transaction() as conn:
            if reassign:  # = forget every split, then draw them all; faces that keep theirs are not rewritten
                conn.execute("DELETE FROM face_splits WHERE face_id IN (SELECT id FROM faces WHERE status != 'ok')")
                todo = conn.execute(f"SELECT f.id, f.sha256, sp.split FROM faces f {SPLIT_JOIN} "
                                    "WHERE f.status = 'ok'").fetchall()
            else:
                todo = conn.execute(f"SELECT f.id, f.sha256, sp.split FROM faces f {SPLIT_JOIN} "
                                    "WHERE f.status = 'ok' AND sp.split IS NULL").fetchall()
            assigned: dict[int, str] = {}
            places = split_hashes(seed, [sha for _, sha, _ in todo])
            if stratify is None:
                for (fid, _, _), u in zip(todo, places):
                    assigned[fid] = "test" if u < test else "val" if u < test + val else "train"
            else:
                if not conn.execute("SELECT 1 FROM label_events WHERE source=? LIMIT 1", (stratify,)).fetchone():
                    raise CatalogError(f"label source {stratify!r} has no labels to stratify by")
                exclusive = [g for g in self.groups() if g["exclusive"]]
                key = exclusive[0]["name"] if exclusive else None
                stratum = dict(conn.execute("SELECT face_id, tag FROM label_current WHERE source = ? AND key = ? "
                                            "AND +tag IS NOT NULL", (stratify, key)))
                # per stratum: faces so far in test, val, train
                counts: dict[str | None, list[int]] = {}
                if not reassign:
                    for fid, split, in conn.execute(
                            "SELECT sp.face_id, sp.split FROM face_splits sp JOIN faces f ON f.id = sp.face_id "
                            "WHERE f.status = 'ok'"):
                        counts.setdefault(stratum.get(fid), [0, 0, 0])[("test", "val", "train").index(split)] += 1
                new_faces: dict[str | None, list[int]] = {}   # per stratum, in hash order
                ids = [fid for fid, _, _ in todo]
                for i in sorted(range(len(todo)), key=places.__getitem__):
                    new_faces.setdefault(stratum.get(ids[i]), []).append(ids[i])
                for key_tag, fids in new_faces.items():
                    picks = _stratified_picks(counts.get(key_tag, (0, 0, 0)), len(fids), (test, val, 1 - val - test))
                    assigned.update(zip(fids, picks))
            conn.executemany("INSERT OR REPLACE INTO face_splits (face_id, split) VALUES (?, ?)",
                             [(fid, assigned[fid]) for fid, _, split in todo if assigned[fid] != split])
        out = dict.fromkeys(SPLITS, 0)
        for s in assigned.values():
            out[s] += 1
        return out

    def split_counts(self) -> dict[str, int]:
        """Ok faces per split ("none": without one). Counted on face_splits' index, less the splits
        of faces that are not ok (few), rather than by joining every face to its split (0.5 s at
        a million faces)."""
        out = dict.fromkeys(SPLITS + ("none",), 0)
        others = [s for s in FACE_STATUSES if s != "ok"]
        not_ok = dict(self.conn.execute(
            f"SELECT sp.split, count(*) FROM faces f JOIN face_splits sp ON sp.face_id = f.id "
            f"WHERE f.status IN ({', '.join('?' * len(others))}) GROUP BY 1", others))
        for split, n in self.conn.execute("SELECT split, count(*) FROM face_splits GROUP BY split"):
            out[split] = n - not_ok.get(split, 0)
        ok = self.conn.execute("SELECT count(*) FROM faces WHERE status = 'ok'").fetchone()[0]
        out["none"] = ok - sum(out[s] for s in SPLITS)
        return out

    # -- training sets ------------------------------------------------------

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

    # -- summaries ----------------------------------------------------------

    def stats(self) -> dict:
        one = lambda sql: self.conn.execute(sql).fetchone()[0]  # noqa: E731
        return {
            "path": str(self.path) if self.path else ":memory:",
            "schema_version": self.schema_version(),
            "sources": dict(self.conn.execute("SELECT status, count(*) FROM sources GROUP BY status")),
            "source_errors": self.query("SELECT message, count(*) AS n FROM sources WHERE status='error' "
                                        "GROUP BY message ORDER BY n DESC LIMIT 10"),
            "faces": dict(self.conn.execute("SELECT status, count(*) FROM faces GROUP BY status")),
            "rejected": dict(self.conn.execute("SELECT reason, count(*) FROM faces WHERE status='rejected' "
                                               "GROUP BY reason")),
            "detectors": dict(self.conn.execute("SELECT detector, count(*) FROM faces GROUP BY detector")),
            # grouped in the order of the (status, width, height) index: no temporary B-tree
            "sizes": dict(self.conn.execute("SELECT width || 'x' || height, n FROM (SELECT width, height, "
                                            "count(*) AS n FROM faces WHERE status='ok' GROUP BY width, height) "
                                            "ORDER BY n DESC LIMIT 5")),
            "splits": self.split_counts(),
            "label_sources": self.label_sources(),
            # faces per tag with value NULL or >= 0.5, kept by triggers (label_tag_counts)
            "tag_counts": self.query("SELECT source, tag, faces AS n FROM label_tag_counts WHERE faces > 0 "
                                     "ORDER BY source, n DESC"),
            # sum(length(image)), kept by triggers: summing it would read every crop
            "catalog_bytes": one("SELECT image_bytes FROM catalog_totals"),
        }


def _not_writable(path: Path) -> str | None:
    """Why this user may not write the catalog, or None."""
    if not os.access(path, os.W_OK):
        return "the file is not writable"
    folder = path.resolve().parent
    if not os.access(folder, os.W_OK):
        return f"its folder {folder} is not writable"
    return None


def _stratified_picks(counts, n_new: int, shares: tuple[float, float, float]) -> list[str]:
    """Splits of a stratum's next `n_new` faces: each goes to the split furthest below its
    share given `counts` (test, val, train) so far; ties: test, val, train. (A plain loop over
    three ints: this runs once per face, 100,000 times for a large catalog.)"""
    t, v, r = counts
    st, sv, sr = shares
    out = []
    add = out.append
    for n in range(t + v + r + 1, t + v + r + n_new + 1):
        bt, bv, br = st * n - t, sv * n - v, sr * n - r
        if bt >= bv and bt >= br:
            t += 1
            add("test")
        elif bv >= br:
            v += 1
            add("val")
        else:
            r += 1
            add("train")
    return out


def split_hash(seed: int, sha256: str) -> float:
    """A face's place in [0, 1) for splitting: depends on nothing but seed and content."""
    return split_hashes(seed, [sha256])[0]


def split_hashes(seed: int, sha256s: list[str]) -> list[float]:
    """`split_hash` of many faces (one comprehension: a function call per face costs a third
    of a 100,000-face split)."""
    sha, prefix = hashlib.sha256, f"{seed}:"
    return [int.from_bytes(sha((prefix + s).encode()).digest()[:8], "big") / 2**64 for s in sha256s]


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


def _count_existing(conn: sqlite3.Connection, table: str, ids: set[int]) -> int:
    ids = list(ids)
    n = 0
    for i in range(0, len(ids), 900):
        chunk = ids[i:i + 900]
        n += conn.execute(f"SELECT count(*) FROM {table} WHERE id IN ({','.join('?' * len(chunk))})",
                          chunk).fetchone()[0]
    return n


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (sqlite3 runs one at a time)."""
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out
