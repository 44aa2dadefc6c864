"""Models shipped inside the package, named `pretrained:NAME` wherever a run folder is accepted
(`train sample`, `train eval`, the app's Draw page): train.runs.run_folder turns such a name into
the folder, and a user's own runs are given by their path as before.

A shipped model is a run folder under `train/pretrained_models/NAME/`: its `options.json`, its
final generator `G_ema.pt` (tensors and plain values only, loaded as every run's is:
curate.safe_load), and `sha256.json`, the SHA-256 of each of those files, checked before the
folder is handed out: a changed byte is refused, and so is a missing file.
`ship(run, folder)` makes such a folder from a finished run: the generator in half precision (half
the size; painting computes in fp32 as before), options.json without the paths of the machine it was
trained on, and the record.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from functools import lru_cache
from pathlib import Path

import torch

from curate import safe_load
from train.disk import save_atomic, write_whole

PREFIX = "pretrained:"
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained_models"
RECORD = "sha256.json"
RECORDED = ("options.json", "G_ema.pt")     # what a shipped model must hold, each with its hash
NONE_YET = "no pretrained models ship with this version yet; train one with `train pix2pix`"


class PretrainedError(Exception):
    """An unknown `pretrained:` name, or a shipped model whose files do not match their record."""


def is_pretrained(name: str | Path) -> bool:
    return str(name).startswith(PREFIX)


def known() -> list[str]:
    """The names of the models that ship (folders holding a hash record), sorted."""
    if not PRETRAINED_DIR.is_dir():
        return []
    return sorted(p.name for p in PRETRAINED_DIR.iterdir() if (p / RECORD).is_file())


def resolve(name: str | Path) -> Path:
    """`pretrained:NAME` -> its folder, its files checked against their record. Unknown names are
    refused in one line that lists the known ones."""
    short = str(name)[len(PREFIX):]
    names = known()
    if short not in names:      # only listed names: never a path
        listed = f"the known ones: {', '.join(PREFIX + n for n in names)}" if names else NONE_YET
        raise PretrainedError(f"unknown pretrained model {str(name)!r}: {listed}")
    folder = PRETRAINED_DIR / short
    check(folder)
    return folder


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check(folder: Path) -> None:
    """Every recorded file present with its recorded hash (each file hashed once per size and time)."""
    try:
        record = json.loads((folder / RECORD).read_text())
    except (OSError, ValueError) as e:
        raise PretrainedError(f"{folder.name}: its hash record {RECORD} cannot be read ({e})") from None
    missing = [f for f in RECORDED if f not in record]
    if missing:
        raise PretrainedError(f"{folder.name}: {RECORD} records no hash for {', '.join(missing)}")
    for file, want in record.items():
        path = folder / Path(file).name
        if not path.is_file():
            raise PretrainedError(f"{folder.name}: {file} is missing")
        stat = path.stat()
        if _hash(str(path), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns) != want:
            raise PretrainedError(f"{folder.name}: {file} does not match its recorded SHA-256: changed or "
                                  "damaged since it shipped; reinstall the package")


@lru_cache(maxsize=16)
def _hash(path: str, size: int, mtime_ns: int, ctime_ns: int) -> str:
    return sha256(Path(path))


def write_record(folder: Path) -> Path:
    """The hash record of a run folder made ready to ship (options.json, G_ema.pt)."""
    record = {f: sha256(folder / f) for f in RECORDED}
    path = folder / RECORD
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def working_copy(name: str | Path, root: Path) -> Path:
    """A copy of the shipped model `pretrained:NAME` in `root`/pretrained-NAME, for what writes into a run
    folder (`train eval`'s eval.json): the package's folder is never written. An existing copy of the same
    model (same hash record) is kept with what was written into it; another is replaced."""
    folder = resolve(name)
    dest = Path(root) / f"pretrained-{folder.name}"
    if (dest / RECORD).is_file() and (dest / RECORD).read_bytes() == (folder / RECORD).read_bytes():
        return dest
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for file in (*RECORDED, RECORD):
        shutil.copy2(folder / file, dest / file)
    return dest


PATH_OPTIONS = ("catalog", "runs_dir", "cache_dir")    # where it was trained: only the file names travel


def ship(run_dir: Path, folder: Path, half: bool = True) -> Path:
    """A finished run's folder cut to what painting needs, ready to ship as `folder` (new): G_ema.pt
    (floating tensors in fp16 with `half`), options.json with PATH_OPTIONS reduced to their names, and
    the hash record."""
    run_dir, folder = Path(run_dir), Path(folder)
    final = run_dir / "G_ema.pt"
    if not final.is_file():
        raise PretrainedError(f"{run_dir} has no G_ema.pt: only a finished run can ship")
    folder.mkdir(parents=True, exist_ok=False)
    options = json.loads((run_dir / "options.json").read_text())
    for key in PATH_OPTIONS:
        if options.get(key):
            options[key] = Path(options[key]).name
    write_whole(folder / "options.json", lambda f: f.write((json.dumps(options, indent=2) + "\n").encode()))
    saved = safe_load.load(final)
    if half:
        saved["state"] = {k: v.half() if torch.is_tensor(v) and v.is_floating_point() else v
                          for k, v in saved["state"].items()}
    save_atomic(saved, folder / "G_ema.pt")   # never a half-written model file
    return write_record(folder)
