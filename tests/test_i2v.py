"""illustration2vec in PyTorch: caffemodel reader, network, preprocessing, tagging, download."""

from __future__ import annotations

import gzip
import os
import http.server
import json
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from typer.testing import CliRunner

from curate.cli import app
from curate.taggers.i2v.caffemodel import CaffeModelError, Layer, i2v_layers, read_caffemodel, write_caffemodel
from curate.taggers.i2v.download import DownloadError, download, fetch
from curate.taggers.i2v.network import MODEL_FILE, I2VError, load_model
from curate.taggers.i2v.preprocess import MEAN_BGR, preprocess, resize
from curate.taggers.tagging import QUALITY_GROUP, TagOptions, map_i2v
from db import Catalog
from db.vocabulary import DEFAULT_GROUPS

runner = CliRunner()
TINY = {s: 2 for s in range(1, 7)}
# A small tag list holding vocabulary tags, so a tiny model can tag a catalog.
TAGS = ["black hair", "blonde hair", "red hair", "blue eyes", "red eyes", "long hair", "smile",
        "monochrome", "solo", "not in the vocabulary"]


def tiny_model(folder: Path, v1: bool = False, biases: dict[str, float] | None = None, seed: int = 0) -> Path:
    """An i2v-shaped caffemodel with 2-channel convs. With `biases`, conv6_4's weights are
    zeroed and its biases set, so each tag's probability is exactly sigmoid(bias)."""
    folder.mkdir(parents=True, exist_ok=True)
    layers = i2v_layers(len(TAGS), TINY, seed=seed)
    if biases is not None:
        last = layers[-1]
        last.blobs[0][:] = 0
        last.blobs[1][:] = [biases.get(t, -5.0) for t in TAGS]
    write_caffemodel(folder / MODEL_FILE, layers, v1=v1)
    (folder / "tag_list.json").write_text(json.dumps(TAGS))
    return folder


def reference_forward(layers: list[Layer], x: torch.Tensor) -> torch.Tensor:
    """i2v's network written out by hand from its paper/prototxt: 3x3 pad-1 convs, ReLU,
    2x2 max-pools after conv1_1, conv2_1, conv3_2, conv4_2, conv5_2; 7x7 mean; sigmoid."""
    w = {l.name: l.blobs for l in layers if l.type == "Convolution"}
    h = x
    for name in ["conv1_1", "conv2_1", "conv3_1", "conv3_2", "conv4_1", "conv4_2", "conv5_1", "conv5_2",
                 "conv6_1", "conv6_2", "conv6_3", "conv6_4"]:
        h = F.conv2d(h, torch.from_numpy(w[name][0]), torch.from_numpy(w[name][1].ravel()), padding=1)
        if name != "conv6_4":
            h = F.relu(h)
        if name in ("conv1_1", "conv2_1", "conv3_2", "conv4_2", "conv5_2"):
            h = F.max_pool2d(h, 2)
    return torch.sigmoid(h.mean((2, 3)))


# -- caffemodel ------------------------------------------------------------------

@pytest.mark.parametrize("v1", [False, True])
def test_caffemodel_round_trip(tmp_path, v1):
    layers = i2v_layers(len(TAGS), TINY, seed=1)
    path = tmp_path / "m.caffemodel"
    write_caffemodel(path, layers, v1=v1)
    read = [l for l in read_caffemodel(path) if l.type != "Input"]
    assert [(l.name, l.type) for l in read] == [(l.name, l.type) for l in layers]
    for a, b in zip(layers, read):
        assert len(a.blobs) == len(b.blobs)
        for x, y in zip(a.blobs, b.blobs):
            assert np.array_equal(x.ravel(), y.ravel())
    conv = next(l for l in read if l.name == "conv3_2")
    assert conv.blobs[0].shape == (2, 2, 3, 3)
    assert conv.params["pad"] == (1, 1) and conv.params["kernel"] == (3, 3)
    pool = next(l for l in read if l.name == "pool3")
    assert pool.params["pool"] == "MAX" and pool.params["kernel"] == (2, 2) and pool.params["stride"] == (2, 2)


@pytest.mark.parametrize("v1", [False, True])
def test_network_matches_hand_written_i2v(tmp_path, v1):
    folder = tiny_model(tmp_path / "m", v1=v1, seed=2)
    model = load_model(folder)
    layers = read_caffemodel(folder / MODEL_FILE)
    x = torch.from_numpy(np.stack([preprocess(Image.new("RGB", (96, 96), c)) for c in [(250, 20, 20), (10, 10, 10)]]))
    x += torch.randn_like(x) * 40
    with torch.inference_mode():
        ours = model.net(x)
    assert ours.shape == (2, len(TAGS))
    assert torch.allclose(ours, reference_forward(layers, x), atol=1e-6)
    assert model.version == "illust2vec_tag_ver200"


