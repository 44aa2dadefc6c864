"""`curate crop --ray` and `curate tag --ray`: the work of `-j N` on a Ray cluster.

The work list is made from the catalog exactly as without Ray (pipeline.pending_files,
the untagged faces); only the workers change. The list goes to Ray Data as a dataset,
the work runs in an actor pool (each actor builds its detector or tagger once), and the
results stream back, in order, to this process: the one writer, which writes them through
the same code as local workers (pipeline.write_stream, taggers.tagging.tag_catalog). What the
workers run comes from the caller (pipeline.py, taggers/tagging.py): this module imports neither.

Where things must be on a real cluster (README, "On a Ray cluster"):
- the catalog stays on the driver's machine; only this process writes it. `curate tag`
  reads the crops there, in tasks pinned to the driver's node, so run the driver on a
  node of the cluster (the head node, say), not through Ray Client.
- `curate crop`'s pictures are read by the workers: they must be readable at the same
  path on every node (a shared file system).
- this project's code travels with the job (runtime_env py_modules); its dependencies
  (animeface, opencv, torch) must be installed on every node.

A worker that dies is restarted and its file retried (Ray Data's actor pools do that);
a cluster that fails for good stops the run with WorkersFailed after what came back is
written, and a rerun does the rest.
"""

from __future__ import annotations

import contextlib
import json
import logging
import pickle
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Iterator, NamedTuple

from db import Catalog

INSTALL_HINT = "pip install -e '.[ray]'"
MAX_BLOCKS = 50_000     # beyond this, a block holds several files (Ray's per-block overhead)


class RayUnavailable(Exception):
    """Ray is not installed, or the cluster cannot be reached."""


class WorkersFailed(Exception):
    """The workers (a Ray cluster) failed for good; what came back before is written."""


def require_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise RayUnavailable(f"--ray needs Ray Data, which is not installed: {INSTALL_HINT}") from None
    return ray


@contextlib.contextmanager
def connected(address: str) -> Iterator[object]:
    """Ray, connected to `address` ("auto": the cluster this machine belongs to; "local":
    a Ray started here for this run; else a cluster address). A Ray already initialised in
    this process (tests) is used as it is and left running."""
    ray = require_ray()
    owned = not ray.is_initialized()
    if owned:
        here = Path(__file__).resolve().parent.parent
        # The job carries this project's code, so workers run exactly the driver's version.
        env = {"py_modules": [str(here / name) for name in ("curate", "db", "train")]}
        try:
            if address == "local":
                ray.init(runtime_env=env, include_dashboard=False, log_to_driver=False,
                         logging_level=logging.ERROR)
            else:
                ray.init(address=address, runtime_env=env, log_to_driver=False, logging_level=logging.ERROR)
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = "no Ray cluster found from this machine (`ray start --head` makes one; --ray local " \
                    "starts one for this run)" if address == "auto" else f"cannot reach the Ray cluster at {address}"
            raise RayUnavailable(f"--ray {address}: {where}: {str(e).splitlines()[0] if str(e) else e}") from None
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True   # results in work-list order, as imap gives them
    ctx.enable_progress_bars = False              # ours is on screen
    ctx.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    try:
        yield ray
    finally:
        if owned:
            ray.shutdown()


def cluster_cpus(ray) -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def cluster_gpus(ray) -> int:
    return int(ray.cluster_resources().get("GPU", 0))


@contextlib.contextmanager
def _streamed(rows: Iterable, convert: Callable) -> Iterator[Iterator]:
    """Ray's results, converted one by one. Whatever stops the stream for good becomes
    WorkersFailed, raised where the writer iterates, so it writes what came back first;
    and the stream is closed whatever stops the writer, so Ray's executor stops too."""
    it = iter(rows)

    def stream():
        try:
            for row in it:
                yield convert(row)
        except Exception as e:   # Ray's own, or a worker's error Ray gave up retrying
            first = next((line for line in str(e).splitlines() if line.strip()), type(e).__name__)
            raise WorkersFailed(f"the Ray job failed: {first[:300]}") from e

    out = stream()
    try:
        yield out
    finally:
        out.close()
        if hasattr(it, "close"):
            it.close()


# -- curate crop ------------------------------------------------------------------------------

class CropActor:
    """One per worker slot: `start(options, spec)` builds the detector once, then `work(path)`
    reads, detects and crops each file (both given by the caller: pipeline.py)."""

    def __init__(self, start: Callable, work: Callable, options, spec, cascade: bytes | None):
        if cascade is not None:   # the driver's cascade file, so nodes need no copy of their own
            path = Path(tempfile.mkdtemp(prefix="curate-cascade-")) / "cascade.xml"
            path.write_bytes(cascade)
            spec = type(spec)(spec.name, str(path))
        start(options, spec)
        self.work = work

    def __call__(self, batch: dict) -> dict:
        return {"result": [pickle.dumps(self.work(str(p))) for p in batch["path"]]}


