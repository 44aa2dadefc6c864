"""`train compare`: one report over several evaluated runs, as `index.html` (self-contained,
pictures embedded as base64) and `report.md` (pictures beside it as PNG files).

Sections: first the verdict and the warnings (train.eval.report_head: which label source is
better, and the runs not worth comparing), then one row per configuration with the mean ± std
of every metric over its seeds and the differences larger than that spread (train.eval.spread),
every configuration's options (folded), every run's metrics with the judge's real-test ceiling
and the real-vs-real floor, per-tag judge accuracy bars, per-condition sample grids side by
side, each model's own section (its evaluation hook, train.eval.hooks), loss and diagnostic
curves from each run's metrics.csv, and the agreement of the label sources the runs were
trained on with the judge's source. A run's sample grid is its model's too. The pages and the
folder: train.eval.report_pages.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from curate.quality.agreement import agreement, plot_confusions

from train.eval.evaluate import read_eval
from train.eval.report_pages import (ReportError, Section, prepare_out_dir, run_label, short_tag, write_html,
                                     write_markdown)
from train.eval.report_head import Head, arrowed, options_section, report_head, without_arrows
from train.eval.score import evaluation_of
from train.eval.spread import RULE, Group, group_runs, summarise
from train.eval.verdict import VERDICT_RULE
from train.runs import Run, load_run, safe_slug

NOT_CURVES = ("time", "seconds", "epoch", "kimg", "images_per_s")   # bookkeeping, not training signals


# -- the metrics table ------------------------------------------------------------------

def _pct(x) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def _num(x, fmt=".2f") -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def run_metrics(ev: dict, groups: list[str]) -> list[tuple[str, float | None, str]]:
    """The figures of one evaluated run: (column, value, "pct" | "num" | "num3")."""
    acc = ev.get("judge_accuracy", {})
    ceiling = ev["judge"]["test_accuracy"].get(groups[0]) if groups else None
    first = acc.get(groups[0], {}).get("accuracy") if groups else None
    inc = ev.get("inception", {})
    return ([(f"judge acc. {g}", acc.get(g, {}).get("accuracy"), "pct") for g in groups] +
            [(f"% of ceiling ({groups[0] if groups else '-'})",
              first / ceiling if first is not None and ceiling else None, "pct"),
             ("judge FID", ev["judge_fid"], "num"), ("judge KID ×100", 100 * ev["judge_kid"], "num3"),
             ("mean intra-FID", (ev.get("per_class") or {}).get("mean_intra_fid"), "num"),
             ("near-dup.", ev["diversity"]["fake"]["near_duplicates"], "pct"),
             ("Inception FID", inc.get("fid"), "num")])


def _cell(value, kind: str) -> str:
    return _pct(value) if kind == "pct" else _num(value, ".3f" if kind == "num3" else ".2f")


def metrics_table(runs: list[Run], evals: list[dict], names: list[str] | None = None) -> list[list[str]]:
    """One row per run (named `names[i]`, else by its folder, model and labels), then the ceiling
    and floor rows."""
    judge = evals[0]["judge"]
    groups = list(judge["test_accuracy"])
    head = ["", "seed", "steps", "n"] + [name for name, _, _ in run_metrics(evals[0], groups)]
    rows = [head]
    for k, (run, ev) in enumerate(zip(runs, evals)):
        figures = [_cell(v, kind) for _, v, kind in run_metrics(ev, groups)]
        if "fid" not in ev.get("inception", {}):
            figures[-1] = "skipped"
        rows.append([f"{run.dir.name}: {names[k]}" if names else run_label(run), str(run.options.get("seed", "?")),
                     str(run.options.get("iters") or run.options.get("epochs") or "?"), str(ev["n"])] + figures)
    floor = evals[0]["floor"]
    rows.append([f"real test faces: ceiling (judge, {judge['source']} labels)", "", "",
                 str((judge.get("faces") or {}).get("test", ""))] +
        [_pct(judge["test_accuracy"][g]) for g in groups] + ["100%", "", "", "", "", ""])
    real_div = evals[0]["diversity"]["real"]
    rows.append(["real train vs test: floor", "", "", f"{floor['n_train']} vs {floor['n_test']}"] +
                ["" for _ in groups] + [""] +
                [_num(floor["judge_fid"]), _num(100 * floor["judge_kid"], ".3f"), "",
                 _pct(real_div["near_duplicates"]),
                 _num(evals[0].get("inception", {}).get("floor_fid")) if "fid" in evals[0].get("inception", {})
                 else "skipped"])
    return rows


# -- pictures -------------------------------------------------------------------------------

def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def accuracy_bars(names: list[str], evals: list[list[dict]], path: Path) -> Path | None:
    """Per tag, per group: how often the judge finds the requested tag, one bar per configuration
    (the mean over its seeds, the sample std as an error bar), the ceiling as a marker."""
    judge = evals[0][0]["judge"]
    groups = [g for g in judge["test_per_tag"] if any(g in ev.get("judge_accuracy", {}) for evs in evals for ev in evs)]
    if not groups:
        return None
    plt = _plt()
    fig, axes = plt.subplots(len(groups), 1, figsize=(11, 3.4 * len(groups)), squeeze=False)
    for ax, g in zip(axes[:, 0], groups):
        tags = list(judge["test_per_tag"][g])
        x = np.arange(len(tags))
        width = 0.8 / max(1, len(names))
        for k, (name, evs) in enumerate(zip(names, evals)):
            per = [[ev.get("judge_accuracy", {}).get(g, {}).get("per_tag", {}).get(t, {}).get("accuracy", np.nan)
                    for ev in evs] for t in tags]
            means = [np.nanmean(v) if np.isfinite(v).any() else np.nan for v in per]
            stds = [np.nanstd(v, ddof=1) if np.isfinite(v).sum() > 1 else 0.0 for v in per]
            ax.bar(x - 0.4 + width * (k + 0.5), means, width, yerr=stds if len(evs) > 1 else None, capsize=2,
                   label=name + (f" ({len(evs)} seeds)" if len(evs) > 1 else ""))
        ceiling = [judge["test_per_tag"][g][t] for t in tags]
        ax.scatter(x, ceiling, marker="_", s=400, color="black", zorder=3, label="judge on real test (ceiling)")
        ax.set_xticks(x, [short_tag(t) for t in tags], rotation=30, ha="right", fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("judge finds the tag")
        ax.set_title(g)
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def read_metrics_csv(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        return {}
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    out: dict[str, np.ndarray] = {}
    for key in (rows[0].keys() if rows else []):
        vals = []
        for r in rows:
            try:
                vals.append(float(r[key]))
            except (TypeError, ValueError):
                vals.append(np.nan)
        arr = np.array(vals)
        if np.isfinite(arr).any():
            out[key] = arr
    return out


def curves(runs: list[Run], path: Path, max_panels: int = 18) -> Path | None:
    """Every numeric column of metrics.csv against the step, one line per run."""
    data = [read_metrics_csv(r.metrics_path) for r in runs]
    step_key = next((k for k in ("step", "iter", "kimg") if any(k in d for d in data)), None)
    if step_key is None:
        return None
    keys: list[str] = []
    for d in data:
        keys += [k for k in d if k != step_key and k not in keys and k not in NOT_CURVES]
    keys = keys[:max_panels]
    if not keys:
        return None
    plt = _plt()
    cols = 3
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(12, 2.8 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        for run, d in zip(runs, data):
            if key in d and step_key in d:
                # diagnostics logged every few rows leave NaN between: join the points that exist
                xy = [(x, y) for x, y in zip(d[step_key], d[key]) if not math.isnan(y)]
                ax.plot([x for x, _ in xy], [y for _, y in xy], label=run_label(run), linewidth=1,
                        marker="." if len(xy) < 30 else None)
        ax.set_title(key, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)
    return path


def agreement_section(catalog, reference: str, sources: list[str], out_dir: Path) -> Section:
    table = [["sources", "group", "faces", "accuracy", "Cohen's kappa"]]
    images = []
    for k, src in enumerate(sources):
        if src == reference:
            continue
        result = agreement(catalog, reference, src)
        for g in result.groups:
            table.append([f"{reference} vs {src}", g.group, str(g.n), _pct(g.accuracy), _num(g.kappa)])
        if result.groups:
            images.append((f"{reference} (rows) vs {src} (columns)",
                           plot_confusions(result, out_dir / f"agreement_{k}_{safe_slug(src, 'labels')}.png")))
    text = (f"How often each training label source agrees with the judge's source ({reference}) on the faces "
            f"both labelled.") if len(table) > 1 else f"Every run used the judge's own label source ({reference})."
    return Section("Label agreement", text, table if len(table) > 1 else None, images)


# -- the report ---------------------------------------------------------------------------

def build_report(run_dirs: list[str | Path], out_dir: str | Path, catalog=None, seed: int = 0,
                 log=print, overwrite: bool = False, tell=None) -> tuple[Path, Path]:
    """Write out_dir/index.html and out_dir/report.md (into an empty folder: see prepare_out_dir);
    returns both paths. Runs are grouped by configuration over their seeds (train.eval.spread);
    the report opens with the verdict and the warnings (train.eval.report_head), which
    `tell(line)` gets too [log]."""
    out_dir = Path(out_dir)
    runs, evals = evaluated_runs(run_dirs)
    prepare_out_dir(out_dir, overwrite)
    groups = group_runs([r.options for r in runs])
    judge_groups = list(evals[0]["judge"]["test_accuracy"])
    per_run = [run_metrics(ev, judge_groups) for ev in evals]
    summary, differences = summarise(groups, per_run, _cell)
    head = report_head(groups, runs, evals, per_run, _cell)
    for line in head.lines:
        (tell or log)(line)

    metrics = metrics_section(groups, runs, evals)
    sections = head.sections + spread_sections(groups, runs, summary, differences) + [options_section(groups)]
    sections.append(metrics)
    by_group = [[evals[i] for i in g.members] for g in groups]
    bars = accuracy_bars([g.name for g in groups], by_group, out_dir / "judge_accuracy.png")
    if bars:
        sections.append(Section("Judge accuracy per tag", "Bars: generated faces, the mean over a configuration's "
                                "seeds (error bars: sample std); black marks: real test faces.", images=[("", bars)]))
    group, diversity = diversity_section(groups, by_group, evals)
    if diversity is not None:
        sections.append(diversity)
    log("drawing sample grids")
    sections.append(samples_section(groups, runs, evals, group, out_dir, seed))
    sections += model_sections(runs, evals, out_dir)
    curve_png = curves(runs, out_dir / "curves.png")
    if curve_png:
        sections.append(Section("Training curves", "From each run's metrics.csv.", images=[("", curve_png)]))
    train_sources = sorted({r.options.get("labels") for r in runs if r.options.get("labels")})
    if catalog is not None and train_sources:
        sections.append(agreement_section(catalog, evals[0]["judge"]["source"], train_sources, out_dir))

    title = f"Comparison of {len(groups)} configurations ({len(runs)} runs)"
    md = write_markdown(title, sections, out_dir / "report.md")
    page = write_html(title, sections, out_dir / "index.html", samples_side_by_side=True)
    write_summary(out_dir / "summary.json", groups, runs, without_arrows(metrics.table), summary, differences, head)
    return page, md


def evaluated_runs(run_dirs: list[str | Path]) -> tuple[list[Run], list[dict]]:
    """The runs and their eval.json, refused unless every run was evaluated, all by judges of one label source."""
    runs = [load_run(d) for d in run_dirs]
    evals = []
    for run in runs:
        ev = read_eval(run.dir)
        if ev is None:
            raise ReportError(f"{run.dir} has no eval.json: run `train eval {run.dir}` first")
        evals.append(ev)
    sources = {ev["judge"]["source"] for ev in evals}
    if len(sources) > 1:
        raise ReportError(f"the runs were evaluated by judges of different label sources ({', '.join(sorted(sources))}):"
                          f" evaluate them all with one judge")
    return runs, evals


def spread_sections(groups: list[Group], runs: list[Run], summary: list[list[str]],
                    differences: list[list[str]]) -> list[Section]:
    """The configurations over their seeds, and the differences between them larger than the spread."""
    return [Section(
        "Configurations over seeds", f"{len(groups)} configurations, {len(runs)} runs. A configuration is a run's "
        f"options but its seed (and where it ran); each cell is the {RULE}. * marks a difference from the first "
        f"configuration larger than the spread. One seed is an anecdote: a configuration with one seed shows no "
        f"spread and is never marked." + _mixed_catalogs(groups, runs), arrowed(summary, 2)), Section(
        "Differences larger than the spread", "Every pair of configurations whose intervals mean ± std do not "
        "overlap, per metric (means in brackets)." if len(differences) > 1 else
        "No difference between configurations is larger than the spread over seeds"
        + (" (it takes at least 2 seeds per configuration)." if all(len(g.members) < 2 for g in groups) else "."),
        differences if len(differences) > 1 else None)]


def metrics_section(groups: list[Group], runs: list[Run], evals: list[dict]) -> Section:
    """Every run's figures, named by its configuration, above the ceiling and floor rows."""
    ns = sorted({ev["n"] for ev in evals})
    section = Section(
        "Metrics per run", f"{' / '.join(map(str, ns))} generated faces per run (seed {evals[0]['seed']}), "
        f"conditioned on the "
        f"real test split's {evals[0]['judge']['source']} labels. Judge accuracy: how often the judge finds the "
        f"requested tag; the ceiling row is the judge on real test faces. FID/KID are in the judge's feature space "
        f"against the real test split; the floor row is real train faces vs real test faces. Intra-FID: per "
        f"{(evals[0].get('per_class') or {}).get('group', 'condition')} tag, fakes vs real faces with that tag "
        f"(lower = more like the real variety within a condition). Over 100% of the ceiling means the fakes are "
        f"more typical of their tag than real faces, whose labels are noisy: read it beside the diversity "
        f"columns.", arrowed(metrics_table(runs, evals, [next(g.name for g in groups if k in g.members)
                                                         for k in range(len(runs))]), 4),
        collapsed=True, reference_rows=2)
    if any("fid" not in ev.get("inception", {}) for ev in evals):
        why = next(ev["inception"].get("skipped", "") for ev in evals if "fid" not in ev.get("inception", {}))
        section.text += f" Inception FID skipped: {why}"
    return section


