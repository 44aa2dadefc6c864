"""`train runs`: the run folders under a folder, with what they train, how far they got, and
their evaluation figures when they have been evaluated."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from train.eval.evaluate import read_eval
from train.options import TrainOptions
from train.runs import Run, RunError, load_run
from train.eval.spread import option_text, settings

# shown in columns of their own: not among "options" (--common and --same-faces are: a run of
# its own records them in options.json and nothing else shows them)
SHOWN_APART = ("model", "labels", "size", "iters", "epochs")


def steps(run: Run) -> tuple[int, int]:
    """(steps done: the newest checkpoint's, total steps of the run)."""
    ckpts = run.checkpoints()
    done = int(ckpts[-1].stem) if ckpts and ckpts[-1].stem.isdigit() else 0
    return done, run.total_steps


def find_run_dirs(root: str | Path, depth: int = 3) -> list[Path]:
    """Run folders (holding options.json) under root, down to `depth` levels (so `experiments/`
    finds every experiment's runs), in name order."""
    root = Path(root)
    if (root / "options.json").is_file():
        return [root]
    if depth == 0 or not root.is_dir():
        return []
    return [run for child in sorted(root.iterdir()) if child.is_dir() for run in find_run_dirs(child, depth - 1)]


def key_options(options: dict) -> str:
    """The options in which a run departs from `train MODEL`'s defaults, as `train` spells them."""
    model = options["model"]
    default = dataclasses.asdict(TrainOptions(model=model))
    if TrainOptions(model=model).conditional:
        default["attrs"] = ["hair_color", "eye_color"]
    ours, theirs = settings(options), settings(default)
    return " ".join(option_text(k, v) for k, v in ours.items() if k not in SHOWN_APART and v != theirs.get(k))


def summary(run_dir: Path, root: Path) -> dict:
    run = load_run(run_dir)
    done, total = steps(run)
    status = "done" if done >= total and (run.dir / "G_ema.pt").exists() else ("stopped" if done else "new")
    out = {"run": str(run_dir), "name": str(run_dir.relative_to(root)) if run_dir != root else run_dir.name,
           "model": run.model, "labels": run.options.get("labels"), "seed": run.options.get("seed"),
           "size": run.size, "steps": done, "total_steps": total, "status": status,
           "options": key_options(run.options), "judge_accuracy": None, "judge_fid": None, "judge": None}
    ev = read_eval(run_dir)
    if ev is not None:
        out.update(judge_accuracy={g: v["accuracy"] for g, v in ev.get("judge_accuracy", {}).items()},
                   judge_fid=ev.get("judge_fid"), judge=ev.get("judge", {}).get("path"))
    return out


def list_runs(root: str | Path) -> tuple[list[dict], list[str]]:
    """A summary per run folder under root, and a line per folder that could not be read."""
    root = Path(root)
    rows, problems = [], []
    for path in find_run_dirs(root):
        try:
            rows.append(summary(path, root))
        except (RunError, KeyError, ValueError, TypeError) as e:
            problems.append(f"{path}: {e}")
    return rows, problems
