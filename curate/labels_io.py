"""Label files in and out of the catalog.

A label CSV comes in one of two forms:

* wide: `file,hair_color,eye_color,smile` -- a column named after a group holds a
  tag of that group (several tags joined by ";" for an independent group); a
  column named after an independent tag holds 1/0 or a probability;
* long: `file,tag[,value]` -- one label per row, value 1 when absent.

`file` is matched to faces through the path of their source: an absolute path
only as it is; a relative one against the CSV's folder, else as the unique source
path ending with it; a bare file name also as a unique file name. A `face_id`
column picks one face of a source that has several (or stands in for `file`).
Reading checks every row before anything is written, so one bad row means no
label at all is stored; two rows giving one face different labels of one group
(or tag) are such a row.

Spreadsheet-safe cells: a text cell that a spreadsheet would run as a formula
(beginning with =, +, -, @, tab or carriage return, as OWASP lists them) is written
with a single quote before it, and so is a cell that begins with a quote; reading
removes one leading quote from every cell, so our exports read back exactly.
"""

from __future__ import annotations

import csv
import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path

from db import Catalog, CatalogError

TAG_SEPARATOR = ";"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"


def spreadsheet_safe(cell: str) -> str:
    """A text cell no spreadsheet runs as a formula (undone by `from_spreadsheet_safe`)."""
    return QUOTE + cell if cell.startswith(FORMULA_START + (QUOTE,)) else cell


def from_spreadsheet_safe(cell: str) -> str:
    return cell[1:] if cell.startswith(QUOTE) else cell


@dataclass
class LabelFile:
    """A label CSV checked against a catalog, ready to write."""

    path: Path
    labels: list[tuple[int, str, float]] = field(default_factory=list)  # (face_id, tag, value)
    rows: int = 0
    matched: int = 0
    unmatched: list[tuple[int, str]] = field(default_factory=list)  # (row number, file) skipped
    unchanged: int = 0  # labels equal to the source's current one: not written again


@dataclass
class ImportResult:
    path: Path
    source: str
    rows: int
    matched: int
    unmatched: list[tuple[int, str]]
    written: int
    unchanged: int


class _FaceMatcher:
    """Resolves a CSV's `file` / `face_id` cells to face ids."""

    def __init__(self, catalog: Catalog, base: Path):
        self.base = base
        self.by_path = catalog.faces_by_source_path()
        self.by_name: dict[str, list[str]] = {}
        for p in self.by_path:
            self.by_name.setdefault(os.path.basename(p), []).append(p)
        self.source_of = {f: p for p, ids in self.by_path.items() for f in ids}

    def source_path(self, file: str) -> str | None:
        # os.path.join keeps an absolute `file` as it is.
        full = os.path.join(self.base, file)
        for p in (os.path.abspath(full), str(Path(full).resolve())):
            if p in self.by_path:
                return p
        if os.path.isabs(file):
            return None   # an absolute path means that file: never another one of the same name
        # A relative path may be relative to where the pictures were, not to the CSV: the source
        # whose path ends with it (for a bare name, the one file of that name).
        tail = os.sep + os.path.normpath(file)
        same = [p for p in self.by_name.get(os.path.basename(file), []) if p.endswith(tail)]
        if len(same) > 1:
            what = f"file name {file!r}" if os.path.basename(file) == file else repr(file)
            raise ValueError(f"{what} matches {len(same)} sources (e.g. {same[0]}, {same[1]}): "
                             f"give a path relative to the CSV")
        return same[0] if same else None

    def face(self, file: str | None, face_id: str | None) -> int | None:
        """The face a row means, None when its file is not in the catalog."""
        fid = None
        if face_id:
            try:
                fid = int(face_id)
            except ValueError:
                raise ValueError(f"face_id {face_id!r} is not a number") from None
            if fid not in self.source_of:
                raise ValueError(f"no face with id {fid} in the catalog")
        if not file:
            if fid is None:
                raise ValueError("neither file nor face_id given")
            return fid
        path = self.source_path(file)
        if path is None:
            return None
        ids = self.by_path[path]
        if fid is not None:
            if fid not in ids:
                raise ValueError(f"face {fid} is not a face of {file}")
            return fid
        if len(ids) > 1:
            raise ValueError(f"{file} has {len(ids)} faces ({', '.join(map(str, ids[:5]))}): "
                             f"add a face_id column to say which")
        return ids[0]


