"""`curate crop` and `curate import`: pictures -> faces in the catalog."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, \
    TimeRemainingColumn

from curate.conventions import ProgressOption, jobs_option

from curate.app import DEFAULT_DB_PATH, DbOption, RayOption, app, fail, make_console, open_catalog
from curate.detectors import DEFAULT_MIN_SCORE, DETECTORS, DetectorError, resolve
from curate.on_ray import RayUnavailable, require_ray
from curate.images import DEFAULT_MAX_PIXELS
from curate.pipeline import CropOptions, SourceResult, Summary, run
from curate.progress_lines import progress_display
from curate.text import visible

Folder = Annotated[Path, typer.Argument(metavar="FOLDER", help="Folder of pictures (searched recursively), or one file.")]
Workers = Annotated[int, jobs_option("Worker processes (0: one per core); with --ray, actors (0: one per CPU "
                                     "of the cluster).")]
NearDup = Annotated[int, typer.Option("--near-dup", help="pHash Hamming distance (0-64) at or below which a "
                                      "face is marked a near-duplicate of an earlier one; -1 turns it off.",
                                      min=-1, max=64)]
MinBlur = Annotated[Optional[float], typer.Option("--min-blur", help="Reject faces whose variance of the "
                                                  "Laplacian is below this (blurry).", min=0)]
MinChroma = Annotated[Optional[float], typer.Option("--min-chroma", help="Reject faces whose mean chroma "
                                                    "(0-255) is below this (greyscale).", min=0)]
MaxPixels = Annotated[int, typer.Option("--max-pixels", help="Refuse pictures with more pixels than this "
                                        "(decompression bombs).", min=1)]


@app.command()
def crop(
    folder: Folder,
    db: DbOption = DEFAULT_DB_PATH,
    detector: Annotated[str, typer.Option("--detector", "-d", help=f"One of: {', '.join(DETECTORS)}.")]
    = "animeface",
    cascade: Annotated[Optional[Path], typer.Option("--cascade", help="Cascade XML for lbp/human/cat "
                                                    "(lbp default: downloaded once, sha256-checked).")] = None,
    margin: Annotated[float, typer.Option(help="Crop side = face box side x this.", min=1.0)] = 1.5,
    size: Annotated[int, typer.Option(help="Crops are SIZE x SIZE pixels.", min=8, max=4096)] = 128,
    min_face: Annotated[int, typer.Option("--min-face", help="Reject faces smaller than this (source "
                                          "pixels).", min=1)] = 24,
    max_upscale: Annotated[float, typer.Option("--max-upscale", help="Reject faces that would need more "
                                               "enlargement than this to reach SIZE.", min=1.0)] = 2.0,
    detect_max: Annotated[int, typer.Option("--detect-max", help="Shrink pictures to this long side for "
                                            "detection (boxes are mapped back; 0: never).", min=0)] = 1280,
    min_score: Annotated[Optional[float], typer.Option("--min-score", help="Reject faces the detector scores "
                                                       "below this [default: 0.7 for animeface, whose likelihood "
                                                       "is 0-1; none for cascades]; 0 keeps every face.")] = None,
    near_dup: NearDup = 4,
    min_blur: MinBlur = None,
    min_chroma: MinChroma = None,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
    workers: Workers = 0,
    ray: RayOption = None,
    progress: ProgressOption = True,
) -> None:
    """Detect faces in every picture under FOLDER and store square crops in the catalog.

    Reruns skip files already processed; broken files are recorded as errors and
    the run goes on. Exact and near-duplicate faces are marked, never deleted.

    Examples: curate crop raw/ --detector lbp --size 128 --min-blur 50;  curate crop raw/ --ray auto
    """
    if min_score is None:
        min_score = DEFAULT_MIN_SCORE.get(detector)
    options = CropOptions(detector=detector, cascade=None if cascade is None else str(cascade), margin=margin,
                          size=size, min_face=min_face, max_upscale=max_upscale, detect_max=detect_max,
                          min_score=min_score, near_dup=near_dup, min_blur=min_blur, min_chroma=min_chroma,
                          max_pixels=max_pixels, workers=workers)
    _run(folder, db, options, ray, progress)


@app.command("import")
def import_faces(
    folder: Folder,
    db: DbOption = DEFAULT_DB_PATH,
    no_detect: Annotated[bool, typer.Option("--no-detect", help="Each file is one face as it is (already "
                                            "cropped). Without it, import works like `crop`.")] = False,
    keep_max: Annotated[int, typer.Option("--keep-max", help="Store JPEG/PNG files up to this side as their "
                                          "original bytes (others become PNG).", min=1)] = 512,
    near_dup: NearDup = 4,
    min_blur: MinBlur = None,
    min_chroma: MinChroma = None,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
    workers: Workers = 0,
    ray: RayOption = None,
    progress: ProgressOption = True,
) -> None:
    """Import a folder of already-cropped faces (e.g. a Kaggle anime-face set).

    Example: curate import faces/ --no-detect
    """
    options = CropOptions(no_detect=no_detect, keep_max=keep_max, near_dup=near_dup, min_blur=min_blur,
                          min_chroma=min_chroma, max_pixels=max_pixels, workers=workers)
    _run(folder, db, options, ray, progress)


def _run(folder: Path, db: Path, options: CropOptions, ray: str | None = None, show: bool = True) -> None:
    if not folder.exists():
        fail(f"{folder} does not exist")
    try:   # before the catalog file is made: a missing Ray, or a cascade that cannot be downloaded
        if ray is not None:
            require_ray()
        spec = None if options.no_detect else resolve(options.detector, options.cascade)
    except (RayUnavailable, DetectorError) as e:
        fail(str(e))
    catalog = open_catalog(db)
    console = make_console(stderr=True)
    if not options.no_detect:
        _say_if_cropped_otherwise(console, catalog, options, folder, db)
    counts = {"faces": 0, "no face": 0, "errors": 0}
    columns = (TextColumn("{task.description}", style="bold", markup=False), BarColumn(), MofNCompleteColumn(),
               TextColumn("faces {task.fields[faces]}  no face {task.fields[no_face]}  errors {task.fields[errors]}"),
               TimeElapsedColumn(), TimeRemainingColumn())
    with progress_display(*columns, console=console, transient=False, disable=not show) as progress:
        task = progress.add_task("import" if options.no_detect else "crop", total=None, faces=0, no_face=0,
                                 errors=0)

        def advance(result: SourceResult, total: int) -> None:
            counts["faces"] += len(result.faces)
            counts["no face"] += result.status == "no_face"
            counts["errors"] += result.status == "error"
            progress.update(task, total=total, advance=1, faces=counts["faces"], no_face=counts["no face"],
                            errors=counts["errors"])

        try:
            summary = run(catalog, folder, options, on_progress=advance, ray=ray, spec=spec)
        except (DetectorError, RayUnavailable) as e:
            fail(str(e))
        finally:
            catalog.close()
    _print_summary(console, summary, db)
    if summary.interrupted:
        raise typer.Exit(130)


def _say_if_cropped_otherwise(console: Console, catalog, options: CropOptions, folder: Path, db: Path) -> None:
    """A rerun crops only pictures not yet in the catalog: when the faces already there were cut
    at another size or margin, say so (the catalog would mix them) and how to crop anew."""
    other = [s for s in catalog.crop_settings()
             if s["size"] != options.size or abs(s["margin"] - options.margin) > 0.05]
    if not other:
        return
    were = "; ".join(f"{s['faces']} at {s['size']} px, margin {s['margin']:g}" for s in other)
    console.print(f"note: {db} already holds faces cropped otherwise ({were}); --size {options.size} "
                  f"--margin {options.margin:g} applies only to pictures not cropped yet, and pictures already "
                  f"in the catalog are not cropped again. To crop everything at these settings, crop into a "
                  f"new catalog: curate crop {folder} --db NEW.db --size {options.size} --margin {options.margin:g}",
                  style="yellow")


def _print_summary(console: Console, s: Summary, db: Path) -> None:
    src = ", ".join(f"{n} {k}" for k, n in sorted(s.sources.items())) or "none"
    faces = ", ".join(f"{n} {k}" for k, n in sorted(s.faces.items())) or "none"
    console.print(f"{s.files} picture files: {s.skipped} already in the catalog, {s.processed} processed "
                  f"({src}) in {s.wall_s:.1f} s")
    reasons = ", ".join(f"{n} {why}" for why, n in sorted(s.reasons.items(), key=lambda kv: -kv[1]))
    console.print(f"new faces: {faces}" + (f"; rejected: {reasons}" if reasons else ""))
    for path, message in s.errors[:10]:
        console.print(f"  error: {visible(os.path.relpath(path))}: {visible(message)}")   # names from files
    if len(s.errors) > 10:
        console.print(f"  ... and {len(s.errors) - 10} more errors (see `curate stats --db {db}`)")
    if s.failed:
        console.print(f"stopped: {s.failed}", style="red")
    if s.interrupted:
        console.print("interrupted: work so far is saved; rerun the same command to finish", style="yellow")
