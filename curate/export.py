"""Exports of the catalog for training code that does not read SQLite.

* `imagefolder`: OUT/<tag>/<face_id>.png by an exclusive group's current labels
  (torchvision's ImageFolder); unlabelled faces are left out, or put in
  OUT/_unlabelled/ with `unlabelled=True`. A tag is made a safe folder name
  (`folder_names`): never a path, never `.` or `..`, unique within the export.
* `dataset-json`: StyleGAN2-ADA's layout, OUT/00000/img00000000.png ... plus
  OUT/dataset.json {"labels": [[name, class_index], ...]}, the class index being
  the tag's place in the group; only labelled faces.
* `csv`: OUT/images/<face_id>.png plus OUT/faces.csv (face id, file, split, source
  path, box, the source's current labels).
* `webdataset`, `hf`: tar shards, a Hugging Face dataset (export_shards.py).

Everything is written into a folder beside OUT and moved into place at the end,
so a failed export leaves no half-written OUT (and `force` replaces an old one
only once the new one is complete); a full disk is one CatalogError that says so, the
partial folder removed. An OUT that is a symbolic link is followed:
the folder it points to is the one written. A crop that cannot be decoded is
left out and named in the result, never the end of the export.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import shutil
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from db import Catalog, CatalogError

from curate.export_shards import HuggingFaceDataset, WebDatasetShards, require
from curate.images import ImageError, rgb_png
from curate.labels_io import spreadsheet_safe

FORMATS = ("imagefolder", "dataset-json", "csv", "webdataset", "hf")
ALL_FACES = ("csv", "webdataset", "hf")     # formats that export faces without a label too
UNLABELLED = "_unlabelled"
MAX_NAME_BYTES = 200   # file systems allow 255; room for a "-2"


@dataclass
class ExportOptions:
    format: str
    out: Path
    source: str = "manual"
    group: str | None = None        # default: the first exclusive group
    split: str | None = None        # default: every split
    status: str = "ok"
    unlabelled: bool = False        # imagefolder: put unlabelled faces in _unlabelled/
    force: bool = False             # replace a non-empty OUT
    shard_size: int = 10_000        # webdataset: faces per tar shard


@dataclass
class ExportResult:
    out: Path
    written: int = 0
    skipped_unlabelled: int = 0
    per_class: dict[str, int] = field(default_factory=dict)
    sizes: set[tuple[int, int]] = field(default_factory=set)
    folders: dict[str, str] = field(default_factory=dict)       # imagefolder: tag -> folder, where they differ
    broken: list[tuple[int, str]] = field(default_factory=list)  # (face id, why) of crops left out


def export(catalog: Catalog, options: ExportOptions,
           on_progress: Callable[[int, int], None] | None = None) -> ExportResult:
    """Write the faces chosen by `options` to `options.out`; `on_progress(done, total)`."""
    o = options
    group, total = check(catalog, o)
    out = _followed(Path(o.out))
    labels = StreamedLabels(catalog, o.source)   # first: a catalog that cannot be read fails before a write
    work = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
        result = ExportResult(out)
        writer = _writers()[o.format](work, catalog, o, labels, group)
        for done, face in enumerate(catalog.iter_faces(o.status, o.split, with_image=True), start=1):
            try:
                writer.add(face, result)
            except ImageError as e:
                result.broken.append((face["id"], str(e)))
            if on_progress:
                on_progress(done, total)
        writer.close(result)
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        os.replace(work, out)
    except BaseException as e:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
        if is_disk_full(e):
            raise CatalogError(f"the disk is full: cannot write the export to {out} (on the disk of "
                               f"{out.parent.resolve()}); the partial export was removed{_kept(out, o)}. "
                               f"Free some space and run again") from None
        raise
    finally:
        labels.close()   # its query ends here, while the catalog is open (not when collected)
    return result


def is_disk_full(e: BaseException) -> bool:
    """A write that failed for lack of space (or quota), as the OS or Arrow says it."""
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return isinstance(e, OSError) and "No space left on device" in str(e)   # Arrow's, without errno


def _kept(out: Path, o: ExportOptions) -> str:
    return f", and the old {out} is as it was" if o.force and out.exists() else ""


def check(catalog: Catalog, o: ExportOptions) -> tuple[dict | None, int]:
    """Refuse bad options before anything is written: (class group, faces to export)."""
    if o.format not in FORMATS:
        raise CatalogError(f"--format must be one of {', '.join(FORMATS)}, not {o.format!r}")
    if o.format in ("webdataset", "hf"):
        require(o.format)
    _check_out(catalog, _followed(Path(o.out)), o.force)
    group = _class_group(catalog, o)
    total = len(catalog.face_ids(o.status, o.split))
    if total == 0:
        raise CatalogError(f"no faces with status {o.status!r}{f' in split {o.split!r}' if o.split else ''} "
                           f"to export")
    return group, total


def _followed(out: Path) -> Path:
    """OUT itself, or the folder a symbolic link OUT points to: that is the folder replaced
    (replacing the link would leave its target stale, and rmtree refuses links)."""
    return out.resolve() if out.is_symlink() else out


def folder_names(names: list[str]) -> list[str]:
    """For each name, a folder name that is one plain path component, readable, and unique
    (case-insensitively, for file systems that fold case); earlier names keep theirs."""
    out, used = [], set()
    for name in names:
        base = _folder_name(name)
        candidate, n = base, 2
        while candidate.casefold() in used:
            candidate, n = f"{base}-{n}", n + 1
        used.add(candidate.casefold())
        out.append(candidate)
    return out


def _folder_name(name: str) -> str:
    name = unicodedata.normalize("NFC", name)
    text = "".join("_" if c in "/\\" or unicodedata.category(c)[0] == "C" else c for c in name).strip()
    if text.startswith("."):   # ".", "..", and hidden folders that tools skip
        text = "_" + text[1:]
    text = text.encode()[:MAX_NAME_BYTES].decode(errors="ignore")
    return text or "_"


def _check_out(catalog: Catalog, out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise CatalogError(f"{out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise CatalogError(f"{out} is not empty (pass --overwrite to replace it)")
        # --overwrite deletes OUT: never a folder holding the catalog or the folder we stand in.
        here, resolved = Path.cwd().resolve(), out.resolve()
        if resolved == here or resolved in here.parents or (
                catalog.path is not None and resolved in catalog.path.resolve().parents):
            raise CatalogError(f"refusing to replace {out}: it holds the catalog or the current folder")


class StreamedLabels:
    """A source's current labels, read in face id order along with the faces (which the export
    walks in id order): `get(face_id)` -> {key: (tag, value)}, one face at a time, so a million
    faces' labels never sit in memory (5M i2v labels as a dict took 1.9 GB)."""

    def __init__(self, catalog: Catalog, source: str | None):
        self.rows = catalog.iter_current_labels(source) if source else iter(())
        self.next = next(self.rows, None)
        self.face, self.labels = -1, {}

    def get(self, face_id: int, default=None):
        if face_id != self.face:
            if face_id < self.face:
                raise ValueError("faces must come in increasing id order")
            self.face, self.labels = face_id, {}
            while self.next is not None and self.next[0] <= face_id:
                if self.next[0] == face_id:
                    self.labels[self.next[1]] = (self.next[2], self.next[3])
                self.next = next(self.rows, None)
        return self.labels or default

    def close(self) -> None:
        """End the query now: a generator left to the garbage collector would end it after the
        catalog is closed, and Python prints that error ("Exception ignored in ...")."""
        close = getattr(self.rows, "close", None)
        if close is not None:
            close()


