"""The training crops, decoded once into a file read per batch: a million faces on one machine.

`cached_images` gives the faces as `FaceRows` over a NumPy `.npy` file: `images[idx]` is a
uint8 [B, 3, S, S] tensor of just those rows, read from the file (the page cache) with
pread. The process holds only the batch: its memory is the same at 10,000 faces as at
1,000,000, however long it trains (a memory map would keep every page it ever touched
mapped, plus the kernel's fault-around neighbours: +640 MB after 50 steps at 1M faces).
Every torchrun rank reads the same file and only its own share of each batch.

The file is keyed by the faces' content (ids and crop hashes, in order) and the size, as the
old `.pt` cache was (those are ignored now). A sketch model's line art (`curate sketch`) goes
through the same machinery as a second file of one-channel rows (`Pictures`: what a file holds). It is written by N worker processes, each
decoding a chunk of faces and writing it in place, into `NAME.partial`; `NAME.partial.done`
lists the chunks written, so an interrupted build resumes where it stopped; the finished
file is renamed into place, so a half-written cache is never used; a full disk removes the
partial file (CacheError: one line naming the file and the disk) and the next run builds it
again. A lock file makes other processes (the other torchrun ranks) wait for the one that
builds it.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from db import Catalog, CatalogError

from train.disk import free_text, size_text, why
from train.sketch.drawing import at_size

CHUNK = 256             # faces a worker decodes and writes at once (small: the workers finish together)


class CacheError(ValueError):
    """The cache file could not be written (a full disk): said in one line, as the commands say a
    ValueError; nothing of it is left, and the next run builds it again."""


class UndecodableCrop(CatalogError):
    """A face whose stored picture does not decode (args: face id, why, the catalog; picklable, so
    a worker's reaches the parent whole)."""

    def __str__(self) -> str:
        face_id, why, where = self.args
        return f"face {face_id} in {where}: {why}"


def decode_crop(blob: bytes, size: int) -> np.ndarray:
    img = Image.open(io.BytesIO(blob)).convert("RGB")
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.LANCZOS)
    return np.array(img, dtype=np.uint8).transpose(2, 0, 1)


def decode_sketch(blob: bytes, size: int) -> np.ndarray:
    """Stored line art -> uint8 [1, size, size], resized as users' drawings are (train.sketch.drawing)."""
    return at_size(np.array(Image.open(io.BytesIO(blob)).convert("L")), size)[None]


@dataclass(frozen=True)
class Pictures:
    """What a cache file holds per face: its crop (CROPS), or a derived image such as its line art
    made with one parameter set (`Pictures("sketch", params_hash)`), which is part of the key."""
    kind: str = "crop"
    salt: str = ""

    @property
    def channels(self) -> int:
        return 3 if self.kind == "crop" else 1

    @property
    def stem(self) -> str:
        return "faces" if self.kind == "crop" else self.kind     # the file name's start

    def hashes(self, catalog: Catalog, ids: list[int]):
        if self.kind == "crop":
            return catalog.iter_face_hashes(ids)
        hashes = catalog.derived_hashes(self.kind, ids)
        return ((fid, hashes.get(fid, "")) for fid in ids)

    def blobs(self, catalog: Catalog, ids: list[int]):
        return catalog.iter_face_images(ids) if self.kind == "crop" else \
            catalog.iter_derived_images(self.kind, ids)

    def decode(self, blob: bytes, size: int) -> np.ndarray:
        return decode_crop(blob, size) if self.kind == "crop" else decode_sketch(blob, size)


CROPS = Pictures()


def cache_key(catalog: Catalog, ids: list[int], size: int, what: Pictures = CROPS) -> str:
    """A hash of the faces' ids and picture hashes, in order, and the size (read in batches)."""
    h = hashlib.sha256(f"{size}:{what.salt}".encode())
    for fid, sha in what.hashes(catalog, ids):
        h.update(f"{fid}:{sha};".encode())
    return h.hexdigest()[:20]


def cached_images(catalog: Catalog, ids: list[int], size: int, cache_dir: Path | None,
                  progress=None, workers: int | None = None, what: Pictures = CROPS) -> FaceRows | torch.Tensor:
    """uint8 [N, C, size, size] for the faces `ids` (their crops, or `what` else), decoded once with
    `workers` processes (default: one per core) into a file in `cache_dir` and read from it per
    batch (FaceRows); with `cache_dir` None, decoded into a tensor in memory."""
    shape = (len(ids), what.channels, size, size)
    if cache_dir is None:
        out = np.empty(shape, dtype=np.uint8)
        for start in range(0, len(ids), CHUNK):
            out[start:start + CHUNK] = _decode_chunk(catalog, ids[start:start + CHUNK], size, what)
        return torch.from_numpy(out)
    path = cache_path(catalog, ids, size, cache_dir, what)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)     # another rank may be building it: wait, then use its file
        if _header(path, shape) is None:
            _build_or_clean(catalog, ids, size, path, progress, workers or os.cpu_count() or 1, what)
    return open_cache(path)


