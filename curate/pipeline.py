"""`curate crop` / `curate import`: pictures in a folder -> faces in the catalog.

Workers (processes) read, decode, detect and crop one file each and return plain
results; the main process is the ONE writer. It writes each source's status row
and faces together, batching several sources per transaction, so a crash or
Ctrl-C loses at most the last uncommitted batch and a rerun finishes the rest.
Duplicates are decided by the writer, inside the transaction, against what is
committed (so two runs at once on one catalog neither double nor miss anything).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from db import Catalog

from curate import detectors, on_ray
from curate import face_measures as quality
from curate.cropping import crop_square, cut
from curate.images import DEFAULT_MAX_PIXELS, ImageError, Skipped, decode, iter_image_files, png_bytes
from curate.workers import OrderedWorkers


@dataclass(frozen=True)
class CropOptions:
    """Everything a run needs, in one plain structure (also what workers receive)."""
    detector: str = "animeface"
    cascade: str | None = None
    margin: float = 1.5          # crop side = max(box w, h) * margin
    size: int = 128              # crops are size x size
    min_face: int = 24           # faces whose box is smaller (source pixels) are rejected
    max_upscale: float = 2.0     # faces needing more enlargement than this to reach `size` are rejected
    detect_max: int = 1280       # pictures are shrunk to this long side for detection (0: never)
    near_dup: int = 4            # pHash Hamming distance at or below which a face is a near-duplicate (-1: off)
    min_score: float | None = None      # reject faces the detector scores below this
    min_blur: float | None = None       # reject faces with variance of Laplacian below this
    min_chroma: float | None = None     # reject faces with mean chroma below this (greyscale)
    max_pixels: int = DEFAULT_MAX_PIXELS
    workers: int = 0             # 0: one per core
    no_detect: bool = False      # import: each file is one face, as it is
    keep_max: int = 512          # import: keep the original bytes of JPEG/PNG up to this side


@dataclass
class SourceResult:
    path: str
    size: int | None = None
    sha256: str | None = None
    width: int | None = None
    height: int | None = None
    status: str = "error"
    message: str | None = None
    detector: str | None = None
    faces: list[dict] = field(default_factory=list)
    detect_s: float = 0.0


@dataclass
class Summary:
    files: int = 0               # picture files found
    skipped: int = 0             # already in the catalog
    sources: Counter = field(default_factory=Counter)   # new sources by status
    faces: Counter = field(default_factory=Counter)     # new faces by status
    reasons: Counter = field(default_factory=Counter)   # why faces were rejected
    errors: list[tuple[str, str]] = field(default_factory=list)
    detect_s: float = 0.0        # summed over workers: time inside detector calls
    wall_s: float = 0.0
    interrupted: bool = False
    failed: str | None = None    # why the workers (a Ray cluster) stopped for good

    @property
    def processed(self) -> int:
        return sum(self.sources.values())


# -- the worker side -------------------------------------------------------

_worker: dict = {}


def start_worker(options: CropOptions, spec: detectors.DetectorSpec | None, in_pool: bool = False) -> None:
    """Set up a worker (a process of the pool, this process, or a Ray actor) for process_file."""
    if in_pool:  # Ctrl-C is the main process's business: it commits what is done, then stops us
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker["options"] = options
    _worker["detector"] = None if spec is None else detectors.build(spec)


def process_file(path: str) -> SourceResult:
    """Read, decode, detect and crop one file. Never raises: problems become an error result."""
    options, detector = _worker["options"], _worker["detector"]
    result = SourceResult(path, detector="none" if options.no_detect else options.detector)
    try:
        data = Path(path).read_bytes()
        result.size, result.sha256 = len(data), hashlib.sha256(data).hexdigest()
        image = decode(data, options.max_pixels)
        result.width, result.height = image.image.size
        if options.no_detect:
            result.faces = [_whole_face(data, image, options)]
        else:
            result.faces, result.detect_s = _detect_and_crop(image.image, detector, options)
        result.status = "ok" if result.faces else "no_face"
    except ImageError as e:
        result.status, result.message = "error", str(e)
    except OSError as e:
        result.status, result.message = "error", f"cannot read ({e.strerror or e})"
    except Exception as e:  # a bug or a detector crash on one file must not stop the run
        result.status, result.message, result.faces = "error", f"{type(e).__name__}: {e}"[:200], []
    return result


def _detect_and_crop(rgb, detector, options: CropOptions) -> tuple[list[dict], float]:
    w, h = rgb.size
    scale = 1.0
    small = rgb
    if options.detect_max and max(w, h) > options.detect_max:
        scale = max(w, h) / options.detect_max
        small = rgb.resize((round(w / scale), round(h / scale)), reducing_gap=2.0)
    t0 = time.perf_counter()
    boxes = detector.detect(small)
    detect_s = time.perf_counter() - t0
    faces = []
    for box in boxes:
        box = box.scaled(scale)  # back to source pixels
        square = crop_square(box, w, h, options.margin)
        crop = cut(rgb, square, options.size)
        face = _describe(png_bytes(crop), "png", crop, options)
        face.update(box_x=box.x, box_y=box.y, box_w=box.w, box_h=box.h, crop_x=square.x, crop_y=square.y,
                    crop_size=square.size, detector=options.detector, score=box.score)
        # reasons are fixed strings so `curate stats` can count them; the figures have their own columns
        reason = None
        if max(box.w, box.h) < options.min_face:
            reason = f"face smaller than --min-face {options.min_face}"
        elif options.size > square.size * options.max_upscale:
            reason = f"upscale beyond --max-upscale {options.max_upscale:g}"
        elif options.min_score is not None and box.score is not None and box.score < options.min_score:
            reason = f"score below --min-score {options.min_score:g}"
        face.update(_quality_verdict(face, options, reason))
        faces.append(face)
    return faces, detect_s


def _whole_face(data: bytes, image, options: CropOptions) -> dict:
    rgb = image.image
    if image.plain and max(rgb.size) <= options.keep_max:
        blob, fmt = data, image.format.lower()  # the file itself: the catalog stays exact
    else:
        blob, fmt = png_bytes(rgb), "png"
    face = _describe(blob, fmt, rgb, options)
    face.update(box_x=0, box_y=0, box_w=rgb.width, box_h=rgb.height, detector="none")
    face.update(_quality_verdict(face, options, None))
    return face


def _describe(blob: bytes, fmt: str, rgb, options: CropOptions) -> dict:
    return dict(image=blob, format=fmt, width=rgb.width, height=rgb.height,
                sha256=hashlib.sha256(blob).hexdigest(), phash=quality.phash(rgb),
                blur=quality.blur(rgb), monochrome=quality.monochrome(rgb))


def _quality_verdict(face: dict, options: CropOptions, reason: str | None) -> dict:
    if reason is None and options.min_blur is not None and face["blur"] < options.min_blur:
        reason = f"blur below --min-blur {options.min_blur:g}"
    if reason is None and options.min_chroma is not None and face["monochrome"] < options.min_chroma:
        reason = f"chroma below --min-chroma {options.min_chroma:g}"
    return {"status": "rejected" if reason else "ok", "reason": reason}


# -- the writer side -------------------------------------------------------

class NearDuplicateIndex:
    """pHashes of the catalog's ok faces, kept in step with what is committed."""

    def __init__(self):
        self.ids = np.zeros(0, dtype=np.int64)
        self.hashes = np.zeros(0, dtype=np.int64)
        self.last_id = 0

    def refresh(self, catalog: Catalog) -> None:
        rows = catalog.ok_phashes_after(self.last_id)
        if rows:
            self.ids = np.concatenate([self.ids, np.array([r[0] for r in rows], dtype=np.int64)])
            self.hashes = np.concatenate([self.hashes, np.array([r[1] for r in rows], dtype=np.int64)])
        self.last_id = max(self.last_id, catalog.max_face_id())

    def add(self, face_id: int, phash: int) -> None:
        self.ids = np.append(self.ids, np.int64(face_id))
        self.hashes = np.append(self.hashes, np.int64(phash))
        self.last_id = max(self.last_id, face_id)

    def nearest(self, phash: int) -> tuple[int | None, int]:
        i, distance = quality.nearest(self.hashes, phash)
        return (None if i < 0 else int(self.ids[i])), distance


