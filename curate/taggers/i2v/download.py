"""Fetch illustration2vec's official model files once (rezoo/illustration2vec release v2.0.0).

Each file goes to `<name>.part` first, continued with an HTTP Range request after an
interruption, and is renamed into place only when its size matches what the server
announced (and the expected size we know, for the real release). Then what arrived is
checked (`integrity`): the model must have i2v's layers and shapes and the tag list one
tag per output; a sha256 pinned with `--sha256` or in `<model>.sha256` must match; the
model's and the tag list's sha256 are recorded beside them for every later load.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Callable

from curate.cache import cache_path
from curate.taggers.i2v.caffemodel import CaffeModelError, read_caffemodel
from curate.taggers.i2v.integrity import (MODEL_FILE, IntegrityError, check_structure, expected_convolutions, parse_sha256,
                        read_record, record_path, verify, write_record)

RELEASE_URL = "https://github.com/rezoo/illustration2vec/releases/download/v2.0.0/"
# name -> expected size in bytes (None: trust the server's Content-Length)
FILES = {MODEL_FILE: None, "tag_list.json.gz": None}
TAG_LIST = "tag_list.json"
OFFICIAL = expected_convolutions()   # the layers and shapes of the release's model
CHUNK = 1 << 20
MIB = 1 << 20
# The most each file may weigh, about twice the release's own (the tag model is ~180 MB, the tag
# list ~20 KB packed, ~30 KB unpacked): a hostile or broken --base-url cannot fill the disk with an
# endless reply, nor memory with a gzip bomb.
MAX_BYTES = {MODEL_FILE: 400 * MIB, "tag_list.json.gz": 4 * MIB}
MAX_TAG_LIST_BYTES = 16 * MIB


class DownloadError(Exception):
    """A download failed; the message says what to do instead."""


def default_dir() -> Path:
    return cache_path("i2v", old=("i2v",))


def fetch(url: str, target: Path, expected: int | None = None, timeout: float = 30,
          progress: Callable[[int, int | None], None] | None = None, limit: int | None = None) -> Path:
    """Download `url` to `target`, resuming a `.part` file left by an earlier try. More than
    `limit` bytes (announced or arriving) is refused and the part removed."""
    if target.is_file() and (expected is None or target.stat().st_size == expected):
        return target
    part = target.with_name(target.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:   # nothing left to fetch: the .part is complete
            response = None
        else:
            raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DownloadError(f"cannot reach {url} ({reason}): this machine seems to have no internet; "
                            f"fetch the files elsewhere and pass --model-dir") from None
    total = None
    if response is not None:
        with response:
            resumed = response.status == 206
            if not resumed:
                have = 0   # the server ignored Range: start over
            length = response.headers.get("Content-Length")
            total = have + int(length) if length is not None else None
            if limit is not None and total is not None and total > limit:
                _too_big(url, part, limit)
            with open(part, "ab" if resumed else "wb") as f:
                while True:
                    try:
                        chunk = response.read(CHUNK)
                    except (OSError, http.client.HTTPException) as e:
                        raise DownloadError(f"{url}: connection lost after {have} bytes ({e}); "
                                            f"run the command again to resume") from None
                    if not chunk:
                        break
                    f.write(chunk)
                    have += len(chunk)
                    if limit is not None and have > limit:
                        f.close()
                        _too_big(url, part, limit)
                    if progress:
                        progress(have, total)
    size = part.stat().st_size
    if total is not None and size != total:
        raise DownloadError(f"{url}: got {size} of {total} bytes; run the command again to resume")
    if expected is not None and size != expected:
        part.unlink()
        raise DownloadError(f"{url}: {size} bytes, expected {expected}: removed the file, try again")
    os.replace(part, target)
    return target


def _too_big(url: str, part: Path, limit: int):
    part.unlink(missing_ok=True)
    raise DownloadError(f"{url}: more than {limit // MIB} MiB, far more than the release's file: "
                        f"removed it; check --base-url")


def unpack_tag_list(gz: Path, target: Path, limit: int | None = None) -> None:
    """Unpack the tag list, refusing more than `limit` bytes of output (a gzip bomb)."""
    limit = MAX_TAG_LIST_BYTES if limit is None else limit
    try:
        with gzip.open(gz, "rb") as f:
            data = f.read(limit + 1)
    except (OSError, EOFError, zlib.error) as e:
        raise DownloadError(f"{gz} is not a gzip file ({e}); delete it and run again") from None
    if len(data) > limit:
        raise DownloadError(f"{gz} unpacks to more than {limit // MIB} MiB, far more than a tag list: "
                            f"delete it and check --base-url")
    target.write_bytes(data)


def download(model_dir: Path | None = None, base_url: str = RELEASE_URL, files: dict | None = None,
             progress: Callable[[str, int, int | None], None] | None = None, sha256: str | None = None,
             expected: dict | None = None) -> tuple[Path, str]:
    """Fetch the tag model and tag list into `model_dir`, unpack tag_list.json.gz, check them
    (`verify_download`); returns the folder and the model's sha256."""
    if sha256 is not None:
        try:
            sha256 = parse_sha256(sha256, "--sha256")
        except IntegrityError as e:
            raise DownloadError(str(e)) from None
    model_dir = Path(model_dir or default_dir()).expanduser()
    try:
        model_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DownloadError(f"cannot create {model_dir}: {e.strerror}") from None
    for name, expected in (files or FILES).items():
        fetch(base_url + name, model_dir / name, expected, limit=MAX_BYTES.get(name),
              progress=(lambda done, total, n=name: progress(n, done, total)) if progress else None)
    gz = model_dir / "tag_list.json.gz"
    if gz.is_file() and not (model_dir / "tag_list.json").is_file():
        unpack_tag_list(gz, model_dir / TAG_LIST)
    return model_dir, verify_download(model_dir / MODEL_FILE, model_dir / TAG_LIST, sha256, expected or OFFICIAL)


