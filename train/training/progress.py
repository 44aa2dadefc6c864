"""Progress on the console: loading the training set, and the steps of a run with their
throughput and losses. A rich bar on a terminal; in a file (nohup, CI) a plain line every 30 s
(PROGRESS_EVERY; curate.progress_lines). Nothing is shown without a console or with --no-progress."""

from __future__ import annotations

from typing import Callable

from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

from curate.progress_lines import progress_display


def make_progress(console, metrics: bool = False):
    columns = [TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn()]
    if metrics:
        columns += [TextColumn("{task.fields[ips]:.0f} img/s  D {task.fields[ld]:.3f}  G {task.fields[lg]:.3f}")]
    return progress_display(*columns, console=console, transient=False, line=figures_text if metrics else None)


def figures_text(fields: dict) -> str:
    """The run's figures in a plain progress line, as the bar shows them."""
    return f"{fields['ips']:.0f} img/s  D {fields['ld']:.3f}  G {fields['lg']:.3f}"


class StepProgress:
    """The run's bar: steps done, images/s and losses since the last row (train.training.metrics_log
    `figures`: real ones from the first step). A context manager."""

    def __init__(self, console, shown: bool, name: str, total: int, start: int):
        self.bar = make_progress(console, metrics=True) if shown and console is not None else None
        self.task = self.bar.add_task(name, total=total, completed=start, ips=0.0, ld=0.0, lg=0.0) \
            if self.bar is not None else None

    def __enter__(self) -> "StepProgress":
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()

    def update(self, step: int, figures: Callable[[int], tuple[float, float, float]] | None = None) -> None:
        """`figures(step)`: (images/s, D loss, G loss) now (asked only when a bar is shown)."""
        if self.bar is None:
            return
        if figures is not None:
            ips, ld, lg = figures(step)
            self.bar.update(self.task, completed=step, ips=ips, ld=ld, lg=lg)
        else:
            self.bar.update(self.task, completed=step)