def write_results(catalog: Catalog, results: list[SourceResult], index: NearDuplicateIndex,
                  options: CropOptions, summary: Summary) -> None:
    """Write sources and their faces in one transaction, deciding duplicates against the catalog."""
    with catalog.transaction():
        index.refresh(catalog)
        for r in results:
            if catalog.source_is_done(r.path, r.size):  # another run got there first
                summary.skipped += 1
                continue
            status, message = r.status, r.message
            original = None
            if r.sha256 and status != "error":
                original = catalog.source_with_sha256(r.sha256, exclude_path=r.path)
            if original:
                status, message = "duplicate", f"same bytes as {original['path']}"
            source_id = catalog.save_source(r.path, sha256=r.sha256, size=r.size, width=r.width, height=r.height,
                                            status=status, message=message, detector=r.detector)
            summary.sources[status] += 1
            if status == "error":
                summary.errors.append((r.path, message or ""))
            if original:
                continue
            for face in r.faces:
                if face["status"] == "ok":
                    face = {**face, **_duplicate_verdict(catalog, index, face, options)}
                face_id = catalog.add_face(source_id=source_id, **face)
                summary.faces[face["status"]] += 1
                if face["status"] == "rejected":
                    summary.reasons[face["reason"]] += 1   # "score below --min-score 0.7"
                if face["status"] == "ok":
                    index.add(face_id, face["phash"])


