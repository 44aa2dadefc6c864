"""`curate export --format webdataset|hf`, each loaded back with its own library."""

from __future__ import annotations

import io
import sys

import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import png_bytes
from curate.cli import app
from db import Catalog

runner = CliRunner()


@pytest.fixture
def catalog_with_labels(tiny_catalog):
    """tiny_catalog (24 faces, manual hair + eyes, splits) plus independent tags on a few faces
    and 3 faces without any label."""
    with Catalog(tiny_catalog) as cat:
        ids = cat.face_ids("ok")
        cat.add_labels([(ids[0], "long hair", 1.0), (ids[1], "long hair", 0.0), (ids[1], "smile", 1.0)], "manual")
        sid = cat.save_source("/synthetic/unlabelled.png", sha256="f" * 64, size=1, status="ok")
        for i in range(3):
            cat.add_face(source_id=sid, image=png_bytes(100 + i), format="png", width=32, height=32, detector="none")
        cat.assign_splits(0.2, 0.2, seed=0)
        expected = {f["id"]: f for f in cat.iter_faces("ok")}
        labels = {}
        for r in cat.current_labels("manual"):
            labels.setdefault(r["face_id"], {})[r["key"]] = (r["tag"], r["value"])
    return tiny_catalog, expected, labels


def export(db, out, fmt, *extra):
    return runner.invoke(app, ["export", str(out), "--format", fmt, "--db", str(db), *extra])


def test_webdataset_shards_load_back_with_webdataset(catalog_with_labels, tmp_path):
    import webdataset as wds

    db, faces, labels = catalog_with_labels
    r = export(db, tmp_path / "wds", "webdataset", "--shard-size", "5")
    assert r.exit_code == 0, r.output
    assert "27 faces" in r.output and "3 faces without a label of 'manual'" in r.output
    shards = sorted((tmp_path / "wds").glob("*.tar"))
    per_split = {s: sum(f["split"] == s for f in faces.values()) for s in ("train", "val", "test")}
    assert {p.name.split("-")[0] for p in shards} == {s for s, n in per_split.items() if n}
    assert len(shards) == sum(-(-n // 5) for n in per_split.values())      # at most 5 faces a shard
    with Catalog(db) as cat:
        hair_tags = cat.group("hair_color")["tags"]
    seen = {}
    for sample in wds.WebDataset([str(p) for p in shards], shardshuffle=False).decode("pil"):
        meta = sample["json"]
        seen[meta["face_id"]] = sample
        face = faces[meta["face_id"]]
        assert sample["__key__"] == f"{face['id']:09d}" and meta["split"] == face["split"]
        assert sample["png"].size == (face["width"], face["height"])
        assert sample["png"].tobytes() == Image.open(io.BytesIO(face["image"])).convert("RGB").tobytes()
        want = labels.get(face["id"], {})
        assert meta["labels"].get("hair_color") == (want["hair_color"][0] if "hair_color" in want else None)
        assert meta["labels"].get("long hair") == (want["long hair"][1] if "long hair" in want else None)
        if "hair_color" in want:     # --group defaults to the first exclusive group
            assert hair_tags[int(sample["cls"])] == want["hair_color"][0]
        else:
            assert "cls" not in sample
    assert seen.keys() == faces.keys()


def test_hf_dataset_loads_back_with_datasets(catalog_with_labels, tmp_path):
    import datasets

    db, faces, labels = catalog_with_labels
    r = export(db, tmp_path / "hf", "hf")
    assert r.exit_code == 0, r.output
    dd = datasets.load_from_disk(str(tmp_path / "hf"))
    assert set(dd) == {f["split"] for f in faces.values()}
    with Catalog(db) as cat:
        groups = cat.groups()
    assert set(dd["train"].column_names) == {"image", "face_id", "source_path"} | {g["name"] for g in groups}
    hair = dd["train"].features["hair_color"]
    assert isinstance(hair, datasets.ClassLabel) and hair.names == groups[0]["tags"]
    rows = 0
    for split, ds in dd.items():
        for row in ds:
            rows += 1
            face = faces[row["face_id"]]
            assert face["split"] == split
            assert row["image"].convert("RGB").tobytes() == \
                Image.open(io.BytesIO(face["image"])).convert("RGB").tobytes()
            want = labels.get(face["id"], {})
            got = row["hair_color"]
            assert (hair.int2str(got) if got is not None else None) == \
                (want["hair_color"][0] if "hair_color" in want else None)
            style = ds.features["hair_style"].feature
            assert [style.int2str(i) for i in row["hair_style"]] == \
                (["long hair"] if want.get("long hair", (None, 0))[1] == 1.0 else [])
    assert rows == len(faces)


def test_missing_library_says_how_to_install_it(catalog_with_labels, tmp_path, monkeypatch):
    db, _, _ = catalog_with_labels
    for fmt, module in [("webdataset", "webdataset"), ("hf", "datasets")]:
        monkeypatch.setitem(sys.modules, module, None)
        r = export(db, tmp_path / fmt, fmt)
        assert r.exit_code != 0 and "pip install -e '.[export]'" in r.output and not (tmp_path / fmt).exists()
