"""The house keeps its shape (issue 20): no import circles, no import pointing up a floor
(db < curate < train < label_app), project imports inside functions only for optional
dependencies, no module over 450 lines, no function over 100 lines. benchmarks/house.py
prints the same figures with every offender named."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("house", ROOT / "benchmarks" / "house.py")
house = sys.modules["house"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(house)


@pytest.fixture(scope="module")
def surveyed():
    return house.survey(ROOT)


def test_no_import_circles(surveyed):
    assert house.circles(surveyed) == []


def test_no_import_points_up_a_floor(surveyed):
    assert [f"{i.source}:{i.line} -> {i.target}" for i in house.upward(surveyed)] == []


def test_project_imports_inside_functions_are_few(surveyed):
    found = [f"{i.source}:{i.line} -> {i.target}" for i in house.hidden(surveyed)]
    assert len(found) <= house.MAX_HIDDEN_IMPORTS, found


def test_no_module_too_long(surveyed):
    assert house.long_modules(surveyed) == []


def test_no_function_too_long(surveyed):
    assert house.long_functions(surveyed) == []


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return tmp_path


def test_the_check_finds_what_it_must(tmp_path):
    """The check itself: a circle through a hidden import, an upward import, a long function."""
    body = "\n".join(f"    x{i} = {i}" for i in range(101))
    root = _tree(tmp_path, {
        "db/__init__.py": "",
        "db/a.py": "def f():\n    from db import b\n",
        "db/b.py": "from db.a import f\n",
        "curate/__init__.py": "",
        "curate/c.py": "from train import t\n",
        "train/__init__.py": "",
        "train/t.py": f"def long():\n{body}\n",
        "label_app/__init__.py": "",
    })
    found = house.survey(root)
    assert house.circles(found) == [["db.a", "db.b"]]
    assert [(i.source, i.target) for i in house.upward(found)] == [("curate.c", "train.t")]
    assert [(i.source, i.target) for i in house.hidden(found)] == [("db.a", "db.b")]
    assert [(m, f) for m, f, _ in house.long_functions(found)] == [("train.t", "long")]


def test_a_package_importing_its_own_modules_is_no_circle(tmp_path):
    root = _tree(tmp_path, {
        "db/__init__.py": "from db.core import Catalog\n",
        "db/core.py": "from db import schema\nclass Catalog: pass\n",
        "db/schema.py": "",
        "curate/__init__.py": "", "train/__init__.py": "", "label_app/__init__.py": "",
    })
    assert house.circles(house.survey(root)) == []
