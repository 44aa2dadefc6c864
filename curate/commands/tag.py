"""`curate tag`, `curate i2v download`, `curate agree`, `curate calibrate-colors`."""

from __future__ import annotations

import json
import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from db import CatalogError

from curate.conventions import DeviceOption, JsonOption, ProgressOption, jobs_option, labels_option, out_option, resolve_device, \
    target_option

from curate.app import DEFAULT_DB_PATH, DbOption, RayOption, app, fail, make_console, open_catalog

ModelDirOption = Annotated[Optional[Path], typer.Option(
    "--model-dir", help="Folder with illust2vec_tag_ver200.caffemodel and tag_list.json[.gz] "
    "[where `curate i2v download` puts them: ~/.cache/curate/i2v].")]

i2v_app = typer.Typer(rich_markup_mode=None, help="illustration2vec model files.", no_args_is_help=True)
app.add_typer(i2v_app, name="i2v")
console = make_console()
err_console = make_console(stderr=True)


class TaggerName(str, Enum):
    i2v = "i2v"
    animeface = "animeface"
    judge = "judge"


def _progress(show: bool = True) -> Progress:
    return Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[rate]}", markup=False), TimeRemainingColumn(), console=err_console,
                    disable=not show)


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
    from curate.taggers.i2v.download import default_dir
    from curate.on_ray import RayUnavailable, require_ray
    from curate.taggers.i2v.network import I2VError, load_model
    from curate.taggers.tagging import AnimefaceTagger, I2VTagger, TagOptions, tag_catalog

    if tagger is TaggerName.judge:
        from curate.commands.quality import tag_with_judge
        from curate.taggers.judge import JudgeTaggerOptions
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
    if tagger is TaggerName.i2v:
        if palette is not None:
            fail("--palette applies to --tagger animeface")
        device = resolve_device(device)
        try:
            model = load_model(model_dir or default_dir())   # all checks before the catalog is touched
        except I2VError as e:
            fail(str(e))
        the_tagger = I2VTagger(model, device)
    else:
        if model_dir is not None:
            fail("--model-dir applies to --tagger i2v")
        try:
            the_tagger = AnimefaceTagger(palette)
        except CatalogError as e:
            fail(str(e))
    if target is not None:   # never into the people's source or another tagger's
        if not target.strip() or target.strip() in {"manual", *TaggerName.__members__} - {tagger.value}:
            fail(f"--target {target!r}: give a name of its own for these labels (manual is the people's, "
                 f"i2v, animeface and judge the taggers' of those names)")
        the_tagger.source = target.strip()
    catalog = open_catalog(db, create=False)
    with _progress(progress) as bar:
        task = bar.add_task(f"tagging ({the_tagger.version})", total=None, rate="")
        done = [0, None]

        def step(n: int, total: int) -> None:
            done[0] += n
            done[1] = done[1] or time.perf_counter()   # the first call (n=0) starts the clock
            elapsed = time.perf_counter() - done[1]
            bar.update(task, advance=n, total=total,
                       rate=f"{done[0] / elapsed:.1f} faces/s" if elapsed > 0 else "")
        try:
            summary = tag_catalog(catalog, the_tagger, opts, step, ray=ray)
        except RayUnavailable as e:
            fail(str(e))
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
    for face_id, why in summary.broken[:10]:
        console.print(f"face {face_id}: {why}: set aside as rejected", style="yellow")
    if len(summary.broken) > 10:
        console.print(f"... and {len(summary.broken) - 10} more broken crops set aside as rejected", style="yellow")
    if summary.failed:
        console.print(f"stopped: {summary.failed}", style="red")
    if summary.interrupted:
        looked_at = summary.faces + len(summary.broken)
        more = "" if limit is None else \
            f" (--limit counts faces still untagged: --limit {limit - looked_at} makes {limit} in all)"
        console.print(f"interrupted: the faces tagged so far are saved; rerun the command to go on{more}",
                      style="yellow")
        raise typer.Exit(130)


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
    from curate.taggers.i2v.download import RELEASE_URL, DownloadError, download
    with Progress(TextColumn("{task.description}", markup=False), BarColumn(), TextColumn("{task.fields[mb]}"),
                  TimeRemainingColumn(), console=console) as bar:
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


