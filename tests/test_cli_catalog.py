"""The catalog commands through the CLI: labels import/export/sources, split, stats, export, vocab."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import png_bytes
from curate.cli import app
from db import Catalog

runner = CliRunner()


def run(*args: str, ok: bool = True):
    result = runner.invoke(app, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def flat(text: str) -> str:
    """Rich wraps lines at 80 columns and draws tables: compare the words, not the layout."""
    return " ".join(re.sub("[\u2500-\u257f]", " ", text).split())


def add_picture_faces(cat: Catalog, folder: Path, names: list[str], size: int = 16, seed: int = 0) -> list[int]:
    """Faces as `curate import --no-detect` stores them: the file's bytes, its absolute path as source."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = []
    for i, name in enumerate(names):
        data = png_bytes(seed + i, size)
        f = folder / name
        f.write_bytes(data)
        sid = cat.save_source(os.path.abspath(f), sha256=hashlib.sha256(data).hexdigest(), size=len(data),
                              width=size, height=size, status="ok", detector="none")
        ids.append(cat.add_face(source_id=sid, image=data, format="png", width=size, height=size,
                                box_x=0, box_y=0, box_w=size, box_h=size, detector="none"))
    return ids


@pytest.fixture
def faces_db(tmp_path) -> tuple[Path, list[int]]:
    """A catalog FILE with 6 faces imported from tmp/images/{0..5}.png, no labels."""
    db = tmp_path / "c.db"
    with Catalog(db) as cat:
        ids = add_picture_faces(cat, tmp_path / "images", [f"{i}.png" for i in range(6)])
    return db, ids


def write_csv(path: Path, rows: list[list]) -> Path:
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def current(db: Path, source: str = "manual") -> dict[tuple[int, str], tuple[str, float]]:
    with Catalog(db) as cat:
        return {(r["face_id"], r["key"]): (r["tag"], r["value"]) for r in cat.current_labels(source)}


def event_count(db: Path) -> int:
    with Catalog(db) as cat:
        return sum(r["events"] for r in cat.label_sources())


# -- labels import ----------------------------------------------------------

def test_import_wide_csv_relative_to_its_folder_and_reimport_adds_nothing(tmp_path, faces_db):
    db, ids = faces_db
    labels = write_csv(tmp_path / "labels.csv", [
        ["file", "hair_color", "eye_color", "smile", "hair_style"],
        ["images/0.png", "blonde hair", "blue eyes", "1", "twintails;ponytail"],
        ["images/1.png", "red hair", "", "0.25", ""],
        ["images/2.png", "", "green eyes", "", ""]])
    out = flat(run("labels", "import", labels, "--target", "manual", "--annotator", "ann", "--db", db).output)
    assert "3 rows, 3 matched, 0 unmatched; 8 labels written" in out
    cur = current(db)
    assert cur[(ids[0], "hair_color")] == ("blonde hair", 1.0)
    assert cur[(ids[0], "twintails")] == ("twintails", 1.0) and cur[(ids[0], "ponytail")][0] == "ponytail"
    assert cur[(ids[1], "smile")] == ("smile", 0.25)
    assert (ids[1], "eye_color") not in cur and cur[(ids[2], "eye_color")] == ("green eyes", 1.0)
    # The same file again: every label is already current, nothing is doubled.
    out = flat(run("labels", "import", labels, "--db", db).output)
    assert "0 labels written to source 'manual', 8 already current" in out
    assert event_count(db) == 8
    # A changed row writes only what changed.
    write_csv(labels, [["file", "hair_color"], ["images/0.png", "black hair"], ["images/1.png", "red hair"]])
    assert "1 labels written" in flat(run("labels", "import", labels, "--db", db).output)
    assert current(db)[(ids[0], "hair_color")] == ("black hair", 1.0)