def verify_download(model: Path, tags: Path, pinned: str | None, expected: dict) -> str:
    """Check the files' sha256 against a pin (`pinned`, else a `<file>.sha256` there already)
    and their structure; record what passed; return the model's sha256. A file that fails is
    moved aside to `<file>.rejected`, so the next try downloads it anew."""
    try:
        record = read_record(model)
        if pinned and record and pinned != record:
            raise DownloadError(f"--sha256 {pinned} contradicts {record_path(model)} ({record}): "
                                f"delete one of the two")
        where = "--sha256" if pinned else str(record_path(model))
        digest = _checked(model, lambda: verify(model, pinned or record, where))
        tags_digest = _checked(tags, lambda: verify(tags, read_record(tags), str(record_path(tags))))
        _checked(model, lambda: _check_structure(model, tags, expected))
    except IntegrityError as e:   # a record file that holds no sha256
        raise DownloadError(str(e)) from None
    write_record(model, digest)
    write_record(tags, tags_digest)
    return digest


def _check_structure(model: Path, tags: Path, expected: dict) -> None:
    try:
        tag_list = json.loads(tags.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise IntegrityError(f"{tags} is not a tag list (a JSON array): {e}", tags) from None
    if not isinstance(tag_list, list):
        raise IntegrityError(f"{tags} is not a tag list (a JSON array)", tags)
    try:
        layers = read_caffemodel(model)
    except CaffeModelError as e:
        raise IntegrityError(str(e)) from None
    check_structure(model, layers, tag_list, tags, expected)


def _checked(path: Path, check: Callable):
    """`check()`, or a DownloadError saying which file was moved aside and why."""
    try:
        return check()
    except IntegrityError as e:
        bad = e.path or path
        if bad.is_file():
            os.replace(bad, bad.with_name(bad.name + ".rejected"))
        raise DownloadError(f"{e}; moved {bad.name} aside to {bad.name}.rejected") from None
