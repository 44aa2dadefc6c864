import sqlite3

from db import Catalog, CatalogError
from db.schema import SCHEMA_VERSION

import pytest

from conftest import png_bytes


def _faces(cat, n, start=0):
    ids = []
    for i in range(start, start + n):
        sid = cat.save_source(f"/s/{i}.png", sha256=f"{i:064x}", size=1, status="ok", detector="none")
        ids.append(cat.add_face(source_id=sid, image=png_bytes(i, 8), format="png", width=8, height=8,
                                detector="none"))
    return ids


def test_new_catalog_has_schema_and_default_vocabulary(catalog):
    assert catalog.schema_version() == SCHEMA_VERSION
    groups = {g["name"]: g for g in catalog.groups()}
    assert groups["hair_color"]["exclusive"] and groups["eye_color"]["exclusive"]
    assert not groups["hair_style"]["exclusive"]
    assert len(groups["hair_color"]["tags"]) == 13 and "grey hair" in groups["hair_color"]["tags"]
    assert "aqua eyes" in groups["eye_color"]["tags"] and "grey eyes" in groups["eye_color"]["tags"]
    assert sum(len(g["tags"]) for g in groups.values()) == 35  # Jin et al.'s 34 + grey eyes


def test_exclusive_label_supersedes_and_undo_walks_back(catalog):
    (f,) = _faces(catalog, 1)
    catalog.add_labels([(f, "blonde hair", 1), (f, "smile", 1)], "manual", "ann")
    catalog.add_labels([(f, "red hair", 1)], "manual", "ann")
    cur = {r["key"]: r["tag"] for r in catalog.current_labels("manual")}
    assert cur == {"hair_color": "red hair", "smile": "smile"}
    catalog.undo_last("manual", "ann")
    assert {r["key"]: r["tag"] for r in catalog.current_labels("manual")}["hair_color"] == "blonde hair"
    catalog.undo_last("manual", "ann")  # smile
    catalog.undo_last("manual", "ann")  # blonde
    assert catalog.current_labels("manual") == []
    assert len(catalog.label_history(f)) == 6  # nothing was overwritten


def test_sources_do_not_touch_each_other(catalog):
    (f,) = _faces(catalog, 1)
    catalog.add_labels([(f, "blonde hair", 1)], "manual", "ann")
    catalog.add_labels([(f, "black hair", 0.9)], "i2v")
    assert catalog.current_labels("manual")[0]["tag"] == "blonde hair"
    assert catalog.current_labels("i2v")[0]["tag"] == "black hair"
    assert catalog.current_labels("i2v", min_prob=0.95) == []


def test_bad_labels_write_nothing(catalog):
    (f,) = _faces(catalog, 1)
    with pytest.raises(CatalogError, match="unknown tag 'purple unicorn'"):
        catalog.add_labels([(f, "blonde hair", 1), (f, "purple unicorn", 1)], "manual")
    with pytest.raises(CatalogError, match="not in the catalog"):
        catalog.add_labels([(f, "blonde hair", 1), (f + 99, "blonde hair", 1)], "manual")
    assert catalog.label_history(f) == []


def test_split_is_stable_when_faces_are_added(catalog):
    first = _faces(catalog, 300)
    catalog.assign_splits(0.1, 0.1, seed=3)
    before = {f: catalog.face(f)["split"] for f in first}
    _faces(catalog, 300, start=300)
    catalog.assign_splits(0.1, 0.1, seed=3)
    assert {f: catalog.face(f)["split"] for f in first} == before
    counts = catalog.split_counts()
    assert counts["none"] == 0 and 30 < counts["test"] < 100 and 30 < counts["val"] < 100
    # A fresh catalog with the same faces in another order gives the same splits.
    other = Catalog()
    _faces(other, 300, start=300)
    ids = _faces(other, 300)
    other.assign_splits(0.1, 0.1, seed=3)
    assert [other.face(f)["split"] for f in ids] == [before[f] for f in first]


def test_stratified_split_balances_each_class_and_never_moves_faces(catalog):
    ids = _faces(catalog, 200)
    catalog.add_labels([(f, "blonde hair" if i < 40 else "black hair", 1) for i, f in enumerate(ids)], "manual")
    catalog.assign_splits(0.1, 0.1, seed=0, stratify="manual")
    blonde = [catalog.face(f)["split"] for f in ids[:40]]
    assert blonde.count("test") == 4 and blonde.count("val") == 4
    before = {f: catalog.face(f)["split"] for f in ids}
    _faces(catalog, 50, start=500)
    catalog.assign_splits(0.1, 0.1, seed=0, stratify="manual")
    assert {f: catalog.face(f)["split"] for f in ids} == before


def test_bad_split_fractions(catalog):
    with pytest.raises(CatalogError, match="val"):
        catalog.assign_splits(0.6, 0.5)


def test_labelled_faces_common_sources(catalog):
    a, b = _faces(catalog, 2)
    catalog.assign_splits(0, 0)
    catalog.add_labels([(a, "blonde hair", 1), (b, "red hair", 1)], "manual")
    catalog.add_labels([(a, "blonde hair", 0.8)], "i2v")
    assert set(catalog.labelled_faces("manual")) == {a, b}
    assert set(catalog.labelled_faces("manual", common=["i2v"])) == {a}
    with pytest.raises(CatalogError, match="'nobody' has no labels"):
        catalog.labelled_faces("nobody")