def test_import_long_form_absolute_paths_and_unique_names(tmp_path, faces_db):
    db, ids = faces_db
    elsewhere = tmp_path / "labels" / "deep"
    elsewhere.mkdir(parents=True)
    labels = write_csv(elsewhere / "long.csv", [
        ["file", "tag", "value"],
        [str((tmp_path / "images" / "3.png").resolve()), "purple hair", "0.9"],  # absolute
        ["3.png", "glasses", ""],                                                # unique name; value 1
        ["4.png", "blush", "0"]])
    out = flat(run("labels", "import", labels, "--target", "i2v", "--db", db).output)
    assert "3 rows, 3 matched" in out
    cur = current(db, "i2v")
    assert cur == {(ids[3], "hair_color"): ("purple hair", 0.9), (ids[3], "glasses"): ("glasses", 1.0),
                   (ids[4], "blush"): ("blush", 0.0)}


def test_import_of_the_shared_labels_csv_matches_every_row(shared, tmp_path):
    folder = shared / "data" / "anime_faces_labelled"
    db = tmp_path / "real.db"
    with Catalog(db) as cat, cat.transaction():
        for f in sorted((folder / "images").iterdir()):
            data = f.read_bytes()
            sid = cat.save_source(os.path.abspath(f), sha256=hashlib.sha256(data).hexdigest(), size=len(data),
                                  width=96, height=96, status="ok", detector="none")
            cat.add_face(source_id=sid, image=data, format="jpeg", width=96, height=96, detector="none")
    rows = sum(1 for _ in open(folder / "labels.csv")) - 1
    out = flat(run("labels", "import", folder / "labels.csv", "--db", db).output)
    assert f"{rows} rows, {rows} matched, 0 unmatched; {2 * rows} labels written" in out
    with Catalog(db) as cat:
        first = next(csv.DictReader(open(folder / "labels.csv")))
        face = cat.query("SELECT f.id FROM faces f JOIN sources s ON s.id = f.source_id WHERE s.path = ?",
                         [os.path.abspath(folder / first["file"])])[0]["id"]
        got = {r["key"]: r["tag"] for r in cat.current_labels("manual", face_ids=[face])}
    assert got == {"hair_color": first["hair_color"], "eye_color": first["eye_color"]}


@pytest.mark.parametrize("rows, message", [
    ([["file", "hair_color"], ["images/0.png", "blonde hair"], ["images/1.png", "purple unicorn"]],
     "row 3: unknown tag 'purple unicorn'"),
    ([["file", "hair_color"], ["images/0.png", "blonde hair"], ["images/nope.png", "red hair"]],
     "row 3: 'images/nope.png' matches no face"),
    ([["file", "smile"], ["images/0.png", "1"], ["images/1.png", "1.5"]], "row 3: value '1.5' of 'smile' is outside"),
    ([["file", "smile"], ["images/0.png", "yes"]], "row 2: value 'yes' of 'smile' is not a number"),
    ([["file", "hair_color"], ["images/0.png", "blue eyes"]], "row 2: tag 'blue eyes' belongs to group 'eye_color'"),
    ([["file", "hair_color"], ["images/0.png", "blonde hair;red hair"]], "row 2: hair_color is an exclusive"),
    ([["path", "hair_color"], ["images/0.png", "blonde hair"]], "row 1: missing column 'file'"),
    ([["file", "hair_colour"], ["images/0.png", "blonde hair"]], "column 'hair_colour' is not a group or tag"),
    ([["file", "blonde hair"], ["images/0.png", "1"]], "is a tag of the exclusive group 'hair_color'"),
    ([["file", "tag", "value", "extra"], ["images/0.png", "smile", "1", "x"]], "no column(s) extra"),
    ([["file", "tag"], ["images/0.png", "smile"], ["images/0.png", ""]], "row 3: empty tag"),
    ([["file", "hair_color"], ["images/0.png", "blonde hair", "surplus"]], "row 2: 3 cells"),
    ([["face_id", "hair_color"], ["999", "blonde hair"]], "row 2: no face with id 999"),
    ([], "empty file"),
])
def test_bad_label_files_name_file_and_row_and_write_nothing(tmp_path, faces_db, rows, message):
    db, _ = faces_db
    labels = write_csv(tmp_path / "bad.csv", rows)
    result = run("labels", "import", labels, "--db", db, ok=False)
    assert result.exit_code == 2
    assert "bad.csv" in result.output and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1  # one line, no traceback
    assert event_count(db) == 0


