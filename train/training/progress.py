"""Progress bars on the console (rich): loading the training set, and the steps of a run with
their throughput and losses. Nothing is shown without a console or with --no-progress."""

from __future__ import annotations


def make_progress(console, metrics: bool = False):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = [TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn()]
    if metrics:
        columns += [TextColumn("{task.fields[ips]:.0f} img/s  D {task.fields[ld]:.3f}  G {task.fields[lg]:.3f}")]
    return Progress(*columns, console=console, transient=False)


class StepProgress:
    """The run's bar: steps done, and the latest row's images/s and losses. A context manager."""

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

    def update(self, step: int, row: dict | None = None, images_per_s: float = 0.0) -> None:
        if self.bar is None:
            return
        if row is not None:
            self.bar.update(self.task, ips=images_per_s, ld=row["loss_d"], lg=row["loss_g"])
        self.bar.update(self.task, completed=step)
