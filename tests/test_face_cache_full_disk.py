"""The training crops' cache on a full disk: one line naming the file and the disk, nothing
half-written left, built again by the next run (issue 24)."""

from __future__ import annotations

import errno

import pytest

from db import Catalog
from train import face_cache
from train.face_cache import CacheError, cached_images

from test_face_cache import faces  # noqa: F401  (fixture)

FULL = OSError(errno.ENOSPC, "No space left on device")


def test_the_crop_cache_on_a_full_disk_is_one_line_and_built_again_next_time(faces, tmp_path,  # noqa: F811
                                                                            monkeypatch):
    path, ids = faces
    monkeypatch.setattr(face_cache, "CHUNK", 8)
    cache = tmp_path / "cache"
    real = face_cache._write_rows

    def write_rows(fd, offset, chunk, rows):
        if chunk == 2:
            raise FULL
        real(fd, offset, chunk, rows)

    with Catalog(path) as cat:
        expected = cached_images(cat, ids, 16, None)
        monkeypatch.setattr(face_cache, "_write_rows", write_rows)
        with pytest.raises(CacheError) as e:
            cached_images(cat, ids, 16, cache, workers=1)
        message = str(e.value)
        assert message.startswith(f"disk full writing the training-image cache {cache}/faces-16px-40-")
        assert "free on the disk at /" in message and "\n" not in message
        assert sorted(p.name for p in cache.iterdir() if not p.name.endswith(".lock")) == []
        monkeypatch.setattr(face_cache, "_write_rows", real)
        assert cached_images(cat, ids, 16, cache, workers=1)[:].equal(expected)


def test_a_chunk_log_line_cut_short_is_not_trusted(tmp_path):
    log = tmp_path / "x.partial.done"
    log.write_text("0\n1\n12")
    assert face_cache._chunks_written(log) == {0, 1}