def test_missing_csv_and_missing_catalog(tmp_path, faces_db):
    db, _ = faces_db
    result = run("labels", "import", tmp_path / "nope.csv", "--db", db, ok=False)
    assert result.exit_code == 2 and "nope.csv: no such file" in result.output
    labels = write_csv(tmp_path / "l.csv", [["file", "hair_color"], ["images/0.png", "red hair"]])
    result = run("labels", "import", labels, "--db", tmp_path / "none.db", ok=False)
    assert result.exit_code == 2 and "no catalog at" in result.output
    assert not (tmp_path / "none.db").exists()


def test_skip_unmatched_reports_rows(tmp_path, faces_db):
    db, ids = faces_db
    labels = write_csv(tmp_path / "l.csv", [["file", "hair_color"], ["images/0.png", "red hair"],
                                            ["images/gone.png", "red hair"]])
    out = flat(run("labels", "import", labels, "--skip-unmatched", "--db", db).output)
    assert "2 rows, 1 matched, 1 unmatched" in out and "row 3: images/gone.png" in out
    assert current(db) == {(ids[0], "hair_color"): ("red hair", 1.0)}


def test_ambiguous_file_name_is_an_error(tmp_path, faces_db):
    db, _ = faces_db
    with Catalog(db) as cat:
        add_picture_faces(cat, tmp_path / "other", ["0.png"], seed=50)
    labels = write_csv(tmp_path / "elsewhere.csv", [["file", "hair_color"], ["0.png", "red hair"]])
    (tmp_path / "sub").mkdir()
    labels = labels.rename(tmp_path / "sub" / "elsewhere.csv")
    result = run("labels", "import", labels, "--db", db, ok=False)
    assert "row 2: file name '0.png' matches 2 sources" in flat(result.output)
    assert event_count(db) == 0


def test_source_with_several_faces_needs_face_id(tmp_path):
    db = tmp_path / "c.db"
    pic = tmp_path / "scene.png"
    pic.write_bytes(png_bytes(1, 64))
    with Catalog(db) as cat:
        sid = cat.save_source(str(pic.resolve()), sha256="x", size=1, status="ok", detector="animeface")
        a, b = (cat.add_face(source_id=sid, image=png_bytes(i, 8), format="png", width=8, height=8,
                             detector="animeface") for i in (2, 3))
    labels = write_csv(tmp_path / "l.csv", [["file", "hair_color"], ["scene.png", "red hair"]])
    assert "has 2 faces" in flat(run("labels", "import", labels, "--db", db, ok=False).output)
    write_csv(labels, [["file", "face_id", "hair_color"], ["scene.png", b, "red hair"]])
    run("labels", "import", labels, "--db", db)
    assert current(db) == {(b, "hair_color"): ("red hair", 1.0)}


# -- labels export / sources ------------------------------------------------

def test_export_then_import_round_trips(tmp_path, faces_db):
    db, ids = faces_db
    with Catalog(db) as cat:
        cat.add_labels([(ids[0], "blonde hair", 1), (ids[0], "smile", 0.75), (ids[1], "red eyes", 0.6),
                        (ids[2], "ribbon", 1)], "i2v")
    wide, long = tmp_path / "wide.csv", tmp_path / "long.csv"
    assert "3 rows of source 'i2v'" in flat(run("labels", "export", wide, "--labels", "i2v", "--db", db).output)
    header = next(csv.reader(open(wide)))
    assert header == ["face_id", "file", "hair_color", "eye_color", "smile", "ribbon"]
    run("labels", "export", long, "--labels", "i2v", "--long", "--db", db)
    run("labels", "import", long, "--target", "copy", "--db", db)
    assert current(db, "copy") == current(db, "i2v")  # long form keeps every probability
    run("labels", "import", wide, "--target", "wide", "--db", db)
    got = current(db, "wide")
    assert got[(ids[0], "smile")] == ("smile", 0.75) and got[(ids[1], "eye_color")] == ("red eyes", 1.0)
    assert set(got) == set(current(db, "i2v"))
    out = flat(run("labels", "sources", "--db", db).output)
    assert "copy" in out and "i2v" in out and "wide" in out
    result = run("labels", "export", tmp_path / "x.csv", "--labels", "nobody", "--db", db, ok=False)
    assert result.exit_code == 2 and "'nobody' has no labels" in result.output
    assert not (tmp_path / "x.csv").exists()


