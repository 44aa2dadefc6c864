"""`label-app --learn N`: after every N new manual labels, retrain the judge tagger in the background.

The retrain is `curate tag --tagger judge --labels manual` in a child process, one at a time, for
the whole app (every browser session shares one `Learner`). What it writes is never seen half
done: the judge writes its version record, labels and probabilities in one transaction
(`Catalog.save_learned_labels`), so a queue built while it runs reads the old version whole, and
one built after reads the new one. When a retrain ends well, `generation` goes up and the page
re-ranks its judge queue on the new probabilities.

Stopping the app stops the retrain: `stop()` at exit, and on Linux the kernel sends the child
SIGTERM should the server die without a word. That signal follows the *thread* that started the
child (PR_SET_PDEATHSIG), so children are started by the learner's own long-lived thread, never
by a Streamlit script thread that ends with its run.
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

from db import Catalog

STOP_WAIT_S = 5        # after SIGTERM, how long a retrain may take to stop before it is killed


def judge_command(db: str) -> list[str]:
    """The retrain: the judge learns the people's labels afresh (`curate tag --tagger judge`)."""
    return [sys.executable, "-m", "curate.cli", "tag", "--tagger", "judge", "--labels", "manual", "--db", str(db),
            "--no-progress"]


class Learner:
    """Starts a retrain once `every` new manual labels are in, one at a time; says how it goes."""

    def __init__(self, db: str, every: int, command: list[str] | None = None):
        self.db, self.every = str(db), int(every)
        self.command = command or judge_command(db)
        self.log = Path(tempfile.mkdtemp(prefix="label-app-learn-")) / "judge.log"
        self.generation = 0                 # retrains that ended well
        self.state = "idle"                 # idle / running / done / failed / stopped
        self.message = ""                   # the last retrain's outcome, one line
        self.started_at: float | None = None
        self.process: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._due = threading.Event()
        self._stopping = False
        with Catalog(self.db, create=False) as cat:
            self.mark = cat.newest_manual_event()   # labels counted from here
        self._thread = threading.Thread(target=self._run, name="label-app-learner", daemon=True)
        self._thread.start()

    # -- called by the page --------------------------------------------------------------------

    def poll(self, catalog: Catalog) -> int:
        """Start a retrain when `every` new manual labels are in and none runs; returns how many
        labels are still wanted before the next one (0 while one runs or is starting)."""
        with self._lock:
            if self.state == "running" or self._due.is_set() or self._stopping:
                return 0
            new, newest = catalog.manual_events_after(self.mark)
            if new < self.every:
                return self.every - new
            self.mark = newest
            self._due.set()
            return 0

    def status(self) -> str:
        """One line for the sidebar."""
        if self.state == "running" and self.started_at is not None:
            return f"retraining the judge for {time.monotonic() - self.started_at:.0f} s"
        if self._due.is_set():
            return "retraining the judge: starting"
        return self.message or f"the judge retrains after every {self.every} new labels"

    def stop(self) -> None:
        """Stop a running retrain and start no more."""
        self._stopping = True
        self._due.set()
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.state = "stopped"

    def wait(self, timeout: float) -> bool:
        """Until no retrain is due or running (tests); True when so."""
        end = time.monotonic() + timeout
        while (self._due.is_set() or self.state == "running") and time.monotonic() < end:
            time.sleep(0.05)
        return not (self._due.is_set() or self.state == "running")

    # -- the learner's own thread ----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._due.wait()
            if self._stopping:
                return
            self._retrain()

    def _retrain(self) -> None:
        with open(self.log, "w") as log:
            self.started_at = time.monotonic()
            try:
                self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
            except OSError as e:   # said on the page; the next N labels try again
                self._finish("failed", f"the judge's retrain did not start ({e})")
                self._due.clear()
                return
            self.state = "running"
            self._due.clear()
            code = self.process.wait()
        seconds = time.monotonic() - self.started_at
        if self._stopping:
            self._finish("stopped", "retraining stopped")
        elif code == 0:
            self._finish("done", f"judge retrained in {seconds:.0f} s at {time.strftime('%H:%M')}: "
                                 "the queue re-ranked", generation=self.generation + 1)
        else:
            self._finish("failed", f"the judge's retrain failed ({last_line(self.log)}); log: {self.log}")

    def _finish(self, state: str, message: str, generation: int | None = None) -> None:
        """Say how a retrain ended. The state goes last: it is what the page and `wait()` watch, so
        whoever sees the new state also sees its message and generation."""
        with self._lock:
            self.message = message
            if generation is not None:
                self.generation = generation
            self.state = state


def last_line(path: Path) -> str:
    """The last non-empty line of a log, or its exit without one."""
    try:
        lines = deque((line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()), 1)
    except OSError:
        return "no log"
    return lines[0] if lines else "no output"


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to send it SIGTERM when the thread that started it dies."""
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
