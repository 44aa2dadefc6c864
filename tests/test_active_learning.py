"""The app's "most useful next" (ActiveLab) and "second opinion needed" queues, and the progress
page's annotator figures."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from curate.quality import crowdlab_arrays
from curate.quality.active import NEW_FACE, ONE_LABEL, SECOND_OPINION, active_learning_scores, most_useful
from db import Catalog, CatalogError
from db import labelling as q
from label_app.safe_text import md
from label_app.session import LabelSession, ranked_queue

from conftest import make_tiny_catalog, png_bytes
from test_label_app import shown_face, start

HAIR = ["blonde hair", "black hair", "red hair"]
SURE_MISTAKE = 20     # labelled once (tester: black hair); the judge is sure it is red
FLAT = 28             # nobody labelled it; the judge cannot tell
NEW = [25, 26, 27, FLAT]
SECOND = "bob"        # labels faces 1-12 as tester did, but face 3


def given(f: int) -> str:
    return HAIR[(f - 1) % 3]


def judge(cat: Catalog) -> None:
    """The judge's hair colour probabilities, as `curate tag --tagger judge` writes them: 0.9 on
    tester's label of faces 1-24 (held out), but 0.95 red on face 20; 0.9 on faces 25-27, flat on 28."""
    dists = []
    for f in cat.face_ids():
        top = "red hair" if f == SURE_MISTAKE else given(f)
        probs = {t: 0.05 for t in HAIR} | {top: 0.9}
        if f == SURE_MISTAKE:
            probs = {"blonde hair": 0.025, "black hair": 0.025, "red hair": 0.95}
        if f == FLAT:
            probs = {t: 1 / 3 for t in HAIR}
        dists.append((f, "hair_color", probs, f <= 24))
    labels = [(f, max(p, key=p.get), max(p.values())) for f, _, p, _ in dists]
    cat.save_learned_labels("judge", "judge-manual-test", {"learned_from": "manual"}, labels, dists)


def add_new_faces(cat: Catalog) -> None:
    for i in NEW:
        sid = cat.save_source(f"/synthetic/new{i}.png", sha256=f"{i + 1000:064x}", size=1, width=32, height=32,
                              status="ok", detector="none")
        assert cat.add_face(source_id=sid, image=png_bytes(i + 1000), format="png", width=32, height=32,
                            detector="none") == i


@pytest.fixture
def one_person(tiny_catalog) -> Path:
    """tiny_catalog (tester labelled faces 1-24), four new faces 25-28 and the judge."""
    with Catalog(tiny_catalog) as cat:
        add_new_faces(cat)
        judge(cat)
    return tiny_catalog


@pytest.fixture
def two_people(one_person) -> Path:
    """one_person, and bob's second opinion on faces 1-12 (agreeing with tester but on face 3)."""
    with Catalog(one_person) as cat:
        cat.add_labels([(f, given(f) if f != 3 else "red hair", None) for f in range(1, 13)], "manual", SECOND)
    return one_person


# -- the pure function, on planted data ------------------------------------------------------

def test_a_lone_label_against_a_sure_model_comes_first():
    labels = np.array([[0.], [1.], [2.], [1.], [0.]])            # one annotator
    probs = np.full((5, 3), 0.05)
    probs[[0, 1, 2, 4], [0, 1, 2, 0]] = 0.9
    probs[3] = [0.025, 0.025, 0.95]                               # face 13: labelled 1, surely 2
    picks = most_useful([10, 11, 12, 13, 14], labels, probs, [], np.zeros((0, 3)))
    assert min(picks, key=lambda f: picks[f].score) == 13
    assert picks[13].reason.startswith(ONE_LABEL)


def test_a_new_face_the_model_cannot_tell_comes_first():
    new = np.array([[0.9, 0.05, 0.05], [1 / 3, 1 / 3, 1 / 3], [0.05, 0.9, 0.05]])
    picks = most_useful([], np.zeros((0, 1)), np.zeros((0, 3)), [7, 8, 9], new)
    assert min(picks, key=lambda f: picks[f].score) == 8
    assert picks[8].reason.startswith(f"{NEW_FACE}, the model's top probability 0.33")


def random_labels(rng, faces: int, annotators: int, classes: int, share: float) -> np.ndarray:
    """Faces x annotators: each face labelled by one annotator (in turn) and, with chance `share`, by
    each other; few classes, so that people agree, disagree and tie."""
    labels = np.where(rng.random((faces, annotators)) < share, rng.integers(0, classes, (faces, annotators)), np.nan)
    labels[np.arange(faces), np.arange(faces) % annotators] = rng.integers(0, classes, faces)
    return labels


