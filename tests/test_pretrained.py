"""`pretrained:NAME` (train.pretrained): models shipped inside the package, accepted wherever a run
folder is; their files checked against their recorded SHA-256. Most tests build a tiny model into a
temporary registry; the last ones load and paint with the sketch model that ships (`pretrained:sketch`)."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from curate.lineart import params_from_json
from label_app import painting
from train import pretrained
from train.disk import WriteFailed
from train.loop import train
from train.runs import RunError, load_run, run_folder
from train.sketch.drawing import normalise_drawing
from train.sketch.paint import paint, takes_hints

from test_pix2pix import invoke, options, sketch_catalog  # noqa: F401  (a fixture)
from test_sketch_input import drawn_face, png

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def shipped(sketch_catalog, tmp_path, monkeypatch):  # noqa: F811
    """A registry holding `pretrained:tiny`, a tiny sketch model made ready to ship."""
    run_dir = train(options(sketch_catalog, tmp_path, iters=1))
    folder = tmp_path / "registry" / "tiny"
    folder.mkdir(parents=True)
    for name in pretrained.RECORDED:
        shutil.copy(run_dir / name, folder / name)
    pretrained.write_record(folder)
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", tmp_path / "registry")
    return folder


def test_a_pretrained_name_resolves_and_loads(shipped):
    assert pretrained.known() == ["tiny"]
    assert run_folder("pretrained:tiny") == shipped and run_folder("runs/00001-x") == Path("runs/00001-x")
    run = load_run(Path("pretrained:tiny"))       # as typer hands it over
    assert run.dir == shipped and run.model == "pix2pix"
    faces = paint(Path("pretrained:tiny"), np.full((32, 32), 255, np.uint8), {}, 2, seed=0)
    assert len(faces) == 2 and faces[0].shape == (32, 32, 3)


@pytest.mark.parametrize("name", ["pretrained:nope", "pretrained:../tiny", "pretrained:", "pretrained:tiny/"])
def test_unknown_names_are_refused_in_one_line_listing_the_known_ones(name, shipped):
    with pytest.raises(RunError) as e:
        load_run(name)
    assert "unknown pretrained model" in str(e.value) and "the known ones: pretrained:tiny" in str(e.value)
    assert "\n" not in str(e.value)


def test_a_package_shipping_no_model_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", tmp_path / "none")
    assert pretrained.known() == []
    with pytest.raises(RunError, match="no pretrained models ship with this version yet; train one with"):
        run_folder("pretrained:sketch")
    res = invoke("sample", "pretrained:sketch", "--sketch", "x.png", "-o", "never.png")
    assert res.exit_code == 2 and "no pretrained models ship" in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_a_changed_byte_is_refused(shipped, tmp_path):
    run_folder("pretrained:tiny")                   # checked (and its hashes remembered)
    data = bytearray((shipped / "G_ema.pt").read_bytes())
    data[len(data) // 2] ^= 1
    (shipped / "G_ema.pt").write_bytes(bytes(data))
    with pytest.raises(RunError, match="G_ema.pt does not match its recorded SHA-256"):
        run_folder("pretrained:tiny")
    drawing = tmp_path / "face.png"
    drawing.write_bytes(png(drawn_face()))
    res = invoke("sample", "pretrained:tiny", "--sketch", drawing, "-o", tmp_path / "out.png")
    assert res.exit_code == 2 and "does not match its recorded SHA-256" in res.output
    assert not (tmp_path / "out.png").exists()
    (shipped / "sha256.json").write_text("{}")
    with pytest.raises(RunError, match="records no hash for options.json, G_ema.pt"):
        run_folder("pretrained:tiny")


def test_sample_and_the_draw_page_take_a_pretrained_name(shipped, tmp_path):
    drawing, out = tmp_path / "face.png", tmp_path / "out.png"
    drawing.write_bytes(png(drawn_face()))
    res = invoke("sample", "pretrained:tiny", "--sketch", drawing, "-n", 2, "-o", out)
    assert res.exit_code == 0, res.output
    assert out.exists()
    runs = painting.sketch_runs(tmp_path / "no-runs-here")
    assert [r.name for r in runs] == ["pretrained:tiny"] and runs[0].size == 32
    faces = painting.find_painter()(runs[0].dir, np.full((32, 32), 255, np.uint8), {}, 1, 0)
    assert faces[0].shape == (32, 32, 3)


def test_package_data_carries_the_shipped_models():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["train"]
    for pattern in ("pretrained_models/*/*.pt", "pretrained_models/*/*.safetensors", "pretrained_models/*/*.json",
                    "pretrained_models/*.md"):
        assert pattern in data
    assert pretrained.PRETRAINED_DIR == ROOT / "train" / "pretrained_models"


def test_ship_cuts_a_run_to_half_precision_weights_without_its_paths(sketch_catalog, tmp_path, monkeypatch):  # noqa: F811
    run_dir = train(options(sketch_catalog, tmp_path, iters=1))
    folder = tmp_path / "registry" / "small"
    pretrained.ship(run_dir, folder)
    assert sorted(p.name for p in folder.iterdir()) == ["G_ema.pt", "options.json", "sha256.json"]
    opts = json.loads((folder / "options.json").read_text())
    assert opts["catalog"] == Path(sketch_catalog).name and str(tmp_path) not in json.dumps(opts)
    assert (folder / "G_ema.pt").stat().st_size < 0.6 * (run_dir / "G_ema.pt").stat().st_size
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", tmp_path / "registry")
    sketch = np.full((32, 32), 255, np.uint8)
    sketch[8:24, 12] = 0
    shipped = paint(Path("pretrained:small"), sketch, {}, 2, seed=0)
    own = paint(run_dir, sketch, {}, 2, seed=0)
    assert all(np.abs(a.astype(int) - b.astype(int)).max() <= 3 for a, b in zip(shipped, own))  # fp16 weights
    with pytest.raises(pretrained.PretrainedError, match="no G_ema.pt: only a finished run can ship"):
        pretrained.ship(tmp_path, tmp_path / "registry" / "other")


def test_ship_interrupted_while_writing_leaves_no_half_written_model(sketch_catalog, tmp_path, monkeypatch):  # noqa: F811
    """A failure in the middle of writing G_ema.pt (a full disk) leaves no G_ema.pt and no hash record:
    before, torch.save wrote straight into the file, and a cut-off one stayed."""
    run_dir = train(options(sketch_catalog, tmp_path, iters=1))

    def full_disk(obj, f):
        out = open(f, "wb") if isinstance(f, (str, Path)) else f        # a path or an open file
        out.write(b"half a model")
        out.flush()
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pretrained.torch, "save", full_disk)
    folder = tmp_path / "registry" / "small"
    with pytest.raises(WriteFailed, match="disk full writing .*G_ema.pt"):
        pretrained.ship(run_dir, folder)
    assert sorted(p.name for p in folder.iterdir()) == ["options.json"]


def test_eval_of_a_shipped_model_writes_into_a_copy_never_the_package(shipped, sketch_catalog, tmp_path,  # noqa: F811
                                                                     monkeypatch):
    before = sorted(p.name for p in shipped.iterdir())
    judge = tmp_path / "judge.pt"
    assert invoke("judge", "--db", sketch_catalog, "--epochs", 1, "--no-progress", "-o", judge).exit_code == 0
    drawings = tmp_path / "drawings"
    drawings.mkdir()
    (drawings / "face.png").write_bytes(png(drawn_face()))
    monkeypatch.chdir(tmp_path)
    for _ in range(2):       # the second evaluation reuses the copy
        res = invoke("eval", "pretrained:tiny", "--judge", judge, "--db", sketch_catalog, "--no-download",
                     "--drawings", drawings)
        assert res.exit_code == 0, res.output
        assert "pretrained:tiny is evaluated in a copy, runs/pretrained-tiny" in res.output
    assert (tmp_path / "runs" / "pretrained-tiny" / "eval.json").exists()
    assert sorted(p.name for p in shipped.iterdir()) == before
    res = invoke("eval", "pretrained:nope", "--judge", judge)
    assert res.exit_code == 2 and "unknown pretrained model 'pretrained:nope'" in res.output


# -- the sketch model that ships ------------------------------------------------------------

SHIPPED = ROOT / "train" / "pretrained_models" / "sketch"


def test_the_shipped_sketch_model_is_small_checked_and_paints_a_tiny_drawing(tmp_path):
    assert "sketch" in pretrained.known()
    assert sum(p.stat().st_size for p in SHIPPED.iterdir()) < 25e6          # the budget
    run = load_run("pretrained:sketch")
    assert run.model == "pix2pix" and run.size == 64 and takes_hints(run)
    assert str(Path.home()) not in (SHIPPED / "options.json").read_text()   # no paths of the machine it was made on
    _, params = params_from_json(run.sketch["params"])
    sketch = normalise_drawing(png(drawn_face(40)), 64, params, crop_face=False)     # a 40 px drawing
    faces = paint(Path("pretrained:sketch"), sketch, {"hair_color": "blue hair"}, 2, seed=0)
    assert [f.shape for f in faces] == [(64, 64, 3)] * 2
    assert all(f.std() > 15 for f in faces)                                  # faces, not flat tints
    assert np.abs(faces[0].astype(int) - faces[1].astype(int)).mean() > 3    # two noises, two paintings


def test_the_shipped_model_paints_hinted_colours_where_hinted():
    """Hint channels reach the network: a red patch hinted on the forehead is painted there redder than
    without the hint (this fails if the hints were dropped on the way)."""
    run = load_run("pretrained:sketch")
    _, params = params_from_json(run.sketch["params"])
    sketch = normalise_drawing(png(drawn_face(256)), 64, params, crop_face=False)
    hint = Image.new("RGBA", (256, 256), (0, 0, 0, 0))
    hint.paste((230, 30, 30, 255), (112, 40, 144, 72))                      # 28..36 x 10..18 at 64 px
    red = np.array([230, 30, 30])
    tags = {"hair_color": "blonde hair", "eye_color": "blue eyes"}
    plain = np.stack(paint(Path("pretrained:sketch"), sketch, tags, 4, seed=0))
    hinted = np.stack(paint(Path("pretrained:sketch"), sketch, tags, 4, seed=0, hints=np.asarray(hint)))
    far = lambda f: np.linalg.norm(f[:, 10:18, 28:36].astype(float) - red, axis=-1).mean()  # noqa: E731
    assert far(hinted) < 0.6 * far(plain)


def test_unknown_names_list_the_shipped_model():
    with pytest.raises(RunError, match="the known ones: .*pretrained:sketch"):
        load_run("pretrained:skecth")


def test_train_sample_paints_with_the_shipped_model(tmp_path):
    drawing, hints, out = tmp_path / "face.png", tmp_path / "hints.png", tmp_path / "out.png"
    drawing.write_bytes(png(drawn_face(120)))
    im = Image.new("RGBA", (120, 120), (0, 0, 0, 0))
    im.paste((240, 120, 190, 255), (50, 20, 70, 30))
    im.save(hints)
    res = invoke("sample", "pretrained:sketch", "--sketch", drawing, "--tags", "pink hair, blue eyes", "-n", 2,
                 "--hints", hints, "-o", out)
    assert res.exit_code == 0, res.output
    assert Image.open(out).size[0] > 64 * 2


def test_drawing_names_with_control_characters_are_shown_never_obeyed(tmp_path):
    """A drawing named with a terminal escape: `train sample` names it in its warning (several
    drawings) and in its error (one) with the escape written out, never sent to the terminal."""
    folder = tmp_path / "drawings"
    folder.mkdir()
    (folder / "face.png").write_bytes(png(drawn_face(120)))
    bad = folder / "b\x1b[31mbad.png"
    bad.write_bytes(b"not a picture")
    res = invoke("sample", "pretrained:sketch", "--sketch", folder, "-n", 1, "-o", tmp_path / "out.png")
    assert res.exit_code == 0, res.output
    assert "\x1b" not in res.output and "b\\x1b[31mbad.png: not a picture Pillow can read" in res.output
    res = invoke("sample", "pretrained:sketch", "--sketch", bad, "-o", tmp_path / "one.png")
    assert res.exit_code == 2 and "\x1b" not in res.output and "b\\x1b[31mbad.png" in res.output
