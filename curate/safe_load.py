"""Loading torch files (checkpoints, G_ema.pt, judges) without running anything they contain.

`torch.load(weights_only=False)` unpickles arbitrary objects, so a file from someone else
could run any code the moment it is opened. Here every file is read with
`weights_only=True`: tensors and plain values (dicts, lists, numbers, strings) only. The one
exception is what run folders written before this rule hold: numpy's RNG state, a numpy
array of integers, allow-listed by name (numpy's array reconstruction builds arrays and
nothing else). Anything else is refused with the file and the names it asked for.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch


class UnsafeFileError(Exception):
    """A torch file that asks to load Python objects other than tensors and plain values."""


def _legacy_numpy() -> list[tuple]:
    """(object, pickled name) of numpy's RNG state as np.random.get_state() left it in the
    checkpoints of earlier versions (numpy 1 and 2 spell the module differently)."""
    core = getattr(np, "_core", None) or np.core
    pairs = [(core.multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
             (core.multiarray._reconstruct, "numpy._core.multiarray._reconstruct"),
             (np.ndarray, "numpy.ndarray"), (np.dtype, "numpy.dtype")]
    if hasattr(np, "dtypes"):
        pairs.append((np.dtypes.UInt32DType, "numpy.dtypes.UInt32DType"))
    return pairs


def load(path: str | Path):
    """torch.load, tensors and plain values only. Raises UnsafeFileError for a file that would
    load other objects, and lets torch's own errors through for a corrupt one."""
    with torch.serialization.safe_globals(_legacy_numpy()):
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            names = _unsafe_names(path)
            if names:
                raise UnsafeFileError(
                    f"{path} asks to load Python objects ({', '.join(names)}), not just tensors and plain values: "
                    f"refusing to open it, since loading it could run code. Only use files from people you "
                    f"trust, and re-save them as tensors") from e
            raise


def _unsafe_names(path: str | Path) -> list[str]:
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:   # not a readable torch file at all: the caller reports it as corrupt
        return []
    allowed = {name for _, name in _legacy_numpy()}
    return [n for n in names if n not in allowed]
