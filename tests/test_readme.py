"""The README's command blocks marked `<!-- tested -->` run as written, in order, on a fresh
clone with `../shared` beside it: here a clone-like folder whose `../shared` holds a few of the
shared files, so the blocks stay true at tiny sizes (about a minute)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PICTURES = ["afdr_detect_03.jpg", "s2p_v4_7.png"]   # one face kept, one rejected (for the rejects sheet)
FACES = 160
# What is too big for a test, made tiny; everything else runs exactly as the README writes it.
TINY = {"train experiment": ("--seeds 0,1,2", "--seeds 0", " --iters 2 --batch 8 -n 16 --min-per-tag 2")}
SKIPPED = ("python3 -m venv", ". .venv/bin/activate", "pip install", "python -m pytest", "xdg-open")   # set-up the suite itself runs on


def marked_blocks(readme: str) -> list[str]:
    """The ```bash blocks right after a `<!-- tested` comment, in order."""
    return re.findall(r"<!-- tested[^>]*-->\s*```bash\n(.*?)```", readme, flags=re.S)


def commands(block: str) -> list[str]:
    out = []
    for line in block.splitlines():
        line = line.split("  #")[0].strip()
        parts = [p.strip() for p in line.split("&&")]
        parts = [p for p in parts if p and not p.startswith("#") and not p.startswith(SKIPPED)]
        for p in parts:
            for start, (old, new, extra) in TINY.items():
                if p.startswith(start):
                    p = p.replace(old, new) + extra
            out.append(p)
    return out


def tiny_shared(shared: Path, where: Path) -> None:
    """`where` laid out as ../shared, with 2 raw pictures, FACES labelled faces and the LBP cascade."""
    raw = where / "data" / "raw_illustrations"
    raw.mkdir(parents=True)
    for name in PICTURES:
        (raw / name).symlink_to(shared / "data" / "raw_illustrations" / name)
    faces = where / "data" / "anime_faces_labelled"
    (faces / "images").mkdir(parents=True)
    lines = (shared / "data" / "anime_faces_labelled" / "labels.csv").read_text().splitlines()
    (faces / "labels.csv").write_text("\n".join(lines[:FACES + 1]) + "\n")
    for line in lines[1:FACES + 1]:
        file = line.split(",")[0]
        (faces / file).symlink_to(shared / "data" / "anime_faces_labelled" / file)


@pytest.mark.shared
def test_readme_blocks_run_as_written(shared, tmp_path):
    blocks = marked_blocks((ROOT / "README.md").read_text())
    assert len(blocks) >= 3
    tiny_shared(shared, tmp_path / "shared")
    clone = tmp_path / "clone"
    clone.mkdir()
    cache = tmp_path / "cache"   # the LBP cascade as its one download leaves it
    (cache / "animeface-gan-study" / "cascades").mkdir(parents=True)
    shutil.copy(shared / "models" / "lbpcascade_animeface.xml", cache / "animeface-gan-study" / "cascades")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               PYTHONPATH=str(ROOT), XDG_CACHE_HOME=str(cache), HOME=str(tmp_path))
    env.pop("CURATE_DB", None)
    script = "set -e\n" + "\n".join(f"echo {shlex.quote('$ ' + c)}\n{c}" for b in blocks for c in commands(b))
    r = subprocess.run(["bash", "-c", script], cwd=clone, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    assert (clone / "faces.png").is_file() and (clone / "rejected.png").is_file()
    assert (clone / "study" / "report" / "index.html").is_file()
    assert (clone / "out" / "hf").is_dir() and list((clone / "out" / "wds").glob("*.tar"))
    # each flow in its own catalog: the study's faces are the labelled ones alone
    assert "faces 160 ok" not in r.stdout


def test_every_tested_block_is_found():
    """The marker is on the quick start, the six-command study and the curating block."""
    readme = (ROOT / "README.md").read_text()
    blocks = marked_blocks(readme)
    assert any("curate crop ../shared/data/raw_illustrations --db crops.db" in b for b in blocks)
    assert any("train experiment" in b and "--db study.db" in b for b in blocks)
    assert any(b.count("curate export -o out/") == 5 for b in blocks)
    assert commands("pip install x && curate stats --db a.db  # note")[0] == "curate stats --db a.db"
