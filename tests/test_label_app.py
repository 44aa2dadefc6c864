"""The labelling app: its queries, its session logic, and its page through Streamlit's AppTest."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from db import Catalog, CatalogError
from db import labelling as q
from curate.quality.agreement import annotator_agreement, cohen_kappa, confusion_of
from label_app import keyboard
from label_app.context import source_context
from label_app.launch import app as launch_app
from label_app.session import LabelSession

from conftest import png_bytes

SCRIPT = str(Path(__file__).resolve().parent.parent / "label_app" / "streamlit_app.py")


@pytest.fixture
def cat_path(tiny_catalog) -> Path:
    """tiny_catalog plus an `i2v` source: faces 1-12 blonde (0.55..0.99), 13-24 black; all blue eyes."""
    cat = Catalog(tiny_catalog)
    labels = []
    for fid in cat.face_ids():
        hair = "blonde hair" if fid <= 12 else "black hair"
        labels += [(fid, hair, 0.5 + fid / 50), (fid, "blue eyes", 0.9), (fid, "smile", 0.8), (fid, "hat", 0.1)]
    cat.add_labels(labels, "i2v")
    cat.close()
    return tiny_catalog


def start(path: Path, monkeypatch, name: str = "alice") -> AppTest:
    monkeypatch.setenv("LABEL_APP_DB", str(path))
    at = AppTest.from_file(SCRIPT, default_timeout=30).run()
    assert not at.exception
    at.text_input(key="who_name").input(name)
    at.button[0].click().run()
    assert not at.exception
    return at


def test_the_server_hides_the_objects_every_run_shares_from_the_collector_once(cat_path, monkeypatch):
    """Streamlit collects every generation after each run: with torch loaded, some 140 ms holding the GIL
    while the Draw page's new painting waits to be sent. The objects every run shares are frozen once per
    server, so that collection walks only the runs' own."""
    gc.unfreeze()
    st.cache_resource.clear()      # as a fresh server: another test may have run the page first
    try:
        at = start(cat_path, monkeypatch)
        frozen = gc.get_freeze_count()
        assert frozen > 50_000     # torch, numpy, Streamlit, the app's modules
        at.run()
        assert not at.exception
        assert gc.get_freeze_count() == frozen     # once: what later runs leave behind is still collected
    finally:
        gc.unfreeze()


def shown_face(at: AppTest) -> int | None:
    for m in at.markdown:
        if m.value.startswith("#### Face #"):
            return int(m.value.split("#")[-1])
    return None


def mine(path: Path, who: str = "alice") -> dict[tuple[int, str], str]:
    with Catalog(path) as cat:
        keys = [k for g in cat.groups() for k in ([g["name"]] if g["exclusive"] else g["tags"])]
        return {(fid, key): tag for fid, labels in cat.current_for_keys("manual", keys, annotator=who).items()
                for key, (tag, _) in labels.items()}


# -- the page, through AppTest ---------------------------------------------------------

def test_label_by_buttons_auto_advances(cat_path, monkeypatch):
    at = start(cat_path, monkeypatch)
    first = shown_face(at)
    at.button(key=keyboard.widget_key("tag", "red hair")).click().run()
    assert shown_face(at) == first  # eye colour still missing
    at.button(key=keyboard.widget_key("tag", "green eyes")).click().run()
    assert shown_face(at) == first + 1
    assert mine(cat_path) == {(first, "hair_color"): "red hair", (first, "eye_color"): "green eyes"}


def test_accept_suggestion_then_undo(cat_path, monkeypatch):
    at = start(cat_path, monkeypatch)
    first = shown_face(at)
    at.button(key="act-accept").click().run()
    assert shown_face(at) == first + 1
    assert mine(cat_path) == {(first, "hair_color"): "blonde hair", (first, "eye_color"): "blue eyes",
                              (first, "smile"): "smile"}  # hat (p=0.1) not accepted
    at.button(key="act-undo").click().run()
    assert shown_face(at) == first  # back to the face whose labels were undone
    assert mine(cat_path) == {}
    # i2v's labels and the earlier manual labels of "tester" are untouched.
    with Catalog(cat_path) as cat:
        assert len(cat.current_labels("i2v")) == 4 * 24
        assert len(cat.current_labels("manual", annotator="tester")) == 48


def test_bad_crop_and_unsure(cat_path, monkeypatch):
    at = start(cat_path, monkeypatch)
    first = shown_face(at)
    at.button(key="act-reject").click().run()
    at.button(key="act-unsure").click().run()
    assert shown_face(at) == first + 2
    with Catalog(cat_path) as cat:
        assert cat.face(first)["status"] == "rejected"
        assert "alice" in cat.face(first)["reason"]
        # unsure is recorded, but is no label anywhere
        assert all(r["face_id"] != first + 1 for r in cat.current_labels("manual", annotator="alice"))
        assert {r["annotator"]: r["unsure"] for r in cat.annotator_counts()}["alice"] == 1
        # this annotator's queues no longer show the face marked unsure
        assert first + 1 not in cat.build_queue(q.QueueSpec(annotator="alice"))
    at.button(key="act-undo").click().run()   # undo unsure
    at.button(key="act-undo").click().run()   # undo bad crop
    assert shown_face(at) == first
    with Catalog(cat_path) as cat:
        assert cat.face(first)["status"] == "ok"
        assert first + 1 in cat.build_queue(q.QueueSpec(annotator="alice"))


