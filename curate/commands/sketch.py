"""`curate sketch`: line art of every ok face, kept in the catalog beside the crops."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from curate.conventions import JobsOption, ProgressOption, make_console

from curate.app import DEFAULT_DB_PATH, DbOption, app, fail, open_catalog
from curate.derive import DeriveSummary, derive
from curate.lineart import METHODS, LineArtError, make_params, params_json
from curate.progress_lines import progress_display


def _parse_params(values: list[str]) -> dict[str, str]:
    out = {}
    for v in values:
        key, sep, value = v.partition("=")
        if not sep or not key.strip() or not value.strip():
            fail(f"--param {v!r}: expected NAME=VALUE, e.g. --param sigma=1.0")
        out[key.strip()] = value.strip()
    return out


@app.command()
def sketch(
    db: DbOption = DEFAULT_DB_PATH,
    method: Annotated[str, typer.Option(help=f"Line-art method: {', '.join(METHODS)}.")] = "xdog",
    param: Annotated[list[str], typer.Option(
        "--param", help="Override a parameter of the method, repeatable: --param sigma=1.0 --param p=30 "
        "(xdog: sigma, k, p, epsilon, phi, work_size, stretch, min_area).")] = [],
    workers: JobsOption = 0,
    progress: ProgressOption = True,
) -> None:
    """Derive a line drawing from every ok face (XDoG on the luminance, no downloaded weights)
    and store it in the catalog with its method and parameters.

    Reruns make only what is missing: faces whose crop or parameters changed are redone,
    nothing else. Ctrl-C keeps what is done; rerun to finish. Look at the result with
    `curate stats --sheet sketches.png --kind crop,sketch`.

    Example: curate sketch -j 2 --param sigma=1.0
    """
    console = make_console(stderr=True)
    try:
        params = make_params(method, _parse_params(param))
    except LineArtError as e:
        fail(str(e))
    catalog = open_catalog(db, create=False)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn())
    with progress_display(*columns, console=console, disable=not progress, line=lambda fields: fields["rate"]) as bar:
        task = bar.add_task(f"sketch ({method})", total=None, rate="")
        start, done = time.perf_counter(), [0]

        def advance(n: int, total: int) -> None:
            done[0] += n
            elapsed = time.perf_counter() - start
            bar.update(task, total=total, completed=done[0],
                            rate=f"{done[0] / elapsed:.0f} faces/s" if elapsed > 0 and done[0] else "")
        try:
            summary = derive(catalog, "sketch", method, params, workers=workers, on_progress=advance)
        finally:
            catalog.close()
    _print_summary(console, summary, db, method, params_json(method, params))
    if summary.interrupted:
        raise typer.Exit(130)


def _print_summary(console, s: DeriveSummary, db: Path, method: str, params: str) -> None:
    shown = {k: v for k, v in json.loads(params).items() if k != "method"}
    console.print(f"line art ({method} {s.params_hash}: "
                  f"{', '.join(f'{k}={v}' for k, v in sorted(shown.items()))})")
    console.print(f"{s.made} made, {len(s.errors)} failed, {s.up_to_date} already current "
                  f"({s.todo} needed making) in {s.wall_s:.1f} s")
    for face_id, message in s.errors[:10]:
        console.print(f"  error: face {face_id}: {message}")
    if len(s.errors) > 10:
        console.print(f"  ... and {len(s.errors) - 10} more (retried when the crop or the parameters change)")
    if s.interrupted:
        console.print("interrupted: work so far is saved; rerun the same command to finish", style="yellow")
    elif s.made or s.up_to_date:
        console.print(f"look at them: curate stats --db {db} --sheet sketches.png --kind crop,sketch")
