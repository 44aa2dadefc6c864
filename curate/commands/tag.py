"""`curate tag` (the animeface, i2v and judge taggers) and `curate i2v download`."""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

from db import CatalogError

from curate.app import DEFAULT_DB_PATH, DbOption, RayOption, app, fail, make_console, open_catalog, progress_bar
from curate.conventions import DeviceOption, ProgressOption, jobs_option, labels_option, resolve_device, target_option
from curate.on_ray import RayUnavailable, require_ray
from curate.taggers.i2v.download import RELEASE_URL, DownloadError, default_dir, download
from curate.taggers.i2v.network import I2VError, load_model
from curate.taggers.judge import JudgeTaggerOptions, cross_fit
from curate.taggers.tagging import AnimefaceTagger, I2VTagger, TagOptions, TagSummary, tag_catalog
from curate.progress_lines import progress_display
from curate.text import visible

ModelDirOption = Annotated[Optional[Path], typer.Option(
    "--model-dir", help="Folder with illust2vec_tag_ver200.caffemodel and tag_list.json[.gz] "
    "[where `curate i2v download` puts them: ~/.cache/animeface-gan-study/i2v].")]

i2v_app = typer.Typer(rich_markup_mode=None, help="illustration2vec model files.", no_args_is_help=True)
app.add_typer(i2v_app, name="i2v")
console = make_console()


class TaggerName(str, Enum):
    i2v = "i2v"
    animeface = "animeface"
    judge = "judge"


def _parse_thresholds(values: list[str]) -> dict[str, float]:
    out = {}
    for v in values:
        tag, sep, p = v.rpartition("=")
        try:
            out[tag.strip()] = float(p)
            if not sep or not tag.strip() or not 0 <= float(p) <= 1:
                raise ValueError
        except ValueError:
            fail(f"--tag-threshold {v!r}: expected TAG=P with P in [0, 1], e.g. 'monochrome=0.5'")
    return out


@app.command()
def tag(
    tagger: Annotated[TaggerName, typer.Option("--tagger", help="i2v (needs the model files), animeface "
                                               "(embedded, hair/eye colours only) or judge (a classifier "
                                               "trained on --labels' labels, cross-fitted).")] = TaggerName.animeface,
    db: DbOption = DEFAULT_DB_PATH,
    target: Annotated[Optional[str], target_option(
        "The label source the tags are written into [the tagger's name: i2v, animeface or judge]; another "
        "name keeps two versions apart, e.g. --palette new.json --target animeface-v2.")] = None,
    model_dir: ModelDirOption = None,
    threshold: Annotated[float, typer.Option(min=0, max=1, help="i2v: independent tags below this "
                                             "probability are not written (exclusive groups always "
                                             "get their arg-max).")] = 0.25,
    tag_threshold: Annotated[list[str], typer.Option(
        "--tag-threshold", help="Per-tag threshold TAG=P, repeatable: --tag-threshold 'monochrome=0.5'.")] = [],
    batch: Annotated[int, typer.Option(min=1, help="Faces per forward pass.")] = 32,
    device: DeviceOption = "auto",
    limit: Annotated[Optional[int], typer.Option(min=1, help="Tag at most this many new faces.")] = None,
    retag: Annotated[bool, typer.Option(help="Tag again faces this model version tagged already.")] = False,
    palette: Annotated[Optional[Path], typer.Option(help="animeface: a palette from "
                                                     "`curate calibrate-colors` instead of the embedded one.")] = None,
    ray: RayOption = None,
    workers: Annotated[int, jobs_option("animeface: worker processes (0: one per core); with --ray, actors "
                                        "(0: one per CPU or GPU of the cluster). i2v and judge use torch's "
                                        "threads.")] = 0,
    progress: ProgressOption = True,
    source: Annotated[str, labels_option("judge: the label source it learns from.")] = "manual",
    folds: Annotated[int, typer.Option(min=2, help="judge: cross-fitting folds (each face's probability comes "
                                       "from a model that never saw its label).")] = 5,
    epochs: Annotated[int, typer.Option(min=1, help="judge: training epochs per fold.")] = 10,
    seed: Annotated[int, typer.Option(help="judge: folds and weights.")] = 0,
) -> None:
    """Auto-tag the catalog's faces; resumable (faces this model version tagged are skipped).

    Labels go in as their own source (--target: i2v, animeface or judge by default) with probabilities as
    values; other sources, manual labels among them, are never touched. A label source a command reads
    is --labels; the one it writes, --target.

    Examples: curate tag --tagger animeface;  curate tag --tagger i2v --model-dir models/ --batch 16;
    curate tag --tagger i2v --ray auto (on a Ray cluster, GPU actors where it has GPUs);
    curate tag --tagger judge --labels manual;  curate tag --palette new.json --target animeface-v2
    """
    if tagger is TaggerName.judge:
        if palette is not None or model_dir is not None or limit is not None or ray is not None:
            fail("--palette, --model-dir, --limit and --ray do not apply to --tagger judge")
        return tag_with_judge(db, JudgeTaggerOptions(source=source, target=target or "judge", folds=folds,
                                                     seed=seed, epochs=epochs, retag=retag), progress)
    if ray is not None:
        try:
            require_ray()   # before the model is loaded
        except RayUnavailable as e:
            fail(str(e))
    opts = TagOptions(threshold=threshold, tag_thresholds=_parse_thresholds(tag_threshold), batch=batch,
                      limit=limit, retag=retag, workers=workers)
    the_tagger = _make_tagger(tagger, model_dir, palette, device)
    if target is not None:   # never into the people's source or another tagger's
        if not target.strip() or target.strip() in {"manual", *TaggerName.__members__} - {tagger.value}:
            fail(f"--target {target!r}: give a name of its own for these labels (manual is the people's, "
                 f"i2v, animeface and judge the taggers' of those names)")
        the_tagger.source = target.strip()
    summary = _tag_with_progress(open_catalog(db, create=False), the_tagger, opts, ray, progress)
    _report(summary, the_tagger, tagger, limit)


