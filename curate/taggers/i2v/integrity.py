"""Is this the illustration2vec model we mean? Its shape, and a sha256 recorded beside it.

No checksum of the official release can be looked up from here, so a download is trusted
on its structure (the protobuf parses into i2v's 12 convolutions with their shapes and
1,539 outputs, and the tag list is as long) and on a hash the user may pin (`--sha256`,
or a `<file>.sha256` put in the model folder). Once it passes, its sha256 is recorded as
`<file>.sha256` (sha256sum's format) and every later load checks the file against it.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from curate.taggers.i2v.caffemodel import I2V_STAGES, I2V_WIDTHS, Layer

MODEL_FILE = "illust2vec_tag_ver200.caffemodel"
N_TAGS = 1539
HEX = re.compile(r"[0-9a-f]{64}")


class IntegrityError(Exception):
    """The file is not the model it should be; the message names it and says how it differs."""

    def __init__(self, message: str, path: Path | None = None):
        super().__init__(message)
        self.path = path   # the file at fault, where it is known


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def record_path(path: str | os.PathLike) -> Path:
    return Path(str(path) + ".sha256")


def parse_sha256(text: str, where: str) -> str:
    """A sha256 as 64 lowercase hex digits, from `HEX` or a sha256sum line `HEX  name`."""
    digest = text.strip().split()[0].lower() if text.strip() else ""
    if not HEX.fullmatch(digest):
        raise IntegrityError(f"{where}: {text.strip()[:80]!r} is not a sha256 (64 hex digits)")
    return digest


def read_record(path: str | os.PathLike) -> str | None:
    """The sha256 recorded (or pinned by hand) beside `path`, None when there is none."""
    record = record_path(path)
    if not record.is_file():
        return None
    return parse_sha256(record.read_text(errors="replace"), str(record))


def write_record(path: str | os.PathLike, digest: str) -> Path:
    record = record_path(path)
    record.write_text(f"{digest}  {Path(path).name}\n")
    return record


def verify(path: str | os.PathLike, expected: str | None, where: str) -> str:
    """The file's sha256; IntegrityError when `expected` (from `where`) says otherwise."""
    actual = sha256_file(path)
    if expected is not None and actual != expected:
        raise IntegrityError(f"{path} has sha256 {actual}, but {where} says {expected}: it is not the model "
                             f"that was pinned (download it again, or delete {record_path(path).name} if you "
                             f"replaced it on purpose)")
    return actual


def expected_convolutions(n_outputs: int = N_TAGS, widths: dict[int, int] | None = None
                          ) -> dict[str, tuple[int, int, int, int]]:
    """i2v's convolutions in order, name -> weight shape (out, in, 3, 3)."""
    widths = widths or I2V_WIDTHS
    out, cin = {}, 3
    for stage, n in I2V_STAGES:
        for i in range(1, n + 1):
            name = f"conv{stage}_{i}"
            cout = n_outputs if name == "conv6_4" else widths[stage]
            out[name] = (cout, cin, 3, 3)
            cin = cout
    return out


def check_structure(model: Path, layers: list[Layer], tags: list[str], tags_path: Path,
                    expected: dict[str, tuple[int, int, int, int]]) -> None:
    """IntegrityError unless the layers are i2v's convolutions with these shapes and the tag list
    names every output."""
    convs = [layer for layer in layers if layer.type == "Convolution"]
    names = [layer.name for layer in convs]
    if names != list(expected):
        raise IntegrityError(f"{model} is not illustration2vec's tag model: its convolutions are "
                             f"{', '.join(names[:14]) or 'none'}, not {', '.join(expected)}")
    for layer in convs:
        shape = tuple(layer.blobs[0].shape) if layer.blobs else None
        if shape != expected[layer.name] or len(layer.blobs) < 2 or layer.blobs[1].size != expected[layer.name][0]:
            raise IntegrityError(f"{model}: {layer.name} has weights of shape {shape}, expected "
                                 f"{expected[layer.name]} with {expected[layer.name][0]} biases")
    outputs = expected["conv6_4"][0]
    if len(tags) != outputs:
        raise IntegrityError(f"the tag list has {len(tags)} tags but {model} has {outputs} outputs", tags_path)