def test_safetensors_cache_is_used_and_refreshed(tmp_path):
    folder = tiny_model(tmp_path / "m", seed=3)
    first = load_model(folder)
    cache = folder / "illust2vec_tag_ver200.safetensors"
    assert cache.is_file()
    x = torch.from_numpy(preprocess(Image.new("RGB", (40, 30), (90, 200, 10))))[None]
    with torch.inference_mode():
        assert torch.equal(first.net(x), load_model(folder).net(x))
    tiny_model(folder, seed=4)   # the caffemodel changes: the cache must not be trusted
    with torch.inference_mode():
        fresh = load_model(folder, cache=False).net(x)
        assert torch.equal(load_model(folder).net(x), fresh)


# -- bad model files -------------------------------------------------------------

def test_missing_files_name_them(tmp_path):
    with pytest.raises(I2VError, match="does not exist"):
        load_model(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(I2VError, match=MODEL_FILE):
        load_model(tmp_path / "empty")
    folder = tiny_model(tmp_path / "m")
    (folder / "tag_list.json").unlink()
    with pytest.raises(I2VError, match="tag_list.json"):
        load_model(folder)


def test_corrupt_model_file(tmp_path):
    folder = tiny_model(tmp_path / "m")
    good = (folder / MODEL_FILE).read_bytes()
    (folder / MODEL_FILE).write_bytes(good[: len(good) // 2])   # truncated download
    with pytest.raises(I2VError, match=MODEL_FILE):
        load_model(folder)
    (folder / MODEL_FILE).write_bytes(b"<html>404 Not Found</html>" * 10)
    with pytest.raises(I2VError, match=MODEL_FILE):
        load_model(folder)
    (folder / MODEL_FILE).write_bytes(b"")
    with pytest.raises(I2VError, match="empty"):
        load_model(folder)
    assert not (folder / "illust2vec_tag_ver200.safetensors").exists()


def test_wrong_tag_count(tmp_path):
    folder = tiny_model(tmp_path / "m")
    (folder / "tag_list.json").write_text(json.dumps(TAGS[:-1]))
    with pytest.raises(I2VError, match=r"tag_list.json lists 9 tags but .* predicts 10"):
        load_model(folder)
    (folder / "tag_list.json").write_text('{"not": "a list"}')
    with pytest.raises(I2VError, match="tag_list.json is not a tag list"):
        load_model(folder)


def test_other_network_is_refused(tmp_path):
    # A classifier with a fully connected head (like VGG16's fc6..fc8): not i2v.
    rng = np.random.default_rng(0)
    layers = [Layer("conv1_1", "Convolution", [rng.random((4, 3, 3, 3), np.float32), np.zeros(4, np.float32)],
                    {"num_output": 4, "kernel": (3, 3), "pad": (1, 1), "stride": (1, 1)}),
              Layer("relu1_1", "ReLU"),
              Layer("fc8", "InnerProduct", [rng.random((10, 4), np.float32)])]
    folder = tmp_path / "vgg"
    folder.mkdir()
    write_caffemodel(folder / MODEL_FILE, layers, v1=True)
    (folder / "tag_list.json").write_text(json.dumps(TAGS))
    with pytest.raises(I2VError, match=f"{MODEL_FILE} is not an illustration2vec tag model"):
        load_model(folder)
    # conv6_4 present but an unsupported layer before it
    layers = i2v_layers(len(TAGS), TINY)
    layers.insert(3, Layer("fc", "InnerProduct", [rng.random((2, 2), np.float32)]))
    write_caffemodel(folder / MODEL_FILE, layers)
    with pytest.raises(I2VError, match="InnerProduct"):
        load_model(folder)
    with pytest.raises(CaffeModelError):
        read_caffemodel(tmp_path / "absent.caffemodel")


# -- preprocessing ---------------------------------------------------------------

def test_resize_matches_skimage_reference_values():
    # skimage.transform.resize(order=1) of these arrays, computed with scikit-image 0.26.
    two = np.array([[0.0, 1.0]] * 2)[:, :, None].repeat(3, 2)
    assert np.allclose(resize(two, 4)[0, :, 0], [0.25, 0.25, 0.75, 0.75])
    checker = np.array([[0.0, 1.0], [1.0, 0.0]])[:, :, None].repeat(3, 2)
    assert np.allclose(resize(checker, 5)[:, :, 0], [
        [0.42, 0.34, 0.5, 0.66, 0.58], [0.34, 0.18, 0.5, 0.82, 0.66], [0.5, 0.5, 0.5, 0.5, 0.5],
        [0.66, 0.82, 0.5, 0.18, 0.34], [0.58, 0.66, 0.5, 0.34, 0.42]])
    # shrinking blurs first (anti-aliasing): a 1-pixel checkerboard averages out
    fine = (np.indices((448, 448)).sum(0) % 2)[:, :, None].repeat(3, 2).astype(float)
    assert np.allclose(resize(fine, 224), 0.5, atol=0.05)


def test_preprocess_channels_and_mean():
    x = preprocess(Image.new("RGB", (96, 96), (10, 20, 30)))
    assert x.shape == (3, 224, 224) and x.dtype == np.float32
    assert np.allclose(x[:, 5, 5], np.array([30, 20, 10]) - MEAN_BGR, atol=1e-4)   # BGR, mean off
    grey = preprocess(Image.new("L", (50, 80), 100))
    assert np.allclose(grey[:, 0, 0], 100 - MEAN_BGR, atol=1e-4)
    rgba = preprocess(Image.new("RGBA", (60, 60), (1, 2, 3, 0)))   # alpha is dropped, not blended
    assert np.allclose(rgba[:, 0, 0], np.array([3, 2, 1]) - MEAN_BGR, atol=1e-4)


# -- mapping and tagging ---------------------------------------------------------

def test_map_i2v_exclusive_argmax_and_thresholds(catalog):
    catalog.ensure_group(QUALITY_GROUP, False, ["monochrome", "solo"])
    vocab = catalog.tag_index()
    index = {t: i for i, t in enumerate(TAGS)}
    probs = np.array([0.3, 0.6, 0.1, 0.2, 0.4, 0.26, 0.2, 0.9, 0.5, 0.99])
    labels = dict(map_i2v(probs, index, vocab, TagOptions(threshold=0.25, tag_thresholds={"solo": 0.7})))
    assert labels == pytest.approx({"blonde hair": 0.6, "red eyes": 0.4, "long hair": 0.26, "monochrome": 0.9})


def test_cli_tags_i2v_resumably_and_leaves_manual_alone(tiny_catalog, tmp_path):
    import math
    folder = tiny_model(tmp_path / "m", biases={"red hair": 3.0, "black hair": 1.0, "blue eyes": 2.0,
                                                "long hair": 0.5, "smile": -2.0, "monochrome": 1.5})
    cat = Catalog(tiny_catalog)
    manual_before = cat.current_labels("manual")
    cat.close()
    args = ["tag", "--tagger", "i2v", "--model-dir", str(folder), "--db", str(tiny_catalog), "--batch", "5"]
    r = runner.invoke(app, args + ["--limit", "7"])
    assert r.exit_code == 0, r.output
    assert "7 faces tagged" in r.output
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "17 faces tagged" in r.output and "7 skipped" in r.output
    r = runner.invoke(app, args)
    assert "0 faces tagged" in r.output and "24 skipped" in r.output
    cat = Catalog(tiny_catalog)
    assert cat.current_labels("manual") == manual_before
    labels = cat.labelled_faces("i2v", split=None)
    assert len(labels) == 24
    sig = lambda b: 1 / (1 + math.exp(-b))  # noqa: E731
    for face in labels.values():
        assert face["hair_color"] == ("red hair", pytest.approx(sig(3.0), abs=1e-5))
        assert face["eye_color"] == ("blue eyes", pytest.approx(sig(2.0), abs=1e-5))
        assert face["long hair"][1] == pytest.approx(sig(0.5), abs=1e-5)
        assert face["monochrome"][1] == pytest.approx(sig(1.5), abs=1e-5)
        assert "smile" not in face   # below the 0.25 threshold
    assert any(g["name"] == QUALITY_GROUP for g in cat.groups())
    assert {r["annotator"] for r in cat.current_labels("i2v")} == {"illust2vec_tag_ver200"}
    cat.close()


def test_ctrl_c_while_tagging_keeps_the_batches_written(tiny_catalog, tmp_path, monkeypatch):
    from curate.taggers import tagging as taggers

    folder = tiny_model(tmp_path / "m", biases={"red hair": 3.0, "blue eyes": 2.0})
    real_predict, calls = taggers.I2VTagger.predict, []

    def predict_then_ctrl_c(self, *args):
        calls.append(1)
        if len(calls) == 3:               # the third batch of 5: Ctrl-C in the middle of the run
            raise KeyboardInterrupt
        return real_predict(self, *args)

    monkeypatch.setattr(taggers.I2VTagger, "predict", predict_then_ctrl_c)
    args = ["tag", "--tagger", "i2v", "--model-dir", str(folder), "--db", str(tiny_catalog), "--batch", "5"]
    r = runner.invoke(app, args)
    assert r.exit_code == 130 and "interrupted" in r.output and "10 faces tagged" in r.output
    with Catalog(tiny_catalog) as cat:
        assert len(cat.labelled_faces("i2v", split=None)) == 10
    monkeypatch.setattr(taggers.I2VTagger, "predict", real_predict)
    r = runner.invoke(app, args)
    assert r.exit_code == 0 and "14 faces tagged" in r.output and "10 skipped" in r.output
    with Catalog(tiny_catalog) as cat:
        assert len(cat.labelled_faces("i2v", split=None)) == 24


def test_cli_bad_model_writes_nothing(tiny_catalog, tmp_path):
    folder = tiny_model(tmp_path / "m")
    (folder / "tag_list.json").write_text(json.dumps(TAGS + ["extra"]))
    before = Catalog(tiny_catalog).label_sources()
    r = runner.invoke(app, ["tag", "--tagger", "i2v", "--model-dir", str(folder), "--db", str(tiny_catalog)])
    assert r.exit_code == 2
    assert "tag_list.json lists 11 tags" in r.output
    r = runner.invoke(app, ["tag", "--tagger", "i2v", "--model-dir", str(tmp_path / "none"),
                            "--db", str(tiny_catalog)])
    assert r.exit_code == 2 and "does not exist" in r.output
    r = runner.invoke(app, ["tag", "--tagger", "i2v", "--model-dir", str(folder), "--db", str(tiny_catalog),
                            "--tag-threshold", "monochrome"])
    assert r.exit_code == 2 and "--tag-threshold" in r.output
    cat = Catalog(tiny_catalog)
    assert cat.label_sources() == before
    assert not any(g["name"] == QUALITY_GROUP for g in cat.groups())


# -- download --------------------------------------------------------------------

class _Release(http.server.SimpleHTTPRequestHandler):
    """A fake release folder with HTTP Range support; `cut` bytes truncate a first reply."""
    cut: dict = {}

    def log_message(self, *a):
        pass

    def do_GET(self):
        path = Path(self.directory) / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = 0
        rng = self.headers.get("Range")
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        limit = self.cut.pop(path.name, None)
        self.wfile.write(body[:limit] if limit is not None else body)


@pytest.fixture
def release(tmp_path, monkeypatch):
    """A release of the tiny model on a loopback server; downloads expect its (tiny) shapes."""
    from curate.taggers.i2v import download as download_module
    from curate.taggers.i2v.integrity import expected_convolutions

    monkeypatch.setattr(download_module, "OFFICIAL", expected_convolutions(len(TAGS), TINY), raising=False)
    folder = tiny_model(tmp_path / "release")
    (folder / "tag_list.json.gz").write_bytes(gzip.compress((folder / "tag_list.json").read_bytes()))
    (folder / "tag_list.json").unlink()
    handler = partial(_Release, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_download_resumes_and_loads(release, tmp_path):
    folder, url = release
    size = (folder / MODEL_FILE).stat().st_size
    _Release.cut = {MODEL_FILE: size // 3}
    target = tmp_path / "models"
    with pytest.raises(DownloadError, match="run the command again to resume"):
        download(target, url)
    part = target / (MODEL_FILE + ".part")
    assert part.stat().st_size == size // 3 and not (target / MODEL_FILE).exists()
    r = runner.invoke(app, ["i2v", "download", "--model-dir", str(target), "--base-url", url])
    assert r.exit_code == 0, r.output
    assert (target / MODEL_FILE).read_bytes() == (folder / MODEL_FILE).read_bytes()
    assert json.loads((target / "tag_list.json").read_text()) == TAGS
    assert load_model(target).tags == TAGS


def test_download_errors(release, tmp_path):
    folder, url = release
    with pytest.raises(DownloadError, match="expected 5"):
        fetch(url + MODEL_FILE, tmp_path / "x.caffemodel", expected=5)
    assert not (tmp_path / "x.caffemodel").exists() and not (tmp_path / "x.caffemodel.part").exists()
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch(url + "missing.bin", tmp_path / "missing.bin")
    # a closed port stands for a machine without internet
    r = runner.invoke(app, ["i2v", "download", "--model-dir", str(tmp_path / "m"), "--base-url", "http://127.0.0.1:9/"])
    assert r.exit_code == 2
    assert "no internet" in r.output and "--model-dir" in r.output


def test_default_vocabulary_is_in_real_tag_list(shared):
    tags = json.loads((shared / "models/i2v_tag_list.json").read_text())
    assert len(tags) == 1539
    missing = [t for _, _, group in DEFAULT_GROUPS for t in group if t not in tags]
    assert missing == []


def test_interrupted_limited_run_says_how_to_finish_it(tiny_catalog, tmp_path, monkeypatch):
    from curate.taggers import tagging as taggers

    folder = tiny_model(tmp_path / "m", biases={"red hair": 3.0})
    real_predict, calls = taggers.I2VTagger.predict, []

    def predict_then_ctrl_c(self, *args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_predict(self, *args)

    monkeypatch.setattr(taggers.I2VTagger, "predict", predict_then_ctrl_c)
    args = ["tag", "--tagger", "i2v", "--model-dir", str(folder), "--db", str(tiny_catalog), "--batch", "5"]
    r = runner.invoke(app, args + ["--limit", "20"])
    assert r.exit_code == 130 and "--limit 10 makes 20 in all" in r.output
    monkeypatch.setattr(taggers.I2VTagger, "predict", real_predict)
    r = runner.invoke(app, args + ["--limit", "10"])
    assert r.exit_code == 0 and "10 faces tagged" in r.output
    with Catalog(tiny_catalog) as cat:
        assert len(cat.labelled_faces("i2v", split=None)) == 20


# -- what arrives is checked, recorded, and checked again on every load ---------------------

def _flip_a_weight(path: Path) -> None:
    """Change one byte inside the last blob; the file still parses, its size and time stay."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[-40] ^= 0x01
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_download_records_the_sha256_and_every_load_checks_it(release, tmp_path):
    import hashlib

    folder, url = release
    target = tmp_path / "models"
    r = runner.invoke(app, ["i2v", "download", "--model-dir", str(target), "--base-url", url])
    assert r.exit_code == 0, r.output
    digest = hashlib.sha256((target / MODEL_FILE).read_bytes()).hexdigest()
    assert f"sha256 {digest}" in r.output
    assert (target / (MODEL_FILE + ".sha256")).read_text().split() == [digest, MODEL_FILE]
    x = torch.from_numpy(preprocess(Image.new("RGB", (40, 30), (90, 200, 10))))[None]
    with torch.inference_mode():
        before = load_model(target).net(x)     # builds the safetensors cache (and its record)
    cache = target / "illust2vec_tag_ver200.safetensors"
    assert cache.is_file() and (target / "illust2vec_tag_ver200.safetensors.sha256").is_file()
    # a damaged cache is not trusted: rebuilt from the checked caffemodel
    _flip_a_weight(cache)
    with torch.inference_mode():
        assert torch.equal(load_model(target).net(x), before)
    # a changed caffemodel (same size, same time: the cache alone would not notice) is refused
    _flip_a_weight(target / MODEL_FILE)
    with pytest.raises(I2VError) as e:
        load_model(target)
    assert MODEL_FILE in str(e.value) and digest in str(e.value)
    r = runner.invoke(app, ["tag", "--tagger", "i2v", "--model-dir", str(target), "--db", str(tmp_path / "c.db")])
    assert r.exit_code == 2 and digest in r.output
    # downloading again finds the file is not the one recorded: moved aside, fetched anew
    r = runner.invoke(app, ["i2v", "download", "--model-dir", str(target), "--base-url", url])
    assert r.exit_code == 2 and digest in r.output and ".rejected" in r.output
    r = runner.invoke(app, ["i2v", "download", "--model-dir", str(target), "--base-url", url])
    assert r.exit_code == 0 and f"sha256 {digest}" in r.output


def test_a_pinned_sha256_refuses_another_file(release, tmp_path):
    import hashlib

    folder, url = release
    digest = hashlib.sha256((folder / MODEL_FILE).read_bytes()).hexdigest()
    wrong = "0" * 64
    target = tmp_path / "pinned"
    r = runner.invoke(app, ["i2v", "download", "--model-dir", str(target), "--base-url", url, "--sha256", wrong])
    assert r.exit_code == 2 and MODEL_FILE in r.output and wrong in r.output and digest in r.output
    assert not (target / MODEL_FILE).exists()
    r = runner.invoke(app, ["i2v", "download", "--model-dir", str(target), "--base-url", url, "--sha256", "nope"])
    assert r.exit_code == 2 and "not a sha256" in r.output
    r = runner.invoke(app, ["i2v", "download", "--model-dir", str(target), "--base-url", url, "--sha256", digest.upper()])
    assert r.exit_code == 0, r.output
    # a hash file put in the model folder pins it just the same
    other = tmp_path / "by-file"
    other.mkdir()
    (other / (MODEL_FILE + ".sha256")).write_text(f"{wrong}  {MODEL_FILE}\n")
    r = runner.invoke(app, ["i2v", "download", "--model-dir", str(other), "--base-url", url])
    assert r.exit_code == 2 and wrong in r.output and digest in r.output
    assert not (other / MODEL_FILE).exists() and (other / (MODEL_FILE + ".rejected")).exists()


def test_download_checks_layers_shapes_and_tag_list(release, tmp_path, monkeypatch):
    from curate.taggers.i2v import download as download_module
    from curate.taggers.i2v.integrity import expected_convolutions

    folder, url = release
    monkeypatch.setattr(download_module, "OFFICIAL", expected_convolutions())   # the real release's shapes
    r = runner.invoke(app, ["i2v", "download", "--model-dir", str(tmp_path / "a"), "--base-url", url])
    assert r.exit_code == 2 and MODEL_FILE in r.output and "conv1_1 has weights of shape (2, 3, 3, 3)" in r.output
    monkeypatch.setattr(download_module, "OFFICIAL", expected_convolutions(len(TAGS), TINY))
    (folder / "tag_list.json.gz").write_bytes(gzip.compress(json.dumps(TAGS[:-1]).encode()))
    r = runner.invoke(app, ["i2v", "download", "--model-dir", str(tmp_path / "b"), "--base-url", url])
    assert r.exit_code == 2 and "9 tags" in r.output and "10 outputs" in r.output
    (folder / MODEL_FILE).write_bytes(b"<html>rate limited</html>" * 40)
    r = runner.invoke(app, ["i2v", "download", "--model-dir", str(tmp_path / "c"), "--base-url", url])
    assert r.exit_code == 2 and MODEL_FILE in r.output and not (tmp_path / "c" / MODEL_FILE).exists()


# -- a hostile --base-url: an endless reply and a gzip bomb are cut off (issue 24, item 8) ---------

class _Endless(http.server.BaseHTTPRequestHandler):
    """Streams zeros with no Content-Length (bounded here: 64 MiB at most), or announces a huge one."""

    def log_message(self, *a):
        pass

    def do_GET(self):
        self.send_response(200)
        if self.path.endswith("announced"):
            self.send_header("Content-Length", str(10 << 30))
        self.end_headers()
        try:
            for _ in range(64):
                self.wfile.write(bytes(1 << 20))
        except OSError:   # the client hung up: what it should do
            pass


@pytest.fixture
def endless_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Endless)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_download_refuses_an_endless_reply_and_a_huge_announced_one(endless_server, tmp_path):
    from curate.taggers.i2v import download as download_module

    target = tmp_path / "x.caffemodel"
    with pytest.raises(DownloadError, match="more than 2 MiB"):
        download_module.fetch(endless_server + "endless", target, limit=2 << 20)
    assert not target.exists() and not target.with_name("x.caffemodel.part").exists()
    with pytest.raises(DownloadError, match="more than 2 MiB"):
        download_module.fetch(endless_server + "announced", target, limit=2 << 20)
    assert not target.with_name("x.caffemodel.part").exists()
    # every file of a download has its cap
    assert set(download_module.MAX_BYTES) == set(download_module.FILES)


def test_download_refuses_a_gzip_bomb_tag_list(release, tmp_path):
    folder, url = release
    (folder / "tag_list.json.gz").write_bytes(gzip.compress(b" " * (17 << 20)))   # 17 MiB of blanks, ~17 KB packed
    target = tmp_path / "models"
    r = runner.invoke(app, ["i2v", "download", "--model-dir", str(target), "--base-url", url])
    assert r.exit_code == 2 and "unpacks to more than 16 MiB" in r.output
    assert [line for line in r.output.splitlines() if "error" in line.lower()] == \
        [line for line in r.output.splitlines() if "unpacks to more than" in line]
    assert not (target / "tag_list.json").exists()
