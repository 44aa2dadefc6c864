"""The head of the compare report: the verdict (train.eval.verdict), the warnings right under it
(train.eval.alerts), and every configuration's full options folded below its short name
(train.eval.spread); the same verdict and warnings as lines for the terminal."""

from __future__ import annotations

from dataclasses import dataclass

from train.eval.alerts import judge_warnings, run_warnings
from train.eval.published import disagreements, load_published
from train.eval.report_pages import Section
from train.eval.spread import Group, full_options, seed_values
from train.eval.verdict import VERDICT_RULE, Verdict, alike_key, verdict, with_arrow
from train.runs import Run

WARNING = "⚠ "


@dataclass
class Head:
    sections: list[Section]        # Verdict, Warnings
    lines: list[str]               # what `train compare` prints
    verdict: Verdict
    warnings: list[str]


def configuration_verdict(groups: list[Group], per_run: list[list[tuple[str, float | None, str]]], fmt) -> Verdict:
    """The verdict over the report's configurations (runs grouped over their seeds)."""
    kinds = {name: kind for name, _, kind in per_run[0]}
    return verdict([g.name for g in groups], [g.options.get("labels") for g in groups],
                   [alike_key(g.options) for g in groups], seed_values(groups, per_run), kinds, fmt)


def report_warnings(groups: list[Group], runs: list[Run], evals: list[dict]) -> list[str]:
    """The judge's warnings, then each run's, named by its configuration, seed and folder."""
    out = judge_warnings(evals[0]["judge"])
    for g in groups:
        for k in g.members:
            run = runs[k]
            steps = run.options.get("iters")
            out += run_warnings(f"{g.name} (seed {run.options.get('seed', '?')}, {run.dir.name})", evals[k],
                                int(steps) if steps else None, run.options.get("size"))
    return out


def report_head(groups: list[Group], runs: list[Run], evals: list[dict],
                per_run: list[list[tuple[str, float | None, str]]], fmt) -> Head:
    found = configuration_verdict(groups, per_run, fmt)
    warnings = disagreements(found.findings, load_published()) + report_warnings(groups, runs, evals)
    decided = len(found.rows) > 1
    sections = [
        Section("Verdict", f"Which label source is better, pair by pair of configurations trained alike (the same "
                f"model and options but the labels); ↑ higher is better, ↓ lower is better. Rule: {VERDICT_RULE} "
                f"(stricter than the tables' mean ± std below)."
                + (" Below: every figure of every pair." if decided else ""),
                found.rows if decided else None, items=found.sentences),
        Section("Warnings", "" if warnings else "None: every run looks worth comparing.",
                items=[WARNING + w for w in warnings])]
    lines = [f"verdict: {s}" for s in found.sentences] + [f"warning: {w}" for w in warnings]
    return Head(sections, lines, found, warnings)


def options_section(groups: list[Group]) -> Section:
    """Every configuration's short name (model · labels, and the options that set it apart), its
    full options folded below."""
    return Section("Configurations: every option", "Each configuration as `train` spells its options (the "
                   "options a model does not use are left out).",
                   items=[f"{g.name}: {full_options(g.options)}" for g in groups], collapsed=True)


ARROWS = (" ↑", " ↓")


def arrowed(table: list[list[str]], first_metric: int) -> list[list[str]]:
    """The table with ↑/↓ on every metric column's header (from column `first_metric` on)."""
    head = table[0][:first_metric] + [with_arrow(c) for c in table[0][first_metric:]]
    return [head] + table[1:]


def without_arrows(table: list[list[str]]) -> list[list[str]]:
    """The table as scripts read it (summary.json): its headers the metrics' plain names."""
    return [[c[:-2] if c.endswith(ARROWS) else c for c in table[0]]] + table[1:]
