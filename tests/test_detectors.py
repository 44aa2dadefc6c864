"""Detectors: the animeface/Pillow guard, cascade download with checksum, setup errors."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from pathlib import Path

import PIL
import pytest
from PIL import Image

from curate import detectors
from curate.detectors import Box, DetectorError, DetectorSpec, build, fetch_cascade, resolve
from curate.images import decode

# Small real illustrations with one clear face each (see ../shared/README.md)
ILLUSTRATIONS = ["afdr_detect_03.jpg", "s2p_v4_25.png"]


def test_pillow_is_below_12():
    # animeface passes `im.getdata()` to its C extension; with Pillow >= 12 it finds nothing
    assert int(PIL.__version__.split(".")[0]) < 12, "animeface silently detects no faces with Pillow >= 12"


@pytest.mark.parametrize("name", ILLUSTRATIONS)
def test_animeface_finds_the_face_in_a_real_illustration(shared, name):
    rgb = decode((shared / "data" / "raw_illustrations" / name).read_bytes()).image
    boxes = build(DetectorSpec("animeface")).detect(rgb)
    assert len(boxes) >= 1, "animeface found nothing: check the Pillow version (must be < 12)"
    big = max(boxes, key=lambda b: b.w)
    assert big.w >= 40 and 0 <= big.x < rgb.width and 0 <= big.y < rgb.height


def test_lbp_with_a_given_cascade_finds_a_face(shared):
    spec = resolve("lbp", shared / "models" / "lbpcascade_animeface.xml")
    rgb = decode((shared / "data" / "raw_illustrations" / ILLUSTRATIONS[0]).read_bytes()).image
    assert len(build(spec).detect(rgb)) >= 1


@pytest.mark.parametrize("name", ["human", "cat"])
def test_bundled_haar_cascades_load_and_run(name):
    spec = resolve(name)
    assert Path(spec.cascade).is_file()
    assert build(spec).detect(Image.new("RGB", (64, 64), (128, 128, 128))) == []


def test_box_scaling():
    assert Box(10, 20, 30, 40, 0.5).scaled(2.0) == Box(20, 40, 60, 80, 0.5)


def test_setup_errors_are_clear(tmp_path):
    with pytest.raises(DetectorError, match="unknown detector 'yolo'"):
        resolve("yolo")
    with pytest.raises(DetectorError, match="does not exist"):
        resolve("lbp", tmp_path / "nope.xml")
    junk = tmp_path / "junk.xml"
    junk.write_text("<not a cascade/>")
    with pytest.raises(DetectorError, match="not an OpenCV cascade"):
        resolve("lbp", junk)
    with pytest.raises(DetectorError, match="not animeface"):
        resolve("animeface", junk)


@pytest.fixture
def cascade_server(shared, monkeypatch):
    """A loopback HTTP server serving ../shared/models/ (the cascade's 'public home'); the local
    copy in ../shared is not looked at, so the download itself is what runs."""
    monkeypatch.setattr(detectors, "shared_path", lambda *parts: None)
    handler = functools.partial(_QuietHandler, directory=str(shared / "models"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", server
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    requests = 0

    def log_message(self, *args):
        pass

    def do_GET(self):
        type(self).requests += 1
        super().do_GET()


def test_lbp_cascade_download_is_checked_and_cached(cascade_server, tmp_path, shared):
    base, _ = cascade_server
    _QuietHandler.requests = 0
    url = f"{base}/lbpcascade_animeface.xml"
    path = fetch_cascade(url, detectors.LBP_SHA256, cache=tmp_path / "cache")
    assert path == tmp_path / "cache" / "lbpcascade_animeface.xml"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == detectors.LBP_SHA256
    assert fetch_cascade(url, detectors.LBP_SHA256, cache=tmp_path / "cache") == path
    assert _QuietHandler.requests == 1  # the second call used the cache
    # the cached file works as a detector
    rgb = decode((shared / "data" / "raw_illustrations" / ILLUSTRATIONS[0]).read_bytes()).image
    assert build(DetectorSpec("lbp", str(path))).detect(rgb)


def test_lbp_download_with_wrong_checksum_is_refused(cascade_server, tmp_path):
    base, _ = cascade_server
    with pytest.raises(DetectorError, match="expected 0000.*refusing"):
        fetch_cascade(f"{base}/lbpcascade_animeface.xml", "0" * 64, cache=tmp_path / "cache")
    assert not list((tmp_path / "cache").iterdir())  # nothing left behind to be trusted later


def test_lbp_download_failure_names_the_url(cascade_server, tmp_path):
    base, _ = cascade_server
    with pytest.raises(DetectorError, match="cannot download .*missing.xml.*--cascade"):
        fetch_cascade(f"{base}/missing.xml", detectors.LBP_SHA256, cache=tmp_path / "cache")


def test_resolve_lbp_uses_the_cache_dir(cascade_server, tmp_path, monkeypatch):
    base, _ = cascade_server
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(detectors, "LBP_URL", f"{base}/lbpcascade_animeface.xml")
    spec = resolve("lbp")
    assert spec.cascade == str(tmp_path / "animeface-gan-study" / "cascades" / "lbpcascade_animeface.xml")


def test_the_former_cache_folder_is_still_used(cascade_server, shared, tmp_path, monkeypatch, capsys):
    """One cache folder now (issue 25); a cascade cached in the older ~/.cache/curate is not fetched again."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(detectors, "LBP_URL", "http://127.0.0.1:9/lbpcascade_animeface.xml")   # nothing listens
    former = tmp_path / "curate" / "lbpcascade_animeface.xml"
    former.parent.mkdir()
    former.write_bytes((shared / "models" / "lbpcascade_animeface.xml").read_bytes())
    assert resolve("lbp").cascade == str(former)
    assert "the cache is now" in capsys.readouterr().err


def test_lbp_offline_uses_the_checked_copy_in_shared(shared, tmp_path, monkeypatch):
    """The README's `--detector lbp` block works offline: ../shared/models holds the cascade."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    monkeypatch.chdir(tmp_path)   # found beside the checkout too, not only beside the working directory
    spec = resolve("lbp")
    assert Path(spec.cascade) == shared / "models" / "lbpcascade_animeface.xml"
    # a copy whose sha256 differs is not trusted: the download is tried (here: nothing listens)
    junk = tmp_path / "shared" / "models" / "lbpcascade_animeface.xml"
    junk.parent.mkdir(parents=True)
    junk.write_text("<not the cascade/>")
    monkeypatch.setattr(detectors, "shared_path", lambda *parts: junk)
    with pytest.raises(DetectorError, match="cannot download"):
        fetch_cascade("http://127.0.0.1:9/lbpcascade_animeface.xml", detectors.LBP_SHA256)


def test_no_download_means_the_cached_or_shared_copy_or_a_clear_refusal(cascade_server, tmp_path, monkeypatch):
    """`train eval --no-download` asks for the cascade without a download: none is made."""
    base, _ = cascade_server
    _QuietHandler.requests = 0
    monkeypatch.setattr(detectors, "shared_path", lambda *parts: None)          # no ../shared copy
    url = f"{base}/lbpcascade_animeface.xml"
    with pytest.raises(DetectorError, match="not cached .* may not be downloaded"):
        fetch_cascade(url, detectors.LBP_SHA256, cache=tmp_path / "cache", download=False)
    assert _QuietHandler.requests == 0
    path = fetch_cascade(url, detectors.LBP_SHA256, cache=tmp_path / "cache")     # once downloaded ...
    assert fetch_cascade(url, detectors.LBP_SHA256, cache=tmp_path / "cache", download=False) == path   # ... cached
