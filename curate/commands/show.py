"""`curate show FACE`: everything the catalog knows about one face, and its crop as a file.

The ids that `curate agree --worst`, `curate suspects` and error messages print lead here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from curate.conventions import JsonOption, make_console, out_option

from curate.app import DEFAULT_DB_PATH, DbOption, app, fail, open_catalog
from curate.images import ImageError, open_crop
from curate.text import visible

console = make_console()


@app.command()
def show(
    face: Annotated[int, typer.Argument(metavar="FACE", help="The face id (as `agree --worst` and `suspects` "
                                        "print it).")],
    db: DbOption = DEFAULT_DB_PATH,
    out: Annotated[Optional[Path], out_option("Write the face's crop to this PNG file.")] = None,
    as_json: JsonOption = False,
) -> None:
    """One face: its source file, box, status, split, and the label history of every source.

    Example: curate show 1234 -o face.png
    """
    if out is not None and out.suffix.lower() != ".png":
        fail(f"-o {out}: give a .png file name")
    catalog = open_catalog(db, create=False)
    try:
        f = catalog.face_with_source(face)
        if f is None:
            fail(f"no face with id {face} in {db}")
        history = catalog.label_history(face)
        unreadable = _write_crop(catalog.face_image(face), out) if out is not None else None
    finally:
        catalog.close()
    if as_json:
        f.pop("phash", None)
        print(json.dumps({"face": f, "labels": history}, indent=2))
    else:
        _print_face(f, history)
    if unreadable:   # the face is shown all the same: what the catalog knows of it is what helps
        fail(f"the crop of face {face} does not decode ({unreadable}): nothing written to {out}")
    if out is not None:
        make_console(stderr=as_json).print(f"crop of face {face} -> {out}")


def _write_crop(blob: bytes, out: Path) -> str | None:
    """Write the stored crop to `out` as PNG; None, or why the crop cannot be read."""
    try:
        with open_crop(blob) as im:
            out.parent.mkdir(parents=True, exist_ok=True)
            im.save(out, format="PNG")
    except ImageError as e:
        return visible(str(e))
    return None


def _print_face(f: dict, history: list[dict]) -> None:
    status = f["status"] + (f" (duplicate of face {f['duplicate_of']})" if f["duplicate_of"] else "") + \
        (f" ({visible(f['reason'])})" if f["reason"] else "")
    lines = [("source file", visible(f["source_path"])),
             ("source", f"{f['source_width']}x{f['source_height']} px, {f['source_status']}"
              if f["source_width"] else f["source_status"]),
             ("status", status), ("split", f["split"] or "none (run `curate split`)"),
             ("crop", f"{f['width']}x{f['height']} px {f['format']}, detector {f['detector']}"
              + (f", score {f['score']:.2f}" if f["score"] is not None else ""))]
    if f["box_w"] is not None:
        lines.append(("box", f"x {f['box_x']}, y {f['box_y']}, {f['box_w']}x{f['box_h']} source px"))
    if f["crop_size"] is not None:
        lines.append(("crop square", f"x {f['crop_x']}, y {f['crop_y']}, side {f['crop_size']} source px"))
    if f["blur"] is not None:
        lines.append(("quality", f"blur (variance of the Laplacian) {f['blur']:.0f}, chroma {f['monochrome']:.1f}"))
    lines.append(("added", f["added_at"]))
    console.print(f"face {f['id']}", style="bold")
    for k, v in lines:   # plain lines: a long path stays whole, to copy
        console.print(f"  {k + ':':<13}{v}")
    if not history:
        console.print("no labels from any source yet")
        return
    undone = {e["undoes"] for e in history if e["undoes"] is not None}
    for source in dict.fromkeys(e["source"] for e in history):
        t = Table("when", "key", "tag", "value", "annotator", title=f"labels of source {visible(source)}, oldest first")
        for c in t.columns:
            c.overflow = "fold"
        for e in (e for e in history if e["source"] == source):
            what = "undo" if e["undoes"] is not None else visible(e["tag"] or "-")
            value = "" if e["value"] is None else f"{e['value']:.2f}"
            note = " (undone)" if e["id"] in undone else ""
            t.add_row(e["created_at"][:19].replace("T", " "), visible(e["key"]), what + note, value,
                      visible(e["annotator"] or ""))
        console.print(t)
