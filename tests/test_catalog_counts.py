"""Counts that stay fast at a million faces (schema 2): the label counts kept by triggers equal a
recount after every kind of label change, a catalog of schema 1 gets them on opening, and the split
counts read from the index equal the join they replace."""

from __future__ import annotations

import db.catalog
from conftest import png_bytes
from db import Catalog

RECOUNT_TAGS = ("SELECT source, tag, count(*) FROM label_current WHERE tag IS NOT NULL "
                "AND (value IS NULL OR value >= 0.5) GROUP BY source, tag ORDER BY source, tag")
RECOUNT_FACES = "SELECT source, count(DISTINCT face_id) FROM label_current GROUP BY source ORDER BY source"
RECOUNT_LABELLED = ("SELECT source, count(DISTINCT face_id) FROM label_current WHERE tag IS NOT NULL "
                    "GROUP BY source ORDER BY source")


def kept(cat: Catalog) -> tuple[list, list]:
    tags = cat.conn.execute("SELECT source, tag, faces FROM label_tag_counts WHERE faces > 0 "
                            "ORDER BY source, tag").fetchall()
    faces = cat.conn.execute("SELECT source, faces FROM label_face_counts WHERE faces > 0 ORDER BY source").fetchall()
    labelled = cat.conn.execute("SELECT source, faces FROM label_labelled_counts WHERE faces > 0 "
                                "ORDER BY source").fetchall()
    return tags, faces, labelled


def recount(cat: Catalog) -> tuple[list, list]:
    return (cat.conn.execute(RECOUNT_TAGS).fetchall(), cat.conn.execute(RECOUNT_FACES).fetchall(),
            cat.conn.execute(RECOUNT_LABELLED).fetchall())


def faces(cat: Catalog, n: int) -> list[int]:
    sid = cat.save_source("/synthetic.png", sha256="0" * 64, size=1, status="ok")
    return [cat.add_face(source_id=sid, image=png_bytes(i), format="png", width=32, height=32, detector="none")
            for i in range(n)]


def test_kept_counts_follow_every_label_change(catalog):
    f = faces(catalog, 4)
    steps = [
        lambda: catalog.add_labels([(f[0], "blonde hair", 1.0), (f[0], "blue eyes", 1.0), (f[1], "red hair", 1.0)],
                                   "manual", "anna"),
        lambda: catalog.add_labels([(f[0], "red hair", 1.0)], "manual", "anna"),          # supersedes blonde
        lambda: catalog.add_labels([(f[0], "smile", 0.3), (f[1], "smile", 0.9), (f[2], "black hair", 0.4)], "i2v"),
        lambda: catalog.add_labels([(f[0], "smile", 0.7)], "i2v"),                        # crosses 0.5 upwards
        lambda: catalog.clear_label(f[1], "hair_color", "manual", "anna"),                # cleared: no tag
        lambda: catalog.undo_last("manual", "anna"),                                      # the clear undone
        lambda: catalog.undo_last("manual", "anna"),                                      # red over blonde undone
        lambda: catalog.conn.execute("UPDATE label_events SET value = 0.1 WHERE source = 'i2v' AND face_id = ?",
                                     (f[1],)),                                           # an event edited
        lambda: catalog.conn.execute("UPDATE label_events SET source = 'i2v-old' WHERE source = 'i2v' "
                                     "AND face_id = ?", (f[2],)),                        # ... moved to another source
        lambda: catalog.conn.execute("DELETE FROM label_events WHERE face_id = ? AND source = 'manual'", (f[0],)),
    ]
    for step in steps:
        step()
        assert kept(catalog) == recount(catalog)
    stats = catalog.stats()
    assert {(r["source"], r["tag"]): r["n"] for r in stats["tag_counts"]} == \
        {(s, t): n for s, t, n in recount(catalog)[0]}
    assert {r["source"]: r["faces"] for r in catalog.label_sources() if r["faces"]} == dict(recount(catalog)[2])


def test_a_schema_1_catalog_gets_the_counts(tmp_path, monkeypatch):
    path = tmp_path / "old.db"
    monkeypatch.setattr(db.catalog, "SCHEMA_VERSION", 1)
    with Catalog(path) as old:
        f = faces(old, 3)
        old.add_labels([(f[0], "blonde hair", 1.0), (f[1], "blonde hair", 1.0), (f[1], "smile", 0.2)], "manual")
        assert old.schema_version() == 1
    monkeypatch.undo()
    with Catalog(path) as cat:
        assert cat.schema_version() >= 2
        assert kept(cat) == recount(cat) == ([("manual", "blonde hair", 2)], [("manual", 2)], [("manual", 2)])
        cat.add_labels([(f[2], "blonde hair", 1.0)], "manual")
        assert kept(cat) == recount(cat)


def test_tries_without_a_result_are_not_labels(catalog):
    """"Nothing found", "unsure" and a cleared label are tries, not labels (issue 22's "Also")."""
    f = faces(catalog, 4)
    catalog.add_labels([(f[0], "blonde hair", 1.0)], "manual", "anna")
    catalog.mark_unsure(f[1], "anna")
    catalog.add_labels([(f[2], "red hair", 1.0)], "manual", "anna")
    catalog.clear_label(f[2], "hair_color", "manual", "anna")
    catalog.add_labels([(f[3], "blue eyes", 0.9)], "animeface")
    catalog.record_nothing_found([f[0], f[1]], "animeface", "v1")
    catalog.add_labels([(f[1], "blue eyes", 0.9)], "animeface")       # a later try found something
    assert kept(catalog) == recount(catalog)
    got = {r["source"]: (r["faces"], r["tried_without_result"]) for r in catalog.label_sources()}
    assert got == {"manual": (1, 2), "animeface": (2, 1)}


def test_split_counts_leave_out_faces_that_are_not_ok(catalog):
    f = faces(catalog, 30)
    catalog.assign_splits(0.2, 0.2, seed=0)
    catalog.set_face_status(f[0], "rejected", "by hand")      # keeps its split row: not counted
    catalog.set_face_status(f[1], "duplicate", "by hand")
    f += faces(catalog, 2)                                    # ok, no split yet
    by_join = dict.fromkeys(("train", "val", "test", "none"), 0)
    for split, n in catalog.conn.execute("SELECT coalesce(sp.split, 'none'), count(*) FROM faces f LEFT JOIN "
                                         "face_splits sp ON sp.face_id = f.id WHERE f.status = 'ok' GROUP BY 1"):
        by_join[split] = n
    assert catalog.split_counts() == by_join and by_join["none"] == 2 and sum(by_join.values()) == 30