@contextlib.contextmanager
def crop_results(todo: list[str], options, spec, address: str, start: Callable, work: Callable):
    """`work(path)` of every file of `todo`, in order, computed on Ray by actors each set up once
    with `start(options, spec)`."""
    with connected(address) as ray:
        cascade = Path(spec.cascade).read_bytes() if spec is not None and spec.cascade else None
        actors = min(options.workers or cluster_cpus(ray), len(todo))
        ds = ray.data.from_items([{"path": p} for p in todo], override_num_blocks=min(len(todo), MAX_BLOCKS))
        ds = ds.map_batches(CropActor, fn_constructor_args=(start, work, options, spec, cascade), batch_size=1,
                            compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=1)
        with _streamed(ds.iter_rows(), lambda row: pickle.loads(row["result"])) as stream:
            yield stream


# -- curate tag ---------------------------------------------------------------------------------

class TagWork(NamedTuple):
    """What `curate tag`'s Ray workers run, given by the caller (taggers/tagging.py):
    `read(catalog, ids)` -> (ids, crops, imported), on the driver's node; `predict(tagger, vocab,
    opts, ids, crops, imported)` -> (ids kept, answers, (id, why) of broken crops), in the actors;
    `answer(labels, how)` rebuilds an answer sent back as JSON."""
    read: Callable
    predict: Callable
    answer: Callable


_catalogs: dict = {}


def read_crops(batch: dict, catalog_path: str, read: Callable) -> dict:
    """The crops of a batch of face ids, read from the catalog on the driver's node."""
    if catalog_path not in _catalogs:   # one connection per worker process
        _catalogs[catalog_path] = Catalog(catalog_path, create=False)
    ids, blobs, imported = read(_catalogs[catalog_path], [int(f) for f in batch["face_id"]])
    return {"face_id": ids, "image": blobs, "imported": imported}


class TagActor:
    """One per worker slot (or GPU): holds the tagger, on the GPU Ray gave it if any."""

    def __init__(self, predict: Callable, tagger, vocab: dict, opts):
        import ray
        if hasattr(tagger, "to"):   # a torch tagger: onto this actor's GPU, if it has one
            tagger = tagger.to("cuda" if ray.get_gpu_ids() else "cpu")
        self.predict, self.tagger, self.vocab, self.opts = predict, tagger, vocab, opts

    def __call__(self, batch: dict) -> dict:
        ids = [int(f) for f in batch["face_id"]]
        kept, results, broken = self.predict(self.tagger, self.vocab, self.opts, ids, list(batch["image"]),
                                             [bool(x) for x in batch["imported"]])
        rows = {f: (json.dumps(list(face)), "") for f, face in zip(kept, results)} | \
               {f: ("[]", why) for f, why in broken}
        return {"face_id": ids, "labels": [rows[f][0] for f in ids], "error": [rows[f][1] for f in ids]}


@contextlib.contextmanager
def tag_results(catalog, todo: list[int], tagger, vocab: dict, opts, address: str, work: TagWork):
    """`work.predict`'s answer batch by batch for the faces `todo`, computed on Ray."""
    if catalog.path is None:
        raise RayUnavailable("--ray needs a catalog file (the workers read the crops from it)")
    with connected(address) as ray:
        here = {f"node:{ray.util.get_node_ip_address()}": 0.001}   # this node's own resource: pins tasks here
        gpus = cluster_gpus(ray) if hasattr(tagger, "to") else 0
        actors = min(gpus or opts.workers or cluster_cpus(ray), -(-len(todo) // opts.batch))
        blocks = min(-(-len(todo) // opts.batch), MAX_BLOCKS)
        ds = ray.data.from_items([{"face_id": f} for f in todo], override_num_blocks=blocks)
        # reading is light and must happen where the catalog is: no CPU reserved, pinned here
        ds = ds.map_batches(read_crops, fn_args=(str(Path(catalog.path).resolve()), work.read),
                            batch_size=opts.batch, num_cpus=0, resources=here)
        ds = ds.map_batches(TagActor, fn_constructor_args=(work.predict, tagger, vocab, opts), batch_size=opts.batch,
                            compute=ray.data.ActorPoolStrategy(size=actors),
                            **({"num_gpus": 1} if gpus else {"num_cpus": 1}))
        batches = ds.iter_batches(batch_size=None, batch_format="numpy")
        with _streamed(batches, lambda batch: _answers(batch, work.answer)) as stream:
            yield stream


def _answers(batch: dict, answer: Callable):
    """An actor's batch back into the predict function's answer."""
    rows = list(zip(batch["face_id"], batch["labels"], batch["error"]))
    answers = [json.loads(s) for _, s, why in rows if not why]
    return ([int(f) for f, _, why in rows if not why], [answer([tuple(x) for x in a[0]], a[1]) for a in answers],
            [(int(f), str(why)) for f, _, why in rows if why])