def test_labels_sources_on_an_empty_catalog(tmp_path):
    Catalog(tmp_path / "e.db").close()
    assert "no labels yet" in run("labels", "sources", "--db", tmp_path / "e.db").output


# -- split ------------------------------------------------------------------

def split_of(db: Path) -> dict[str, str]:
    with Catalog(db) as cat:
        return {f["sha256"]: f["split"] for f in cat.iter_faces(with_image=False)}


def test_split_prints_counts_and_never_moves_faces(tmp_path):
    db = tmp_path / "c.db"
    with Catalog(db) as cat:
        add_picture_faces(cat, tmp_path / "a", [f"{i}.png" for i in range(200)], size=8)
    out = flat(run("split", "--val", "0.1", "--test", "0.1", "--seed", "7", "--db", db).output)
    before = split_of(db)
    counts = {s: list(before.values()).count(s) for s in ("train", "val", "test")}
    assert f"train {counts['train']} {counts['train']}" in out and sum(counts.values()) == 200
    assert 5 < counts["val"] < 40 and 5 < counts["test"] < 40
    with Catalog(db) as cat:
        add_picture_faces(cat, tmp_path / "b", [f"{i}.png" for i in range(100)], size=8, seed=1000)
    run("split", "--val", "0.1", "--test", "0.1", "--seed", "7", "--db", db)
    after = split_of(db)
    assert {k: after[k] for k in before} == before and None not in after.values()
    assert "already had a split" in run("split", "--val", "0.1", "--test", "0.1", "--db", db).output
    # Same faces, added in another order, in another catalog: the same splits.
    other = tmp_path / "o.db"
    with Catalog(other) as cat:
        add_picture_faces(cat, tmp_path / "b2", [f"{i}.png" for i in range(100)], size=8, seed=1000)
        add_picture_faces(cat, tmp_path / "a2", [f"{i}.png" for i in range(200)][::-1], size=8)
    run("split", "--val", "0.1", "--test", "0.1", "--seed", "7", "--db", other)
    assert split_of(other) == after


def test_split_stratified_and_reassign(tmp_path):
    db = tmp_path / "c.db"
    with Catalog(db) as cat:
        ids = add_picture_faces(cat, tmp_path / "a", [f"{i}.png" for i in range(100)], size=8)
        cat.add_labels([(f, "red hair" if i < 20 else "black hair", 1) for i, f in enumerate(ids)], "manual")
    run("split", "--val", "0.1", "--test", "0.1", "--stratify", "manual", "--db", db)
    with Catalog(db) as cat:
        red = [cat.face(f)["split"] for f in ids[:20]]
    assert red.count("val") == 2 and red.count("test") == 2
    out = flat(run("split", "--val", "0.3", "--test", "0.1", "--reassign", "--db", db).output)
    assert re.search(r"val (\d+) \1 ", out)  # every face drawn anew
    with Catalog(db) as cat:
        assert cat.split_counts()["none"] == 0


@pytest.mark.parametrize("args, message", [
    (["--val", "1.5"], "--val 1.5 must be a fraction"),
    (["--val", "-0.1"], "--val -0.1 must be a fraction"),
    (["--val", "0.5", "--test", "0.5"], "leave nothing for train"),
    (["--stratify", "nobody"], "'nobody' has no labels"),
])
def test_split_bad_options(faces_db, args, message):
    db, _ = faces_db
    result = run("split", *args, "--db", db, ok=False)
    assert result.exit_code == 2 and message in result.output
    assert set(split_of(db).values()) == {None}


def test_split_of_an_empty_catalog(tmp_path):
    Catalog(tmp_path / "e.db").close()
    assert "no ok faces yet" in run("split", "--db", tmp_path / "e.db").output


# -- stats ------------------------------------------------------------------