@pytest.mark.parametrize("annotators,share,classes", [(1, 0.0, 4), (3, 0.0, 4), (2, 0.3, 4), (4, 0.5, 4),
                                                     (9, 0.9, 4), (3, 0.5, 13), (12, 0.9, 13)])
def test_activelab_is_cleanlabs_to_the_bit(annotators, share, classes):
    """crowdlab_arrays replaces cleanlab's per-face Python loops: its scores must be cleanlab's, exactly
    (one annotator per face, several without overlap, several with ties; a face holding every class;
    13 classes, whose row sums numpy adds pairwise)."""
    from cleanlab.multiannotator import get_active_learning_scores, get_label_quality_multiannotator
    import warnings

    rng = np.random.default_rng(annotators)
    labels = random_labels(rng, 400, annotators, classes, share)
    probs = rng.dirichlet(np.ones(classes), 400)
    probs[:20] = 1 / classes                                      # the model cannot tell
    probs[20:30, 0] = 0.0                                         # a class it rules out
    new = rng.dirichlet(np.full(classes, 0.5), 50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = get_active_learning_scores(labels, probs, new)
        unlabelled_only = get_active_learning_scores(None, None, new)
        if share:
            crowdlab = get_label_quality_multiannotator(labels, probs, consensus_method="best_quality",
                                                        return_weights=True, verbose=False)
    got = crowdlab_arrays.active_learning_scores(labels, probs, new)
    assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
    assert np.array_equal(crowdlab_arrays.active_learning_scores(None, None, new)[1], unlabelled_only[1])
    if share:
        quality, model_weight, annotator_weight = crowdlab_arrays.consensus_quality(labels, probs)
        assert np.array_equal(quality, crowdlab["label_quality"]["consensus_quality_score"].to_numpy())
        assert model_weight == crowdlab["model_weight"]
        assert np.array_equal(annotator_weight, crowdlab["annotator_weight"])


def test_the_empirical_distribution_is_cleanlabs_quirk_and_all():
    """cleanlab counts a face's float labels into the first columns, smallest label first: so must this."""
    from cleanlab.internal.util import value_counts

    rng = np.random.default_rng(7)
    labels = random_labels(rng, 300, 5, 3, 0.7)
    got = crowdlab_arrays.empirical_label_distribution(labels, 3)
    for row, mine in zip(labels, got):
        given = row[~np.isnan(row)]
        assert np.array_equal(mine, value_counts(given, num_classes=3) / len(given))
    lone = np.flatnonzero((~np.isnan(labels)).sum(1) == 1)[0]          # one label of any class: column 0
    assert got[lone].tolist() == [1.0, 0.0, 0.0]


def test_bad_input_is_one_line():
    with pytest.raises(CatalogError, match="one tag"):
        active_learning_scores(np.array([[0.]]), np.array([[1.0]]), np.zeros((0, 1)))
    with pytest.raises(CatalogError, match="run `curate tag --tagger judge` first"):
        active_learning_scores(np.zeros((0, 1)), np.zeros((0, 3)), np.zeros((0, 3)))
    with pytest.raises(CatalogError, match="NaN"):
        active_learning_scores(np.array([[0.]]), np.array([[np.nan, 1.0]]), np.zeros((0, 2)))


# -- the queue orders, through label_app.session ---------------------------------------------------

def spec(order: str) -> q.QueueSpec:
    return q.QueueSpec(order=order, source="judge", group="hair_color")


def test_useful_mixes_new_faces_and_second_opinions(two_people):
    with Catalog(two_people) as cat:
        lab = LabelSession(cat, "alice", spec("useful"))
        assert lab.current == FLAT and sorted(lab.queue) == list(range(1, 29))
        # of the labelled faces, the one whose lone label a sure model contradicts comes first
        assert [f for f in lab.queue if f not in NEW][0] == SURE_MISTAKE
        assert lab.reason(SURE_MISTAKE).startswith(ONE_LABEL) and lab.reason(FLAT).startswith(NEW_FACE)
        assert lab.reason(3).startswith("another opinion")
        # the person's own labels are never picked: tester is shown the new faces only, the flat one first
        queue, _ = ranked_queue(cat, replace(spec("useful"), annotator="tester"))
        assert queue[0] == FLAT and sorted(queue) == NEW


def test_second_opinion_lists_faces_one_person_labelled(two_people):
    with Catalog(two_people) as cat:
        lab = LabelSession(cat, "alice", spec("second-opinion"))
        assert lab.current == SURE_MISTAKE and sorted(lab.queue) == list(range(13, 25))
        assert lab.reason(SURE_MISTAKE).startswith(SECOND_OPINION)
        lab.press_tag("red hair")     # alice's opinion: the face leaves everybody's list but tester's own
        assert SURE_MISTAKE not in ranked_queue(cat, replace(spec("second-opinion"), annotator=SECOND))[0]
        assert ranked_queue(cat, replace(spec("second-opinion"), annotator="tester"))[0] == []


def test_second_opinion_needs_two_annotators(one_person):
    with Catalog(one_person) as cat:
        with pytest.raises(CatalogError, match="one annotator") as e:
            ranked_queue(cat, spec("second-opinion"))
        assert "\n" not in str(e.value)
        assert ranked_queue(cat, spec("useful"))[0][0] == SURE_MISTAKE   # ActiveLab works with one annotator


def test_without_judge_probabilities_the_message_says_what_to_run(tiny_catalog):
    with Catalog(tiny_catalog) as cat:
        for order in ("useful", "second-opinion"):
            with pytest.raises(CatalogError, match="run `curate tag --tagger judge --labels manual` first") as e:
                ranked_queue(cat, q.QueueSpec(order=order))
            assert "\n" not in str(e.value)


# -- the page, through AppTest ------------------------------------------------------------------------

def test_app_says_why_the_face_was_picked(two_people, monkeypatch):
    at = start(two_people, monkeypatch)
    at.selectbox(key="f_order").set_value("second-opinion").run()
    assert not at.exception and not at.error and shown_face(at) == SURE_MISTAKE
    assert any(c.value.startswith(f"Why this face: {md(SECOND_OPINION)}") for c in at.caption)
    at.selectbox(key="f_order").set_value("useful").run()
    assert not at.exception and shown_face(at) == FLAT
    assert any(c.value.startswith(f"Why this face: {md(NEW_FACE)}") for c in at.caption)


def test_app_without_judge_shows_one_line(tiny_catalog, monkeypatch):
    at = start(tiny_catalog, monkeypatch)
    at.selectbox(key="f_order").set_value("useful").run()
    assert not at.exception
    assert [e.value for e in at.error] == [md("the useful order needs a judge's probabilities for hair_color as "
                                              "suggestion source: run `curate tag --tagger judge --labels manual` first")]


def test_progress_page_shows_the_annotators(two_people, one_person_copy, monkeypatch):
    at = start(two_people, monkeypatch)
    at.segmented_control(key="mode").set_value("Progress").run()
    assert not at.exception
    figures = next(d.value for d in at.dataframe if "agrees with consensus" in d.value.columns)
    assert dict(zip(figures["annotator"], figures["faces"])) == {"tester": 24, "bob": 12}
    assert figures["quality"].notna().all()
    at = start(one_person_copy, monkeypatch)
    at.segmented_control(key="mode").set_value("Progress").run()
    assert any("two or more annotators" in i.value for i in at.info)


@pytest.fixture
def one_person_copy(tmp_path) -> Path:
    path = make_tiny_catalog(tmp_path / "one.db")
    with Catalog(path) as cat:
        add_new_faces(cat)
        judge(cat)
    return path


def test_progress_page_without_judge_says_what_to_run(tiny_catalog, monkeypatch):
    with Catalog(tiny_catalog) as cat:
        cat.add_labels([(f, given(f), None) for f in range(1, 5)], "manual", SECOND)
    at = start(tiny_catalog, monkeypatch)
    at.segmented_control(key="mode").set_value("Progress").run()
    assert not at.exception and any(md("run `curate tag --tagger judge --labels manual` first") in i.value
                                    for i in at.info)


def test_a_group_the_judge_knows_one_tag_of_is_one_line(tiny_catalog):
    with Catalog(tiny_catalog) as cat:
        dists = [(f, "hair_color", {"blonde hair": 1.0}, True) for f in cat.face_ids()]
        cat.save_learned_labels("judge", "judge-one-tag", {"learned_from": "manual"},
                                [(f, "blonde hair", 1.0) for f in cat.face_ids()], dists)
        for order in ("useful", "second-opinion"):
            with pytest.raises(CatalogError, match="nothing to tell apart") as e:
                ranked_queue(cat, spec(order))
            assert "\n" not in str(e.value)
