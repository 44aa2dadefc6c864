"""The training crops' memory-mapped cache: built in parallel, resumable, never used half-written."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from conftest import png_bytes
from db import Catalog, CatalogError
from train import face_cache
from train.face_cache import cached_images


@pytest.fixture
def faces(tmp_path):
    """A catalog file of 40 faces of different sizes; returns (path, ids)."""
    path = tmp_path / "faces.db"
    with Catalog(path) as cat:
        sid = cat.save_source("/synthetic.png", sha256="0" * 64, size=1, status="ok")
        ids = [cat.add_face(source_id=sid, image=png_bytes(i, 24 + i % 3 * 8), format="png", width=32, height=32,
                            detector="none")
               for i in range(40)]
    return path, ids


def test_cache_is_read_per_batch_and_equals_decoding_in_memory(faces, tmp_path, monkeypatch):
    path, ids = faces
    monkeypatch.setattr(face_cache, "CHUNK", 8)            # 5 chunks, so both workers write some
    with Catalog(path) as cat:
        in_memory = cached_images(cat, ids, 16, None)
        rows = cached_images(cat, ids, 16, tmp_path / "cache", workers=2)
        again = cached_images(cat, ids[::-1], 16, tmp_path / "cache", workers=2)   # other order: other file
    files = sorted((tmp_path / "cache").glob("*.npy"))
    assert len(files) == 2 and not list((tmp_path / "cache").glob("*.partial*"))
    assert len(rows) == 40 and rows.shape == (40, 3, 16, 16) and rows.dtype == torch.uint8
    assert rows[:].equal(in_memory) and again[:].equal(in_memory.flip(0))
    # what a training step, evaluation and a torchrun rank's share do: rows by index, in any order
    for idx in [torch.tensor([3, 1, 3]), [0, 39], torch.tensor(7), 5, -1, slice(10, 20), slice(0, 40, 7)]:
        assert rows[idx].equal(in_memory[idx]), idx
    with pytest.raises(IndexError):
        rows[torch.tensor([40])]
    # nothing of the file is mapped into the process: memory holds the batch, not the data set
    assert not any(str(f) in line for line in open("/proc/self/maps") for f in files)
    assert pickle.loads(pickle.dumps(rows))[[2]].equal(in_memory[[2]])   # (DataLoader workers)


def test_interrupted_build_resumes_and_a_half_written_cache_is_never_used(faces, tmp_path, monkeypatch):
    path, ids = faces
    monkeypatch.setattr(face_cache, "CHUNK", 8)
    cache = tmp_path / "cache"
    with Catalog(path) as cat:
        expected = cached_images(cat, ids, 16, None)
        good = cat.face_image(ids[20])
        cat.conn.execute("UPDATE face_images SET image = ? WHERE face_id = ?", (b"garbage", ids[20]))
        with pytest.raises(CatalogError, match=f"face {ids[20]} .*does not decode"):
            cached_images(cat, ids, 16, cache, workers=2)
        assert not list(cache.glob("*.npy"))                # nothing usable was left
        done = next(cache.glob("*.partial.done")).read_text().split()
        assert "2" not in done and set(done) <= {"0", "1", "3", "4"}   # chunk 2 (faces 16-23) failed
        cat.conn.execute("UPDATE face_images SET image = ? WHERE face_id = ?", (good, ids[20]))
        decoded = []
        real = face_cache._decode_chunk
        monkeypatch.setattr(face_cache, "_decode_chunk", lambda c, chunk, s, *what: decoded.append(chunk) or
                            real(c, chunk, s, *what))
        images = cached_images(cat, ids, 16, cache, workers=1)
        missing = [ids[c * 8:(c + 1) * 8] for c in range(5) if str(c) not in done]
        assert ids[16:24] in missing and decoded == missing  # the resumed build decoded only what was missing
        assert images[:].equal(expected)
        # a cache file cut short (a disk that filled up, a copy interrupted) is rebuilt, not used
        final = next(cache.glob("*.npy"))
        del images
        final.write_bytes(final.read_bytes()[:-100])
        decoded.clear()
        assert cached_images(cat, ids, 16, cache, workers=1)[:].equal(expected)
        assert len(decoded) == 5
    assert np.load(final, mmap_mode="r").shape == (40, 3, 16, 16)
