"""`curate sketch`: derive an image (line art) from every ok crop and keep it in the catalog.

Workers (forked processes) read crops from the catalog file themselves and return encoded
results; the main process is the one writer and commits a batch at a time, so Ctrl-C or a
crash loses at most the batch in hand and a rerun does only what is missing. A face is
redone when its crop or the parameters change (db/derived.py), never otherwise.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

from db import Catalog, CatalogError

from curate.lineart import LineArtError, XDoGParams, line_art_png, make_params, params_hash, params_json

KINDS = ("sketch",)
CHUNK = 32           # faces per worker task: enough to amortise the hand-over, small enough to share out


@dataclass
class DeriveSummary:
    kind: str
    method: str
    params_hash: str
    todo: int = 0                 # faces that needed (re)making at the start
    up_to_date: int = 0           # ok faces already current
    made: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    wall_s: float = 0.0
    interrupted: bool = False


@dataclass(frozen=True)
class _Job:
    kind: str
    method: str
    params: XDoGParams
    params_json: str
    params_hash: str


_worker: dict = {}


def _init_worker(job: _Job, db_path: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the main process's: it commits, then stops us
    _worker["catalog"] = Catalog(db_path, create=False)   # a connection of our own after the fork
    _worker["job"] = job


def derive_one(job: _Job, face_id: int, face_sha: str, crop: bytes) -> dict:
    """One face's row for `face_derived`; never raises: a failure becomes the row's error."""
    row = dict(face_id=face_id, kind=job.kind, method=job.method, params=job.params_json,
               params_hash=job.params_hash, face_sha256=face_sha)
    try:
        png, w, h = line_art_png(crop, job.method, job.params)
        row.update(format="png", width=w, height=h, image=png, sha256=hashlib.sha256(png).hexdigest())
    except LineArtError as e:
        row["error"] = str(e)
    except Exception as e:  # a bug on one face must not stop the run; it is named in the summary
        row["error"] = f"{type(e).__name__}: {e}"[:200]
    return row


def _derive_chunk(face_ids: list[int]) -> list[dict]:
    job, catalog = _worker["job"], _worker["catalog"]
    return [derive_one(job, fid, sha, crop) for fid, sha, crop in catalog.crops_with_hashes(face_ids)]


def _chunks(ids: list[int], size: int) -> Iterator[list[int]]:
    for i in range(0, len(ids), size):
        yield ids[i:i + size]


def derive(catalog: Catalog, kind: str = "sketch", method: str = "xdog", params: XDoGParams | None = None,
           workers: int = 0, on_progress: Callable[[int, int], None] | None = None,
           batch_seconds: float = 2.0, limit: int | None = None, chunk: int = CHUNK) -> DeriveSummary:
    """Make the `kind` image of every ok face that lacks a current one; returns what happened.

    `on_progress(n_done_now, total)` is called first with 0, then after every `chunk` faces.
    `workers`: 0 = one per core; several need a catalog file (they open it themselves).
    KeyboardInterrupt commits what is in hand and returns with `summary.interrupted`.
    """
    if kind not in KINDS:
        raise CatalogError(f"unknown derived kind {kind!r}; one of: {', '.join(KINDS)}")
    params = params or make_params(method)     # also refuses an unknown method, before any work
    job = _Job(kind, method, params, params_json(method, params), params_hash(method, params))
    started = time.perf_counter()
    todo = catalog.faces_to_derive(kind, job.params_hash)
    summary = DeriveSummary(kind, method, job.params_hash, todo=len(todo),
                            up_to_date=len(catalog.face_ids("ok")) - len(todo))
    if limit is not None:
        todo = todo[:limit]
    workers = min(workers or os.cpu_count() or 1, max(1, -(-len(todo) // chunk)))
    if workers > 1 and catalog.path is None:
        workers = 1   # an in-memory catalog cannot be opened by another process
    pending: list[dict] = []
    last_flush = time.perf_counter()

    def flush() -> None:
        nonlocal pending, last_flush
        if pending:
            catalog.save_derived(pending)
            summary.made += sum(1 for r in pending if r.get("image") is not None)
            summary.errors += [(r["face_id"], r["error"]) for r in pending if r.get("error")]
        pending, last_flush = [], time.perf_counter()

    pool = None
    try:
        if on_progress:
            on_progress(0, len(todo))
        if workers > 1:
            catalog.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")   # workers see every committed crop
            pool = multiprocessing.get_context("fork").Pool(workers, _init_worker, (job, str(catalog.path)))
            results: Iterable[list[dict]] = pool.imap_unordered(_derive_chunk, _chunks(todo, chunk))
        else:
            results = ([derive_one(job, *face) for face in catalog.crops_with_hashes(ids)]
                       for ids in _chunks(todo, chunk))
        for rows in results:
            pending += rows
            if len(pending) >= 8 * chunk or time.perf_counter() - last_flush > batch_seconds:
                flush()
            if on_progress:
                on_progress(len(rows), len(todo))
        flush()
        if pool:
            pool.close()
    except KeyboardInterrupt:
        summary.interrupted = True
        flush()   # keep what is already made
    finally:
        if pool:
            pool.terminate()
            pool.join()
        summary.wall_s = time.perf_counter() - started
    return summary
