"""Exports for other trainers' data loaders: WebDataset tar shards and a Hugging Face dataset.

* `webdataset`: OUT/<split>-000000.tar, ... (split `unsplit` for faces without one), at
  most `shard_size` faces per shard. Each face is one sample keyed by its id: `png` (the
  crop), `json` (face id, split, source path, box, and the source's current labels:
  `labels[group] = tag` for exclusive groups, `labels[tag] = value` for independent tags,
  and `probabilities[key]` where the source gives them) and `cls` (the class index of
  `--group`'s tag, where the face has one). Read with `webdataset.WebDataset(urls)`.
* `hf`: a `datasets.DatasetDict` written with `save_to_disk`, one split per catalog split:
  columns `image`, `face_id`, `source_path`, and one per tag group: a ClassLabel for an
  exclusive group (None where unlabelled), a list of ClassLabels (the tags present,
  value >= 0.5) for an independent one. Read with `datasets.load_from_disk(OUT)`.

Faces without a label of the source are exported too (as in the csv format), with empty
labels. Both formats are written from the same stream of faces as the others (export.py),
with memory bounded: the shards go straight to disk, the Hugging Face columns go through
Arrow stream files per split that `save_to_disk` then lays out.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from db import Catalog, CatalogError

from curate.images import rgb_png

INSTALL_HINT = "pip install -e '.[export]'"
UNSPLIT = "unsplit"


MODULES = {"webdataset": "webdataset", "hf": "datasets"}


def require(fmt: str):
    """The library a format is written with, or a one-line error saying how to install it."""
    try:
        return __import__(MODULES[fmt])
    except ImportError:
        raise CatalogError(f"--format {fmt} needs the {MODULES[fmt]} package, which is not installed: "
                           f"{INSTALL_HINT}") from None


def _face_labels(labels: dict, groups: list[dict]) -> tuple[dict, dict]:
    """A face's current labels as (labels, probabilities): exclusive groups by group name,
    independent tags by tag name."""
    out, probs = {}, {}
    for g in groups:
        for key in ([g["name"]] if g["exclusive"] else g["tags"]):
            if key in labels:
                tag, value = labels[key]
                out[key] = tag if g["exclusive"] else value
                if value is not None:
                    probs[key] = value
    return out, probs


class WebDatasetShards:
    def __init__(self, work: Path, catalog: Catalog, o, labels: dict, group: dict):
        self.wds = require("webdataset")
        self.work, self.o, self.labels, self.group = work, o, labels, group
        self.groups = catalog.groups()
        self.writers: dict = {}
        self.mtime = int(time.time())   # whole seconds: a float makes tarfile write a pax header per member

    def add(self, face: dict, result) -> None:
        split = face.get("split") or UNSPLIT
        if split not in self.writers:
            self.writers[split] = self.wds.ShardWriter(str(self.work / f"{split}-%06d.tar"),
                                                       maxcount=self.o.shard_size, verbose=0, mtime=self.mtime)
        data, size = rgb_png(face["image"], face["format"])   # first: a broken crop is left out (export.py)
        face_labels = self.labels.get(face["id"], {})
        if not face_labels:
            result.skipped_unlabelled += 1     # still exported: counted to tell the user
        labels, probs = _face_labels(face_labels, self.groups)
        meta = {"face_id": face["id"], "split": face.get("split"), "source_path": face.get("source_path"),
                "width": size[0], "height": size[1], "source": self.o.source, "labels": labels,
                "probabilities": probs,
                "box": [face.get(k) for k in ("box_x", "box_y", "box_w", "box_h")]}
        sample = {"__key__": f"{face['id']:09d}", "png": data, "json": json.dumps(meta).encode()}
        cls = labels.get(self.group["name"]) if self.group else None
        if cls is not None:
            sample["cls"] = str(self.group["tags"].index(cls)).encode()
            result.per_class[cls] = result.per_class.get(cls, 0) + 1
        self.writers[split].write(sample)
        result.written += 1
        result.sizes.add(size)

    def close(self, result) -> None:
        for writer in self.writers.values():
            writer.close()


class HuggingFaceDataset:
    BATCH = 256     # rows per Arrow record batch

    def __init__(self, work: Path, catalog: Catalog, o, labels: dict, group: dict):
        self.ds = require("hf")
        import pyarrow as pa
        self.pa, self.work, self.labels = pa, work, labels
        self.groups = catalog.groups()
        columns = {"image": self.ds.Image(), "face_id": self.ds.Value("int64"),
                   "source_path": self.ds.Value("string")}
        for g in self.groups:
            tags = self.ds.ClassLabel(names=g["tags"]) if g["tags"] else self.ds.Value("string")
            columns[g["name"]] = tags if g["exclusive"] else self.ds.Sequence(tags)
        self.features = self.ds.Features(columns)
        self.streams: dict = {}     # split -> (file, Arrow stream writer, rows waiting)
        (work / ".arrow").mkdir()

    def add(self, face: dict, result) -> None:
        split = face.get("split") or UNSPLIT
        if split not in self.streams:
            sink = self.pa.OSFile(str(self.work / ".arrow" / f"{split}.arrow"), "wb")
            self.streams[split] = (sink, self.pa.ipc.new_stream(sink, self.features.arrow_schema), [])
        data, size = rgb_png(face["image"], face["format"])   # first: a broken crop is left out (export.py)
        face_labels = self.labels.get(face["id"], {})
        if not face_labels:
            result.skipped_unlabelled += 1
        row = {"image": {"bytes": data, "path": None}, "face_id": face["id"], "source_path": face.get("source_path")}
        for g in self.groups:
            if g["exclusive"]:
                row[g["name"]] = face_labels[g["name"]][0] if g["name"] in face_labels else None
            else:
                row[g["name"]] = [t for t in g["tags"] if t in face_labels
                                  and (face_labels[t][1] is None or face_labels[t][1] >= 0.5)]
        rows = self.streams[split][2]
        rows.append(self.features.encode_example(row))
        if len(rows) >= self.BATCH:
            self._write(split)
        result.written += 1
        result.sizes.add(size)

    def _write(self, split: str) -> None:
        _, writer, rows = self.streams[split]
        if rows:
            writer.write_batch(self.pa.RecordBatch.from_pylist(rows, schema=self.features.arrow_schema))
            rows.clear()

    def close(self, result) -> None:
        import shutil
        for split, (sink, writer, _) in self.streams.items():
            self._write(split)
            writer.close()
            sink.close()
        splits = {s: self.ds.Dataset.from_file(str(self.work / ".arrow" / f"{s}.arrow")) for s in self.streams}
        self.ds.DatasetDict(splits).save_to_disk(str(self.work / "dataset"))
        del splits
        shutil.rmtree(self.work / ".arrow")
        for item in (self.work / "dataset").iterdir():   # the dataset is OUT itself
            item.rename(self.work / item.name)
        (self.work / "dataset").rmdir()