def _class_group(catalog: Catalog, o: ExportOptions) -> dict | None:
    """The group classes come from (checked, with the label source, before anything is read)."""
    if not (o.source and catalog.has_labels(o.source)) and o.format not in ALL_FACES:
        known = ", ".join(r["source"] for r in catalog.label_sources()) or "none"
        raise CatalogError(f"label source {o.source!r} has no labels (known: {known})")
    group = None
    if o.format != "csv":
        if o.group:
            group = catalog.group(o.group)
            if not group["exclusive"]:
                raise CatalogError(f"--group {o.group} is an independent group: classes need an exclusive "
                                   f"one ({', '.join(g['name'] for g in catalog.groups() if g['exclusive'])})")
        else:
            exclusive = [g for g in catalog.groups() if g["exclusive"]]
            if not exclusive and o.format in ALL_FACES:   # their classes are optional
                return None
            if not exclusive:
                raise CatalogError("the vocabulary has no exclusive group to take classes from")
            group = exclusive[0]
    return group


class _ImageFolder:
    def __init__(self, work: Path, catalog: Catalog, o: ExportOptions, labels: dict, group: dict):
        self.work, self.o, self.labels, self.group = work, o, labels, group
        # Tags never name a folder raw: "../../x", "..", "a/b" would leave OUT or crash. The
        # names are fixed from the vocabulary up front, so a tag's folder never depends on
        # which faces came first.
        unlabelled, *tags = folder_names([UNLABELLED] + group["tags"])
        self.folders = {None: unlabelled, **dict(zip(group["tags"], tags))}

    def add(self, face: dict, result: ExportResult) -> None:
        label = self.labels.get(face["id"], {}).get(self.group["name"])
        if label is None and not self.o.unlabelled:
            result.skipped_unlabelled += 1
            return
        tag = label[0] if label else None
        data, size = rgb_png(face["image"], face["format"])
        folder = self.work / self.folders[tag]
        cls = UNLABELLED if tag is None else tag
        if self.folders[tag] != cls:
            result.folders[cls] = self.folders[tag]
        folder.mkdir(exist_ok=True)
        (folder / f"{face['id']}.png").write_bytes(data)
        result.written += 1
        result.sizes.add(size)
        result.per_class[cls] = result.per_class.get(cls, 0) + 1

    def close(self, result: ExportResult) -> None:
        pass


