"""Shared fixtures. Tests needing ../shared skip on a fresh clone without it."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from db import Catalog

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"

# pytest-xdist's workers start with COLUMNS=80 and LINES=24 set; the commands' consoles, made when
# their module is imported, would keep that width against the one each test asks for.
for _name in ("COLUMNS", "LINES"):
    os.environ.pop(_name, None)


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread per test: small nets run faster so, and results do not depend on the core count."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def shared() -> Path:
    """../shared beside the checkout; the test is skipped where it is absent."""
    if not (SHARED / "data").is_dir():
        pytest.skip("../shared is not beside this checkout")
    return SHARED


@pytest.fixture
def catalog() -> Catalog:
    """An empty in-memory catalog."""
    cat = Catalog()
    yield cat
    cat.close()


def png_bytes(seed: int, size: int = 32) -> bytes:
    """A small random-ish RGB picture, distinct per seed."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def make_tiny_catalog(path: Path) -> Path:
    """A catalog file with 24 synthetic faces, manual hair/eye colours, and splits."""
    cat = Catalog(path)
    hair = ["blonde hair", "black hair", "red hair"]
    eyes = ["blue eyes", "red eyes"]
    labels = []
    for i in range(24):
        sid = cat.save_source(f"/synthetic/{i}.png", sha256=f"{i:064x}", size=1, width=32, height=32,
                              status="ok", detector="none")
        fid = cat.add_face(source_id=sid, image=png_bytes(i), format="png", width=32, height=32,
                           detector="none")
        labels += [(fid, hair[i % 3], 1.0), (fid, eyes[i % 2], 1.0)]
    cat.add_labels(labels, "manual", "tester")
    cat.assign_splits(val=0.2, test=0.2, seed=0)
    cat.close()
    return path


@pytest.fixture
def tiny_catalog(tmp_path) -> Path:
    """A catalog file with 24 synthetic faces, manual hair/eye colours, and splits."""
    return make_tiny_catalog(tmp_path / "tiny.db")


@pytest.fixture(autouse=True)
def _main_module_kept():
    """Streamlit's AppTest leaves `sys.modules["__main__"]` pointing at the app's script; a later
    test that starts processes with `spawn` then runs the page in each child (which dies). Put
    the test runner's own back after every test."""
    main = sys.modules.get("__main__")
    yield
    if main is not None and sys.modules.get("__main__") is not main:
        sys.modules["__main__"] = main
