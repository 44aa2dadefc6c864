"""Consensus from several annotators and the judge (CROWDLAB), and each annotator's quality."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import train.cli
from curate.cli import app
from curate.quality.consensus import label_matrix, model_probabilities, pairwise_kappa
from curate.quality.consensus_source import annotator_report, run_consensus
from db import Catalog, CatalogError

from conftest import png_bytes

runner = CliRunner()
HAIR = ["blue hair", "green hair", "red hair"]
EYES = ["blue eyes", "red eyes"]
CAREFUL = ("ann", "bob")
RANDOM = "zed\x1b]0;owned\x07\n[red]"     # the unreliable one, with a name no terminal should obey
SHOWN = "zed\\x1b]0;owned\\x07\\n[red]"
N = 40


def judge_says(cat: Catalog, truth: dict[int, dict[str, str]], wrong: set[int] = frozenset()) -> None:
    """Write `judge` probabilities the way `curate tag --tagger judge` does: 0.6 on the true tag; on
    the face ids in `wrong`, 0.45 on another one (a model's mistakes are mostly its less sure calls:
    CROWDLAB trusts a model this accurate more than any one person, and a sure mistake of it would
    outvote two people)."""
    dists, events = [], []
    for f, groups in truth.items():
        for group, tags in (("hair_color", HAIR), ("eye_color", EYES)):
            best = groups[group] if f not in wrong else next(t for t in tags if t != groups[group])
            top = 0.45 if f in wrong else 0.6
            probs = {t: (top if t == best else (1 - top) / (len(tags) - 1)) for t in tags}
            dists.append((f, group, probs, True))
            events.append((f, best, top))
    info = {"learned_from": "manual", "labels_fingerprint": cat.labels_fingerprint("manual")}
    cat.save_learned_labels("judge", "judge-manual-test", info, events, dists)


def add_faces(cat: Catalog, n: int) -> list[int]:
    ids = []
    for i in range(n):
        sid = cat.save_source(f"/c/{i}.png", sha256=f"{i:064x}", size=1, width=32, height=32, status="ok",
                              detector="none")
        ids.append(cat.add_face(source_id=sid, image=png_bytes(i), format="png", width=32, height=32,
                                detector="none"))
    return ids


@pytest.fixture
def planted(tmp_path):
    """40 faces labelled by two careful people (each wrong on two faces) and one who labels at
    random; 4 more faces only the random one labelled, wrongly. The judge is right on all but 3."""
    path = tmp_path / "crowd.db"
    rng = np.random.default_rng(0)
    with Catalog(path) as cat:
        ids = add_faces(cat, N + 4)
        truth = {f: {"hair_color": HAIR[i % 3], "eye_color": EYES[i % 2]} for i, f in enumerate(ids)}
        for who, slips in zip(CAREFUL, (ids[:2], ids[2:4])):
            cat.add_labels([(f, HAIR[(HAIR.index(truth[f]["hair_color"]) + (f in slips)) % 3], None)
                            for f in ids[:N]] + [(f, truth[f]["eye_color"], None) for f in ids[:N]], "manual", who)
        cat.add_labels([(f, HAIR[rng.integers(3)], None) for f in ids[:N]]
                       + [(f, EYES[rng.integers(2)], None) for f in ids[:N]]
                       + [(f, HAIR[(HAIR.index(truth[f]["hair_color"]) + 1) % 3], None) for f in ids[N:]]
                       + [(f, truth[f]["eye_color"], None) for f in ids[N:]], "manual", RANDOM)
        judge_says(cat, truth, wrong=set(ids[10:13]))
        cat.assign_splits(val=0.1, test=0.1, seed=0)
    return path, ids, truth


def test_the_random_annotator_is_ranked_last_and_outvoted(planted):
    path, ids, truth = planted
    with Catalog(path) as cat:
        summary = run_consensus(cat)
        hair = next(r for r in summary.results if r.matrix.group == "hair_color")
        ranked = [a["annotator"] for a in annotator_report(cat, group="hair_color")[0]["annotators"]]
        manual = {who: cat.current_for_keys("manual", ["hair_color"], annotator=who) for who in CAREFUL}
        written = {f: labels["hair_color"] for f, labels in cat.current_for_keys("consensus", ["hair_color"]).items()}
    assert ranked[-1] == RANDOM and set(ranked[:2]) == set(CAREFUL)
    consensus = dict(zip(hair.matrix.face_ids, hair.consensus_tags()))
    agreed = [f for f in ids[:N] if manual["ann"][f]["hair_color"][0] == manual["bob"][f]["hair_color"][0]]
    assert len(agreed) == N - 4
    assert all(consensus[f] == manual["ann"][f]["hair_color"][0] for f in agreed)   # outvoted
    # faces only the random annotator labelled: the model-weighted view outvotes them there too
    assert all(consensus[f] == truth[f]["hair_color"] for f in ids[N:])
    assert {f: t for f, (t, _) in written.items()} == consensus
    assert all(0 <= q <= 1 for _, q in written.values())


def test_the_consensus_is_a_label_source_and_a_rerun_writes_nothing(planted, tmp_path):
    path, ids, _ = planted
    db = ["--db", str(path)]
    r = runner.invoke(app, ["consensus", *db, "--no-progress"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "consensus: 88 labels by consensus-manual-" in r.output and SHOWN in r.output and "\x1b" not in r.output
    with Catalog(path) as cat:
        events = cat.conn.execute("SELECT count(*) FROM label_events WHERE source = 'consensus'").fetchone()[0]
        record = cat.tagger_version(cat.latest_tagger_version("consensus"))
    assert events == 88 and record["method"]["quality_method"] == "crowdlab" and record["learned_from"] == "manual"
    r = runner.invoke(app, ["consensus", *db, "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["skipped"] is True, r.output
    r = runner.invoke(app, ["consensus", *db])
    assert "nothing written" in r.output
    with Catalog(path) as cat:
        assert cat.conn.execute("SELECT count(*) FROM label_events WHERE source = 'consensus'").fetchone()[0] == events
        cat.add_labels([(ids[5], "blue hair", None)], "manual", "bob")    # a second opinion changes: a new version
    r = runner.invoke(app, ["consensus", *db, "--json"])
    out = json.loads(r.output)
    assert out["skipped"] is False and out["events"] == 88, r.output
    with Catalog(path) as cat:
        cat.undo_last("manual", "bob")      # back to the first inputs: not the newest version, so written again
    again = json.loads(runner.invoke(app, ["consensus", *db, "--json"]).output)
    assert again["skipped"] is False and again["version"] == record["version"] != out["version"]
    with Catalog(path) as cat:
        assert cat.latest_tagger_version("consensus") == record["version"]
    res = runner.invoke(train.cli.app, ["acgan", *db, "--labels", "consensus", "--attrs", "hair_color,eye_color",
                                        "--size", "32", "--min-per-tag", "1", "--dry-run", "--no-progress",
                                        "--runs-dir", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache")])
    assert res.exit_code == 0 and '"labels": "consensus"' in res.output, res.output


def test_a_face_whose_labels_are_all_cleared_loses_its_consensus(planted):
    path, ids, _ = planted
    with Catalog(path) as cat:
        run_consensus(cat)
        for who in (*CAREFUL, RANDOM):
            cat.clear_label(ids[7], "hair_color", "manual", who)
        summary = run_consensus(cat)
        assert summary.cleared == 1
        assert "hair_color" not in cat.current_for_keys("consensus", ["hair_color"]).get(ids[7], {})


def test_annotators_table_and_json(planted):
    path, _, _ = planted
    r = runner.invoke(app, ["annotators", "--db", str(path)], env={"COLUMNS": "250"})
    assert r.exit_code == 0, r.output
    assert SHOWN in r.output and "\x1b" not in r.output and "kappa with each other annotator" in r.output
    assert r.output.index("ann") < r.output.index(SHOWN[:6])   # best first
    r = runner.invoke(app, ["annotators", "--db", str(path), "--json", "--group", "hair_color"])
    groups = json.loads(r.output)["groups"]
    rows = groups[0]["annotators"]
    assert [g["group"] for g in groups] == ["hair_color"] and rows[-1]["annotator"] == RANDOM
    assert rows[0]["kappa"][RANDOM] < 0.5 < rows[0]["kappa"][rows[1]["annotator"]]
    assert rows[0]["faces"] == N and rows[-1]["faces"] == N + 4


def test_bad_input_gets_one_clear_line(tmp_path):
    path = tmp_path / "bad.db"
    db = ["--db", str(path)]

    def fails(args, *words):
        r = runner.invoke(app, args + db)
        assert r.exit_code == 2, r.output
        assert len(r.output.strip().splitlines()) == 1 and all(w in r.output for w in words), r.output

    with Catalog(path) as cat:
        ids = add_faces(cat, 6)
        cat.add_labels([(f, HAIR[i % 2], None) for i, f in enumerate(ids)], "manual", "ann")
    fails(["consensus"], "no 'judge' probabilities yet", "curate tag --tagger judge --labels manual")
    fails(["annotators"], "no 'judge' probabilities yet")
    with Catalog(path) as cat:
        judge_says(cat, {f: {"hair_color": HAIR[i % 2], "eye_color": "blue eyes"} for i, f in enumerate(ids)})
    fails(["consensus"], "one annotator ('ann') for hair_color", "needs two or more")
    with Catalog(path) as cat:
        cat.add_labels([(ids[0], HAIR[0], None)], "manual", "bob")
        cat.add_labels([(f, "blue eyes", None) for f in ids], "manual", "ann")
        cat.add_labels([(f, "blue eyes", None) for f in ids], "manual", "bob")
    fails(["consensus"], "same eye_color (blue eyes)", "one tag")
    fails(["consensus", "--target", "manual"], "--target 'manual'", "source of its own")
    fails(["consensus", "--target", "judge"], "--target 'judge'")
    fails(["consensus", "--labels", "nobody"], "'nobody' has no labels")
    fails(["consensus", "--with", "nobody"], "no 'nobody' probabilities yet")
    fails(["consensus", "--group", "other"], "not an exclusive group")
    r = runner.invoke(app, ["consensus", "--group", "hair_color", "--no-progress"] + db)
    assert r.exit_code == 0, r.output


def test_annotator_labels_leave_out_undone_cleared_and_rejected(catalog):
    ids = add_faces(catalog, 3)
    catalog.add_labels([(ids[0], "blue hair", None), (ids[1], "red hair", None)], "manual", "ann")
    catalog.add_labels([(ids[0], "green hair", None)], "manual", "ann")
    catalog.undo_last("manual", "ann")                                  # ann's face 0 is blue again
    catalog.add_labels([(ids[0], "red hair", None), (ids[2], "red hair", None)], "manual", "bob")
    catalog.clear_label(ids[0], "hair_color", "manual", "bob")           # bob withdrew face 0
    catalog.add_labels([(ids[1], "blue hair", None)], "manual", None)    # nameless
    catalog.set_face_status(ids[2], "rejected", reason="test")
    assert catalog.annotator_labels("manual", ["hair_color"]) == [
        (ids[0], "hair_color", "ann", "blue hair"), (ids[1], "hair_color", None, "blue hair"),
        (ids[1], "hair_color", "ann", "red hair")]
    with pytest.raises(CatalogError, match="no 'judge' probabilities"):
        run_consensus(catalog)


def test_pure_parts():
    m = label_matrix("g", [(1, "a", "x"), (1, "b", "y"), (2, "a", "y")], ["w", "x", "y"])
    assert m.tags == ["x", "y"] and m.annotators == ["a", "b"] and np.isnan(m.labels[1, 1])
    p = model_probabilities([1, 2], ["x", "y"], {1: {"w": 0.5, "x": 0.25, "y": 0.25}, 2: {"w": 1.0}})
    assert np.allclose(p, [[0.5, 0.5], [0.5, 0.5]])
    labels = np.array([[0, 0], [1, 1], [0, 1], [np.nan, 1]])
    k = pairwise_kappa(labels, 2)
    assert k[0, 0] == 1 and k[0, 1] == k[1, 0] and 0 < k[0, 1] < 1


def test_a_second_annotator_who_agrees_is_imported_as_their_own_opinion(tmp_path):
    """`curate labels import --annotator bob` of labels that agree with ann's: bob's labels are
    written (a second opinion the consensus counts), while ann importing her own file again writes nothing."""
    path = tmp_path / "two.db"
    with Catalog(path) as cat:
        ids = add_faces(cat, 4)
    csv = tmp_path / "labels.csv"
    csv.write_text("face_id,hair_color\n" + "".join(f"{f},{HAIR[i % 3]}\n" for i, f in enumerate(ids)))

    def imported(who: str) -> str:
        r = runner.invoke(app, ["labels", "import", str(csv), "--target", "manual", "--annotator", who,
                                "--db", str(path)])
        assert r.exit_code == 0, r.output
        return r.output

    assert "4 labels written" in imported("ann")
    assert "4 labels written" in imported("bob")
    assert "0 labels written" in imported("ann")                # her own file again: nothing doubled
    with Catalog(path) as cat:
        by = {(f, who) for f, _, who, _ in cat.annotator_labels("manual", ["hair_color"])}
    assert by == {(f, who) for f in ids for who in ("ann", "bob")}
