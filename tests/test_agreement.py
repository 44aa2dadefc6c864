"""Agreement between label sources: accuracy, Cohen's kappa, confusion, worst disagreements."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from curate.quality.agreement import agreement, cohen_kappa, worst_disagreements
from curate.cli import app
from db import Catalog

runner = CliRunner()


def test_cohen_kappa_textbook_example():
    # 50 items, two raters: observed agreement 0.7, chance agreement 0.5 -> kappa 0.4
    assert cohen_kappa(np.array([[20, 5], [10, 15]])) == pytest.approx(0.4)
    assert cohen_kappa(np.diag([5, 7, 9])) == pytest.approx(1.0)
    assert cohen_kappa(np.array([[0, 4], [4, 0]])) == pytest.approx(-1.0)


@pytest.fixture
def two_sources(tiny_catalog):
    """tiny_catalog's manual colours plus a 'model' source that disagrees on known faces."""
    cat = Catalog(tiny_catalog)
    manual = cat.labelled_faces("manual", split=None)
    faces = sorted(manual)
    model = []
    for i, f in enumerate(faces[:20]):            # the model labels 20 of the 24 faces
        hair = manual[f]["hair_color"][0]
        if i in (3, 7, 11):                       # three confident-to-hesitant hair mistakes
            hair = "blue hair"
        model.append((f, hair, {3: 0.95, 7: 0.6, 11: 0.3}.get(i, 0.8)))
        model.append((f, manual[f]["eye_color"][0], 0.9))
        model.append((f, "smile", 0.7 if i % 2 else 0.2))
    cat.add_labels(model, "model", "v1")
    cat.add_labels([(f, "smile", 1.0) for f in faces[:10]], "manual", "tester")
    cat.close()
    return tiny_catalog, faces


def test_agreement_figures(two_sources):
    path, faces = two_sources
    cat = Catalog(path)
    result = agreement(cat, "manual", "model")
    assert (result.faces_a, result.faces_b, result.faces_both) == (24, 20, 20)
    hair = next(g for g in result.groups if g.group == "hair_color")
    assert hair.n == 20 and hair.accuracy == pytest.approx(17 / 20)
    assert hair.confusion[:, hair.tags.index("blue hair")].sum() == 3
    eyes = next(g for g in result.groups if g.group == "eye_color")
    assert eyes.accuracy == 1.0 and eyes.kappa == pytest.approx(1.0)
    smile = next(g for g in result.groups if g.group == "smile")
    # faces 0-9 carry a manual smile (1.0); the model says yes on odd i: 5 of 10 agree
    assert smile.n == 10 and smile.accuracy == pytest.approx(0.5) and not smile.exclusive
    test_only = agreement(cat, "manual", "model", split="test")
    assert test_only.faces_both < 20
    cat.close()


def test_worst_disagreements_ranked_by_confidence(two_sources):
    path, faces = two_sources
    cat = Catalog(path)
    worst = worst_disagreements(cat, "manual", "model", 4)
    # face 3: a 0.95-sure wrong hair colour; then the manual smiles the model calls absent
    # (p=0.2, so 0.8 sure), in face order
    assert [(w["face_id"], w["key"]) for w in worst] == [(faces[3], "hair_color"), (faces[0], "smile"),
                                                        (faces[2], "smile"), (faces[4], "smile")]
    assert worst[0]["tag_b"] == "blue hair" and worst[0]["confidence"] == pytest.approx(0.95)
    assert [w["confidence"] for w in worst] == sorted((w["confidence"] for w in worst), reverse=True)
    hair = [w for w in worst_disagreements(cat, "manual", "model", 50) if w["key"] == "hair_color"]
    assert [w["face_id"] for w in hair] == [faces[3], faces[7], faces[11]]
    cat.close()


def test_cli_agree(two_sources, tmp_path):
    path, faces = two_sources
    png = tmp_path / "cm.png"
    r = runner.invoke(app, ["agree", "manual", "model", "--db", str(path), "--png", str(png), "--worst", "3"],
                      env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "85.0%" in r.output and "hair_color" in r.output and "blue hair (0.95)" in r.output
    assert Image.open(png).size[0] > 400
    r = runner.invoke(app, ["agree", "manual", "nobody", "--db", str(path)])
    assert r.exit_code == 2 and "'nobody' has no labels" in r.output
    r = runner.invoke(app, ["agree", "manual", "model", "--db", str(tmp_path / "absent.db")])
    assert r.exit_code == 2 and "absent.db" in r.output
