"""Ctrl-C (SIGINT) or SIGTERM during training: the step in progress finishes, then the loop
stops and writes a checkpoint, so the run resumes exactly. A second Ctrl-C stops at once
(KeyboardInterrupt). Only the main thread of rank 0 can catch signals; elsewhere the guard
stays down and signals keep their usual effect.
"""

from __future__ import annotations

import signal

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopGuard:
    """`with StopGuard(active) as guard:` ... `if guard.stop_requested: break`."""

    def __init__(self, active: bool = True):
        self.active = active
        self.stop_requested = False
        self.previous: dict[int, object] = {}

    def request_stop(self, signum, frame) -> None:
        if self.stop_requested:     # asked twice: the user means now
            raise KeyboardInterrupt
        self.stop_requested = True

    def __enter__(self) -> "StopGuard":
        if self.active:
            for signum in STOP_SIGNALS:
                try:
                    self.previous[signum] = signal.signal(signum, self.request_stop)
                except ValueError:      # not the main thread: no handler can be installed
                    break
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self.previous.items():
            if handler is not None:     # None: a handler not set from Python, which cannot be put back
                signal.signal(signum, handler)
        self.previous = {}
