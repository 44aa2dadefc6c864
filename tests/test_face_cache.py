"""The training crops' memory-mapped cache: built in parallel, resumable, never used half-written."""

from __future__ import annotations

import numpy as np
import pytest

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


def mapped_files(tensor) -> set[str]:
    """The files whose memory mapping holds this tensor's data (from /proc/self/maps)."""
    addr = tensor.data_ptr()
    out = set()
    for line in open("/proc/self/maps"):
        parts = line.split()
        lo, hi = (int(x, 16) for x in parts[0].split("-"))
        if lo <= addr < hi and len(parts) > 5:
            out.add(parts[5])
    return out


def test_cache_is_memory_mapped_and_equals_decoding_in_memory(faces, tmp_path, monkeypatch):
    path, ids = faces
    monkeypatch.setattr(face_cache, "CHUNK", 8)            # 5 chunks, so both workers write some
    with Catalog(path) as cat:
        in_memory = cached_images(cat, ids, 16, None)
        mapped = cached_images(cat, ids, 16, tmp_path / "cache", workers=2)
        again = cached_images(cat, ids[::-1], 16, tmp_path / "cache", workers=2)   # other order: other file
    assert mapped.dtype == in_memory.dtype and mapped.shape == (40, 3, 16, 16)
    assert mapped.equal(in_memory) and again.equal(in_memory.flip(0))
    files = sorted((tmp_path / "cache").glob("*.npy"))
    assert len(files) == 2 and not list((tmp_path / "cache").glob("*.partial*"))
    assert str(files[0]) in mapped_files(mapped) or str(files[1]) in mapped_files(mapped)
    assert mapped[[3, 1]].equal(in_memory[[3, 1]])        # what a training step does: rows by index


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
        monkeypatch.setattr(face_cache, "_decode_chunk", lambda c, chunk, s: decoded.append(chunk) or real(c, chunk, s))
        images = cached_images(cat, ids, 16, cache, workers=1)
        missing = [ids[c * 8:(c + 1) * 8] for c in range(5) if str(c) not in done]
        assert ids[16:24] in missing and decoded == missing  # the resumed build decoded only what was missing
        assert images.equal(expected)
        # a cache file cut short (a disk that filled up, a copy interrupted) is rebuilt, not used
        final = next(cache.glob("*.npy"))
        del images
        final.write_bytes(final.read_bytes()[:-100])
        decoded.clear()
        assert cached_images(cat, ids, 16, cache, workers=1).equal(expected)
        assert len(decoded) == 5
    assert np.load(final, mmap_mode="r").shape == (40, 3, 16, 16)
