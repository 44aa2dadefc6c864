"""Progress for long commands, whether or not a person watches a terminal.

On a terminal a rich bar is the thing to show; written to a file (a log, nohup, CI) a bar shows
nothing until it ends, and a run of an hour looks dead. `progress_display()` gives a rich
`Progress` on a terminal and, elsewhere, a `LineProgress` with the same calls (`add_task`,
`update`, `advance`, `start`, `stop`, `with`) that prints one plain line per task every N
seconds, and the last state at the end:

    train 00003-acgan-manual: 1200/5000 (24%), 35 img/s  D 0.512  G 1.234; 0:16:03 elapsed, ~0:50:50 left

N is 30 unless the PROGRESS_EVERY environment variable gives another number of seconds.

To use it in a command, in place of `Progress(*columns, console=console, disable=not show)`:

    with progress_display(*columns, console=console, disable=not show) as progress:
        task = progress.add_task("crop", total=n, faces=0)
        progress.update(task, advance=1, faces=12)

The line shows the task's description, completed/total and its fields ("faces 12"); give
`line=` a function of the fields for other words.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable

from rich.progress import Progress

DEFAULT_EVERY = 30.0


def progress_every() -> float:
    """Seconds between two plain lines: PROGRESS_EVERY, or 30."""
    try:
        return max(0.0, float(os.environ.get("PROGRESS_EVERY", DEFAULT_EVERY)))
    except ValueError:
        return DEFAULT_EVERY


def progress_display(*columns, console, disable: bool = False, line: Callable[[dict], str] | None = None,
                     every: float | None = None, **kw):
    """A rich Progress on a terminal (or disabled), else a LineProgress printing to `console`."""
    if disable or console is None or console.is_terminal:
        return Progress(*columns, console=console, disable=disable, **kw)
    return LineProgress(console, every if every is not None else progress_every(), line)


@dataclass
class LineTask:
    description: str
    total: float | None
    completed: float
    fields: dict
    started: float
    first: float                # `completed` when it began: the rate counts what was done here
    printed: tuple | None = None


class LineProgress:
    """rich Progress's calls, shown as a plain line per task every `every` seconds (and at stop)."""

    def __init__(self, console, every: float = DEFAULT_EVERY, line: Callable[[dict], str] | None = None):
        self.console, self.every, self.line = console, every, line
        self.tasks: dict[int, LineTask] = {}
        self.last_print = time.monotonic()

    def add_task(self, description: str, total: float | None = 100.0, completed: float = 0, visible: bool = True,
                 start: bool = True, **fields) -> int:
        task_id = len(self.tasks)
        self.tasks[task_id] = LineTask(description, total, completed, fields, time.monotonic(), completed)
        return task_id

    def update(self, task_id: int, *, total: float | None = None, completed: float | None = None,
               advance: float | None = None, description: str | None = None, visible: bool | None = None,
               refresh: bool = False, **fields) -> None:
        task = self.tasks[task_id]
        if total is not None:
            task.total = total
        if completed is not None:
            task.completed = completed
        if advance is not None:
            task.completed += advance
        if description is not None:
            task.description = description
        task.fields.update(fields)
        if time.monotonic() - self.last_print >= self.every:
            self.print_lines()

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.update(task_id, advance=advance)

    def print_lines(self) -> None:
        self.last_print = time.monotonic()
        for task in self.tasks.values():
            state = (task.description, task.completed, task.total)
            if state != task.printed:
                task.printed = state
                self.console.print(self.text(task), markup=False, highlight=False)

    def text(self, task: LineTask) -> str:
        """`description: done/total (%), extra; times`; a task with no total that has counted
        nothing (a stage that names itself, as `train eval`'s) leaves the count out."""
        done = f"{task.completed:g}" + (f"/{task.total:g} ({100 * task.completed / task.total:.0f}%)"
                                        if task.total else "")
        if task.total is None and not task.completed:
            done = ""
        if self.line is not None:
            extra = self.line(task.fields)
        else:
            extra = ", ".join(f"{k} {v}" for k, v in task.fields.items())
        elapsed = time.monotonic() - task.started
        times = f"{clock(elapsed)} elapsed"
        rate = (task.completed - task.first) / elapsed if elapsed > 0 else 0.0
        if task.total and rate > 0 and task.completed < task.total:
            times += f", ~{clock((task.total - task.completed) / rate)} left"
        said = ", ".join(part for part in (done, extra) if part)
        return task.description + (f": {said}" if said else "") + f"; {times}"

    def start(self) -> None:
        self.last_print = time.monotonic()

    def stop(self) -> None:
        self.print_lines()

    def __enter__(self) -> "LineProgress":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def clock(seconds: float) -> str:
    """H:MM:SS, as rich's columns show time."""
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