def test_grid_bulk_apply_and_accept_minus_unchecked(cat_path, monkeypatch):
    at = start(cat_path, monkeypatch)
    at.segmented_control(key="mode").set_value("Grid").run()
    at.selectbox(key="grid_size").set_value(24).run()
    boxes = [c for c in at.checkbox if c.key and c.key.startswith("sel-")]
    assert len(boxes) == 24 and all(c.value for c in boxes)
    # Click off faces 3 and 5, accept i2v's suggestion for the other 22.
    for c in boxes:
        if c.key.endswith("-3") or c.key.endswith("-5"):
            c.uncheck()
    at.run()
    at.button(key="grid-accept").click().run()
    assert not at.exception
    labels = mine(cat_path)
    assert (3, "hair_color") not in labels and (5, "hair_color") not in labels
    assert labels[(1, "hair_color")] == "blonde hair" and labels[(24, "hair_color")] == "black hair"
    assert len({fid for fid, _ in labels}) == 22
    # Bulk apply a tag to a selection.
    at.selectbox(key="grid_size").set_value(24).run()
    at.button(key="grid-prev").click().run()
    at.button(key="grid-none").click().run()
    for c in at.checkbox:
        if c.key and (c.key.endswith("-3") or c.key.endswith("-5")):
            c.check()
    at.run()
    at.selectbox(key="grid-tag").set_value("glasses").run()
    at.button(key="grid-apply").click().run()
    labels = mine(cat_path)
    assert labels[(3, "glasses")] == "glasses" and labels[(5, "glasses")] == "glasses"
    assert (1, "glasses") not in labels


def test_filter_by_suggested_tag(cat_path, monkeypatch):
    at = start(cat_path, monkeypatch)
    at.selectbox(key="f_tag").set_value("black hair").run()
    assert shown_face(at) == 13
    at.slider(key="f_prob").set_value(0.95).run()
    assert shown_face(at) == 23  # 0.5 + 23/50 = 0.96
    at.checkbox(key="f_unl").check().run()
    at.selectbox(key="f_tag").set_value("(none)").run()
    assert shown_face(at) is None  # every face has a manual hair colour already (from tester)
    assert any("Nothing left" in s.value for s in at.success)


def test_two_sessions_lose_nothing(cat_path, monkeypatch):
    a = start(cat_path, monkeypatch, "alice")
    b = start(cat_path, monkeypatch, "bob")
    for _ in range(3):
        a.button(key="act-accept").click().run()
        b.button(key=keyboard.widget_key("tag", "red hair")).click().run()
        b.button(key=keyboard.widget_key("tag", "red eyes")).click().run()
    assert len(mine(cat_path, "alice")) == 9 and len(mine(cat_path, "bob")) == 6
    b.segmented_control(key="mode").set_value("Progress").run()
    assert not b.exception
    kappa = [d.value for d in b.dataframe]
    assert len(kappa) == 3


def test_app_without_db_says_so(monkeypatch):
    monkeypatch.delenv("LABEL_APP_DB", raising=False)
    at = AppTest.from_file(SCRIPT, default_timeout=30).run()
    assert "label-app --db" in at.error[0].value


# -- queries and session logic ----------------------------------------------------------

def test_filters_are_validated(cat_path):
    with Catalog(cat_path) as cat:
        for bad, word in [(q.QueueSpec(split="train'; DROP TABLE faces; --"), "split"),
                          (q.QueueSpec(status="gone"), "status"),
                          (q.QueueSpec(source="nobody"), "nobody"),
                          (q.QueueSpec(source="i2v", tag="bald"), "bald"),
                          (q.QueueSpec(group="shoes"), "shoes"),
                          (q.QueueSpec(order="sideways"), "order"),
                          (q.QueueSpec(order="confidence"), "confidence")]:
            with pytest.raises(CatalogError, match=word):
                cat.build_queue(bad)
        assert len(cat.face_ids()) == 24


def test_orders(cat_path):
    with Catalog(cat_path) as cat:
        conf = cat.build_queue(q.QueueSpec(order="confidence", source="i2v"))
        assert conf[:3] == [1, 2, 3] and len(conf) == 24
        # tester says blonde/black/red by id % 3; i2v says blonde for 1-12 with rising confidence
        dis = cat.build_queue(q.QueueSpec(order="disagreement", source="i2v", other_source="manual"))
        scores = cat.disagreement("i2v", "manual", "hair_color")
        assert [scores[i] for i in dis] == sorted(scores.values(), reverse=True)
        assert scores[22] > scores[13]   # 22: i2v black 0.94 vs tester blonde; 13: both say black
        rand = cat.build_queue(q.QueueSpec(order="random", seed=1))
        assert sorted(rand) == list(range(1, 25)) and rand != list(range(1, 25))
        assert rand == cat.build_queue(q.QueueSpec(order="random", seed=1))
        cat.clear_label(7, "hair_color", "manual", "tester")
        assert cat.build_queue(q.QueueSpec(order="unlabelled"))[0] == 7
        assert cat.build_queue(q.QueueSpec(unlabelled_only=True)) == [7]