def diversity_section(groups: list[Group], by_group: list[list[dict]],
                      evals: list[dict]) -> tuple[str | None, Section | None]:
    """(the group the runs' intra-class metrics are about, or None; their table per tag and configuration)."""
    per_class = [[ev.get("per_class") or {} for ev in evs] for evs in by_group]
    group = next((p["group"] for pcs in per_class for p in pcs if p.get("group")), None)
    if not group:
        return group, None
    tags = [t for t in evals[0]["judge"]["test_per_tag"].get(group, {})
            if any(t in p.get("tags", {}) for pcs in per_class for p in pcs)]
    table = [["tag"] + [f"{g.name}: intra-FID / spread / near-dup." for g in groups] + ["real spread"]]
    for t in tags:
        row, real = [short_tag(t)], "–"
        for pcs in per_class:
            vs = [p["tags"][t] for p in pcs if t in p.get("tags", {})]
            mean = lambda key: float(np.mean([v[key] for v in vs]))  # noqa: E731
            row.append(f"{_num(mean('intra_fid'))} / {_num(mean('fake_mean_distance'))} / "
                       f"{_pct(mean('fake_near_duplicates'))}" if vs else "–")
            if vs:
                real = _num(vs[0]["real_mean_distance"])
        table.append(row + [real])
    return group, Section(f"Diversity within each {group} condition",
                          "Means over each configuration's seeds. Spread = mean pairwise distance of judge "
                          "features; near-duplicates = share of fakes closer to another fake than 99% of real "
                          "faces are to their nearest neighbour.", table)