def test_stats_text_json_and_sheet(tiny_catalog, tmp_path):
    with Catalog(tiny_catalog) as cat:
        cat.set_face_status(3, "rejected", "blur 4 < --min-blur 10")
        cat.set_face_status(5, "duplicate", "near-duplicate", duplicate_of=4)
    out = flat(run("stats", "--db", tiny_catalog).output)
    assert "ok 22" in out and "rejected 1" in out and "blonde hair 8" in out and "manual 48 24" in out
    s = json.loads(run("stats", "--json", "--db", tiny_catalog).output)
    assert s["faces"] == {"ok": 22, "rejected": 1, "duplicate": 1}
    assert s["rejected"] == {"blur 4 < --min-blur 10": 1}
    assert sum(s["splits"].values()) == 22
    assert {(r["source"], r["tag"]): r["n"] for r in s["tag_counts"]}[("manual", "red hair")] == 8
    sheet = tmp_path / "sheet.png"
    out = run("stats", "--sheet", sheet, "-n", "10", "--columns", "4", "--db", tiny_catalog).output
    assert "contact sheet of 10 ok faces" in flat(out)
    with Image.open(sheet) as im:
        assert im.size == (4 * 96, 3 * (96 + 12))
        # Tile 0 shows face 1's pixels, scaled up from 32 px.
        with Catalog(tiny_catalog) as cat, Image.open(__import__("io").BytesIO(cat.face_image(1))) as face:
            assert im.crop((0, 0, 96, 96)).resize((32, 32), Image.NEAREST).getpixel((5, 5)) == \
                face.convert("RGB").getpixel((5, 5))
    run("stats", "--sheet", tmp_path / "rej.png", "--status", "rejected", "--db", tiny_catalog)
    with Image.open(tmp_path / "rej.png") as im:
        assert im.size == (96, 96 + 2 * 12)   # "3 blur 4 < --min-blur 10", whole: two lines under a 96 px tile


def test_stats_bad_input(tmp_path, tiny_catalog):
    Catalog(tmp_path / "e.db").close()
    assert "empty catalog" in run("stats", "--db", tmp_path / "e.db").output
    result = run("stats", "--sheet", tmp_path / "s.png", "--db", tmp_path / "e.db", ok=False)
    assert result.exit_code == 2 and "no faces with status 'ok'" in result.output
    assert "--status must be" in run("stats", "--status", "meh", "--db", tiny_catalog, ok=False).output
    assert ".png" in run("stats", "--sheet", tmp_path / "s.jpg", "--db", tiny_catalog, ok=False).output
    assert "no catalog at" in run("stats", "--db", tmp_path / "missing.db", ok=False).output


# -- export -----------------------------------------------------------------

def test_export_imagefolder(tiny_catalog, tmp_path):
    out = tmp_path / "out"
    with Catalog(tiny_catalog) as cat:
        cat.clear_label(1, "hair_color", "manual")
        want = {r["face_id"]: r["tag"] for r in cat.current_labels("manual") if r["key"] == "hair_color"}
        train = set(cat.face_ids("ok", "train"))
    result = run("export", "-o", out, "--format", "imagefolder", "--split", "train", "--db", tiny_catalog)
    got = {int(p.stem): p.parent.name for p in out.rglob("*.png")}
    assert got == {f: t for f, t in want.items() if f in train}
    assert f"{len(got)} faces" in result.output
    with Image.open(next(out.rglob("*.png"))) as im:
        assert im.mode == "RGB" and im.size == (32, 32)
    # Not over a non-empty folder without --overwrite; with it, replaced whole.
    result = run("export", "-o", out, "--db", tiny_catalog, ok=False)
    assert result.exit_code == 2 and "not empty (pass --overwrite" in result.output
    (out / "stale.txt").write_text("old")
    run("export", "-o", out, "--overwrite", "--unlabelled", "--group", "eye_color", "--db", tiny_catalog)
    assert not (out / "stale.txt").exists()
    assert sorted(p.name for p in out.iterdir()) == ["blue eyes", "red eyes"]
    assert len(list(out.rglob("*.png"))) == 24


def test_export_unlabelled_folder(tiny_catalog, tmp_path):
    with Catalog(tiny_catalog) as cat:
        cat.clear_label(1, "hair_color", "manual")
    out = tmp_path / "o"
    run("export", out, "--unlabelled", "--db", tiny_catalog)
    assert [p.name for p in (out / "_unlabelled").iterdir()] == ["1.png"]