def test_session_skips_faces_labelled_elsewhere(cat_path):
    with Catalog(cat_path) as cat:
        cat.clear_label(7, "hair_color", "manual", "tester")
        cat.clear_label(8, "hair_color", "manual", "tester")
        lab = LabelSession(cat, "alice", q.QueueSpec(unlabelled_only=True, source="i2v"))
        assert lab.current == 7
        cat.add_labels([(8, "red hair", 1.0)], "manual", "bob")  # another browser, meanwhile
        lab.press_tag("red hair")
        lab.press_tag("red eyes")
        assert lab.current is None  # 8 was taken by bob
        with pytest.raises(CatalogError):
            LabelSession(cat, "   ")


def test_progress_counts_and_kappa(cat_path):
    with Catalog(cat_path) as cat:
        rows = {r["group"]: r for r in cat.progress()}
        assert rows["hair_color"] == {"group": "hair_color", "labelled": 24, "total": 24}
        assert rows["other"]["labelled"] == 0
        cat.add_labels([(i, "black hair" if i % 3 == 1 else "blonde hair", 1.0) for i in range(1, 13)],
                       "manual", "bob")
        k = {r["group"]: r for r in annotator_agreement(cat, "tester", "bob")}["hair_color"]
        pairs = []
        for r_t in cat.current_labels("manual", annotator="tester"):
            if r_t["key"] == "hair_color" and r_t["face_id"] <= 12:
                pairs.append((r_t["tag"], "black hair" if r_t["face_id"] % 3 == 1 else "blonde hair"))
        assert k["faces"] == 12 and k["kappa"] == pytest.approx(cohen_kappa(confusion_of(pairs)))
        assert cohen_kappa(confusion_of([("a", "a"), ("b", "b")])) == 1.0
        assert cohen_kappa(confusion_of([("a", "b"), ("b", "a")])) == -1.0
        assert np.isnan(cohen_kappa(confusion_of([])))
        assert annotator_agreement(cat, "tester", "nobody")[0]["kappa"] is None


def test_hotkeys_unique_and_shown():
    with Catalog() as cat:
        keys = keyboard.tag_keys(cat.groups(), {"glasses": "g", "smile": "Enter"})
    assert keys["glasses"] == "g" and keys["smile"] != "Enter"
    assert len(set(keys.values())) == len(keys)
    assert not set(keys.values()) & set(keyboard.ACTIONS)
    assert keys["blonde hair"] == "q" and keys["blue eyes"] == "a"


def test_source_context(tmp_path):
    with Catalog(tmp_path / "c.db") as cat:
        pic = tmp_path / "pic.jpg"
        Image.new("RGB", (800, 600), (40, 40, 40)).save(pic)
        sid = cat.save_source(str(pic), sha256="x", size=1, width=800, height=600, status="ok", detector="t")
        fid = cat.add_face(source_id=sid, image=png_bytes(1), format="png", width=32, height=32, detector="t",
                           box_x=100, box_y=100, box_w=200, box_h=200, crop_x=50, crop_y=50, crop_size=300)
        data, caption = source_context(cat, fid)
        img = Image.open(__import__("io").BytesIO(data)).convert("RGB")
        assert img.size == (480, 360) and "800×600" in caption
        r, g, b = img.getpixel((60, 90))   # on the box's left edge (100 * 0.6)
        assert r > 200 and g < 120
        pic.unlink()
        data, caption = source_context(cat, fid)
        assert data is None and "missing" in caption and str(pic) in caption


def test_launch_errors_name_the_file(tmp_path):
    result = CliRunner().invoke(launch_app, ["--db", str(tmp_path / "nope.db")])
    assert result.exit_code == 2 and "nope.db" in result.output
    assert not (tmp_path / "nope.db").exists()


def test_label_waits_for_a_running_writer(cat_path):
    """A label given while another process (say `curate crop`) holds the write lock is kept."""
    import sqlite3
    import threading
    import time

    other = sqlite3.connect(cat_path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO sources (path, status) VALUES ('/crop/running.png', 'pending')")
    threading.Timer(0.5, lambda: other.execute("COMMIT")).start()
    with Catalog(cat_path) as cat:
        lab = LabelSession(cat, "alice", q.QueueSpec(source="i2v"))
        t0 = time.monotonic()
        lab.press_tag("red hair")
        assert time.monotonic() - t0 >= 0.4   # it waited for the lock instead of failing
        assert cat.source_by_path("/crop/running.png") is not None
    other.close()
    assert mine(cat_path)[(1, "hair_color")] == "red hair"
