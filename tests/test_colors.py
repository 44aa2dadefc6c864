"""animeface colours -> hair/eye colour tags through a CIELAB palette."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from curate.cli import app
from curate.taggers.colors import DEFAULT_PALETTE, PIXELS, PROTOTYPES, Palette, find_face_colors, fit_group, rgb_to_lab
from db import Catalog

runner = CliRunner()


def test_rgb_to_lab_reference_values():
    # CIELAB (D65) of sRGB white, black, pure red and mid grey, as colour science tables give them
    lab = rgb_to_lab([[255, 255, 255], [0, 0, 0], [255, 0, 0], [128, 128, 128]])
    assert np.allclose(lab[0], [100, 0, 0], atol=0.01)
    assert np.allclose(lab[1], [0, 0, 0], atol=0.01)
    assert np.allclose(lab[2], [53.24, 80.09, 67.20], atol=0.05)
    assert np.allclose(lab[3], [53.59, 0, 0], atol=0.05)


def _face_pixels(rng, rgb, n=60, spread=6.0):
    """A face's hair pixels around one colour, and animeface's colour for it (CIELAB)."""
    lab = rgb_to_lab(rgb)
    return lab + rng.normal(0, spread, (n, 3)), lab[None]


def test_fit_group_separates_colours_and_gives_probabilities():
    rng = np.random.default_rng(0)
    red, blue = [200, 30, 30], [30, 40, 200]
    samples = [(*_face_pixels(rng, red), "red hair") for _ in range(30)] \
        + [(*_face_pixels(rng, blue), "blue hair") for _ in range(20)] \
        + [(*_face_pixels(rng, red), "pink hair")] * 3           # too rare to be fitted
    model = fit_group(samples, min_count=10)
    assert model.tags == ["blue hair", "red hair"] and model.counts == {"blue hair": 20, "red hair": 30}
    assert model.prototypes.shape == (2 * PROTOTYPES, 3)
    probs = model.probabilities(*_face_pixels(rng, red))
    assert sum(probs.values()) == pytest.approx(1) and probs["red hair"] > 0.9
    assert model.probabilities(*_face_pixels(rng, blue))["blue hair"] > 0.9
    half = np.concatenate([_face_pixels(rng, red, 30)[0], _face_pixels(rng, blue, 30)[0]])
    midway = model.probabilities(half, (rgb_to_lab(red)[None] + rgb_to_lab(blue)[None]) / 2)
    assert 0.02 < midway["red hair"] < 0.98          # a face of both colours: unsure, not 0/1


def test_embedded_palette_round_trips(tmp_path):
    palette = Palette.load()
    assert set(palette.groups) == {"hair_color", "eye_color"}
    assert len(palette.groups["hair_color"].tags) == 12 and len(palette.groups["eye_color"].tags) == 11
    palette.save(tmp_path / "p.json")
    again = Palette.load(tmp_path / "p.json")
    pixels, af = _face_pixels(np.random.default_rng(1), [230, 200, 90])
    assert again.groups["hair_color"].probabilities(pixels, af) == \
        pytest.approx(palette.groups["hair_color"].probabilities(pixels, af), abs=1e-5)


def test_a_palette_file_that_is_not_one_is_refused(tmp_path):
    from curate.taggers.tagging import AnimefaceTagger
    from db import CatalogError

    for text in ["not json", '{"hair_color": {"tags": ["a"]}}', '{"hair_color": [1, 2]}']:
        (tmp_path / "bad.json").write_text(text)
        with pytest.raises(CatalogError, match="bad.json is not a colour palette"):
            AnimefaceTagger(tmp_path / "bad.json")


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
    hair, eyes = c.cues()["hair_color"], c.cues()["eye_color"]
    assert hair[0].ndim == 2 and hair[0].shape[1] == 3 and 5 <= len(hair[0]) <= 2 * PIXELS
    assert len(eyes[0]) >= 1 and hair[1].shape == (1, 3) and eyes[1].shape == (2, 3)


def shared_faces_catalog(shared, path, n: int, labelled: bool = True):
    """A catalog file of `n` real shared faces, with their manual colours when `labelled`."""
    cat = Catalog(path)
    labels = []
    for i, (p, hair, eyes) in enumerate(_shared_faces(shared, n)):
        data = p.read_bytes()
        sid = cat.save_source(str(p), sha256=f"{i:064x}", size=len(data), width=96, height=96, status="ok",
                              detector="none")
        fid = cat.add_face(source_id=sid, image=data, format="jpeg", width=96, height=96, detector="none")
        labels += [(fid, hair, 1.0), (fid, eyes, 1.0)]
    if labelled:
        cat.add_labels(labels, "manual", "tester")
    cat.close()
    return path


@pytest.fixture
def shared_catalog(shared, tmp_path):
    """A catalog file of 16 real shared faces with their manual colours."""
    return shared_faces_catalog(shared, tmp_path / "faces.db", 16)


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
    hair = palette.groups["hair_color"]
    assert hair.tags and all(hair.counts[t] >= 2 for t in hair.tags)
    r = runner.invoke(app, ["tag", "--tagger", "animeface", "--db", str(shared_catalog),
                            "--palette", str(tmp_path / "missing.json")])
    assert r.exit_code == 2 and "missing.json" in r.output
    assert DEFAULT_PALETTE.is_file()


def test_embedded_palette_accuracy_on_held_out_shared_faces(shared):
    """The shipped palette was fitted on the train split (seed 0) of the shared faces; the faces
    `curate split` puts in test were never seen. 69.9% hair / 64.9% eyes on all 382 (BENCHMARKS.md);
    here the first ~150 of them, with a margin for the smaller sample."""
    import hashlib

    from curate.taggers.tagging import AnimefaceTagger
    from db import split_hash

    palette = AnimefaceTagger().palette
    hits = {"hair_color": [], "eye_color": []}
    for path, hair, eyes in _shared_faces(shared, 3000):
        if split_hash(0, hashlib.sha256(path.read_bytes()).hexdigest()) >= 0.05:
            continue                                    # not in the test split
        colors = find_face_colors(Image.open(path))
        if colors is None:
            continue
        hits["hair_color"].append(palette.best("hair_color", colors)[0] == hair)
        hits["eye_color"].append(palette.best("eye_color", colors)[0] == eyes)
    assert len(hits["hair_color"]) >= 100
    assert np.mean(hits["hair_color"]) >= 0.62 and np.mean(hits["eye_color"]) >= 0.55


def test_a_faces_colours_do_not_depend_on_what_was_tagged_before(shared_catalog, tmp_path):
    """animeface's C library keeps one random state for the process: a resumed run used to
    differ from a straight one. Interrupted (--limit) + resumed must equal straight."""
    import shutil

    resumed = tmp_path / "resumed.db"
    shutil.copy(shared_catalog, resumed)
    assert runner.invoke(app, ["tag", "--tagger", "animeface", "--db", str(shared_catalog)]).exit_code == 0
    for more in (["--limit", "5"], ["--limit", "3"], []):
        r = runner.invoke(app, ["tag", "--tagger", "animeface", "--db", str(resumed), *more])
        assert r.exit_code == 0, r.output

    def labels(db):
        with Catalog(db) as cat:
            return sorted((r["face_id"], r["key"], r["tag"], r["value"]) for r in cat.current_labels("animeface"))

    assert labels(resumed) == labels(shared_catalog) and len(labels(resumed)) >= 24
    # and a face alone gives what it gives among the others
    with Catalog(shared_catalog) as cat:
        fid = cat.face_ids()[-1]
        alone = find_face_colors(Image.open(__import__("io").BytesIO(cat.face_image(fid))))
    among = dict(((f, k), (t, v)) for f, k, t, v in labels(shared_catalog))
    assert Palette.load(DEFAULT_PALETTE).best("hair_color", alone) == among[(fid, "hair_color")]


def test_whole_crop_colors_read_where_a_face_crop_has_them():
    from curate.taggers.colors import CROP_EYES, whole_crop_colors

    hair, eyes, skin = (200, 30, 40), (40, 60, 210), (250, 220, 200)
    a = np.zeros((96, 96, 3), np.uint8)
    a[:] = skin
    a[:34] = hair
    for x, y, w, h in CROP_EYES:
        a[int(y * 96):int((y + h) * 96), int(x * 96):int((x + w) * 96)] = eyes
    image = Image.fromarray(a)
    assert find_face_colors(image) is None          # animeface sees no face in it
    c = whole_crop_colors(image)
    assert c.skin == skin and c.hair == hair and c.left_eye == c.right_eye == eyes
    assert np.allclose(np.median(c.hair_pixels, 0), rgb_to_lab(hair), atol=0.5)
    assert np.allclose(np.median(c.eye_pixels, 0), rgb_to_lab(eyes), atol=0.5)


def test_animeface_tagging_reads_imported_crops_whole_and_remembers_no_face(tmp_path):
    from curate.taggers.tagging import AnimefaceTagger, TagOptions, tag_catalog
    from db.tagging import NOTHING_KEY

    cat = Catalog(tmp_path / "c.db")
    blank = io.BytesIO()
    Image.new("RGB", (96, 96), (200, 170, 150)).save(blank, "PNG")
    ids = []
    for i, detector in enumerate(["none", "animeface"]):   # an imported crop, a crop a detector made
        sid = cat.save_source(f"/x/{i}.png", sha256=f"{i:064x}", size=1, status="ok", detector=detector)
        ids.append(cat.add_face(source_id=sid, image=blank.getvalue(), format="png", width=96, height=96,
                                detector=detector))
    tagger = AnimefaceTagger()
    first = tag_catalog(cat, tagger, TagOptions())
    assert (first.faces, first.labelled, first.other_way) == (2, 1, 1)
    labels = cat.current_labels("animeface")
    assert {r["face_id"] for r in labels} == {ids[0]} and {r["key"] for r in labels} == {"hair_color", "eye_color"}
    assert {r["annotator"] for r in labels} == {f"{tagger.version} (whole crop)"}
    tried = [e for e in cat.label_history(ids[1]) if e["source"] == "animeface"]
    assert [(e["key"], e["tag"], e["annotator"]) for e in tried] == [(NOTHING_KEY, None, tagger.version)]
    again = tag_catalog(cat, tagger, TagOptions())
    assert (again.faces, again.skipped) == (0, 2)
    assert tag_catalog(cat, tagger, TagOptions(retag=True)).faces == 2
    cat.close()