@app.command("calibrate-colors")
def calibrate_colors(
    out: Annotated[Path, out_option("Palette JSON to write.")],
    db: DbOption = DEFAULT_DB_PATH,
    source: Annotated[str, labels_option("Label source to calibrate on.")] = "manual",
    split: Annotated[str, typer.Option(help="train, val, test or all.")] = "train",
    min_faces: Annotated[int, typer.Option(min=2, help="Colours with fewer labelled faces are left out.")] = 10,
    current: Annotated[Optional[Path], typer.Option(help="The palette to compare with [the embedded one].")]
    = None,
    workers: Annotated[int, jobs_option()] = 0,
    progress: ProgressOption = True,
) -> None:
    """Fit the animeface colour palette on labelled faces, and print its accuracy on the held-out test
    split beside the current palette's (then: curate tag --palette OUT --target animeface-v2).

    Example: curate calibrate-colors -o palette.json -j 2
    """
    from curate.taggers.calibration import calibrate, held_out_accuracy
    from curate.taggers.colors import DEFAULT_PALETTE, Palette
    if split not in ("train", "val", "test", "all"):
        fail(f"--split must be train, val, test or all, not {split!r}")
    try:
        old = Palette.load(current or DEFAULT_PALETTE)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        fail(f"--current {current}: not a colour palette ({e})")
    catalog = open_catalog(db, create=False)
    with _progress(progress) as bar:
        task = bar.add_task("calibrating", total=None, rate="")
        try:
            palette, info = calibrate(catalog, source, None if split == "all" else split,
                                      lambda n, total: bar.update(task, advance=n, total=total), min_faces, workers)
        except (CatalogError, ValueError) as e:
            fail(str(e))
        held_out = None
        if split in ("train", "val"):
            check = bar.add_task("held-out test split", total=None, rate="")
            held_out = held_out_accuracy(catalog, {"current": old, "new": palette}, source, "test", workers,
                                         lambda n, total: bar.update(check, advance=n, total=total))
    palette.save(out)
    console.print(f"palette of {sum(len(m.tags) for m in palette.groups.values())} colours from {info['found']} "
                  f"of {info['faces']} faces (animeface found no face in the rest) -> {out}")
    if held_out is None or not held_out["found"]:
        console.print(f"no held-out accuracy: {source!r} labels no test face animeface finds "
                      f"(calibrate on --split train after `curate split`)")
        return
    t = Table("group", f"current ({current or 'embedded'})", f"new ({out})",
              title=f"accuracy against {source} on {held_out['found']} test faces "
                    f"(of {held_out['faces']}; animeface finds no face in the rest)")
    for group in palette.groups:
        cells = []
        for name in ("current", "new"):
            right, n = held_out["accuracy"][name].get(group, (0, 0))
            cells.append(f"{right / n:.1%} ({right}/{n})" if n else "-")
        t.add_row(group, *cells)
    console.print(t)


def short_names(tags: list[str]) -> list[str]:
    """The shortest prefix (3 letters at least) of each tag's first word that tells it from the
    others: confusion columns that fit 80 columns without cutting a name to "bl…"."""
    words = [t.split()[0] if t.split() else t for t in tags]
    out = []
    for w in words:
        k = min(3, len(w))
        while k < len(w) and sum(o.startswith(w[:k]) for o in words) > 1:
            k += 1
        out.append(w[:k])
    return out if len(set(out)) == len(out) else tags


