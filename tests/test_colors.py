"""animeface colours -> hair/eye colour tags through a CIELAB palette."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from curate.cli import app
from curate.colors import DEFAULT_PALETTE, Palette, find_face_colors, fit_palette, rgb_to_lab
from db import Catalog

runner = CliRunner()


def test_rgb_to_lab_reference_values():
    # CIELAB (D65) of sRGB white, black, pure red and mid grey, as colour science tables give them
    lab = rgb_to_lab([[255, 255, 255], [0, 0, 0], [255, 0, 0], [128, 128, 128]])
    assert np.allclose(lab[0], [100, 0, 0], atol=0.01)
    assert np.allclose(lab[1], [0, 0, 0], atol=0.01)
    assert np.allclose(lab[2], [53.24, 80.09, 67.20], atol=0.05)
    assert np.allclose(lab[3], [53.59, 0, 0], atol=0.05)


def test_fit_palette_separates_colours_and_calibrates():
    rng = np.random.default_rng(0)
    red, blue = rgb_to_lab([200, 30, 30]), rgb_to_lab([30, 40, 200])
    samples = {"hair_color": [(np.r_[red, red] + rng.normal(0, 6, 6), "red hair") for _ in range(60)]
               + [(np.r_[blue, blue] + rng.normal(0, 6, 6), "blue hair") for _ in range(40)]
               + [(np.r_[red, red], "pink hair")] * 3}   # too rare to get a palette entry
    palette = fit_palette(samples)
    assert set(palette.groups["hair_color"]) == {"red hair", "blue hair"}
    assert palette.groups["hair_color"]["red hair"]["count"] == 60
    probs = palette.probabilities("hair_color", np.r_[red, red])
    assert sum(probs.values()) == pytest.approx(1)
    assert probs["red hair"] > 0.99
    midway = palette.probabilities("hair_color", (np.r_[red, red] + np.r_[blue, blue]) / 2)
    assert 0.01 < midway["red hair"] < 0.99        # in between: unsure, not 0/1
    assert palette.temperatures["hair_color"] > 0


def test_embedded_palette_round_trips(tmp_path):
    palette = Palette.load()
    assert set(palette.groups) == {"hair_color", "eye_color"}
    assert len(palette.groups["hair_color"]) == 12 and len(palette.groups["eye_color"]) == 11
    palette.save(tmp_path / "p.json")
    again = Palette.load(tmp_path / "p.json")
    x = np.array([60, 10, 40, 50, 5, 30], float)
    assert again.probabilities("hair_color", x) == pytest.approx(palette.probabilities("hair_color", x))


def test_no_face_means_no_colours():
    assert find_face_colors(Image.new("RGB", (96, 96), (240, 240, 240))) is None


def _shared_faces(shared, n):
    with open(shared / "data/anime_faces_labelled/labels.csv") as f:
        rows = list(csv.DictReader(f))[:n]
    return [(shared / "data/anime_faces_labelled" / r["file"], r["hair_color"], r["eye_color"]) for r in rows]


def test_find_face_colors_on_real_faces(shared):
    found = [find_face_colors(Image.open(p)) for p, _, _ in _shared_faces(shared, 12)]
    assert sum(c is not None for c in found) >= 9
    c = next(c for c in found if c is not None)
    x, y, w, h = c.box
    assert 0 <= c.likelihood <= 1 and w > 20 and h > 20 and -10 < x < 96 and -10 < y < 96
    assert set(c.features()) == {"hair_color", "eye_color"} and c.features()["hair_color"].shape == (6,)


@pytest.fixture
def shared_catalog(shared, tmp_path):
    """A catalog file of 16 real shared faces with their manual colours."""
    path = tmp_path / "faces.db"
    cat = Catalog(path)
    labels = []
    for i, (p, hair, eyes) in enumerate(_shared_faces(shared, 16)):
        data = p.read_bytes()
        sid = cat.save_source(str(p), sha256=f"{i:064x}", size=len(data), width=96, height=96, status="ok",
                              detector="none")
        fid = cat.add_face(source_id=sid, image=data, format="jpeg", width=96, height=96, detector="none")
        labels += [(fid, hair, 1.0), (fid, eyes, 1.0)]
    cat.add_labels(labels, "manual", "tester")
    cat.close()
    return path


def test_cli_animeface_tagging(shared_catalog):
    before = Catalog(shared_catalog).current_labels("manual")
    r = runner.invoke(app, ["tag", "--tagger", "animeface", "--db", str(shared_catalog)])
    assert r.exit_code == 0, r.output
    cat = Catalog(shared_catalog)
    labels = cat.labelled_faces("animeface", split=None)
    assert 12 <= len(labels) <= 16
    for face in labels.values():
        assert set(face) == {"hair_color", "eye_color"}
        assert all(0 < v <= 1 for _, v in face.values())
    assert cat.current_labels("manual") == before
    cat.close()
    r = runner.invoke(app, ["tag", "--tagger", "animeface", "--db", str(shared_catalog)])
    assert f"{len(labels)} skipped" in r.output


def test_cli_calibrate_colors(shared_catalog, tmp_path):
    out = tmp_path / "palette.json"
    args = ["calibrate-colors", "--db", str(shared_catalog), "--split", "all", "--out", str(out)]
    r = runner.invoke(app, args)   # 16 faces: no colour has the default 10
    assert r.exit_code == 2 and "--min-faces" in r.output and not out.exists()
    r = runner.invoke(app, args + ["--min-faces", "2"])
    assert r.exit_code == 0, r.output
    palette = Palette.load(out)
    assert palette.groups["hair_color"] and all(t["count"] >= 2 for t in palette.groups["hair_color"].values())
    r = runner.invoke(app, ["tag", "--tagger", "animeface", "--db", str(shared_catalog),
                            "--palette", str(tmp_path / "missing.json")])
    assert r.exit_code == 2 and "missing.json" in r.output
    assert DEFAULT_PALETTE.is_file()