def samples_section(groups: list[Group], runs: list[Run], evals: list[dict], group: str | None, out_dir: Path,
                    seed: int) -> Section:
    """Each configuration's first seed pictured by its model's sample grid: rows are the judge's tags of
    `group` (else its first group) that some run can be asked for."""
    group = group or next(iter(evals[0]["judge"]["test_per_tag"]), None)
    known = {t for r in runs if r.conditional and r.spec for g in r.spec.groups if g.name == group for t in g.tags}
    tags = [t for t in evals[0]["judge"]["test_per_tag"].get(group, {}) if t in known]
    grids = []
    for k, g in enumerate(groups):
        run = runs[g.members[0]]
        grids.append((f"{g.name} (seed {g.seeds[0]}: {run.dir.name})", evaluation_of(run).sample_grid(
            run, group, tags, out_dir / f"samples_{k}_{safe_slug(run.dir.name, 'run')}.png", seed)))
    return Section("Samples", (f"Rows: {', '.join(short_tag(t) for t in tags)} (the same noise in every "
                               f"row and every configuration; " if tags else "Random samples (") +
                   "each configuration's first seed).", images=grids)


def model_sections(runs: list[Run], evals: list[dict], out_dir: Path) -> list[Section]:
    """The sections models bring of their own runs (their evaluation hooks), in the order the
    models first appear."""
    hooks = [evaluation_of(run) for run in runs]
    sections = []
    for hook in dict.fromkeys(hooks):
        mine = [k for k, h in enumerate(hooks) if h is hook]
        section = hook.report_section and hook.report_section([runs[k] for k in mine], [evals[k] for k in mine],
                                                              out_dir)
        if section is not None:
            sections.append(section)
    return sections


def write_summary(path: Path, groups: list[Group], runs: list[Run], metrics_rows: list[list[str]],
                  summary: list[list[str]], differences: list[list[str]], head: Head) -> None:
    """summary.json: the runs, the per-run table, every configuration, the differences, the verdict
    and the warnings, for scripts (column names without arrows)."""
    path.write_text(json.dumps(
        {"runs": [str(r.dir) for r in runs], "table": metrics_rows, "rule": RULE,
         "configurations": [{"name": g.name, "runs": [str(runs[i].dir) for i in g.members], "seeds": g.seeds,
                             "options": g.options} for g in groups],
         "configuration_table": summary, "differences": differences[1:],
         "verdict": {"rule": VERDICT_RULE, "sentences": head.verdict.sentences, "rows": head.verdict.rows},
         "warnings": head.warnings}, indent=2))


def _mixed_catalogs(groups: list[Group], runs: list[Run]) -> str:
    """A warning when runs grouped together read different catalog contents."""
    mixed = [g.name for g in groups if len({runs[i].options.get("catalog_fingerprint") for i in g.members}) > 1]
    return (f" Warning: the runs of {', '.join(mixed)} trained on different catalog contents (fingerprints "
            f"differ).") if mixed else ""