class _DatasetJson:
    """StyleGAN2-ADA's dataset_tool layout: 1000 images per numbered folder."""

    def __init__(self, work: Path, catalog: Catalog, o: ExportOptions, labels: dict, group: dict):
        self.work, self.labels, self.group = work, labels, group
        self.classes = group["tags"]
        self.entries: list[list] = []
        self.face_ids: list[int] = []

    def add(self, face: dict, result: ExportResult) -> None:
        label = self.labels.get(face["id"], {}).get(self.group["name"])
        if label is None:
            result.skipped_unlabelled += 1
            return
        idx = len(self.entries)
        name = f"{idx // 1000:05d}/img{idx:08d}.png"
        data, size = rgb_png(face["image"], face["format"])
        (self.work / name).parent.mkdir(exist_ok=True)
        (self.work / name).write_bytes(data)
        self.entries.append([name, self.classes.index(label[0])])
        self.face_ids.append(face["id"])
        result.written += 1
        result.sizes.add(size)
        result.per_class[label[0]] = result.per_class.get(label[0], 0) + 1

    def close(self, result: ExportResult) -> None:
        if not self.entries:
            raise CatalogError(f"no face has a {self.group['name']} label of this source: nothing to export")
        # StyleGAN2-ADA reads only "labels"; the other keys say what the indices mean.
        doc = {"labels": self.entries, "group": self.group["name"], "classes": self.classes,
               "face_ids": self.face_ids}
        (self.work / "dataset.json").write_text(json.dumps(doc))


class _Csv:
    BASE = ["face_id", "file", "split", "status", "source_path", "width", "height",
            "box_x", "box_y", "box_w", "box_h", "detector", "score"]

    def __init__(self, work: Path, catalog: Catalog, o: ExportOptions, labels: dict, group):
        self.work, self.labels = work, labels
        (work / "images").mkdir()
        self.exclusive = {g["name"] for g in catalog.groups() if g["exclusive"]}
        used = catalog.label_keys(o.source) if o.source else set()
        self.label_cols = [c for g in catalog.groups()
                           for c in ([g["name"]] if g["exclusive"] else g["tags"]) if c in used]
        self.file = open(work / "faces.csv", "w", newline="", encoding="utf-8")
        self.csv = csv.writer(self.file)
        self.csv.writerow(self.BASE + [spreadsheet_safe(c) for c in self.label_cols])

    def add(self, face: dict, result: ExportResult) -> None:
        name = f"images/{face['id']}.png"
        data, size = rgb_png(face["image"], face["format"])
        (self.work / name).write_bytes(data)
        face_labels = self.labels.get(face["id"], {})
        if not face_labels:
            result.skipped_unlabelled += 1  # still exported: counted to tell the user
        row = {**face, "face_id": face["id"], "file": name}
        self.csv.writerow([_cell(row.get(c)) for c in self.BASE] + [
            "" if c not in face_labels else _cell(face_labels[c][0]) if c in self.exclusive
            else _cell(face_labels[c][1]) for c in self.label_cols])
        result.written += 1
        result.sizes.add(size)

    def close(self, result: ExportResult) -> None:
        self.file.close()


def _cell(v) -> str:
    """Numbers as numbers; text (paths, tags, names) spreadsheet-safe."""
    if v is None:
        return ""
    if isinstance(v, (int, float)):
        return f"{v:g}" if isinstance(v, float) else str(v)
    return spreadsheet_safe(str(v))


def _writers() -> dict:
    return {"imagefolder": _ImageFolder, "dataset-json": _DatasetJson, "csv": _Csv,
            "webdataset": WebDatasetShards, "hf": HuggingFaceDataset}
