"""`curate sketch`: XDoG line art, stored in the catalog; idempotent, resumable, parallel."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from typer.testing import CliRunner

from curate.cli import app
from curate.derive import derive
from curate.lineart import LineArtError, XDoGParams, make_params, params_hash, xdog
from db import Catalog, CatalogError

from conftest import png_bytes


def synthetic_face(size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """A pale disc (the face) with two dark eyes on a mid-grey background, and its true edges."""
    yy, xx = np.mgrid[:size, :size]
    c = size / 2
    face = (yy - c) ** 2 + (xx - c) ** 2 < (0.35 * size) ** 2
    eyes = np.zeros_like(face)
    for ex in (c - 0.15 * size, c + 0.15 * size):
        eyes |= (yy - c + 0.05 * size) ** 2 + (xx - ex) ** 2 < (0.05 * size) ** 2
    img = np.full((size, size, 3), (120, 110, 130), np.uint8)
    img[face] = (250, 225, 210)
    img[eyes] = (30, 30, 60)
    regions = face.astype(int) + eyes
    edges = (ndimage.grey_dilation(regions, size=3) != ndimage.grey_erosion(regions, size=3))
    return img, edges


def test_xdog_draws_lines_where_the_edges_are():
    img, edges = synthetic_face()
    ink = xdog(img) < 128
    near_edge = ndimage.distance_transform_edt(~edges) <= 3
    near_ink = ndimage.distance_transform_edt(~ink) <= 3
    assert ink.sum() > 50
    assert (ink & near_edge).sum() / ink.sum() > 0.95          # ink only along the edges
    assert (edges & near_ink).sum() / edges.sum() > 0.8        # and most of every edge inked
    assert not ink[48, 48 - 20:48 - 10].any()                  # flat cheek: paper


def test_xdog_flat_and_dark_pictures_give_white_paper():
    assert (xdog(np.full((64, 64, 3), 200, np.uint8)) == 255).all()
    assert (xdog(np.zeros((64, 64, 3), np.uint8)) == 255).all()      # dark fill is not ink


def test_params_are_validated_and_hashed():
    assert make_params("xdog", {"sigma": "0.8", "min_area": "10"}) == XDoGParams(sigma=0.8, min_area=10)
    assert params_hash("xdog", XDoGParams()) != params_hash("xdog", XDoGParams(sigma=0.8))
    for bad, says in [({"sigma": "-1"}, "sigma > 0"), ({"blur": "1"}, "no parameter 'blur'"),
                      ({"p": "lots"}, "not a number")]:
        with pytest.raises(LineArtError, match=says):
            make_params("xdog", bad)
    with pytest.raises(LineArtError, match="unknown line-art method"):
        make_params("hed")


def count_rows(cat: Catalog) -> int:
    return cat.conn.execute("SELECT count(*) FROM face_derived").fetchone()[0]


def test_rerun_adds_nothing_and_changes_recompute(tiny_catalog):
    with Catalog(tiny_catalog) as cat:
        n = len(cat.face_ids("ok"))
        first = derive(cat, workers=1)
        assert (first.made, first.errors, first.up_to_date) == (n, [], 0)
        assert derive(cat, workers=1).made == 0 and count_rows(cat) == n
        ids = cat.derived_face_ids("sketch")
        old = cat.derived_hashes("sketch", ids)
        blob = cat.derived_image("sketch", ids[0])
        with Image.open(io.BytesIO(blob)) as im:
            assert im.mode == "L" and im.size == (32, 32)
        row = cat.query("SELECT params, face_sha256 FROM face_derived WHERE face_id = ?", [ids[0]])[0]
        assert json.loads(row["params"])["sigma"] == 1.2 and row["face_sha256"] == cat.face(ids[0])["sha256"]

        again = derive(cat, params=XDoGParams(sigma=0.8), workers=1)        # new parameters: all redone
        assert again.made == n and count_rows(cat) == n
        assert cat.derived_hashes("sketch", ids) != old

        new_crop = png_bytes(999)                                           # a face's crop replaced
        cat.conn.execute("UPDATE face_images SET image = ? WHERE face_id = ?", (new_crop, ids[3]))
        cat.conn.execute("UPDATE faces SET sha256 = 'changed' WHERE id = ?", (ids[3],))
        assert ids[3] not in cat.derived_face_ids("sketch")        # stale rows are not read
        with pytest.raises(CatalogError, match=f"face {ids[3]} has no current sketch"):
            list(cat.iter_derived_images("sketch", ids))
        assert derive(cat, params=XDoGParams(sigma=0.8), workers=1).made == 1


@pytest.mark.parametrize("workers", [1, 2])
def test_interrupted_run_resumes_without_doubles(tiny_catalog, workers):
    with Catalog(tiny_catalog) as cat:
        n = len(cat.face_ids("ok"))
        calls = []

        def interrupt(done: int, total: int) -> None:
            calls.append(done)
            if len(calls) == 3:              # (0 at the start), after the second chunk of 4 faces
                raise KeyboardInterrupt

        first = derive(cat, workers=workers, on_progress=interrupt, chunk=4)
        assert first.interrupted and first.made == 8 and count_rows(cat) == 8
        rest = derive(cat, workers=workers)
        assert not rest.interrupted and first.made + rest.made == n and count_rows(cat) == n


def test_two_workers_make_the_same_images(tiny_catalog, tmp_path):
    with Catalog(tiny_catalog) as cat:
        cat.conn.execute("DELETE FROM face_derived")
        one = derive(cat, workers=1)
        single = cat.derived_hashes("sketch", cat.face_ids())
        cat.conn.execute("DELETE FROM face_derived")
        two = derive(cat, workers=2, chunk=4)
        assert one.made == two.made == len(single)
        assert cat.derived_hashes("sketch", cat.face_ids()) == single


def test_a_broken_crop_is_an_error_naming_the_face(tiny_catalog):
    with Catalog(tiny_catalog) as cat:
        bad = cat.face_ids()[5]
        cat.conn.execute("UPDATE face_images SET image = ? WHERE face_id = ?", (b"not a picture", bad))
        s = derive(cat, workers=1)
        assert s.made == len(cat.face_ids()) - 1
        assert [f for f, _ in s.errors] == [bad] and "unreadable crop" in s.errors[0][1]
        assert cat.derived_errors("sketch") == s.errors
        assert derive(cat, workers=1).errors == []          # not retried until crop or params change


def test_cli_sketch_and_sheet(tiny_catalog, tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["sketch", "--db", str(tiny_catalog), "-j", "1"])
    assert r.exit_code == 0, r.output
    assert "24 made, 0 failed" in r.output
    r = runner.invoke(app, ["sketch", "--db", str(tiny_catalog), "-j", "1"])
    assert "0 made, 0 failed, 24 already current" in r.output
    r = runner.invoke(app, ["stats", "--db", str(tiny_catalog)])
    assert "derived images (curate sketch)" in r.output and "│ 24 " in r.output
    sheet = tmp_path / "pairs.png"
    r = runner.invoke(app, ["stats", "--db", str(tiny_catalog), "--sheet", str(sheet), "--kind", "crop,sketch",
                            "-n", "4", "--columns", "2", "--tile", "32"])
    assert r.exit_code == 0, r.output
    with Image.open(sheet) as im:
        assert im.size == (2 * 2 * 32, 2 * (32 + 12))
    r = runner.invoke(app, ["sketch", "--db", str(tiny_catalog), "--param", "sigma"])
    assert r.exit_code == 2 and "expected NAME=VALUE" in r.output
    r = runner.invoke(app, ["sketch", "--db", str(tiny_catalog), "--param", "k=0.5"])
    assert r.exit_code == 2 and "k > 1" in r.output
    r = runner.invoke(app, ["stats", "--db", str(tiny_catalog), "--sheet", str(sheet), "--kind", "edges"])
    assert r.exit_code == 2 and "--kind 'edges'" in r.output


def test_sheet_of_sketches_needs_sketches(tiny_catalog, tmp_path):
    r = CliRunner().invoke(app, ["stats", "--db", str(tiny_catalog), "--sheet", str(tmp_path / "s.png"),
                                 "--kind", "sketch"])
    assert r.exit_code == 2 and "run `curate sketch`" in r.output


def test_cli_ctrl_c_keeps_what_is_done_and_says_how_to_finish(tiny_catalog, monkeypatch):
    from curate.commands import sketch as commands_sketch

    def derive_until_ctrl_c(*args, on_progress, **kw):
        calls = []

        def progress(done, total):
            on_progress(done, total)
            calls.append(done)
            if len(calls) == 3:
                raise KeyboardInterrupt
        return derive(*args, on_progress=progress, chunk=4, **kw)
    monkeypatch.setattr(commands_sketch, "derive", derive_until_ctrl_c)
    r = CliRunner().invoke(app, ["sketch", "--db", str(tiny_catalog), "-j", "1"])
    assert r.exit_code == 130 and "interrupted: work so far is saved" in r.output and "8 made" in r.output
    monkeypatch.undo()
    r = CliRunner().invoke(app, ["sketch", "--db", str(tiny_catalog), "-j", "1"])
    assert r.exit_code == 0 and "16 made, 0 failed, 8 already current" in r.output