def test_export_dataset_json(tiny_catalog, tmp_path):
    out = tmp_path / "sg"
    run("export", out, "--format", "dataset-json", "--group", "eye_color", "--db", tiny_catalog)
    doc = json.loads((out / "dataset.json").read_text())
    assert doc["classes"][:2] == ["blue eyes", "red eyes"] and len(doc["labels"]) == 24
    with Catalog(tiny_catalog) as cat:
        eyes = {r["face_id"]: r["tag"] for r in cat.current_labels("manual") if r["key"] == "eye_color"}
        for (name, idx), fid in zip(doc["labels"], doc["face_ids"]):
            assert doc["classes"][idx] == eyes[fid]
            with Image.open(out / name) as im, Image.open(__import__("io").BytesIO(cat.face_image(fid))) as src:
                assert list(im.convert("RGB").getdata()) == list(src.convert("RGB").getdata())
    assert doc["labels"][0][0] == "00000/img00000000.png"


def test_export_csv(tiny_catalog, tmp_path):
    out = tmp_path / "c"
    run("export", out, "--format", "csv", "--split", "val", "--db", tiny_catalog)
    rows = list(csv.DictReader(open(out / "faces.csv")))
    with Catalog(tiny_catalog) as cat:
        val = cat.face_ids("ok", "val")
        hair = {r["face_id"]: r["tag"] for r in cat.current_labels("manual") if r["key"] == "hair_color"}
    assert [int(r["face_id"]) for r in rows] == val
    assert all(r["split"] == "val" and r["hair_color"] == hair[int(r["face_id"])] for r in rows)
    assert rows[0]["source_path"].startswith("/synthetic/") and (out / rows[0]["file"]).is_file()


@pytest.mark.parametrize("args, message", [
    (["--format", "tfrecords"], "--format must be one of"),
    (["--labels", "nobody"], "'nobody' has no labels"),
    (["--group", "hair_style"], "independent group"),
    (["--group", "nope"], "unknown tag group 'nope'"),
    (["--split", "holdout"], "--split must be one of"),
])
def test_export_bad_options_write_nothing(tiny_catalog, tmp_path, args, message):
    out = tmp_path / "out"
    result = run("export", out, *args, "--db", tiny_catalog, ok=False)
    assert result.exit_code == 2 and message in result.output
    assert not out.exists() and not [p for p in tmp_path.iterdir() if "partial" in p.name]


def test_export_refuses_to_delete_the_catalogs_folder(tiny_catalog):
    result = run("export", tiny_catalog.parent, "--force", "--db", tiny_catalog, ok=False)
    assert result.exit_code == 2 and "holds the catalog" in result.output
    assert tiny_catalog.exists()


def test_export_of_an_empty_catalog(tmp_path):
    with Catalog(tmp_path / "e.db") as cat:
        add_picture_faces(cat, tmp_path / "i", ["0.png"])
        cat.add_labels([(1, "red hair", 1)], "manual")
        cat.set_face_status(1, "rejected", "test")
    result = run("export", tmp_path / "o", "--db", tmp_path / "e.db", ok=False)
    assert "no faces with status 'ok'" in result.output


# -- vocab ------------------------------------------------------------------

def test_vocab_commands(tiny_catalog):
    out = flat(run("vocab", "list", "--db", tiny_catalog).output)
    assert "hair_color exclusive 0:blonde hair" in out and "grey eyes" in out
    run("vocab", "add-group", "accessories", "--independent", "--db", tiny_catalog)
    run("vocab", "add", "earrings", "--group", "accessories", "--db", tiny_catalog)
    run("vocab", "add", "rainbow hair", "--group", "hair_color", "--db", tiny_catalog)
    with Catalog(tiny_catalog) as cat:
        groups = {g["name"]: g for g in cat.groups()}
    assert groups["accessories"] == {"name": "accessories", "exclusive": False, "tags": ["earrings"]}
    assert groups["hair_color"]["tags"][-1] == "rainbow hair"  # last: class indices of others stay
    run("vocab", "remove", "rainbow hair", "--db", tiny_catalog)
    assert "rainbow hair" not in flat(run("vocab", "list", "--db", tiny_catalog).output)