def cache_path(catalog: Catalog, ids: list[int], size: int, cache_dir: Path, what: Pictures = CROPS) -> Path:
    """The cache file of these faces at this size in `cache_dir`."""
    return Path(cache_dir) / f"{what.stem}-{size}px-{len(ids)}-{cache_key(catalog, ids, size, what)}.npy"


def discard_partial(path: Path) -> None:
    """Remove the unfinished build of the cache file `path` (one that will never be finished:
    its faces changed, e.g. a crop that does not decode was set aside)."""
    for unfinished in (path.with_name(path.name + ".partial"), path.with_name(path.name + ".partial.done")):
        unfinished.unlink(missing_ok=True)


class FaceRows:
    """The rows of a cache file, read on demand: `rows[idx]` (an int, a slice, or a list or
    tensor of indices) -> a uint8 tensor of those faces, in that order."""

    dtype = torch.uint8

    def __init__(self, path: Path):
        self.path = Path(path)
        with open(self.path, "rb") as f:
            shape, self.offset = _read_header(f)
        self.shape = torch.Size(shape)
        self.row_bytes = int(np.prod(shape[1:]))
        self._open()

    def _open(self) -> None:
        self.fd = os.open(self.path, os.O_RDONLY)
        if hasattr(os, "posix_fadvise"):   # batches are random rows: no read-ahead around them
            os.posix_fadvise(self.fd, 0, 0, os.POSIX_FADV_RANDOM)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, idx) -> torch.Tensor:
        n = len(self)
        if isinstance(idx, slice):
            start, stop, step = idx.indices(n)
            if step == 1:       # one read for a run of rows (evaluation walks the set in slices)
                out = np.empty((max(stop - start, 0), *self.shape[1:]), np.uint8)
                self._read(out, start)
                return torch.from_numpy(out)
            idx = range(start, stop, step)
        single = isinstance(idx, (int, np.integer)) or (torch.is_tensor(idx) and idx.ndim == 0)
        rows = torch.as_tensor([idx] if single else idx, dtype=torch.long).reshape(-1)
        rows = torch.where(rows < 0, rows + n, rows)
        if len(rows) and (int(rows.min()) < 0 or int(rows.max()) >= n):
            raise IndexError(f"face index out of range for {n} faces")
        out = np.empty((len(rows), *self.shape[1:]), np.uint8)
        for i, r in enumerate(rows.tolist()):
            self._read(out[i:i + 1], r)
        return torch.from_numpy(out[0] if single else out)

    def _read(self, out: np.ndarray, row: int) -> None:
        view, at = memoryview(out).cast("B"), self.offset + row * self.row_bytes
        while view:
            n = os.preadv(self.fd, [view], at)
            if n <= 0:
                raise OSError(f"{self.path} is shorter than its header says")
            view, at = view[n:], at + n

    def __getstate__(self) -> dict:      # (worker processes reopen the file)
        return {k: v for k, v in self.__dict__.items() if k != "fd"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._open()

    def __del__(self) -> None:
        fd = self.__dict__.get("fd")
        if fd is not None:
            os.close(fd)


def open_cache(path: Path) -> FaceRows:
    return FaceRows(path)


def _build_or_clean(catalog: Catalog, ids: list[int], size: int, path: Path, progress, workers: int,
                    what: Pictures) -> None:
    """_build; on a full disk (any OSError writing), the partial file removed (it frees that
    space; a half-built file is never trusted) and one line naming the file and the disk."""
    try:
        _build(catalog, ids, size, path, progress, workers, what)
    except OSError as e:
        for leftover in (path.with_name(path.name + ".partial"), path.with_name(path.name + ".partial.done")):
            leftover.unlink(missing_ok=True)
        needs = size_text(len(ids) * what.channels * size * size)
        raise CacheError(f"{why(e)} writing the training-image cache {path} ({free_text(path.parent)}, it needs "
                         f"{needs}): free space or give --cache-dir on another disk; the next run builds it "
                         "again") from e


def _build(catalog: Catalog, ids: list[int], size: int, path: Path, progress, workers: int,
           what: Pictures = CROPS) -> None:
    partial, log = path.with_name(path.name + ".partial"), path.with_name(path.name + ".partial.done")
    shape = (len(ids), what.channels, size, size)
    done: set[int] = set()
    if partial.exists() and log.exists() and _header(partial, shape) is not None:
        done = _chunks_written(log)     # resume the chunks not written yet
    else:
        np.lib.format.open_memmap(partial, mode="w+", dtype=np.uint8, shape=shape).flush()  # header + holes
        log.write_text("")
    offset = _header(partial, shape)
    chunks = [c for c in range(-(-len(ids) // CHUNK)) if c not in done]
    task = None
    if progress is not None:
        task = progress.add_task(f"decoding {len(ids)} {what.kind} images to {size}x{size}", total=len(ids),
                                 completed=min(len(done) * CHUNK, len(ids)))
    jobs = [(c, ids[c * CHUNK:(c + 1) * CHUNK]) for c in chunks]
    workers = min(workers, len(jobs)) if catalog.path is not None else 1   # an in-memory catalog: here only
    fd = os.open(partial, os.O_WRONLY)
    try:
        with open(log, "a") as written:
            if workers > 1:
                ctx = multiprocessing.get_context("fork")
                with ctx.Pool(workers, _init_worker, (str(catalog.path), str(partial), offset, size, what)) as pool:
                    for c, n in pool.imap_unordered(_write_chunk, jobs):
                        _chunk_done(written, c, n, progress, task)
            else:
                for c, chunk in jobs:
                    _write_rows(fd, offset, c, _decode_chunk(catalog, chunk, size, what))
                    _chunk_done(written, c, len(chunk), progress, task)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(partial, path)
    log.unlink()


def _chunks_written(log: Path) -> set[int]:
    """The chunks the log lists, whole lines only (a line cut short by a crash is not trusted)."""
    lines = log.read_text().split("\n")[:-1]     # what follows the last newline is not a whole line
    return {int(line) for line in lines if line.isdigit()}


def _chunk_done(log, chunk: int, n: int, progress, task) -> None:
    log.write(f"{chunk}\n")
    log.flush()
    if task is not None:
        progress.update(task, advance=n)


def _read_header(f) -> tuple[tuple, int]:
    """(shape, where the rows start) of a `.npy` file of uint8 rows; ValueError otherwise."""
    fmt = np.lib.format
    read = fmt.read_array_header_1_0 if fmt.read_magic(f) == (1, 0) else fmt.read_array_header_2_0
    shape, fortran, dtype = read(f)
    if dtype != np.uint8 or fortran:
        raise ValueError("not a file of uint8 rows")
    return shape, f.tell()


def _header(partial: Path, shape: tuple) -> int | None:
    """Where the rows start in a complete `.npy` file of this shape (None: not such a file)."""
    try:
        with open(partial, "rb") as f:
            got, offset = _read_header(f)
        if got != shape or os.path.getsize(partial) != offset + int(np.prod(shape)):
            return None
        return offset
    except (OSError, ValueError):
        return None


def _decode_chunk(catalog: Catalog, chunk: list[int], size: int, what: Pictures = CROPS) -> np.ndarray:
    out = np.empty((len(chunk), what.channels, size, size), dtype=np.uint8)
    for i, (fid, blob) in enumerate(what.blobs(catalog, chunk)):
        try:
            out[i] = what.decode(blob, size)
        except Exception as e:
            raise UndecodableCrop(fid, f"{what.kind} does not decode ({e})", str(catalog.path)) from e
    return out


def _write_rows(fd: int, offset: int, chunk: int, rows: np.ndarray) -> None:
    data = memoryview(np.ascontiguousarray(rows)).cast("B")
    at = offset + chunk * CHUNK * rows[0].nbytes
    while data:
        n = os.pwrite(fd, data, at)
        data, at = data[n:], at + n


# -- the worker processes -------------------------------------------------------------------

_worker: dict = {}


def _init_worker(catalog_path: str, partial: str, offset: int, size: int, what: Pictures) -> None:
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the parent's: it stops us
    _worker.update(catalog=Catalog(catalog_path, create=False), fd=os.open(partial, os.O_WRONLY),
                   offset=offset, size=size, what=what)


def _write_chunk(job: tuple[int, list[int]]) -> tuple[int, int]:
    chunk, ids = job
    _write_rows(_worker["fd"], _worker["offset"], chunk, _decode_chunk(_worker["catalog"], ids, _worker["size"],
                                                                         _worker["what"]))
    return chunk, len(ids)
