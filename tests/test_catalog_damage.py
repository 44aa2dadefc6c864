"""A damaged, read-only or version-less catalog: one line naming the file and what to do, and
nothing written to it."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from curate.cli import app

runner = CliRunner()


def fingerprint(db: Path) -> tuple[str, bool]:
    """The file's bytes, and whether a write-ahead log holds anything not yet in them."""
    wal = db.with_name(db.name + "-wal")
    return hashlib.sha256(db.read_bytes()).hexdigest(), wal.exists() and wal.stat().st_size > 0


def one_line_error(*args) -> str:
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.output   # no traceback
    return lines[0]


def raw(db: Path, *statements: str) -> None:
    conn = sqlite3.connect(db)
    for s in statements:
        conn.execute(s)
    conn.commit()
    conn.close()


def test_a_damaged_page(tiny_catalog, tmp_path):
    conn = sqlite3.connect(tiny_catalog)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    # label_current, and the counts `labels sources` and `stats` read instead of it (schema 3)
    roots = [conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (name,)).fetchone()[0]
             for name in ("label_current", "label_source_counts")]
    conn.close()
    data = bytearray(tiny_catalog.read_bytes())
    for root in roots:
        start = (root - 1) * page_size
        data[start:start + page_size] = bytes([0xA5]) * page_size      # garbage where a table's root page was
    tiny_catalog.write_bytes(bytes(data))
    before = fingerprint(tiny_catalog)
    labels = tmp_path / "labels.csv"
    labels.write_text("file,hair_color\n/synthetic/3.png,red hair\n")
    for args in (["labels", "sources"], ["stats"], ["labels", "import", labels, "--target", "manual"],
                 ["export", "-o", tmp_path / "out"]):
        line = one_line_error(*args, "--db", tiny_catalog)
        assert str(tiny_catalog) in line and "damaged" in line and ".recover" in line, line
    assert fingerprint(tiny_catalog) == before


@pytest.mark.parametrize("damage, word", [
    (["DELETE FROM schema_version"], "empty"),
    (["DROP TABLE schema_version"], "missing"),
    (["UPDATE schema_version SET version = 'banana'"], "damaged"),
    (["UPDATE schema_version SET version = -3"], "damaged"),
    (["DROP TABLE schema_version", "CREATE TABLE schema_version (x)", "INSERT INTO schema_version VALUES (1)"],
     "damaged"),
])
def test_a_damaged_schema_version_table(tiny_catalog, damage, word):
    raw(tiny_catalog, *damage)
    before = fingerprint(tiny_catalog)
    for args in (["stats"], ["vocab", "add", "hat2", "--group", "other"]):
        line = one_line_error(*args, "--db", tiny_catalog)
        assert str(tiny_catalog) in line and "schema_version" in line and word in line and "copy" in line, line
    assert fingerprint(tiny_catalog) == before


def _make_read_only(path: Path) -> bool:
    """chmod a-w; as root (who writes anyway) also the immutable attribute. False: not possible here."""
    path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    if os.access(path, os.W_OK) and shutil.which("chattr"):
        subprocess.run(["chattr", "+i", str(path)], capture_output=True)
    return not os.access(path, os.W_OK)


def _undo_read_only(path: Path) -> None:
    if shutil.which("chattr"):
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)
    path.chmod(path.stat().st_mode | stat.S_IWUSR)


@pytest.mark.parametrize("what", ["file", "folder"])
def test_a_read_only_catalog_reads_and_refuses_writes_in_one_line(tiny_catalog, what):
    locked = tiny_catalog if what == "file" else tiny_catalog.parent
    try:
        if not _make_read_only(locked):
            pytest.skip(f"cannot make a {what} read-only for this user here")
        before = fingerprint(tiny_catalog)
        r = runner.invoke(app, ["stats", "--db", str(tiny_catalog)])
        assert r.exit_code == 0 and "manual" in r.output, r.output      # reading works
        for args in (["vocab", "add", "hat2", "--group", "other"], ["split", "--reassign"]):
            line = one_line_error(*args, "--db", tiny_catalog)
            assert str(tiny_catalog) in line and "read-only" in line and "writable" in line, line
        assert fingerprint(tiny_catalog) == before
    finally:
        _undo_read_only(locked)


def _damage_table(db: Path, table: str) -> None:
    conn = sqlite3.connect(db)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    data = bytearray(db.read_bytes())
    data[(root - 1) * page_size:root * page_size] = bytes([0xA5]) * page_size
    db.write_bytes(bytes(data))


def test_damage_elsewhere_in_the_file_refuses_writes_before_anything_is_added(tiny_catalog, tmp_path,
                                                                              monkeypatch):
    """The crops' table is damaged; `labels import` and `vocab add` never read it, and took their
    writes into the damaged file (issue 24, item 9): quick_check refuses them first."""
    import db.catalog

    _damage_table(tiny_catalog, "face_images")
    # each command is a process of its own; this one already checked the fixture's catalog
    monkeypatch.setattr(db.catalog, "_FOUND_SOUND", set())
    before = fingerprint(tiny_catalog)
    labels = tmp_path / "labels.csv"
    labels.write_text("file,hair_color\n/synthetic/3.png,red hair\n")
    for args in (["labels", "import", labels, "--target", "manual"], ["vocab", "add", "hat2", "--group", "other"]):
        line = one_line_error(*args, "--db", tiny_catalog)
        assert str(tiny_catalog) in line and "damaged" in line and ".recover" in line, line
    assert fingerprint(tiny_catalog) == before
