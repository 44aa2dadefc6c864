"""The training crops, decoded once into a memory-mapped file: a million faces on one machine.

`cached_images` gives uint8 [N, 3, S, S] as a torch tensor over a NumPy `.npy` file opened
with mmap, so `images[idx]` reads only the batch's rows from disk (the page cache): the
process's memory does not grow with the data set, and every torchrun rank maps the same
file and reads only its own share of each batch.

The file is keyed by the faces' content (ids and crop hashes, in order) and the size, as the
old `.pt` cache was (those are ignored now). It is written by N worker processes, each
decoding a chunk of faces and writing it in place, into `NAME.partial`; `NAME.partial.done`
lists the chunks written, so an interrupted build resumes where it stopped; the finished
file is renamed into place, so a half-written cache is never used. A lock file makes other
processes (the other torchrun ranks) wait for the one that builds it.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import mmap
import multiprocessing
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from db import Catalog, CatalogError
from db.training import iter_face_hashes, iter_face_images

CHUNK = 256             # faces a worker decodes and writes at once (small: the workers finish together)


def decode_crop(blob: bytes, size: int) -> np.ndarray:
    img = Image.open(io.BytesIO(blob)).convert("RGB")
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.LANCZOS)
    return np.array(img, dtype=np.uint8).transpose(2, 0, 1)


def cache_key(catalog: Catalog, ids: list[int], size: int) -> str:
    """A hash of the faces' ids and crop hashes, in order, and the size (read in batches)."""
    h = hashlib.sha256(f"{size}:".encode())
    for fid, sha in iter_face_hashes(catalog, ids):
        h.update(f"{fid}:{sha};".encode())
    return h.hexdigest()[:20]


def cached_images(catalog: Catalog, ids: list[int], size: int, cache_dir: Path | None,
                  progress=None, workers: int | None = None) -> torch.Tensor:
    """uint8 [N, 3, size, size] for the faces `ids`, decoded once with `workers` processes
    (default: one per core) and memory-mapped from `cache_dir` (None: decoded into memory)."""
    if cache_dir is None:
        out = np.empty((len(ids), 3, size, size), dtype=np.uint8)
        for start in range(0, len(ids), CHUNK):
            out[start:start + CHUNK] = _decode_chunk(catalog, ids[start:start + CHUNK], size)
        return torch.from_numpy(out)
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"faces-{size}px-{len(ids)}-{cache_key(catalog, ids, size)}.npy"
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)     # another rank may be building it: wait, then use its file
        if not _complete(path, (len(ids), 3, size, size)):
            _build(catalog, ids, size, path, progress, workers or os.cpu_count() or 1)
    return open_cache(path)


def open_cache(path: Path) -> torch.Tensor:
    """The cache file as a tensor over its memory map. Copy-on-write ("c") makes the array
    writable for torch without ever changing the file; random access is advised, so a batch
    pages in its own rows rather than read-ahead around each of them."""
    array = np.load(path, mmap_mode="c")
    try:
        array._mmap.madvise(mmap.MADV_RANDOM)
    except (AttributeError, OSError, ValueError):
        pass
    return torch.from_numpy(array)


def _complete(path: Path, shape: tuple) -> bool:
    try:
        return np.load(path, mmap_mode="r").shape == shape
    except (OSError, ValueError):
        return False


def _build(catalog: Catalog, ids: list[int], size: int, path: Path, progress, workers: int) -> None:
    partial, log = path.with_name(path.name + ".partial"), path.with_name(path.name + ".partial.done")
    shape = (len(ids), 3, size, size)
    done: set[int] = set()
    if partial.exists() and log.exists() and _header(partial, shape) is not None:
        done = {int(line) for line in log.read_text().split()}     # resume the chunks not written yet
    else:
        np.lib.format.open_memmap(partial, mode="w+", dtype=np.uint8, shape=shape).flush()  # header + holes
        log.write_text("")
    offset = _header(partial, shape)
    chunks = [c for c in range(-(-len(ids) // CHUNK)) if c not in done]
    task = None
    if progress is not None:
        task = progress.add_task(f"decoding {len(ids)} crops to {size}x{size}", total=len(ids),
                                 completed=min(len(done) * CHUNK, len(ids)))
    jobs = [(c, ids[c * CHUNK:(c + 1) * CHUNK]) for c in chunks]
    workers = min(workers, len(jobs)) if catalog.path is not None else 1   # an in-memory catalog: here only
    fd = os.open(partial, os.O_WRONLY)
    try:
        with open(log, "a") as written:
            if workers > 1:
                ctx = multiprocessing.get_context("fork")
                with ctx.Pool(workers, _init_worker, (str(catalog.path), str(partial), offset, size)) as pool:
                    for c, n in pool.imap_unordered(_write_chunk, jobs):
                        _chunk_done(written, c, n, progress, task)
            else:
                for c, chunk in jobs:
                    _write_rows(fd, offset, c, _decode_chunk(catalog, chunk, size))
                    _chunk_done(written, c, len(chunk), progress, task)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(partial, path)
    log.unlink()


def _chunk_done(log, chunk: int, n: int, progress, task) -> None:
    log.write(f"{chunk}\n")
    log.flush()
    if task is not None:
        progress.update(task, advance=n)


def _header(partial: Path, shape: tuple) -> int | None:
    """Where the rows start in a `.npy` file of this shape and uint8 (None: not such a file)."""
    try:
        with open(partial, "rb") as f:
            fmt = np.lib.format
            read = fmt.read_array_header_1_0 if fmt.read_magic(f) == (1, 0) else fmt.read_array_header_2_0
            got, _, dtype = read(f)
            if got != shape or dtype != np.uint8 or os.path.getsize(partial) != f.tell() + int(np.prod(shape)):
                return None
            return f.tell()
    except (OSError, ValueError):
        return None


def _decode_chunk(catalog: Catalog, chunk: list[int], size: int) -> np.ndarray:
    out = np.empty((len(chunk), 3, size, size), dtype=np.uint8)
    for i, (fid, blob) in enumerate(iter_face_images(catalog, chunk)):
        try:
            out[i] = decode_crop(blob, size)
        except Exception as e:
            raise CatalogError(f"face {fid} in {catalog.path}: crop does not decode ({e})") from e
    return out


def _write_rows(fd: int, offset: int, chunk: int, rows: np.ndarray) -> None:
    data = memoryview(np.ascontiguousarray(rows)).cast("B")
    at = offset + chunk * CHUNK * rows[0].nbytes
    while data:
        n = os.pwrite(fd, data, at)
        data, at = data[n:], at + n


# -- the worker processes -------------------------------------------------------------------

_worker: dict = {}


def _init_worker(catalog_path: str, partial: str, offset: int, size: int) -> None:
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the parent's: it stops us
    _worker.update(catalog=Catalog(catalog_path, create=False), fd=os.open(partial, os.O_WRONLY),
                   offset=offset, size=size)


def _write_chunk(job: tuple[int, list[int]]) -> tuple[int, int]:
    chunk, ids = job
    _write_rows(_worker["fd"], _worker["offset"], chunk, _decode_chunk(_worker["catalog"], ids, _worker["size"]))
    return chunk, len(ids)
