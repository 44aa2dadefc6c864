"""Fetch illustration2vec's official model files once (rezoo/illustration2vec release v2.0.0).

Each file goes to `<name>.part` first, continued with an HTTP Range request after an
interruption, and is renamed into place only when its size matches what the server
announced (and the expected size we know, for the real release).
"""

from __future__ import annotations

import gzip
import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

RELEASE_URL = "https://github.com/rezoo/illustration2vec/releases/download/v2.0.0/"
# name -> expected size in bytes (None: trust the server's Content-Length)
FILES = {"illust2vec_tag_ver200.caffemodel": None, "tag_list.json.gz": None}
CHUNK = 1 << 20


class DownloadError(Exception):
    """A download failed; the message says what to do instead."""


def default_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "curate" / "i2v"


def fetch(url: str, target: Path, expected: int | None = None, timeout: float = 30,
          progress: Callable[[int, int | None], None] | None = None) -> Path:
    """Download `url` to `target`, resuming a `.part` file left by an earlier try."""
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


def download(model_dir: Path | None = None, base_url: str = RELEASE_URL, files: dict | None = None,
             progress: Callable[[str, int, int | None], None] | None = None) -> Path:
    """Fetch the tag model and tag list into `model_dir`; unpack tag_list.json.gz."""
    model_dir = Path(model_dir or default_dir()).expanduser()
    try:
        model_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DownloadError(f"cannot create {model_dir}: {e.strerror}") from None
    for name, expected in (files or FILES).items():
        fetch(base_url + name, model_dir / name, expected,
              progress=(lambda done, total, n=name: progress(n, done, total)) if progress else None)
    gz = model_dir / "tag_list.json.gz"
    if gz.is_file() and not (model_dir / "tag_list.json").is_file():
        try:
            data = gzip.decompress(gz.read_bytes())
        except (OSError, EOFError) as e:
            raise DownloadError(f"{gz} is not a gzip file ({e}); delete it and run again") from None
        (model_dir / "tag_list.json").write_bytes(data)
    return model_dir
