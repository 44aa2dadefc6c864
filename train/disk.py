"""Files written whole or not at all, and a full disk said in words.

A run writes checkpoints, sample grids, G_ema.pt, options.json and metrics rows while it
trains, for hours: the disk may fill up under it. Whatever was being written then must not be
left half-written where a later run (a --resume, a report) would read it as whole:

- `write_whole(path, write)`: into `NAME.tmp` beside it, flushed to the disk (fsync), then
  renamed over `path`; on any error the temp file is removed and `path` is as it was.
- `save_atomic(obj, path)`: torch.save through `write_whole` (checkpoints, G_ema.pt, shipped models).
- `append_whole(f, data, path)`: one line (a metrics row, a log line) appended to an
  unbuffered file; on an error the file is cut back to where it was.

Both raise `WriteFailed` (the path and the OSError) for whoever stops the run to say.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import BinaryIO, Callable

import torch

FULL = {errno.ENOSPC, errno.EDQUOT}


class WriteFailed(Exception):
    """An OSError (a full disk, a quota, an I/O error) while writing `path`."""

    def __init__(self, path: str | Path, error: OSError):
        self.path, self.error = Path(path), error
        super().__init__(f"{why(error)} writing {path}")


def why(error: OSError) -> str:
    """'disk full' for ENOSPC and EDQUOT (a quota is a full disk to its user), else the OS's words."""
    if error.errno in FULL:
        return "disk full"
    return (error.strerror or str(error)).lower() if error.errno is not None else str(error)


def write_whole(path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """`write(f)` into a temp file beside `path`, then the temp file renamed to `path` once it is
    whole and on the disk. Raises WriteFailed on an OSError (the temp file removed)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:      # a Ctrl-C too: never leave the temp file behind
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise WriteFailed(path, e) from e
        raise
    sync_folder(path.parent)


def save_atomic(obj, path: str | Path) -> None:
    """torch.save, whole or not at all (`write_whole`). Into a file object: torch's own file writer
    turns a full disk into an opaque RuntimeError."""
    write_whole(path, lambda f: torch.save(obj, f))


def sync_folder(folder: Path) -> None:
    """The rename itself on the disk (a crash after it keeps the new file, not an empty name)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:     # some file systems cannot sync a folder: the rename is still done
        pass
    finally:
        os.close(fd)


def append_whole(f: BinaryIO, data: bytes, path: str | Path) -> None:
    """Append `data` to the unbuffered file `f` (opened "ab", buffering=0), all of it or nothing:
    on an error the file is cut back to its length before (a full disk frees that much)."""
    start = os.fstat(f.fileno()).st_size
    view = memoryview(data)
    try:
        while view:
            view = view[f.write(view):]
    except OSError as e:
        try:
            os.ftruncate(f.fileno(), start)
        except OSError:
            pass
        raise WriteFailed(path, e) from e


def mount_point(path: str | Path) -> Path:
    """The folder the file system holding `path` is mounted at (`/`, `/home`, `/mnt/data` ...)."""
    path = Path(path).resolve()
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


def free_text(path: str | Path) -> str:
    """'1.2 GB free on the disk at MOUNT' for the disk holding `path`."""
    mount = mount_point(path)
    try:
        free = shutil.disk_usage(mount).free
    except OSError:
        return f"the disk at {mount}"
    return f"{size_text(free)} free on the disk at {mount}"


def size_text(n: float) -> str:
    """Bytes in words: '512 B', '160.0 kB', '1.2 GB'."""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"