def _table(*columns: str, title: str) -> Table:
    """A table that wraps a long cell rather than cut it."""
    t = Table(title=title)
    for c in columns:
        t.add_column(c, overflow="fold")
    return t


@app.command()
def agree(
    a: Annotated[str, typer.Argument(help="Reference label source, e.g. manual.")],
    b: Annotated[str, typer.Argument(help="Source compared with it, e.g. i2v or animeface.")],
    db: DbOption = DEFAULT_DB_PATH,
    split: Annotated[Optional[str], typer.Option(help="Only faces of this split (train/val/test).")] = None,
    worst: Annotated[int, typer.Option(min=0, help="List the N most confident disagreements.")] = 0,
    png: Annotated[Optional[Path], typer.Option(help="Write the confusion matrices as a PNG.")] = None,
    per_tag: Annotated[bool, typer.Option(help="Per-tag recall/precision tables.")] = True,
    as_json: JsonOption = False,
) -> None:
    """How far apart two label sources are: accuracy, Cohen's kappa, confusion per group and tag.

    The face ids of --worst are what `curate show FACE` shows.
    """
    from curate.quality.agreement import agreement, plot_confusions, worst_disagreements
    catalog = open_catalog(db, create=False)
    try:
        result = agreement(catalog, a, b, split)
    except CatalogError as e:
        fail(str(e))
    worst_rows = worst_disagreements(catalog, a, b, worst, split) if worst else []
    if as_json:
        print(json.dumps({"a": a, "b": b, "split": split, "faces_a": result.faces_a, "faces_b": result.faces_b,
                          "faces_both": result.faces_both,
                          "groups": [{"group": g.group, "exclusive": g.exclusive, "faces": g.n,
                                      "accuracy": g.accuracy, "kappa": g.kappa, "tags": g.tags,
                                      "confusion": g.confusion.tolist(), "per_tag": g.per_tag()}
                                     for g in result.groups],
                          "worst": worst_rows}, indent=2, default=float))
    else:
        _print_agreement(result, a, b, split, per_tag)
    if png:
        try:
            (err_console if as_json else console).print(f"confusion matrices -> {plot_confusions(result, png)}")
        except CatalogError as e:
            fail(str(e))
    if worst_rows and not as_json:
        t = _table("face", "split", "key", a, b, "confidence", title=f"{worst} most confident disagreements")
        for r in worst_rows:
            t.add_row(str(r["face_id"]), str(r["split"]), r["key"], f"{r['tag_a']} ({r['value_a']:.2f})",
                      f"{r['tag_b']} ({r['value_b']:.2f})", f"{r['confidence']:.2f}")
        console.print(t)
        console.print("look at one: curate show FACE (-o face.png writes its crop)")


def _print_agreement(result, a: str, b: str, split: str | None, per_tag: bool) -> None:
    console.print(f"{a}: {result.faces_a} faces, {b}: {result.faces_b}, both: {result.faces_both}"
                  + (f" ({split} split)" if split else ""))
    summary = _table("group / tag", "faces", "accuracy", "kappa", title=f"{a} vs {b}")
    for g in result.groups:
        summary.add_row(g.group, str(g.n), f"{g.accuracy:.1%}", f"{g.kappa:.3f}")
    console.print(summary)
    if not per_tag:
        return
    for g in result.groups:
        if not g.exclusive:
            continue
        t = _table("tag", f"faces ({a})", f"faces ({b})", "recall", "precision", title=g.group)
        for r in g.per_tag():
            t.add_row(r["tag"], str(r["a"]), str(r["b"]), f"{r['recall']:.1%}", f"{r['precision']:.1%}")
        console.print(t)
        short = short_names(g.tags)
        cm = Table("", *short, title=f"{g.group} confusion (rows {a}, columns {b})", box=None, padding=(0, 1, 0, 0))
        for tag, row in zip(short, g.confusion):
            cm.add_row(tag, *[str(v) if v else "." for v in row])
        console.print(cm)