def _make_tagger(tagger: TaggerName, model_dir: Path | None, palette: Path | None, device: str):
    """The i2v or animeface tagger the options ask for; every check before the catalog is touched."""
    if tagger is TaggerName.i2v:
        if palette is not None:
            fail("--palette applies to --tagger animeface")
        device = resolve_device(device)
        try:
            model = load_model(model_dir or default_dir())   # all checks before the catalog is touched
        except I2VError as e:
            fail(str(e))
        return I2VTagger(model, device)
    if model_dir is not None:
        fail("--model-dir applies to --tagger i2v")
    try:
        return AnimefaceTagger(palette)
    except CatalogError as e:
        fail(str(e))


def _tag_with_progress(catalog, the_tagger, opts: TagOptions, ray: str | None, show: bool) -> TagSummary:
    """tag_catalog with a progress bar that shows faces per second."""
    with progress_bar(show) as bar:
        task = bar.add_task(f"tagging ({the_tagger.version})", total=None, rate="")
        done = [0, None]

        def step(n: int, total: int) -> None:
            done[0] += n
            done[1] = done[1] or time.perf_counter()   # the first call (n=0) starts the clock
            elapsed = time.perf_counter() - done[1]
            bar.update(task, advance=n, total=total,
                       rate=f"{done[0] / elapsed:.1f} faces/s" if elapsed > 0 else "")
        try:
            return tag_catalog(catalog, the_tagger, opts, step, ray=ray)
        except RayUnavailable as e:
            fail(str(e))


def _report(summary: TagSummary, the_tagger, tagger: TaggerName, limit: int | None) -> None:
    """What the run did; exit 130 when it was interrupted."""
    console.print(f"{summary.faces} faces tagged by {the_tagger.version} (source {the_tagger.source!r}) in "
                  f"{summary.seconds:.1f} s ({summary.faces_per_s:.1f} faces/s): {summary.labelled} got labels, "
                  f"{summary.events} label events; {summary.skipped} skipped (tagged before).")
    if summary.other_way:
        console.print(f"{summary.other_way} imported face crops where animeface found no face: colours read "
                      f"from the whole crop (annotator '{the_tagger.version} (whole crop)').")
    if summary.faces and summary.labelled < summary.faces:
        why = "animeface found no face there" if tagger is TaggerName.animeface else "nothing above threshold"
        console.print(f"{summary.faces - summary.labelled} faces got no label ({why}); recorded as tried, so "
                      f"reruns skip them (--retag looks again).")
    _say_set_aside(summary.broken)
    if summary.failed:
        console.print(f"stopped: {summary.failed}", style="red")
    if summary.interrupted:
        looked_at = summary.faces + len(summary.broken)
        more = "" if limit is None else \
            f" (--limit counts faces still untagged: --limit {limit - looked_at} makes {limit} in all)"
        console.print(f"interrupted: the faces tagged so far are saved; rerun the command to go on{more}",
                      style="yellow")
        raise typer.Exit(130)


