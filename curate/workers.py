"""Worker processes that give results in the order of their inputs, and stop at once when told.

multiprocessing.Pool could not promise the second. Its workers share one task queue, read
under one lock, and an idle worker holds that lock while it blocks reading; Pool.terminate()
first takes the lock to drain the queue (`_help_stuff_finish`), so it waits until every idle
worker has been told to stop, by threads that under load may not get there -- and for good once
a worker holding the lock has died (the OOM killer): `curate crop -j 2` then never exited after
Ctrl-C. Here each worker has a pipe of its own and nothing is shared, so stopping is killing
the processes and reaping them. A worker that dies on an input (a decoder crash) gives that
input's result through `on_crash` and is replaced; the run goes on.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Iterator, Sequence


class OrderedWorkers:
    """`count` processes forked from this one, each running `initializer(*initargs)` once, then
    `function(item)` for every item it is handed. `map` keeps at most `ahead` items per worker
    beyond the one the caller waits for, so results never pile up faster than they are used."""

    def __init__(self, count: int, function: Callable[[Any], Any], initializer: Callable[..., None],
                 initargs: tuple = (), ahead: int = 2):
        self.context = multiprocessing.get_context("fork")   # workers start in milliseconds, modules imported
        self.function, self.initializer, self.initargs, self.ahead = function, initializer, initargs, ahead
        self.workers: list[_Worker] = []
        for _ in range(count):
            self.workers.append(self._start())

    def _start(self) -> "_Worker":
        ours, theirs = self.context.Pipe()
        process = self.context.Process(target=_serve, args=(theirs, self.function, self.initializer, self.initargs),
                                       daemon=True)
        process.start()
        theirs.close()
        return _Worker(process, ours)

    def map(self, items: Sequence, on_crash: Callable[[Any, int | None], Any]) -> Iterator:
        """The results of `items`, in their order. `on_crash(item, exit code)` stands in for the
        result of an item whose worker died on it."""
        done: dict[int, Any] = {}
        handed = waited = 0
        while waited < len(items):
            for i, worker in enumerate(self.workers):   # every idle worker gets the next item within the window
                if worker.job is None and handed < min(len(items), waited + self.ahead * len(self.workers)):
                    try:
                        worker.give(handed, items[handed])
                    except OSError:   # it died idle (the OOM killer): a new one takes the item
                        self.workers[i] = self._start()
                        self.workers[i].give(handed, items[handed])
                    handed += 1
            if waited in done:
                yield done.pop(waited)
                waited += 1
                continue
            busy = {w.conn: w for w in self.workers if w.job is not None}
            for conn in wait(list(busy)):
                index, result = self._receive(busy[conn], items, on_crash)
                done[index] = result

    def _receive(self, worker: "_Worker", items: Sequence, on_crash) -> tuple[int, Any]:
        index = worker.job
        try:
            index, result = worker.conn.recv()
        except (EOFError, OSError):   # it died on this item: say so, and carry on with a new worker
            worker.process.join()
            result = on_crash(items[index], worker.process.exitcode)
            worker.conn.close()
            self.workers[self.workers.index(worker)] = self._start()
            return index, result
        worker.job = None
        return index, result

    def stop(self) -> None:
        """Kill every worker and reap it: certain, whatever they are doing (they hold nothing of ours)."""
        for worker in self.workers:
            if worker.process.is_alive():
                worker.process.kill()
        for worker in self.workers:
            worker.process.join()
            worker.conn.close()


class _Worker:
    def __init__(self, process, conn: Connection):
        self.process, self.conn, self.job = process, conn, None

    def give(self, index: int, item) -> None:
        self.conn.send((index, item))
        self.job = index


def _serve(conn: Connection, function, initializer, initargs: tuple) -> None:
    """A worker's life: set up, then answer every (index, item) with (index, function(item))."""
    initializer(*initargs)
    while True:
        try:
            index, item = conn.recv()
        except (EOFError, OSError):   # the parent is gone
            return
        conn.send((index, function(item)))