def test_file_catalog_is_wal_and_refuses_garbage(tmp_path):
    path = tmp_path / "c.db"
    with Catalog(path) as cat:
        assert cat.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CatalogError, match="bad.db"):
        Catalog(bad)
    with pytest.raises(CatalogError, match="no catalog"):
        Catalog(tmp_path / "missing.db", create=False)


# -- what triggers keep must equal what the events say ------------

def _recomputed(cat):
    current = cat.query(
        "SELECT e.source, e.face_id, e.key, e.id AS event_id, e.tag, e.value, e.annotator, e.created_at "
        "FROM label_events e JOIN (SELECT max(id) AS id FROM label_events GROUP BY source, face_id, key) m "
        "ON m.id = e.id ORDER BY 1, 2, 3")
    # faces: with a current real label (a tag); a face whose current rows carry no tag was tried
    labelled = {r["source"]: r["n"] for r in cat.query(
        "SELECT source, count(DISTINCT face_id) AS n FROM label_current WHERE tag IS NOT NULL GROUP BY source")}
    tried = {r["source"]: r["n"] for r in cat.query(
        "SELECT source, count(DISTINCT face_id) AS n FROM label_current GROUP BY source")}
    sources = [dict(r, faces=labelled.get(r["source"], 0),
                    tried_without_result=tried.get(r["source"], 0) - labelled.get(r["source"], 0))
               for r in cat.query("SELECT source, count(*) AS events FROM label_events GROUP BY source ORDER BY source")]
    annotators = {r["source"]: set(filter(None, (r["a"] or "").split(","))) for r in cat.query(
        "SELECT source, group_concat(DISTINCT annotator) AS a FROM label_events GROUP BY source")}
    nbytes = cat.conn.execute("SELECT coalesce(sum(length(image)), 0) FROM face_images").fetchone()[0]
    return current, sources, annotators, nbytes


def _kept(cat):
    current = cat.query("SELECT * FROM label_current ORDER BY 1, 2, 3")
    sources = [{k: r[k] for k in ("source", "events", "faces", "tried_without_result")} for r in cat.label_sources()]
    annotators = {r["source"]: set(filter(None, (r["annotators"] or "").split(","))) for r in cat.label_sources()}
    return current, sources, annotators, cat.stats()["catalog_bytes"]


def test_current_label_table_and_counts_follow_every_kind_of_write(catalog):
    import random
    rng = random.Random(0)
    ids = _faces(catalog, 12)
    tags = ["blonde hair", "red hair", "blue eyes", "smile", "hat"]
    for step in range(300):
        f, source = rng.choice(ids), rng.choice(["manual", "i2v"])
        op = rng.random()
        if op < 0.6:
            catalog.add_labels([(f, rng.choice(tags), rng.choice([1.0, 0.3, 0.8]))], source,
                               rng.choice([None, "ann", "bob"]))
        elif op < 0.75:
            catalog.clear_label(f, rng.choice(["hair_color", "smile"]), source, "ann")
        elif op < 0.9:
            catalog.undo_last(source, rng.choice([None, "ann"]))
        elif op < 0.95:  # events are append-only, but a hand edit must not leave stale copies
            with catalog.transaction() as conn:
                conn.execute("DELETE FROM label_events WHERE id = (SELECT max(id) FROM label_events "
                             "WHERE undoes IS NULL AND id NOT IN (SELECT undoes FROM label_events "
                             "WHERE undoes IS NOT NULL))")
        else:
            with catalog.transaction() as conn:
                conn.execute("UPDATE label_events SET source = 'moved', annotator = 'x' WHERE id = "
                             "(SELECT min(id) FROM label_events WHERE source != 'moved')")
        if step % 50 == 0:
            catalog.add_face(source_id=1, image=png_bytes(1000 + step, 8), format="png", width=8, height=8,
                             detector="none")
    assert _kept(catalog) == _recomputed(catalog)
    for source in ("manual", "i2v", "moved"):
        old = catalog.query(
            "SELECT e.face_id, e.key, e.tag, e.value, e.annotator, e.created_at FROM label_events e "
            "JOIN (SELECT max(id) AS id FROM label_events WHERE source = ? GROUP BY face_id, key) m "
            "ON m.id = e.id WHERE e.tag IS NOT NULL", [source])
        assert sorted(catalog.current_labels(source), key=str) == sorted(old, key=str)


def test_a_new_migration_upgrades_an_existing_catalog_all_or_nothing(tmp_path, monkeypatch):
    import db.catalog as catalog_module

    path = tmp_path / "old.db"
    with Catalog(path) as cat:
        [face] = _faces(cat, 1)
        cat.add_labels([(face, "red hair", 1.0)], "manual", "ann")
    broken = catalog_module.MIGRATIONS + ["ALTER TABLE faces ADD COLUMN note TEXT;\nSELECT no_such_function();"]
    monkeypatch.setattr(catalog_module, "MIGRATIONS", broken)
    monkeypatch.setattr(catalog_module, "SCHEMA_VERSION", len(broken))
    with pytest.raises(Exception, match="no_such_function"):
        Catalog(path)
    with sqlite3.connect(path) as conn:      # rolled back: still the old version, no half-added column
        assert conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] == len(broken) - 1
        assert "note" not in [r[1] for r in conn.execute("PRAGMA table_info(faces)")]
    fixed = catalog_module.MIGRATIONS[:-1] + ["ALTER TABLE faces ADD COLUMN note TEXT;"]
    monkeypatch.setattr(catalog_module, "MIGRATIONS", fixed)
    with Catalog(path) as cat:
        assert cat.schema_version() == len(fixed)
        assert cat.face(face)["note"] is None
        assert [r["tag"] for r in cat.current_labels("manual")] == ["red hair"]