def _duplicate_verdict(catalog: Catalog, index: NearDuplicateIndex, face: dict, options: CropOptions) -> dict:
    same = catalog.face_with_sha256(face["sha256"])
    if same:
        original = same["duplicate_of"] or same["id"]
        return {"status": "duplicate", "duplicate_of": original, "reason": f"same pixels as face {original}"}
    if options.near_dup >= 0:
        nearest, distance = index.nearest(face["phash"])
        if nearest is not None and distance <= options.near_dup:
            return {"status": "duplicate", "duplicate_of": nearest,
                    "reason": f"near-duplicate of face {nearest} (pHash distance {distance})"}
    return {}


# -- the run ---------------------------------------------------------------

def pending_files(catalog: Catalog, root: str | os.PathLike
                  ) -> tuple[list[str], int, list[str], list[Skipped]]:
    """(files to process, largest first so workers finish together; count of files found;
    files whose names cannot be stored because they are not valid UTF-8; links and folders
    passed over that the catalog has no record of yet)."""
    done = catalog.done_source_paths()
    failed = catalog.error_source_sizes()  # retried once the file has changed (fixed, finished copying)
    skipped: list[Skipped] = []
    files = [os.path.abspath(p) for p in iter_image_files(root, skipped)]
    unnamed = [p for p in files if not _is_utf8(p)]
    todo = [p for p in files if _is_utf8(p) and (p not in done or (p in failed and _size(p) != failed[p]))]
    todo.sort(key=lambda p: -_size(p))
    skipped = [s._replace(path=os.path.abspath(s.path)) for s in skipped]
    return todo, len(files), unnamed, [s for s in skipped if s.path not in done and _is_utf8(s.path)]


def record_skipped(catalog: Catalog, skipped: list[Skipped], detector: str, summary: Summary) -> None:
    """A source row for each link or folder passed over, with the reason: `curate stats` shows
    them, and a dangling link whose target appears later is read then (its size changed)."""
    if not skipped:
        return
    with catalog.transaction():
        for s in skipped:
            catalog.save_source(s.path, sha256=None, size=None, status=s.status, message=s.reason,
                                detector=detector)
            summary.sources[s.status] += 1
            if s.status == "error":
                summary.errors.append((s.path, s.reason))


