"""Label quality: the judge as a cross-fitted tagger, suspects, and their clear errors."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from curate.cli import app
from curate.taggers.judge import JudgeTaggerOptions, assign_folds, cross_fit
from db import Catalog, CatalogError
from curate.quality.suspects import find_suspects, rank_group

from test_judge import solid_png

runner = CliRunner()
COLOURS = {"blue hair": (30, 30, 220), "green hair": (30, 200, 30), "red hair": (220, 30, 30)}
FAST = dict(size=16, width=8, epochs=15, batch=16, lr=5e-3, folds=3)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """60 blue and green faces whose hair colour is their colour, three of them labelled wrong,
    and one red face, the only one labelled red: cross-fitted once for the module."""
    path = tmp_path_factory.mktemp("quality") / "planted.db"
    cat = Catalog(path)
    wrong, labels = {}, []
    for i in range(61):
        truth = "red hair" if i == 60 else ("blue hair", "green hair")[i % 2]
        sid = cat.save_source(f"/c/{i}.png", sha256=f"{i:064x}", size=1, status="ok", detector="none")
        fid = cat.add_face(source_id=sid, image=solid_png(COLOURS[truth], i), format="png", width=16,
                           height=16, detector="none")
        given = truth
        if i in (7, 20, 33):
            given = "green hair" if truth == "blue hair" else "blue hair"
            wrong[fid] = given
        labels.append((fid, given, 1.0))
        red = fid
    cat.add_labels(labels, "manual", "tester")
    summary = cross_fit(cat, JudgeTaggerOptions(**FAST))
    cat.close()
    return path, wrong, red, summary


def test_cross_fitting_never_lets_a_face_see_its_own_label(planted):
    from curate.taggers.classifier import fit_judge, load_labelled, vocabulary

    path, wrong, red, summary = planted
    with Catalog(path) as cat:
        probs = cat.distributions("judge", "hair_color")
        assert len(probs) == 61 and all(held for _, held, _ in probs.values())
        # The red face is the only red label: the model that scored it never saw a red label.
        held_out = probs[red][0]["red hair"]
        assert held_out < 0.02
        # Control: a model that saw every label, as a leak would, gives red a far higher probability.
        faces = load_labelled(cat, "manual", None, 16)
        heads = vocabulary(cat, faces)
        leaky = fit_judge(JudgeTaggerOptions(**FAST).judge_options(), heads, faces.images, faces.tags)
        row = faces.face_ids.index(red)
        seen = leaky.outputs(faces.images[row:row + 1])[1][0][0][heads[0]["tags"].index("red hair")]
        assert seen > 0.1 and seen > 10 * held_out
        # Everything else is learned: the held-out accuracy counts only the planted errors and the red face.
        assert summary.accuracy["hair_color"] == pytest.approx(57 / 61)
        events = cat.current_labels("judge")
        assert len(events) == 61 and {e["annotator"] for e in events} == {summary.version}
        info = cat.tagger_version(summary.version)
        assert info["learned_from"] == "manual" and info["options"]["folds"] == 3
        assert info["labels_fingerprint"] == cat.labels_fingerprint("manual")


def test_folds_are_stratified_and_seeded():
    strata = ["a"] * 10 + ["b"] * 5
    folds = assign_folds(strata, 5, seed=3)
    assert (folds == assign_folds(strata, 5, seed=3)).all() and not (folds == assign_folds(strata, 5, 4)).all()
    assert all(sorted(folds[:10]).count(k) == 2 and list(folds[10:]).count(k) == 1 for k in range(5))


def test_suspects_find_the_planted_errors_and_change_nothing(planted, tmp_path):
    path, wrong, red, _ = planted
    with Catalog(path) as cat:
        before = cat.conn.execute("SELECT count(*) FROM label_events").fetchone()[0]
        top = find_suspects(cat, "manual")
        assert {s.face_id for s in top[:3]} == set(wrong)
        for s in top[:3]:
            assert s.given == wrong[s.face_id] and s.likely != s.given and s.p_likely > 0.5 and s.flagged
            assert s.reasons == ["confident learning (judge)"]
    out, sheet = tmp_path / "s.csv", tmp_path / "s.png"
    r = runner.invoke(app, ["suspects", "--db", str(path), "--csv", str(out), "--sheet", str(sheet), "-n", "3"],
                      env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "nothing was changed" in r.output and "flagged by confident learning" in r.output
    assert "judge on held-out faces, against manual: hair_color" in r.output and "too weak" not in r.output
    rows = list(csv.DictReader(out.open()))
    assert {int(r["face_id"]) for r in rows[:3]} == set(wrong)
    assert rows[0]["file"].startswith("/c/") and rows[0]["group"] == "hair_color"
    assert Image.open(sheet).size == (3 * 96, 96 + 2 * 12)   # one row of 3 faces, two caption lines
    with Catalog(path) as cat:
        assert cat.conn.execute("SELECT count(*) FROM label_events").fetchone()[0] == before


def test_rerun_on_unchanged_labels_does_nothing_and_a_changed_label_makes_a_new_version(tiny_catalog):
    opts = JudgeTaggerOptions(size=16, width=4, epochs=1, batch=8, folds=2)
    with Catalog(tiny_catalog) as cat:
        first = cross_fit(cat, opts)
        assert not first.skipped and first.labelled == 24
        assert cross_fit(cat, opts).skipped
        cat.add_labels([(1, "red hair", 1.0)], "manual", "tester")
        r = runner.invoke(app, ["suspects", "--db", str(tiny_catalog)], env={"COLUMNS": "200"})
        assert r.exit_code == 0 and "labels changed since judge learned them" in r.output, r.output
        second = cross_fit(cat, opts)
        assert not second.skipped and second.version != first.version
        assert {e["annotator"] for e in cat.current_labels("judge")} == {second.version}


def test_judge_tagger_cli_and_unlabelled_faces(tiny_catalog, tmp_path):
    with Catalog(tiny_catalog) as cat:   # two faces without any manual label
        for f in (23, 24):
            cat.clear_label(f, "hair_color", "manual", "tester")
            cat.clear_label(f, "eye_color", "manual", "tester")
    args = ["tag", "--tagger", "judge", "--db", str(tiny_catalog), "--folds", "2", "--epochs", "1"]
    r = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "22 labelled faces cross-fitted" in r.output and "2 unlabelled faces" in r.output
    with Catalog(tiny_catalog) as cat:
        dists = cat.distributions("judge", "eye_color")
        assert len(dists) == 24 and not dists[23][1] and dists[1][1]   # 23: not held out, 1: held out
        assert len(cat.labelled_faces("judge", split=None)) == 24
    r = runner.invoke(app, args)
    assert r.exit_code == 0 and "nothing to do" in r.output


def test_bad_input_gets_one_clear_line(tiny_catalog, tmp_path):
    db = ["--db", str(tiny_catalog)]

    def fails(args, *words):
        r = runner.invoke(app, args + db)
        assert r.exit_code == 2, r.output
        assert len(r.output.strip().splitlines()) == 1 and all(w in r.output for w in words), r.output

    fails(["suspects"], "no 'judge' probabilities", "curate tag --tagger judge --labels manual")
    fails(["suspects", "--labels", "nobody"], "'nobody' has no labels")
    fails(["tag", "--tagger", "judge", "--labels", "nobody"], "'nobody' has no labels")
    fails(["tag", "--tagger", "judge", "--folds", "20"], "24 ok faces", "too few for 20 folds")
    fails(["tag", "--tagger", "judge", "--target", "manual"], "--target 'manual'", "never into people's labels")
    fails(["suspects", "--group", "other"], "not an exclusive group")
    with Catalog(tiny_catalog) as cat:   # every face blonde: one tag, nothing to tell apart
        cat.add_labels([(f, "blonde hair", 1.0) for f in cat.face_ids()], "manual", "tester")
    fails(["suspects", "--group", "hair_color"], "same hair_color (blonde hair)")
    fails(["suspects", "--compare", "nobody"], "--compare", "'nobody' has no labels")
    with Catalog(tiny_catalog) as cat:
        cat.add_labels([(f, "red eyes", 1.0) for f in cat.face_ids()], "manual", "tester")
    fails(["tag", "--tagger", "judge"], "no group with two or more tags")


def test_suspects_need_a_judge_learned_from_that_source(planted):
    path, _, _, _ = planted
    with Catalog(path) as cat:
        cat.add_labels([(f, "blue hair", 1.0) for f in (1, 2)] + [(3, "green hair", 1.0)], "other", "x")
        with pytest.raises(CatalogError, match="learned from 'manual', not 'other'"):
            rank_group(cat, "other", "hair_color")


def test_suspects_of_a_weak_judge_come_with_its_accuracy_and_a_warning(tiny_catalog):
    """Random pixels: the judge learns nothing, and flags most faces. It must say it cannot be trusted."""
    with Catalog(tiny_catalog) as cat:
        cross_fit(cat, JudgeTaggerOptions(size=16, width=4, epochs=1, batch=8, folds=2))
        version = cat.distribution_versions("judge")[0]
        cat.conn.execute("UPDATE tagger_versions SET info = json_set(info, '$.held_out_accuracy.hair_color', 0.45, "
                         "'$.held_out_accuracy.eye_color', 0.6) WHERE version = ?", (version,))
        cat.conn.commit()
    r = runner.invoke(app, ["suspects", "--db", str(tiny_catalog)], env={"COLUMNS": "400"})
    assert r.exit_code == 0, r.output
    assert ("judge on held-out faces, against manual: hair_color 45.0% (always the commonest tag: 33.3%), "
            "eye_color 60.0% (always the commonest tag: 50.0%)") in r.output
    assert "too weak to trust on hair_color (45.0% held out, below 50%)" in r.output
    assert "too weak to trust on eye_color (60.0% held out, below 1.5x the 50.0% of always naming" in r.output
