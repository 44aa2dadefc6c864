"""`train compare`: one report over several evaluated runs, as `index.html` (self-contained,
pictures embedded as base64) and `report.md` (pictures beside it as PNG files).

Sections: the metrics table with the judge's real-test ceiling and the real-vs-real
floor, per-tag judge accuracy bars, per-condition sample grids side by side, loss and
diagnostic curves from each run's metrics.csv, and the agreement of the label sources
the runs were trained on with the judge's source.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .evaluate import read_eval
from .runs import Run, load_run
from .sampling import generate, image_grid

GRID_COLUMNS = 8
NOT_CURVES = ("time", "seconds", "epoch", "kimg", "images_per_s")   # bookkeeping, not training signals


class ReportError(Exception):
    """Runs that cannot be compared (not evaluated, nothing in common)."""


@dataclass
class Section:
    title: str
    text: str = ""                                   # markdown-ish paragraph (plain text)
    table: list[list[str]] | None = None              # first row = header
    images: list[tuple[str, Path]] = field(default_factory=list)   # (caption, png)


def run_label(run: Run) -> str:
    labels = run.options.get("labels") or "uncond"
    return f"{run.dir.name} ({run.model}, {labels})"


def short_tag(tag: str) -> str:
    return tag.replace(" hair", "").replace(" eyes", "")


# -- the metrics table ------------------------------------------------------------------

def _pct(x) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def _num(x, fmt=".2f") -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def metrics_table(runs: list[Run], evals: list[dict]) -> list[list[str]]:
    judge = evals[0]["judge"]
    groups = list(judge["test_accuracy"])
    head = (["", "steps", "n"] + [f"judge acc. {g}" for g in groups] + [f"% of ceiling ({groups[0]})"] +
            ["judge FID", "judge KID ×100", "mean intra-FID", "near-dup.", "Inception FID"])
    rows = [head]
    for run, ev in zip(runs, evals):
        acc = ev.get("judge_accuracy", {})
        ceiling = judge["test_accuracy"].get(groups[0])
        first = acc.get(groups[0], {}).get("accuracy")
        inc = ev.get("inception", {})
        rows.append([run_label(run), str(run.options.get("iters") or run.options.get("epochs") or "?"),
                     str(ev["n"])] +
                    [_pct(acc.get(g, {}).get("accuracy")) for g in groups] +
                    [_pct(first / ceiling) if first is not None and ceiling else "–"] +
                    [_num(ev["judge_fid"]), _num(100 * ev["judge_kid"], ".3f"),
                     _num(ev.get("per_class", {}).get("mean_intra_fid")),
                     _pct(ev["diversity"]["fake"]["near_duplicates"]),
                     _num(inc["fid"]) if "fid" in inc else "skipped"])
    floor = evals[0]["floor"]
    rows.append([f"real test faces: ceiling (judge, {judge['source']} labels)", "", str((judge.get("faces") or {}).get("test", ""))] +
        [_pct(judge["test_accuracy"][g]) for g in groups] + ["100%", "", "", "", "", ""])
    real_div = evals[0]["diversity"]["real"]
    rows.append(["real train vs test: floor", "", f"{floor['n_train']} vs {floor['n_test']}"] +
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


def accuracy_bars(runs: list[Run], evals: list[dict], path: Path) -> Path | None:
    """Per tag, per group: how often the judge finds the requested tag, one bar per run, ceiling as a marker."""
    judge = evals[0]["judge"]
    groups = [g for g in judge["test_per_tag"] if any(g in ev.get("judge_accuracy", {}) for ev in evals)]
    if not groups:
        return None
    plt = _plt()
    fig, axes = plt.subplots(len(groups), 1, figsize=(11, 3.4 * len(groups)), squeeze=False)
    for ax, g in zip(axes[:, 0], groups):
        tags = list(judge["test_per_tag"][g])
        x = np.arange(len(tags))
        width = 0.8 / max(1, len(runs))
        for k, (run, ev) in enumerate(zip(runs, evals)):
            per = ev.get("judge_accuracy", {}).get(g, {}).get("per_tag", {})
            vals = [per.get(t, {}).get("accuracy", np.nan) for t in tags]
            ax.bar(x - 0.4 + width * (k + 0.5), vals, width, label=run_label(run))
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


def curves(runs: list[Run], path: Path, max_panels: int = 12) -> Path | None:
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


def sample_grid(run: Run, group: str | None, tags: list[str], path: Path, seed: int = 0) -> Path:
    """Rows = the requested tags (same noise in every row and every run), GRID_COLUMNS per row."""
    G = run.generator(ema=True)
    spec = run.spec if run.conditional else None
    if spec is None or group is None or not tags:
        images, _ = generate(run, GRID_COLUMNS * max(1, len(tags)), seed=seed, G=G)
    else:
        known = next((g.tags for g in spec.groups if g.name == group), [])
        rows = []
        for tag in tags:
            if tag in known:
                rows.append(generate(run, GRID_COLUMNS, conditions=[{group: tag}], seed=seed, G=G)[0])
            else:   # a tag this run never saw: a blank row keeps the runs' rows aligned
                rows.append(np_blank(GRID_COLUMNS, run.size))
        import torch
        images = torch.cat(rows)
    grid = image_grid(images, nrow=GRID_COLUMNS)
    scale = max(1, 64 // run.size)   # small faces are hard to see: enlarge (nearest) to >= 64 px
    img = Image.fromarray(grid)
    img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    if spec is not None and group is not None and tags:
        img = label_rows(img, [short_tag(t) for t in tags], (run.size + 2) * scale)
    img.save(path)
    return path


def label_rows(img: Image.Image, labels: list[str], row_height: int, margin: int = 60) -> Image.Image:
    """The grid with each row's tag written to its left."""
    from PIL import ImageDraw
    out = Image.new("RGB", (img.width + margin, img.height), "white")
    out.paste(img, (margin, 0))
    draw = ImageDraw.Draw(out)
    for i, text in enumerate(labels):
        draw.text((4, i * row_height + row_height // 2 - 5), text, fill="black")
    return out


def np_blank(n: int, size: int):
    import torch
    return torch.full((n, 3, size, size), 230, dtype=torch.uint8)


def agreement_section(catalog, reference: str, sources: list[str], out_dir: Path) -> Section:
    try:
        from curate.agreement import agreement, plot_confusions
    except ImportError:
        return Section("Label agreement", "curate.agreement is not available in this checkout.")
    table = [["sources", "group", "faces", "accuracy", "Cohen's kappa"]]
    images = []
    for src in sources:
        if src == reference:
            continue
        result = agreement(catalog, reference, src)
        for g in result.groups:
            table.append([f"{reference} vs {src}", g.group, str(g.n), _pct(g.accuracy), _num(g.kappa)])
        if result.groups:
            images.append((f"{reference} (rows) vs {src} (columns)",
                           plot_confusions(result, out_dir / f"agreement_{reference}_{src}.png")))
    text = (f"How often each training label source agrees with the judge's source ({reference}) on the faces "
            f"both labelled.") if len(table) > 1 else f"Every run used the judge's own label source ({reference})."
    return Section("Label agreement", text, table if len(table) > 1 else None, images)


# -- the report ---------------------------------------------------------------------------

def build_report(run_dirs: list[str | Path], out_dir: str | Path, catalog=None, seed: int = 0,
                 log=print) -> tuple[Path, Path]:
    """Write out_dir/index.html and out_dir/report.md; returns both paths."""
    out_dir = Path(out_dir)
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
    out_dir.mkdir(parents=True, exist_ok=True)
    sections: list[Section] = []

    ns = sorted({ev["n"] for ev in evals})
    sections.append(Section(
        "Metrics", f"{' / '.join(map(str, ns))} generated faces per run (seed {evals[0]['seed']}), conditioned on the "
        f"real test split's {evals[0]['judge']['source']} labels. Judge accuracy: how often the judge finds the "
        f"requested tag; the ceiling row is the judge on real test faces. FID/KID are in the judge's feature space "
        f"against the real test split; the floor row is real train faces vs real test faces. Intra-FID: per "
        f"{(evals[0].get('per_class') or {}).get('group', 'condition')} tag, fakes vs real faces with that tag "
        f"(lower = more like the real variety within a condition). Over 100% of the ceiling means the fakes are "
        f"more typical of their tag than real faces, whose labels are noisy: read it beside the diversity "
        f"columns. Each run is one training seed: before trusting a difference of a few points, repeat the "
        f"runs with other --seed values.",
        metrics_table(runs, evals)))
    if any("fid" not in ev.get("inception", {}) for ev in evals):
        why = next(ev["inception"].get("skipped", "") for ev in evals if "fid" not in ev.get("inception", {}))
        sections[-1].text += f" Inception FID skipped: {why}"

    bars = accuracy_bars(runs, evals, out_dir / "judge_accuracy.png")
    if bars:
        sections.append(Section("Judge accuracy per tag", "Bars: generated faces; black marks: real test faces.",
                                images=[("", bars)]))

    per_class = [ev.get("per_class") or {} for ev in evals]
    group = next((p["group"] for p in per_class if p.get("group")), None)
    if group:
        tags = [t for t in evals[0]["judge"]["test_per_tag"].get(group, {})
                if any(t in p.get("tags", {}) for p in per_class)]
        table = [["tag"] + [f"{run_label(r)}: intra-FID / spread / near-dup." for r in runs] + ["real spread"]]
        for t in tags:
            row, real = [short_tag(t)], "–"
            for p in per_class:
                v = p.get("tags", {}).get(t)
                row.append(f"{_num(v['intra_fid'])} / {_num(v['fake_mean_distance'])} / "
                           f"{_pct(v['fake_near_duplicates'])}" if v else "–")
                if v:
                    real = _num(v["real_mean_distance"])
            table.append(row + [real])
        sections.append(Section(f"Diversity within each {group} condition",
                                "Spread = mean pairwise distance of judge features; near-duplicates = share of "
                                "fakes closer to another fake than 99% of real faces are to their nearest "
                                "neighbour.", table))

    # Grid rows: the judge's tags of that group (hair colour) that some run can be asked for.
    group = group or next(iter(evals[0]["judge"]["test_per_tag"]), None)
    known = {t for r in runs if r.conditional and r.spec for g in r.spec.groups if g.name == group for t in g.tags}
    tags = [t for t in evals[0]["judge"]["test_per_tag"].get(group, {}) if t in known]
    log("drawing sample grids")
    grids = []
    for k, run in enumerate(runs):
        grids.append((run_label(run), sample_grid(run, group, tags, out_dir / f"samples_{k}_{run.dir.name}.png",
                                                  seed=seed)))
    sections.append(Section("Samples", (f"Rows: {', '.join(short_tag(t) for t in tags)} (the same noise in every "
                                        f"row and every run)." if tags else "Random samples."), images=grids))

    curve_png = curves(runs, out_dir / "curves.png")
    if curve_png:
        sections.append(Section("Training curves", "From each run's metrics.csv.", images=[("", curve_png)]))

    train_sources = sorted({r.options.get("labels") for r in runs if r.options.get("labels")})
    if catalog is not None and train_sources:
        sections.append(agreement_section(catalog, evals[0]["judge"]["source"], train_sources, out_dir))

    title = "Run comparison: " + ", ".join(run_label(r) for r in runs)
    md = write_markdown(title, sections, out_dir / "report.md")
    page = write_html(title, sections, out_dir / "index.html", samples_side_by_side=True)
    (out_dir / "summary.json").write_text(json.dumps(
        {"runs": [str(r.dir) for r in runs], "table": sections[0].table}, indent=2))
    return page, md


def write_markdown(title: str, sections: list[Section], path: Path) -> Path:
    lines = [f"# {title}", ""]
    for s in sections:
        lines += [f"## {s.title}", ""]
        if s.text:
            lines += [s.text, ""]
        if s.table:
            lines.append("| " + " | ".join(s.table[0]) + " |")
            lines.append("|" + "---|" * len(s.table[0]))
            lines += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in s.table[1:]]
            lines.append("")
        for caption, png in s.images:
            lines += [f"![{caption}]({png.name})" + (f"  \n*{caption}*" if caption else ""), ""]
    path.write_text("\n".join(lines))
    return path


def _data_uri(png: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode()


CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}tr:nth-last-child(-n+2) td{background:#f4f4f4}
.side{display:flex;gap:1.5em;flex-wrap:wrap;align-items:flex-start}figure{margin:0}figcaption{font-size:13px;color:#555}
img{image-rendering:pixelated;max-width:100%}"""


def write_html(title: str, sections: list[Section], path: Path, samples_side_by_side: bool = True) -> Path:
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>{CSS}</style>"
             f"</head><body><h1>{e(title)}</h1>"]
    for s in sections:
        parts.append(f"<h2>{e(s.title)}</h2>")
        if s.text:
            parts.append(f"<p>{e(s.text)}</p>")
        if s.table:
            parts.append("<table><tr>" + "".join(f"<th>{e(c)}</th>" for c in s.table[0]) + "</tr>")
            parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in s.table[1:]]
            parts.append("</table>")
        if s.images:
            parts.append("<div class='side'>" if samples_side_by_side else "<div>")
            for caption, png in s.images:
                parts.append(f"<figure><img src='{_data_uri(png)}' alt='{e(caption)}'>"
                             f"<figcaption>{e(caption)}</figcaption></figure>")
            parts.append("</div>")
    parts.append("</body></html>")
    path.write_text("".join(parts))
    return path
