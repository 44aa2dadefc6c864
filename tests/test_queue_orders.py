"""Every queue order, built as it is now (SQLite ordering, label_current, arrays), against the
plain Python it replaced (each face's events read back and sorted in Python, kept here as the
oracle), on a catalog with what makes orders differ: ties, values of NULL, newer events, cleared
labels, unsure marks and their undo, faces not ok, independent tags, several annotators."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from curate.quality.agreement import worst_disagreements
from curate.quality.suspects import margins
from db import Catalog
from db import labelling as q
from label_app.session import build_queue

from conftest import make_tiny_catalog, png_bytes

HAIR = ["blonde hair", "black hair", "red hair", "blue hair"]
EYES = ["blue eyes", "red eyes", "green eyes"]
VALUES = [0.5, 0.7, 0.7, None, 0.9, 0.55, 1.0, 0.3]     # ties, a NULL value, one below 0.5


@pytest.fixture(scope="module")
def busy(tmp_path_factory) -> Path:
    path = make_tiny_catalog(tmp_path_factory.mktemp("busy") / "busy.db")   # tester: hair + eyes of 1-24
    rng = np.random.default_rng(3)
    with Catalog(path) as cat:
        for i in range(24, 40):
            sid = cat.save_source(f"/synthetic/more{i}.png", sha256=f"{i + 500:064x}", size=1, width=32, height=32,
                                  status="ok", detector="none")
            cat.add_face(source_id=sid, image=png_bytes(i + 500), format="png", width=32, height=32, detector="none")
        labels = []
        for f in range(1, 37):          # 37-40: no i2v
            labels += [(f, HAIR[int(rng.integers(4))], VALUES[int(rng.integers(len(VALUES)))]),
                       (f, EYES[int(rng.integers(3))], VALUES[int(rng.integers(len(VALUES)))])]
            labels += [(f, tag, VALUES[int(rng.integers(len(VALUES)))]) for tag in ("smile", "hat", "blush")
                       if rng.uniform() < 0.7]
        cat.add_labels(labels, "i2v")
        cat.add_labels([(f, "red hair", 0.7) for f in range(1, 6)], "i2v")          # newer events win
        cat.add_labels([(f, HAIR[f % 4], None) for f in range(10, 31)] +
                       [(f, "smile", float(f % 2)) for f in range(10, 20)], "manual", "bob")
        cat.add_labels([(f, "hat", 1.0) for f in (2, 3)], "manual", "tester")
        for f in (4, 11):
            cat.clear_label(f, "hair_color", "manual", "tester")
        for f in (30, 31, 6):
            cat.mark_unsure(f, "alice")
        cat.undo_last("manual", "alice")                                          # 6 is wanted again
        cat.mark_unsure(32, "bob")
        cat.set_face_status(33, "rejected", reason="bad crop")
        cat.set_face_status(34, "duplicate", reason="same", duplicate_of=1)
        cat.assign_splits(val=0.2, test=0.2, seed=0)
        dists = []
        for f in range(1, 37):
            p = rng.dirichlet(np.ones(4)).round(2)
            if f % 7 == 0:
                p = np.full(4, 0.25)                                              # a tie of every tag
            dists.append((f, "hair_color", dict(zip(HAIR, map(float, p))), True))
        cat.save_learned_labels("judge", "judge-busy", {"learned_from": "manual"},
                                [(f, max(p, key=p.get), max(p.values())) for f, _, p, _ in dists], dists)
    return path


# -- the oracle: the queue as build_queue built it before ----------------------------------------

def old_current_sql(keys):
    marks = ",".join("?" * len(keys))
    return (f"EXISTS (SELECT 1 FROM label_events e WHERE e.source = ? AND e.face_id = f.id AND e.key IN ({marks}) "
            f"AND e.tag IS NOT NULL AND e.id = (SELECT max(x.id) FROM label_events x WHERE x.source = e.source "
            f"AND x.face_id = e.face_id AND x.key = e.key))"), keys


def old_confidence(cat, source, group):
    g, out = cat.group(group), {}
    for f, labels in cat.current_for_keys(source, cat.group_keys(group)).items():
        values = [1.0 if v is None else v for _, v in labels.values()]
        out[f] = values[0] if g["exclusive"] else min(max(v, 1 - v) for v in values)
    return out


def old_disagreement(cat, a, b, group):
    g, keys = cat.group(group), cat.group_keys(group)
    la, lb = cat.current_for_keys(a, keys), cat.current_for_keys(b, keys)
    k, out = max(len(g["tags"]), 2), {}
    for f in la.keys() & lb.keys():
        if g["exclusive"]:
            (ta, pa), (tb, pb) = la[f][group], lb[f][group]
            pa, pb = (1.0 if pa is None else pa), (1.0 if pb is None else pb)
            if ta == tb:
                same = pa * pb + (1 - pa) * (1 - pb) / (k - 1)
            else:
                same = (pa * (1 - pb) + pb * (1 - pa)) / (k - 1) + (1 - pa) * (1 - pb) * (k - 2) / (k - 1) ** 2
            out[f] = 1 - same
        else:
            def p(label):
                return 0.0 if label is None else 1.0 if label[1] is None else label[1]
            diffs = [abs(p(la[f].get(t)) - p(lb[f].get(t))) for t in keys if t in la[f] or t in lb[f]]
            out[f] = sum(diffs) / len(diffs)
    return out


def old_queue(cat: Catalog, spec: q.QueueSpec, ranking=None) -> list[int]:
    spec = cat.validate_spec(spec)
    keys = cat.group_keys(spec.group)
    where, params = ["f.status = ?"], [spec.status]
    if spec.split is not None:
        where.append("f.id IN (SELECT face_id FROM face_splits WHERE split = ?)")
        params.append(spec.split)
    if spec.tag is not None:
        tag_group, exclusive = cat.tag_index()[spec.tag]
        where.append("EXISTS (SELECT 1 FROM label_events e WHERE e.source = ? AND e.face_id = f.id AND e.key = ? "
                     "AND e.tag = ? AND coalesce(e.value, 1) >= ? AND e.id = (SELECT max(x.id) FROM label_events x "
                     "WHERE x.source = e.source AND x.face_id = f.id AND x.key = e.key))")
        params += [spec.source, tag_group if exclusive else spec.tag, spec.tag, spec.min_prob]
    labelled_sql, labelled_params = old_current_sql(keys)
    if spec.unlabelled_only:
        where.append("NOT " + labelled_sql)
        params += ["manual", *labelled_params]
    if spec.given is not None:
        where.append("EXISTS (SELECT 1 FROM label_current g WHERE g.source = ? AND g.face_id = f.id "
                     "AND g.key = ? AND g.tag = ?)")
        params += ["manual", spec.group, spec.given]
    if spec.annotator is not None:
        where.append("NOT EXISTS (SELECT 1 FROM label_events u WHERE u.source = ? AND u.face_id = f.id AND u.key = ? "
                     "AND u.annotator = ? AND u.value = 1 AND u.id = (SELECT max(x.id) FROM label_events x "
                     "WHERE x.source = u.source AND x.face_id = f.id AND x.key = u.key AND x.annotator = u.annotator))")
        params += ["manual", q.UNSURE_KEY, spec.annotator]
    base = f"FROM faces f WHERE {' AND '.join(where)}"
    if spec.order == "unlabelled":
        return [r[0] for r in cat.conn.execute(f"SELECT f.id {base} ORDER BY {labelled_sql}, f.id",
                                               params + ["manual", *labelled_params])]
    ids = [r[0] for r in cat.conn.execute(f"SELECT f.id {base} ORDER BY f.id", params)]
    if spec.order == "random":
        random.Random(spec.seed).shuffle(ids)
    elif spec.order == "confidence":
        score = old_confidence(cat, spec.source, spec.group)
        ids.sort(key=lambda i: (i not in score, score.get(i, 0.0)))
    elif spec.order == "disagreement":
        score = old_disagreement(cat, spec.source, spec.other_source, spec.group)
        ids.sort(key=lambda i: (i not in score, -score.get(i, 0.0)))
    elif spec.order in q.JUDGE_ORDERS:
        if spec.order in q.RANKED_ONLY:
            ids = [i for i in ids if i in ranking]
        ids.sort(key=lambda i: (i not in ranking, ranking.get(i, 0.0)))
    return ids


# -- the comparisons ---------------------------------------------------------------------------------

FILTERS = [{}, {"unlabelled_only": True}, {"tag": "blonde hair"}, {"tag": "smile", "min_prob": 0.6},
           {"tag": "red hair", "min_prob": 1.0}, {"given": "black hair"}, {"split": "train"},
           {"status": "rejected"}, {"annotator": "alice"}, {"annotator": "bob", "unlabelled_only": True}]


@pytest.mark.parametrize("order,group", [("unlabelled", "hair_color"), ("unlabelled", "other"), ("id", "hair_color"),
                                         ("random", "hair_color"), ("confidence", "hair_color"),
                                         ("confidence", "eye_color"), ("confidence", "other"),
                                         ("disagreement", "hair_color"), ("disagreement", "other")])
def test_every_order_and_filter_gives_the_queue_it_gave_before(busy, order, group):
    with Catalog(busy) as cat:
        for filters, other in itertools.product(FILTERS, ["manual", "judge"]):
            if order != "disagreement" and other == "judge":
                continue
            if "given" in filters and group != "hair_color":
                continue
            spec = replace(q.QueueSpec(order=order, group=group, source="i2v", other_source=other, seed=5), **filters)
            assert cat.build_queue(spec) == old_queue(cat, spec), (order, group, filters, other)


def test_scores_are_those_of_the_python_formulas(busy):
    with Catalog(busy) as cat:
        for group in ("hair_color", "eye_color", "other", "hair_style"):
            assert cat.confidence("i2v", group) == old_confidence(cat, "i2v", group)
        assert cat.disagreement("i2v", "manual", "hair_color") == old_disagreement(cat, "i2v", "manual", "hair_color")
        new, old = cat.disagreement("i2v", "manual", "other"), old_disagreement(cat, "i2v", "manual", "other")
        assert new.keys() == old.keys() and new                  # a sum of floats: the order of its terms may
        assert all(abs(new[f] - old[f]) < 1e-12 for f in new)    # differ (the old one took a set's order)


def test_judge_orders_rank_as_the_python_did(busy):
    with Catalog(busy) as cat:
        margin = margins(cat, "hair_color", "judge")
        old = {}
        for f, (probs, _, _) in cat.distributions("judge", "hair_color").items():
            top = sorted(probs.values(), reverse=True) + [0.0]
            old[f] = top[0] - top[1]
        assert margin == old and 33 not in margin and 7 in margin    # 33 is rejected; 7's tags tie
        for filters in FILTERS[:3] + [{"annotator": "alice"}]:
            spec = replace(q.QueueSpec(order="margin", source="judge"), **filters)
            assert build_queue(cat, spec) == old_queue(cat, spec, ranking=old), filters


def test_confident_disagreements_are_those_of_worst_disagreements(busy):
    with Catalog(busy) as cat:
        for a, b in (("manual", "i2v"), ("i2v", "manual"), ("manual", "judge")):
            for low in (0.0, 0.5, 0.8):
                old = sorted((r["face_id"], r["tag_b"], r["value_b"]) for r in worst_disagreements(cat, a, b, n=None)
                             if r["key"] == "hair_color" and r["confidence"] >= low)
                assert cat.confident_disagreements(a, b, "hair_color", low) == old, (a, b, low)


def test_the_parsed_distributions_follow_the_catalog(busy, tmp_path):
    path = tmp_path / "copy.db"
    path.write_bytes(busy.read_bytes())
    with Catalog(path) as cat:
        m = cat.distribution_matrix("judge", "hair_color")
        dists = cat.distributions("judge", "hair_color")
        assert m.face_ids.tolist() == sorted(dists) and m.versions == ["judge-busy"]
        assert all(m.probs[i, m.tags.index(t)] == p for i, f in enumerate(m.face_ids.tolist())
                   for t, p in dists[f][0].items())
        cat.set_face_status(5, "rejected")                                   # statuses are read each time
        assert 5 not in cat.distribution_matrix("judge", "hair_color").face_ids.tolist()
        cat.save_learned_labels("judge", "judge-busy-2", {"learned_from": "manual"}, [(2, "red hair", 0.99)],
                                [(2, "hair_color", {"red hair": 0.99, "blonde hair": 0.01}, True)])
        again = cat.distribution_matrix("judge", "hair_color")              # a rewrite is read anew
        row, red, black = again.face_ids.tolist().index(2), again.tags.index("red hair"), again.tags.index("black hair")
        assert again.probs[row, red] == 0.99 and not again.named[row, black] and again.probs[row, black] == 0.0
        assert sorted(again.versions) == ["judge-busy", "judge-busy-2"]


def test_a_queue_is_built_anew_once_the_catalog_changed(busy, tmp_path):
    path = tmp_path / "copy.db"
    path.write_bytes(busy.read_bytes())
    with Catalog(path) as cat, Catalog(path) as other:
        built = []
        build = cat.build_queue
        cat.build_queue = lambda *a, **k: built.append(a[0].order) or build(*a, **k)
        spec = q.QueueSpec(order="unlabelled", source="i2v")
        first = build_queue(cat, spec)
        assert build_queue(cat, spec) == first and build_queue(cat, replace(spec, order="id")) != first
        assert build_queue(cat, spec) == first and built == ["unlabelled", "id"]      # nothing written: kept
        cat.clear_label(first[-1], "hair_color", "manual", "tester")                  # a write through this one
        assert build_queue(cat, spec) == old_queue(cat, spec) != first
        other.clear_label(first[-2], "hair_color", "manual", "tester")                # through another connection
        assert build_queue(cat, spec) == old_queue(cat, spec)
        other.set_face_status(first[0], "rejected")
        assert first[0] not in build_queue(cat, spec) and built == ["unlabelled", "id"] + ["unlabelled"] * 3


@pytest.mark.parametrize("patch_at_most", [20_000, 3])
def test_kept_label_arrays_follow_every_kind_of_event(busy, tmp_path, monkeypatch, patch_at_most):
    """The arrays a process keeps (db/kept.py) are brought up to date from new events: after labels,
    clears, undos, unsure marks, other sources' events, and through another connection, they are
    what reading the catalog afresh gives (with few events patched in, or, past PATCH_AT_MOST, read again)."""
    import db.kept

    monkeypatch.setattr(db.kept, "PATCH_AT_MOST", patch_at_most)
    path = tmp_path / "copy.db"
    path.write_bytes(busy.read_bytes())

    def afresh(cat, what, source, key):
        db.kept._KEPT.clear()
        return getattr(cat, what)(source, key)

    def same(x, y):
        return all(np.array_equal(np.asarray(a, object), np.asarray(b, object)) for a, b in zip(vars(x).values(),
                                                                                                vars(y).values()))

    with Catalog(path) as cat, Catalog(path) as other:
        asked = [("label_column", "manual", "hair_color"), ("label_column", "i2v", "hair_color"),
                 ("label_column", "manual", "smile"), ("annotator_label_column", "manual", "hair_color")]
        writes = [lambda: cat.add_labels([(1, "red hair", None), (40, "blue hair", None)], "manual", "carol"),
                  lambda: cat.clear_label(2, "hair_color", "manual", "tester"),
                  lambda: cat.undo_last("manual", "bob"), lambda: cat.undo_last("manual", "carol"),
                  lambda: cat.mark_unsure(3, "carol"),
                  lambda: other.add_labels([(5, "black hair", 0.2), (6, "smile", 0.9)], "i2v"),
                  lambda: other.add_labels([(f, "black hair", None) for f in range(7, 15)], "manual", "dan"),
                  lambda: other.add_labels([(9, "smile", 0.0)], "manual", "dan")]
        for write in [lambda: None] + writes:
            for what, source, key in asked:
                getattr(cat, what)(source, key)              # kept from before the write
            write()
            kept = [getattr(cat, what)(source, key) for what, source, key in asked]
            for value, (what, source, key) in zip(kept, asked):
                assert same(value, afresh(cat, what, source, key)), (what, source, key)
        cat.set_face_status(7, "rejected")
        assert 7 not in cat.current_tags("manual", "hair_color")[0]


def test_the_random_order_shuffles_as_python_does():
    for n, seed in itertools.product([0, 1, 2, 3, 8, 9, 255, 256, 257, 5000], [0, 1, 7, 2 ** 40]):
        expected, got = list(range(n)), list(range(n))
        random.Random(seed).shuffle(expected)
        q.shuffle(got, seed)
        assert got == expected, (n, seed)