@pytest.mark.parametrize("args, message", [
    (["add", "blonde hair", "--group", "hair_color"], "exists already"),
    (["add", "x", "--group", "nope"], "unknown tag group 'nope'"),
    (["add-group", "mood"], "--exclusive"),
    (["add-group", "hair_color", "--exclusive"], "exists already"),
    (["add-group", "file", "--exclusive"], "cannot name a group"),
    (["remove", "blonde hair"], "has label events"),
    (["remove", "nope"], "unknown tag 'nope'"),
])
def test_vocab_bad_input(tiny_catalog, args, message):
    result = run("vocab", *args, "--db", tiny_catalog, ok=False)
    assert result.exit_code == 2 and message in result.output


@pytest.mark.parametrize("command", [[], ["labels"], ["labels", "import"], ["labels", "export"],
                                     ["labels", "sources"], ["split"], ["stats"], ["export"], ["vocab"],
                                     ["vocab", "list"], ["vocab", "add"], ["vocab", "add-group"],
                                     ["vocab", "remove"]])
def test_every_command_has_help(command):
    out = run(*command, "--help").output
    assert "Usage:" in out and len(out) > 200


def test_label_import_into_an_empty_catalog(tmp_path):
    Catalog(tmp_path / "e.db").close()
    labels = write_csv(tmp_path / "l.csv", [["file", "hair_color"], ["a.png", "red hair"]])
    result = run("labels", "import", labels, "--db", tmp_path / "e.db", ok=False)
    assert result.exit_code == 2 and "l.csv, row 2: 'a.png' matches no face" in result.output
    assert "0 rows" in flat(run("labels", "import", write_csv(tmp_path / "h.csv", [["file", "hair_color"]]),
                                "--db", tmp_path / "e.db").output)


def test_a_labels_csv_beside_faces_reached_through_a_symlink_matches_them(tmp_path):
    """Sources are stored with os.path.abspath (symlinks kept); the CSV's folder is taken the same way,
    so a folder reached through a link matches even where a bare file name would be ambiguous."""
    real = tmp_path / "real"
    link = tmp_path / "link"
    (real / "images").mkdir(parents=True)
    link.symlink_to(real)
    (tmp_path / "other" / "images").mkdir(parents=True)
    db = tmp_path / "c.db"
    with Catalog(db) as cat:
        add_picture_faces(cat, link / "images", ["0.png", "1.png"])
        add_picture_faces(cat, tmp_path / "other" / "images", ["0.png", "1.png"], seed=10)
    write_csv(link / "labels.csv", [["file", "hair_color"], ["images/0.png", "red hair"], ["images/1.png", "blonde hair"]])
    out = flat(run("labels", "import", link / "labels.csv", "--db", db).output)
    assert "2 rows, 2 matched, 0 unmatched" in out
    with Catalog(db) as cat:
        face = cat.query("SELECT f.id FROM faces f JOIN sources s ON s.id = f.source_id WHERE s.path = ?",
                         [os.path.abspath(link / "images" / "0.png")])[0]["id"]
        assert {r["tag"] for r in cat.current_labels("manual", face_ids=[face])} == {"red hair"}


def test_sheet_captions_are_wrapped_never_cut(tiny_catalog, tmp_path):
    from PIL import ImageFont
    from curate.sheet import CAPTION_H, wrap

    reason = "near-duplicate of face 12 (pHash distance 3) and a name_far_too_long_for_one_line_of_a_96_px_tile"
    with Catalog(tiny_catalog) as cat:
        cat.set_face_status(3, "rejected", reason=reason)
    sheet = tmp_path / "rejected.png"
    run("stats", "--sheet", sheet, "--status", "rejected", "--db", tiny_catalog)
    font = ImageFont.load_default()
    lines = wrap(font, f"3 {reason}", 96 - 4)
    assert len(lines) > 2 and all(font.getlength(line) <= 92 for line in lines)
    assert "".join(lines).replace(" ", "") == f"3 {reason}".replace(" ", "")      # every character there
    assert Image.open(sheet).size == (96, 96 + len(lines) * CAPTION_H)
