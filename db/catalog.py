"""The catalog: one SQLite file holding sources, face crops, vocabulary and label events.

`Catalog` is the connection (transactions, migrations, errors) combined with one mixin of
query methods per table family: faces (db/faces.py), vocabulary, labels, splits, derived
images, tagging, labelling and training, each in its own module. Writers take `BEGIN
IMMEDIATE` so that two processes (the labelling app, a running `curate crop`) queue on the
busy timeout instead of failing on a lock upgrade, and WAL lets readers go on while one writes.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import urllib.parse
from pathlib import Path
from typing import Iterable, Iterator

import sqlite_utils

from db.base import BUSY_TIMEOUT_S, DEFAULT_DB, SPLITS, CatalogError, explain  # noqa: F401 (db's API)
from db.derived import DerivedMixin
from db.faces import FacesMixin
from db.kept import KeptMixin
from db.labelling import LabellingMixin
from db.labels import LabelsMixin
from db.schema import MIGRATIONS, SCHEMA_VERSION
from db.splits import SplitsMixin, split_hash  # noqa: F401 (db's API)
from db.tagging import TaggingMixin
from db.training import TrainingMixin
from db.vocabulary import VocabularyMixin


# catalog files (path, device, inode) this process checked before its first write and found sound
_FOUND_SOUND: set[tuple[str, int, int]] = set()


class Catalog(FacesMixin, VocabularyMixin, LabelsMixin, KeptMixin, SplitsMixin, DerivedMixin, TaggingMixin,
              LabellingMixin, TrainingMixin):
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


    # -- plumbing -------------------------------------------------------------

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
        self._check_once()
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

    def _check_once(self) -> None:
        """Before this process first writes a catalog file: SQLite's quick_check, so that a file
        with damaged pages is refused before anything is added to it, not found out later (it reads
        the whole file once: a second or so per GB; writes after that are not slowed)."""
        if self.path is None:
            return
        st = self.path.stat()
        key = (str(self.path.resolve()), st.st_dev, st.st_ino)
        if key in _FOUND_SOUND:
            return
        try:
            problems = [row[0] for row in self.conn.execute("PRAGMA quick_check(3)")]
        except sqlite3.DatabaseError as e:
            raise explain(self.path, e) from e
        if problems != ["ok"]:
            lines = [line for row in problems for line in row.splitlines() if not line.startswith("***")]
            raise explain(self.path, sqlite3.DatabaseError("quick_check: " + "; ".join(lines[:2])))
        _FOUND_SOUND.add(key)

    def change_count(self) -> tuple[int, int]:
        """A value that changes whenever the catalog's contents may have: a commit by any other
        connection, this process's or another's (PRAGMA data_version), or a change made through
        this one (total_changes). What a cache of answers read from this connection is keyed on."""
        return self.conn.execute("PRAGMA data_version").fetchone()[0], self.conn.total_changes

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


    # -- summaries ------------------------------------------------------------

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
