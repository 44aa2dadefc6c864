"""Label CSVs: spreadsheet-safe cells that read back exactly, conflicting rows, paths that mean
one file."""

from __future__ import annotations

import csv

from typer.testing import CliRunner

from curate.cli import app
from db import Catalog
from test_cli_catalog import add_picture_faces, current, event_count, flat, write_csv

runner = CliRunner()
FORMULAS = ["=HYPERLINK(\"http://evil.example\")", "+1", "-2+3", "@SUM(A1)", "'quoted"]   # (tags are stripped: no tab)


def run(*args, code: int = 0):
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exit_code == code, r.output
    return r


def test_label_export_is_spreadsheet_safe_and_reads_back_exactly(tmp_path):
    db = tmp_path / "c.db"
    with Catalog(db) as cat:
        ids = add_picture_faces(cat, tmp_path / "images", ["=cmd.png", "-x.png", "plain.png"])
        cat.add_group("=group", exclusive=True)
        for tag in FORMULAS:
            cat.add_tag(tag, "=group")
        cat.add_tag("@independent", "other")
        cat.add_labels([(ids[0], FORMULAS[0], 1.0), (ids[1], FORMULAS[3], 1.0), (ids[2], FORMULAS[4], 1.0),
                        (ids[0], "@independent", 0.5), (ids[1], "smile", 1.0)], "evil")
    for form in ([], ["--long"]):
        out = tmp_path / f"evil{len(form)}.csv"
        run("labels", "export", out, "--labels", "evil", *form, "--db", db)
        with open(out, newline="", encoding="utf-8") as f:
            cells = [c for row in csv.reader(f) for c in row]
        assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")], cells
        assert "'=group" in cells or form, cells
        source = f"copy{len(form)}"
        run("labels", "import", out, "--target", source, "--db", db)
        assert current(db, source) == current(db, "evil")
        # a second import of our own export adds nothing
        assert "0 labels written" in flat(run("labels", "import", out, "--target", source, "--db", db).output)


def test_conflicting_duplicate_rows_are_refused_naming_both(tmp_path):
    db = tmp_path / "c.db"
    with Catalog(db) as cat:
        ids = add_picture_faces(cat, tmp_path / "images", ["0.png", "1.png"])
    labels = write_csv(tmp_path / "l.csv", [["file", "hair_color", "eye_color"],
                                           ["images/0.png", "blonde hair", "blue eyes"],
                                           ["images/1.png", "red hair", ""],
                                           ["images/0.png", "blonde hair", ""],        # the same again: fine
                                           ["images/0.png", "black hair", "blue eyes"]])
    for _ in range(3):
        r = run("labels", "import", labels, "--db", db, code=2)
        out = flat(r.output)
        assert "l.csv, row 5" in out and "row 2" in out and "'blonde hair'" in out and "'black hair'" in out
        assert len(r.output.strip().splitlines()) == 1
        assert event_count(db) == 0
    write_csv(labels, [["file", "tag", "value"], ["images/0.png", "smile", "1"], ["images/0.png", "smile", "0"]])
    assert "row 3" in flat(run("labels", "import", labels, "--db", db, code=2).output)
    # without the conflicting row: imported once, and a re-import adds nothing
    write_csv(labels, [["file", "hair_color"], ["images/0.png", "blonde hair"], ["images/0.png", "blonde hair"],
                       ["images/1.png", "red hair"]])
    run("labels", "import", labels, "--db", db)
    run("labels", "import", labels, "--db", db)
    assert event_count(db) == 2 and current(db)[(ids[0], "hair_color")] == ("blonde hair", 1.0)


def test_an_absolute_path_matches_only_that_file(tmp_path):
    db = tmp_path / "c.db"
    with Catalog(db) as cat:
        ids = add_picture_faces(cat, tmp_path / "images", ["7.png"])
    missing = tmp_path / "gone" / "7.png"       # same file name, another folder, does not exist
    labels = write_csv(tmp_path / "l.csv", [["file", "hair_color"], [str(missing), "red hair"]])
    r = run("labels", "import", labels, "--db", db, code=2)
    assert "matches no face" in r.output and event_count(db) == 0
    # a relative path says which folder too: the source path must end with it
    (tmp_path / "sub").mkdir()
    rel = write_csv(tmp_path / "sub" / "l.csv", [["file", "hair_color"], ["elsewhere/7.png", "red hair"]])
    assert "matches no face" in run("labels", "import", rel, "--db", db, code=2).output
    write_csv(rel, [["file", "hair_color"], ["images/7.png", "red hair"]])      # ends the source path
    run("labels", "import", rel, "--db", db)
    write_csv(rel, [["file", "hair_color"], ["7.png", "blonde hair"]])          # a bare name: unique name
    run("labels", "import", rel, "--db", db)
    assert current(db) == {(ids[0], "hair_color"): ("blonde hair", 1.0)}