def run(catalog: Catalog, root: str | os.PathLike, options: CropOptions,
        on_progress: Callable[[SourceResult, int], None] | None = None,
        batch_size: int = 32, batch_seconds: float = 2.0, ray: str | None = None, spec=None) -> Summary:
    """Process every picture under `root` not yet in the catalog; returns what happened.

    The work runs in local worker processes (`options.workers`), or on a Ray cluster with
    `ray` = "auto", "local" or its address; either way the results come back here, to the one
    writer. `on_progress(result, total)` is called after each file. Ctrl-C (KeyboardInterrupt)
    commits the results already in hand and returns with `summary.interrupted`; so does a
    cluster that fails for good, with `summary.failed` saying why. `spec`: the detector, when the
    caller resolved it already (before creating the catalog).
    """
    started = time.perf_counter()
    if ray is not None:
        on_ray.require_ray()   # says how to install it before anything is read or written
    if spec is None and not options.no_detect:
        spec = detectors.resolve(options.detector, options.cascade)
    todo, found, unnamed, passed_over = pending_files(catalog, root)
    summary = Summary(files=found, skipped=found - len(todo) - len(unnamed))
    record_skipped(catalog, passed_over, "none" if options.no_detect else options.detector, summary)
    summary.errors += [(os.fsencode(p).decode("utf-8", "replace"), "file name is not valid UTF-8: rename it")
                       for p in unnamed]
    if not todo:
        results = contextlib.nullcontext(iter(()))
    elif ray is not None:
        results = on_ray.crop_results(todo, options, spec, ray, start_worker, process_file)
    else:
        results = local_results(todo, options, spec)
    try:
        write_stream(catalog, results, options, summary, len(todo), on_progress, batch_size, batch_seconds)
    finally:
        summary.wall_s = time.perf_counter() - started
    return summary


@contextlib.contextmanager
def local_results(todo: list[str], options: CropOptions, spec) -> Iterator[Iterable[SourceResult]]:
    """The results of `todo`, in order, from worker processes on this machine (-j N)."""
    workers = min(options.workers or os.cpu_count() or 1, max(len(todo), 1))
    if workers <= 1:
        start_worker(options, spec)
        yield map(process_file, todo)
        return
    pool = OrderedWorkers(workers, process_file, start_worker, (options, spec, True))
    try:
        # in file order, so which of two duplicates is "the original" is reproducible; workers
        # still run ahead, only the writing waits. Stopping kills them: certain, even on Ctrl-C
        # while they wait for work (curate/workers.py says why not multiprocessing.Pool)
        yield pool.map(todo, lambda path, exit_code: _crashed(path, exit_code, options))
    finally:
        pool.stop()


def _crashed(path: str, exit_code: int | None, options: CropOptions) -> SourceResult:
    """The result of a file whose worker died on it (a crash in a decoder or detector); the size
    is left unknown, so the next run tries the file again."""
    how = f"killed by signal {-exit_code}" if exit_code is not None and exit_code < 0 else f"exit code {exit_code}"
    return SourceResult(path, status="error", message=f"the worker process died on this file ({how})",
                        detector="none" if options.no_detect else options.detector)


def write_stream(catalog: Catalog, results, options: CropOptions, summary: Summary, total: int,
                 on_progress: Callable[[SourceResult, int], None] | None = None,
                 batch_size: int = 32, batch_seconds: float = 2.0) -> None:
    """The one writer: results (a context manager giving an iterable, from any kind of
    workers) go into the catalog in batches of sources, each batch one transaction."""
    index = NearDuplicateIndex()
    pending: list[SourceResult] = []
    last_flush = time.perf_counter()

    def flush():
        nonlocal pending, last_flush
        if pending:
            write_results(catalog, pending, index, options, summary)
        pending, last_flush = [], time.perf_counter()

    try:
        with results as stream:
            try:
                for result in stream:
                    summary.detect_s += result.detect_s
                    pending.append(result)
                    if len(pending) >= batch_size or time.perf_counter() - last_flush > batch_seconds:
                        flush()
                    if on_progress:
                        on_progress(result, total)
                flush()
            except (KeyboardInterrupt, on_ray.WorkersFailed):
                flush()  # keep what is already done, before the workers are stopped
                raise
    except KeyboardInterrupt:
        summary.interrupted = True
    except on_ray.WorkersFailed as e:
        summary.interrupted, summary.failed = True, str(e)


def _is_utf8(path: str) -> bool:
    try:
        path.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