def _say_set_aside(broken: list[tuple[int, str]]) -> None:
    """The faces whose crops do not decode, which the run set aside as rejected and went on without."""
    for face_id, why in broken[:10]:
        console.print(f"face {face_id}: {visible(why)}: set aside as rejected", style="yellow")
    if len(broken) > 10:
        console.print(f"... and {len(broken) - 10} more broken crops set aside as rejected", style="yellow")


@i2v_app.command("download")
def i2v_download(
    dir: ModelDirOption = None,
    base_url: Annotated[Optional[str], typer.Option(help="Another mirror of the release assets.")] = None,
    sha256: Annotated[Optional[str], typer.Option(
        "--sha256", help="Pin the model file: refuse it unless its sha256 is this (a "
        "illust2vec_tag_ver200.caffemodel.sha256 file in the folder pins it too).")] = None,
) -> None:
    """Fetch illustration2vec's official tag model (~180 MB) and tag list once; resumes after interruptions.

    What arrives is checked (i2v's layers and shapes, 1,539 outputs, a tag per output; the
    pinned sha256, if any); its sha256 is printed and recorded beside it, and every later
    load checks the file against that record.
    """
    with progress_display(TextColumn("{task.description}", markup=False), BarColumn(), TextColumn("{task.fields[mb]}"),
                          TimeRemainingColumn(), console=console, line=lambda fields: fields["mb"]) as bar:
        tasks: dict[str, int] = {}

        def step(name: str, done: int, total: int | None) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=total, mb="")
            bar.update(tasks[name], completed=done, total=total, mb=f"{done / 1e6:.1f} MB")
        try:
            where, digest = download(dir, base_url or RELEASE_URL, progress=step, sha256=sha256)
        except DownloadError as e:
            fail(str(e))
    console.print(f"model files in {where}; use: curate tag --tagger i2v --model-dir {where}")
    console.print(f"sha256 {digest} (recorded in {where}/illust2vec_tag_ver200.caffemodel.sha256; "
                  f"checked on every load)")


def tag_with_judge(db: Path, opts, show: bool = True) -> None:
    """The `curate tag --tagger judge` branch: cross-fit, write, print what happened."""
    catalog = open_catalog(db, create=False)
    bar = progress_display(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                           console=make_console(stderr=True), disable=not show)
    task = []

    def step(n: int, total: int) -> None:   # the bar starts once the input is checked: errors stay one line
        if not task:
            bar.start()
            task.append(bar.add_task(f"judge on {opts.source!r}: {opts.folds} folds x {opts.epochs} epochs",
                                     total=total))
        bar.update(task[0], advance=n, total=total)
    try:
        summary = cross_fit(catalog, opts, step)
    except CatalogError as e:
        fail(str(e))
    finally:
        bar.stop()
    if summary.skipped:
        console.print(f"{summary.version} was written before ({opts.source!r} labels unchanged): nothing to do "
                      f"(--retag writes it again)")
        return
    accuracy = ", ".join(f"{g} {a:.1%}" for g, a in summary.accuracy.items())
    console.print(f"{opts.target}: {summary.events} label events by {summary.version} in {summary.seconds:.0f} s; "
                  f"{summary.labelled} labelled faces cross-fitted ({opts.folds} folds; held-out accuracy "
                  f"against {opts.source}: {accuracy}), {summary.unlabelled} unlabelled faces from a model on all.")
    _say_set_aside(summary.set_aside)
    console.print(f"next: curate suspects --labels {opts.source} --judge {opts.target}")
