"""`train eval` of a model that paints faces from noise: score its generator against real faces
(the generic scorer, GENERIC_EVALUATION in train.eval.hooks; train.eval.score picks a run's
model's scorer), and eval.json written and read.

Everything is drawn from fixed seeds, so two evaluations of one run agree and two runs
are scored on the very same requested conditions:

- conditions: the real test split's labels (judge's source), cycled to `n` -- the same
  list for every run, restricted to the tags each run knows;
- judge accuracy: how often the judge finds the requested tag, per group and per tag,
  beside the judge's accuracy on real test faces (the ceiling);
- FID/KID in the judge's feature space against the real test split, beside the
  real-vs-real floor (train faces vs test faces, same sample count as the fakes);
- per tag of the first exclusive group (hair colour): intra-class FID (fakes asked
  for that tag vs real train faces with it), mean pairwise feature distance (spread)
  and the share of near-duplicates, real faces alongside;
- FID/KID on InceptionV3 features when real weights are at hand, else "skipped" with why.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from db import Catalog

from train.eval import metrics as M
from curate.taggers.classifier import Judge, LabelledSet, accuracy, load_labelled
from train.runs import Run
from train.sampling import generate

DIVERSITY_MAX = 2000       # pairwise distances on at most this many samples (N² memory)
SKIPS_TOLD: set[str] = set()   # why Inception FID/KID was skipped, as said already in this process


def run_conditions(run: Run, wanted: list[dict]) -> tuple[list[dict], int]:
    """The requested tag dicts restricted to what the run's vocabulary knows; and how many
    requested tags had to be dropped (a run trained without, say, 'grey eyes')."""
    spec = run.spec
    out, dropped = [], 0
    for d in wanted:
        kept = {}
        for group, value in d.items():
            g = next((g for g in spec.groups if g.name == group), None)
            if g is None:
                continue
            if isinstance(value, str):
                if value in g.tags:
                    kept[group] = value
                else:
                    dropped += 1
            else:
                kept[group] = [t for t in value if t in g.tags]
                dropped += len(value) - len(kept[group])
        out.append(kept)
    return out, dropped


def evaluate_run(run: Run, judge: Judge, catalog: Catalog, n: int = 10000, seed: int = 0,
                 per_class: int = 500, min_class: int = 20, inception_weights: str | Path | None = None,
                 download: bool = False, log=print, device: str = "cpu") -> dict:
    """All metrics of one run as a plain dict (see the module docstring); the generator and the
    judge run on `device`."""
    if n < 2:
        raise ValueError(f"--n must be at least 2, not {n}")
    started = time.time()
    source = judge.options.source
    log(f"loading real faces ({source!r} labels, {run.size}x{run.size})")
    real_test = load_labelled(catalog, source, "test", run.size)
    real_train = load_labelled(catalog, source, "train", run.size)
    if len(real_test.face_ids) < 2 or len(real_train.face_ids) < 2:
        raise ValueError(f"the catalog has {len(real_train.face_ids)} train and {len(real_test.face_ids)} test "
                         f"faces labelled by {source!r}: too few to evaluate against")
    G = run.generator(ema=True, device=device)
    judge.to(device)
    result: dict = {"run": str(run.dir), "model": run.model, "labels": run.options.get("labels"),
                    "size": run.size, "n": n, "seed": seed, "judge": judge_summary(judge)}

    # The same requested conditions for every run: the real test labels, cycled.
    conditional = run.conditional and run.spec is not None
    if conditional:
        wanted = [real_test.tags[i % len(real_test.tags)] for i in range(n)]
        wanted, dropped = run_conditions(run, wanted)
        result["conditions"] = {"from": f"{source} test split, cycled", "dropped_tags": dropped}
    else:
        wanted = None
    log(f"generating {n} faces (seed {seed})")
    fake, asked = generate(run, n, conditions=wanted, seed=seed, G=G, device=device)
    f_fake, p_fake = judge.outputs(fake)
    f_test = judge.features(real_test.images)
    f_train = judge.features(real_train.images)
    predicted = judge.predict(fake)
    if conditional:
        result["judge_accuracy"] = accuracy(judge.heads, predicted, asked)

    result.update(realism(f_fake, f_test, f_train, seed))
    if conditional:
        result["per_class"] = per_class_metrics(run, judge, G, real_train, f_train, per_class, min_class, seed,
                                                result["diversity"]["duplicate_threshold"], log, device)
    result["inception"] = inception_metrics(fake, real_train, real_test, inception_weights, download, n, log)
    result["seconds"] = round(time.time() - started, 1)
    return result


def realism(f_fake: np.ndarray, f_test: np.ndarray, f_train: np.ndarray, seed: int) -> dict:
    """FID/KID of the fakes' judge features against the real test split, beside the real-vs-real
    floor (as many train faces as fakes), and their diversity (`judge_fid`, `judge_kid`,
    `judge_kid_std`, `floor`, `diversity` of eval.json)."""
    n = len(f_fake)
    rng = np.random.default_rng(seed)
    floor_idx = rng.permutation(len(f_train))[:min(n, len(f_train))]
    out: dict = {"judge_fid": M.fid(f_fake, f_test)}
    out["judge_kid"], out["judge_kid_std"] = M.kid(f_fake, f_test, seed=seed)
    out["floor"] = {"judge_fid": M.fid(f_train[floor_idx], f_test),
                    "judge_kid": M.kid(f_train[floor_idx], f_test, seed=seed)[0],
                    "n_train": int(len(floor_idx)), "n_test": len(f_test)}

    # Diversity overall. "Near-duplicate" is calibrated on as many real faces as fakes (nearest-
    # neighbour distances shrink as a set grows): 1% of real faces are that close by construction.
    sub = _subset(n, DIVERSITY_MAX, seed)
    real_sub = f_train[_subset(len(f_train), len(sub), seed)]
    threshold = M.duplicate_threshold(real_sub)
    out["diversity"] = {
        "duplicate_threshold": threshold,
        "fake": {"mean_distance": M.mean_pairwise_distance(f_fake[sub]),
                 "near_duplicates": M.near_duplicate_share(f_fake[sub], threshold), "n": int(len(sub))},
        "real": {"mean_distance": M.mean_pairwise_distance(real_sub),
                 "near_duplicates": M.near_duplicate_share(real_sub, threshold), "n": int(len(real_sub))}}
    return out


def per_class_metrics(run: Run, judge: Judge, G, real_train: LabelledSet, f_train: np.ndarray, per_class: int,
                      min_class: int, seed: int, threshold: float, log, device: str = "cpu") -> dict:
    """Intra-class FID and diversity per tag of the first exclusive group the run and judge share."""
    spec_groups = {g.name: g for g in run.spec.groups if g.exclusive}
    head = next((h for h in judge.heads if h["exclusive"] and h["name"] in spec_groups), None)
    if head is None:
        return {}
    group = head["name"]
    out = {"group": group, "tags": {}}
    for k, tag in enumerate(head["tags"]):
        idx = [i for i, d in enumerate(real_train.tags) if d.get(group) == tag]
        if tag not in spec_groups[group].tags or len(idx) < min_class:
            continue
        m = min(per_class, max(len(idx), min_class))
        fake, _ = generate(run, m, conditions=[{group: tag}], seed=seed + 1 + k, G=G, device=device)
        f_fake = judge.features(fake)
        f_real = f_train[idx]
        sub_f, sub_r = _subset(m, DIVERSITY_MAX, seed), _subset(len(idx), DIVERSITY_MAX, seed)
        out["tags"][tag] = {
            "n_fake": m, "n_real": len(idx),
            "intra_fid": M.fid(f_fake, f_real),
            "fake_mean_distance": M.mean_pairwise_distance(f_fake[sub_f]),
            "real_mean_distance": M.mean_pairwise_distance(f_real[sub_r]),
            "fake_near_duplicates": M.near_duplicate_share(f_fake[sub_f], threshold),
            "real_near_duplicates": M.near_duplicate_share(f_real[sub_r], threshold),
        }
    if out["tags"]:
        out["mean_intra_fid"] = float(np.mean([v["intra_fid"] for v in out["tags"].values()]))
    log(f"intra-class metrics for {len(out['tags'])} {group} tags")
    return out


def inception_metrics(fake: torch.Tensor, real_train: LabelledSet, real_test: LabelledSet, weights, download: bool,
                      n: int, log) -> dict:
    """FID/KID on InceptionV3 pool features (fakes vs real train faces, floor: test vs train)."""
    try:
        path = M.inception_weights(weights, download=download)
    except M.WeightsUnavailable as e:
        if str(e) not in SKIPS_TOLD:      # an experiment evaluates many runs: said once, not once a run
            SKIPS_TOLD.add(str(e))
            log(f"Inception FID/KID skipped: {e}")
        return {"skipped": str(e)}
    extractor = M.InceptionFeatures(path)
    log(f"Inception features of {len(fake)} fakes and {len(real_train.images)} + {len(real_test.images)} real faces")
    f_fake, f_train, f_test = extractor(fake), extractor(real_train.images), extractor(real_test.images)
    return {"weights": str(path), "fid": M.fid(f_fake, f_train), "kid": M.kid(f_fake, f_train)[0],
            "floor_fid": M.fid(f_test, f_train), "floor_kid": M.kid(f_test, f_train)[0]}


def judge_summary(judge: Judge) -> dict:
    test = judge.scores.get("test", {})
    return {"source": judge.options.source, "size": judge.options.size,
            "test_accuracy": {g: s["accuracy"] for g, s in test.items()},
            "test_per_tag": {g: {t: v["accuracy"] for t, v in s["per_tag"].items()} for g, s in test.items()},
            "faces": judge.scores.get("faces")}


def _subset(n: int, k: int, seed: int) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).permutation(n)[:min(n, k)])


def write_eval(run: Run, result: dict) -> Path:
    path = run.dir / "eval.json"
    tmp = path.with_suffix(".json.part")
    tmp.write_text(json.dumps(result, indent=2, default=float))
    tmp.replace(path)
    return path


def read_eval(run_dir: str | Path) -> dict | None:
    path = Path(run_dir) / "eval.json"
    return json.loads(path.read_text()) if path.exists() else None
