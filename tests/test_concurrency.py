"""Several processes writing one catalog file at once (a running `curate crop`, the
labelling app, `curate labels import`): every write is kept, none fails on a lock."""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import traceback

from db import Catalog

ROUNDS = 60


def _writer(path: str, worker: int, rounds: int, shared_face: int, errors) -> None:
    """Alternate small transactions: a new source + face, labels on it, a label on a face
    every worker touches, and a read of the current labels between writes."""
    try:
        with Catalog(path) as cat:
            for i in range(rounds):
                blob = f"worker {worker} face {i}".encode()
                with cat.transaction():
                    sid = cat.save_source(f"/w{worker}/{i}.png", sha256=hashlib.sha256(blob).hexdigest(),
                                          size=len(blob), status="ok", detector="none")
                    fid = cat.add_face(source_id=sid, image=blob, format="png", width=1, height=1,
                                       detector="none")
                cat.add_labels([(fid, "blonde hair", 1), (fid, "smile", 0.5)], "manual", f"w{worker}")
                cat.add_labels([(shared_face, "red hair" if i % 2 else "black hair", 1)], f"src{worker}")
                cat.current_labels("manual")
    except Exception:  # noqa: BLE001 -- the parent asserts there were none
        errors.put(f"worker {worker}: {traceback.format_exc()}")


def _opener(path: str, errors) -> None:
    try:
        with Catalog(path) as cat:
            cat.add_labels([], "manual")
    except Exception:  # noqa: BLE001
        errors.put(traceback.format_exc())


def _run(target, args_per_process) -> list[str]:
    ctx = mp.get_context("spawn")  # a fresh interpreter each: no SQLite handle crosses a fork
    errors = ctx.Queue()
    procs = [ctx.Process(target=target, args=args + (errors,)) for args in args_per_process]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0, f"a worker died with exit code {p.exitcode}"
    out = []
    while not errors.empty():
        out.append(errors.get())
    return out


def test_two_processes_append_faces_and_labels_at_once(tmp_path):
    path = tmp_path / "shared.db"
    with Catalog(path) as cat:
        sid = cat.save_source("/first.png", sha256="0", size=1, status="ok", detector="none")
        shared_face = cat.add_face(source_id=sid, image=b"first", format="png", width=1, height=1,
                                   detector="none")
    errors = _run(_writer, [(str(path), w, ROUNDS, shared_face) for w in (1, 2)])
    assert errors == [], "\n".join(errors)
    with Catalog(path) as cat:
        assert len(cat.face_ids(status=None)) == 1 + 2 * ROUNDS
        assert cat.conn.execute("SELECT count(*) FROM label_events").fetchone()[0] == 2 * ROUNDS * 3
        by_annotator = cat.query("SELECT annotator, count(*) AS n FROM label_events WHERE source='manual' "
                                 "GROUP BY annotator ORDER BY annotator")
        assert by_annotator == [{"annotator": "w1", "n": 2 * ROUNDS}, {"annotator": "w2", "n": 2 * ROUNDS}]
        # Each worker's last word on the shared face is its own source's current label.
        last = "red hair" if (ROUNDS - 1) % 2 else "black hair"
        for w in (1, 2):
            assert [r["tag"] for r in cat.current_labels(f"src{w}")] == [last]


def test_processes_opening_a_new_catalog_at_once_migrate_it_once(tmp_path):
    path = tmp_path / "new.db"
    errors = _run(_opener, [(str(path),)] * 3)
    assert errors == [], "\n".join(errors)
    with Catalog(path) as cat:
        versions = [r[0] for r in cat.conn.execute("SELECT version FROM schema_version")]
        assert versions == sorted(set(versions))  # each migration applied once
        assert len(cat.groups()) == 4 and sum(len(g["tags"]) for g in cat.groups()) == 35
