"""The app's review orders: likely label errors first, most uncertain first, suspects of one label in bulk."""

from __future__ import annotations

from pathlib import Path

import pytest

from db import Catalog, CatalogError
from db import labelling as q
from label_app.safe_text import md
from label_app.session import LabelSession, build_queue

from test_label_app import shown_face, start

HAIR = ["blonde hair", "black hair", "red hair"]
# The judge's held-out hair colour where it differs from tester's label (face id -> (tag, p)):
# 5 is labelled black, 10 blonde; 14 (black) is a coin toss between black and blonde.
JUDGE = {5: ("red hair", 0.9), 10: ("black hair", 0.8)}


def judged(path: Path) -> Path:
    """tiny_catalog (tester: hair blonde/black/red by (id - 1) % 3) plus a judge's distributions."""
    cat = Catalog(path)
    labels, dists = [], []
    for f in cat.face_ids():
        given = HAIR[(f - 1) % 3]
        tag, p = JUDGE.get(f, (given, 0.9))
        probs = {t: (1 - p) / 2 for t in HAIR} | {tag: p}
        if f == 14:
            probs = {"black hair": 0.5, "blonde hair": 0.45, "red hair": 0.05}
        labels.append((f, max(probs, key=probs.get), max(probs.values())))
        dists.append((f, "hair_color", probs, True))
    cat.save_learned_labels("judge", "judge-manual-test", {"learned_from": "manual"}, labels, dists)
    cat.add_labels([(f, "smile", 0.7) for f in cat.face_ids()], "i2v", "v")
    cat.close()
    return path


@pytest.fixture
def review_path(tiny_catalog) -> Path:
    return judged(tiny_catalog)


def test_review_orders(review_path):
    with Catalog(review_path) as cat:
        spec = q.QueueSpec(order="suspects", source="judge", group="hair_color")
        queue = build_queue(cat, spec)
        assert queue[:2] == [5, 10] and sorted(queue) == list(range(1, 25))
        assert build_queue(cat, q.QueueSpec(order="margin", source="judge", group="hair_color"))[0] == 14
        blonde = build_queue(cat, q.QueueSpec(order="suspects", source="judge", group="hair_color",
                                              given="blonde hair"))
        assert blonde[0] == 10 and sorted(blonde) == [1, 4, 7, 10, 13, 16, 19, 22]
        for bad, words in [(q.QueueSpec(order="suspects", source="i2v"), "run `curate tag --tagger judge"),
                           (q.QueueSpec(order="margin"), "needs a judge"),
                           (q.QueueSpec(order="suspects", source="judge", given="blue eyes"), "not a tag of")]:
            with pytest.raises(CatalogError, match=words):
                build_queue(cat, bad)
        lab = LabelSession(cat, "alice", spec)
        assert lab.current == 5 and lab.review(5) == {"given": "black hair", "likely": "red hair", "p_likely": 0.9}
        lab.accept_likely()
        assert lab.current == 10
        lab.keep_given()
        mine = cat.current_for_keys("manual", ["hair_color", "eye_color"], annotator="alice")
        assert mine == {5: {"hair_color": ("red hair", 1.0)}, 10: {"hair_color": ("blonde hair", 1.0)}}
        lab.undo()
        assert lab.current == 10 and 10 not in cat.current_for_keys("manual", ["hair_color"], annotator="alice")


def alice(path: Path) -> dict[int, str]:
    with Catalog(path) as cat:
        return {f: v["hair_color"][0] for f, v in
                cat.current_for_keys("manual", ["hair_color", "eye_color"], annotator="alice").items()}


def test_app_likely_label_errors_first(review_path, monkeypatch):
    at = start(review_path, monkeypatch)
    at.selectbox(key="f_order").set_value("suspects").run()
    assert not at.exception and at.selectbox(key="f_judge").value == "judge"
    assert shown_face(at) == 5
    assert any("given <b>black hair</b> · likely <b>red hair</b>" in m.value for m in at.markdown)
    at.button(key="rev-accept").click().run()
    assert shown_face(at) == 10
    at.button(key="rev-keep").click().run()
    assert alice(review_path) == {5: "red hair", 10: "blonde hair"}   # eye colours untouched
    at.selectbox(key="f_order").set_value("margin").run()
    assert shown_face(at) == 14


def test_app_grid_of_one_given_label(review_path, monkeypatch):
    at = start(review_path, monkeypatch)
    at.selectbox(key="f_order").set_value("suspects").run()
    at.selectbox(key="f_given").set_value("blonde hair").run()
    at.segmented_control(key="mode").set_value("Grid").run()
    boxes = [c for c in at.checkbox if c.key and c.key.startswith("sel-")]
    assert len(boxes) == 8 and boxes[0].label == f"#10 {md('blonde → black 0.80')}"
    for c in boxes[1:]:
        c.uncheck()
    at.run()
    at.button(key="grid-accept").click().run()
    assert not at.exception and alice(review_path) == {10: "black hair"}