def read_label_csv(catalog: Catalog, path: str | os.PathLike, source: str,
                   skip_unmatched: bool = False, annotator: str | None = None) -> LabelFile:
    """Check every row of a label CSV against the catalog; raise CatalogError naming the
    file and row at the first problem. Labels equal to `source`'s current ones are dropped
    (with `annotator`: to that person's own current ones)."""
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"{path}: no such file")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            table = list(csv.reader(f))
    except (UnicodeDecodeError, csv.Error) as e:
        raise CatalogError(f"{path}: not a readable UTF-8 CSV file ({e})") from e
    if not table or not any(table[0]):
        raise CatalogError(f"{path}: empty file (expected a header such as file,hair_color,eye_color)")
    header = [from_spreadsheet_safe(h.strip()) for h in table[0]]
    groups = {g["name"]: g for g in catalog.groups()}
    index = catalog.tag_index()
    _check_header(path, header, groups, index)

    out = LabelFile(path)
    # Source paths are stored as os.path.abspath gives them (symlinks kept, as `curate crop` and
    # `import` walked them), so the CSV's folder is taken the same way.
    matcher = _FaceMatcher(catalog, Path(os.path.abspath(path)).parent)
    long_form = "tag" in header
    col = {name: i for i, name in enumerate(header)}
    given: dict[tuple[int, str], tuple[int, str, float]] = {}   # (face, key) -> (row, tag, value)
    for rowno, row in enumerate(table[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        out.rows += 1
        where = f"{path}, row {rowno}"
        if len(row) > len(header):
            raise CatalogError(f"{where}: {len(row)} cells but the header has {len(header)} columns")
        cells = {name: (from_spreadsheet_safe(row[i].strip()) if i < len(row) else "") for name, i in col.items()}
        try:
            face_id = matcher.face(cells.get("file"), cells.get("face_id"))
            labels = _row_labels(cells, header, long_form, groups, index)
        except ValueError as e:
            raise CatalogError(f"{where}: {e}") from None
        if face_id is None:
            if not skip_unmatched:
                raise CatalogError(f"{where}: {cells['file']!r} matches no face in the catalog "
                                   f"(import the pictures first, or pass --skip-unmatched)")
            out.unmatched.append((rowno, cells["file"]))
            continue
        out.matched += 1
        for tag, value in labels:
            _check_conflict(given, where, rowno, face_id, cells.get("file") or face_id, tag, value, index)
            out.labels.append((face_id, tag, value))
    _drop_unchanged(catalog, out, source, index, annotator)
    return out


def _check_conflict(given: dict, where: str, rowno: int, face_id: int, file: str, tag: str, value: float,
                    index: dict) -> None:
    """Two rows giving one face two different labels of one group or tag: which is meant is not
    ours to guess (a later row silently winning made every re-import write both again)."""
    group, exclusive = index[tag]
    key = group if exclusive else tag
    earlier = given.setdefault((face_id, key), (rowno, tag, value))
    if earlier[1:] != (tag, value):
        raise CatalogError(f"{where}: {file} (face {face_id}) already has {key} = {earlier[1]!r} "
                           f"({earlier[2]:g}) from row {earlier[0]}, here {tag!r} ({value:g}): "
                           f"keep one of the two rows")


def _check_header(path: Path, header: list[str], groups: dict, index: dict) -> None:
    if "file" not in header and "face_id" not in header:
        raise CatalogError(f"{path}, row 1: missing column 'file' (header: {','.join(header)})")
    dupes = {h for h in header if header.count(h) > 1}
    if dupes:
        raise CatalogError(f"{path}, row 1: column(s) {', '.join(sorted(dupes))} appear twice")
    if "tag" in header:
        extra = set(header) - {"file", "face_id", "tag", "value"}
        if extra:
            raise CatalogError(f"{path}, row 1: a long-form file (file,tag,value) has no column(s) "
                               f"{', '.join(sorted(extra))}")
        return
    for name in header:
        if name in ("file", "face_id") or name in groups:
            continue
        if name in index and not index[name][1]:
            continue
        hint = _did_you_mean(name, list(groups) + [t for t, (_, ex) in index.items() if not ex])
        what = f"a tag of the exclusive group {index[name][0]!r}" if name in index else "not a group or tag"
        raise CatalogError(f"{path}, row 1: column {name!r} is {what}: columns are named after a group "
                           f"or an independent tag{hint}")
    if not set(header) - {"file", "face_id"}:
        raise CatalogError(f"{path}, row 1: no label columns (expected e.g. file,hair_color,eye_color)")


def _row_labels(cells: dict, header: list[str], long_form: bool, groups: dict,
                index: dict) -> list[tuple[str, float]]:
    if long_form:
        tag = cells["tag"]
        if not tag:
            raise ValueError("empty tag")
        _known_tag(tag, index)
        return [(tag, _value(cells.get("value") or "1", tag))]
    labels = []
    for name in header:
        cell = cells[name]
        if name in ("file", "face_id") or not cell:
            continue
        if name in groups:
            tags = [t.strip() for t in cell.split(TAG_SEPARATOR)] if not groups[name]["exclusive"] else [cell]
            if groups[name]["exclusive"] and TAG_SEPARATOR in cell:
                raise ValueError(f"{name} is an exclusive group: one tag per face, not {cell!r}")
            for tag in tags:
                _known_tag(tag, index)
                if index[tag][0] != name:
                    raise ValueError(f"tag {tag!r} belongs to group {index[tag][0]!r}, not {name!r}")
                labels.append((tag, 1.0))
        else:
            labels.append((name, _value(cell, name)))
    return labels


def _known_tag(tag: str, index: dict) -> None:
    if tag not in index:
        raise ValueError(f"unknown tag {tag!r}{_did_you_mean(tag, list(index))} (see `curate vocab list`)")


def _value(cell: str, tag: str) -> float:
    try:
        v = float(cell)
    except ValueError:
        raise ValueError(f"value {cell!r} of {tag!r} is not a number (1/0 or a probability)") from None
    if not 0 <= v <= 1:
        raise ValueError(f"value {cell!r} of {tag!r} is outside 0..1")
    return v


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _drop_unchanged(catalog: Catalog, lf: LabelFile, source: str, index: dict, annotator: str | None) -> None:
    """Re-importing a file must not double its labels: drop those already current. A named
    annotator's file is compared with their own labels: a second person who agrees with the first
    is a second opinion (what a consensus counts), not a repeat."""
    current = {(r["face_id"], r["key"]): (r["tag"], r["value"])
               for r in catalog.current_labels(source, annotator=annotator)}
    kept = []
    for face_id, tag, value in lf.labels:
        group, exclusive = index[tag]
        key = group if exclusive else tag
        if current.get((face_id, key)) == (tag, value):
            lf.unchanged += 1
        else:
            kept.append((face_id, tag, value))
            current[(face_id, key)] = (tag, value)  # a repeated row later in the file is unchanged too
    lf.labels = kept


def import_labels(catalog: Catalog, path: str | os.PathLike, source: str, annotator: str | None = None,
                  skip_unmatched: bool = False) -> ImportResult:
    """Read, check and store a label CSV as events of `source`, all or nothing."""
    if not source or not source.strip():
        raise CatalogError("--target needs a name (e.g. manual)")
    lf = read_label_csv(catalog, path, source, skip_unmatched, annotator)
    written = catalog.add_labels(lf.labels, source, annotator) if lf.labels else 0
    return ImportResult(lf.path, source, lf.rows, lf.matched, lf.unmatched, written, lf.unchanged)


def export_labels(catalog: Catalog, out: str | os.PathLike, source: str, long_form: bool = False) -> int:
    """Write `source`'s current labels, one row per face (wide) or per label (long),
    in a form `import_labels` reads back. Returns the number of rows."""
    rows = catalog.current_labels(source)
    if not rows:
        known = ", ".join(r["source"] for r in catalog.label_sources()) or "none"
        raise CatalogError(f"label source {source!r} has no labels (known: {known})")
    paths = {f["id"]: f["source_path"] for f in catalog.iter_faces(status=None, with_image=False)}
    by_face: dict[int, dict[str, tuple[str, float | None]]] = {}
    for r in rows:
        by_face.setdefault(r["face_id"], {})[r["key"]] = (r["tag"], r["value"])
    out = Path(out)
    tmp = out.with_name(out.name + ".partial")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        if long_form:
            w.writerow(["face_id", "file", "tag", "value"])
            n = 0
            for fid in sorted(by_face):
                for key, (tag, value) in by_face[fid].items():
                    w.writerow([fid, spreadsheet_safe(paths[fid]), spreadsheet_safe(tag), _fmt(value)])
                    n += 1
        else:
            columns = _wide_columns(catalog, by_face)
            groups = {g["name"] for g in catalog.groups() if g["exclusive"]}
            w.writerow(["face_id", "file"] + [spreadsheet_safe(c) for c in columns])
            for fid in sorted(by_face):
                labels = by_face[fid]
                # a group column holds the tag; an independent tag's column its value
                w.writerow([fid, spreadsheet_safe(paths[fid])] + [
                    "" if c not in labels else spreadsheet_safe(labels[c][0]) if c in groups
                    else _fmt(labels[c][1]) for c in columns])
            n = len(by_face)
    os.replace(tmp, out)
    return n


def _wide_columns(catalog: Catalog, by_face: dict) -> list[str]:
    """Exclusive groups, then the independent tags that occur, in vocabulary order."""
    used = {key for labels in by_face.values() for key in labels}
    cols = []
    for g in catalog.groups():
        if g["exclusive"]:
            if g["name"] in used:
                cols.append(g["name"])
        else:
            cols += [t for t in g["tags"] if t in used]
    return cols


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:g}"
