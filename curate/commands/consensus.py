"""`curate consensus` and `curate annotators`: one label from several people and the judge, and
how good each person is (curate/quality/consensus.py, CROWDLAB through cleanlab)."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer
from rich.table import Table

from db import CatalogError

from curate.app import DEFAULT_DB_PATH, DbOption, app, fail, make_console, open_catalog, progress_bar
from curate.conventions import JsonOption, ProgressOption, labels_option, target_option
from curate.quality.consensus_source import CONSENSUS, ConsensusSummary, annotator_report, group_figures, run_consensus
from curate.quality.suspects import JUDGE
from curate.text import visible

console = make_console()
err_console = make_console(stderr=True)

WithOption = Annotated[str, typer.Option(
    "--with", help="The source of the model's held-out probabilities that CROWDLAB weighs the people against "
    "(`curate tag --tagger judge --labels SOURCE` writes judge). Required: without a model there is no quality "
    "score.")]
GroupOption = Annotated[Optional[str], typer.Option(help="One exclusive group (default: every one the people "
                                                    "labelled), e.g. hair_color.")]


@app.command()
def consensus(
    db: DbOption = DEFAULT_DB_PATH,
    labels: Annotated[str, labels_option("The people's label source whose annotators are combined.")] = "manual",
    with_: WithOption = JUDGE,
    target: Annotated[str, target_option("The label source the consensus is written into (never manual nor a "
                                         "tagger's).")] = CONSENSUS,
    group: GroupOption = None,
    progress: ProgressOption = True,
    as_json: JsonOption = False,
) -> None:
    """One label per face and exclusive group from every annotator's labels and the judge's held-out
    probabilities (CROWDLAB), written as a label source; value = the consensus quality score.

    Faces one person labelled get the model-weighted view too. A rerun on unchanged labels and
    probabilities writes nothing. Then: `curate annotators`, `train acgan --labels consensus`.

    Example: curate tag --tagger judge --labels manual; curate consensus --labels manual
    """
    catalog = open_catalog(db, create=False)
    bar = progress_bar(progress and not as_json)
    task: list[int] = []

    def step(done: int, total: int) -> None:   # the bar starts once the input is checked: errors stay one line
        if not task:
            bar.start()
            task.append(bar.add_task("CROWDLAB per group", total=total, rate=""))
        bar.update(task[0], completed=done, total=total)
    try:
        summary = run_consensus(catalog, labels, with_, target, group, step)
    except CatalogError as e:
        fail(str(e))
    finally:
        bar.stop()
    stale = _judge_is_stale(catalog, labels, with_)
    if as_json:
        print(json.dumps(_as_dict(summary, stale), indent=2))
        return
    _print_summary(summary, labels, with_)
    if stale:
        console.print(f"note: {visible(labels)}'s labels changed since {visible(with_)} learned them; rerun "
                      f"`curate tag --tagger judge --labels {visible(labels)}` to refresh", style="yellow")


def _as_dict(s: ConsensusSummary, stale: bool) -> dict:
    return {"target": s.target, "version": s.version, "skipped": s.skipped, "events": s.events,
            "cleared": s.cleared, "seconds": s.seconds, "left_out": s.left_out, "judge_stale": stale,
            "groups": [{"group": r.matrix.group, **group_figures(r)} for r in s.results]}


def _print_summary(s: ConsensusSummary, labels: str, judge: str) -> None:
    if s.skipped:
        console.print(f"{visible(s.version)} was written before ({visible(labels)}'s labels and {visible(judge)}'s "
                      f"probabilities unchanged): nothing written")
        return
    console.print(f"{visible(s.target)}: {s.events} labels by {visible(s.version)} in {s.seconds:.1f} s")
    for r in s.results:
        f = group_figures(r)
        ranked = ", ".join(f"{visible(a['annotator'])} {_fmt(a['quality'])}" for a in f["annotators"])
        console.print(f"{visible(r.matrix.group)}: {f['faces']} faces ({f['faces_with_two_or_more']} labelled by two "
                      f"or more), mean consensus quality {_fmt(f['mean_quality'])}, model weight "
                      f"{f['model_weight']:.2f}; annotators by estimated quality: {ranked}")
    for g, n in s.left_out.items():
        if n:
            console.print(f"{visible(g)}: {n} labelled faces left out: {visible(judge)} has no probabilities for them "
                          f"(labelled since it ran); rerun `curate tag --tagger judge --labels {visible(labels)}`",
                          style="yellow")
    if s.cleared:
        console.print(f"{s.cleared} earlier consensus labels withdrawn (their faces lost every label)")
    console.print(f"next: curate annotators --labels {visible(labels)};  train acgan --labels {visible(s.target)}")


def _judge_is_stale(catalog, labels: str, judge: str) -> bool:
    """Whether `labels` changed since `judge` learned its probabilities from them."""
    now = catalog.labels_fingerprint(labels)
    return any((catalog.tagger_version(v) or {}).get("labels_fingerprint") != now
               for v in catalog.distribution_versions(judge))


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


@app.command()
def annotators(
    db: DbOption = DEFAULT_DB_PATH,
    labels: Annotated[str, labels_option("The people's label source.")] = "manual",
    with_: WithOption = JUDGE,
    group: GroupOption = None,
    as_json: JsonOption = False,
) -> None:
    """Each annotator of a label source, per exclusive group: faces labelled, agreement with the
    consensus, estimated quality (CROWDLAB) and Cohen's kappa with each other annotator.

    Computed afresh from the current labels and the judge's probabilities; writes nothing.
    """
    catalog = open_catalog(db, create=False)
    try:
        groups = annotator_report(catalog, labels, with_, group)
    except CatalogError as e:
        fail(str(e))
    if as_json:
        print(json.dumps({"labels": labels, "with": with_, "groups": groups}, indent=2))
        return
    for g in groups:
        console.print(_annotator_table(g))
    console.print("quality: CROWDLAB's estimate (0..1) from agreement with the others and the model; agreement: on "
                  "faces someone else labelled too")


def _annotator_table(g: dict) -> Table:
    """One group's annotators, best estimated quality first; names escaped, wrapped, never cut."""
    table = Table(title=f"{visible(g['group'])}: {g['faces']} faces, {g['faces_with_two_or_more']} labelled by two or "
                        f"more, mean consensus quality {_fmt(g['mean_quality'])}")
    for name in ("annotator", "faces", "agrees with consensus", "quality", "kappa with each other annotator"):
        table.add_column(name, overflow="fold")
    for a in g["annotators"]:
        kappas = "; ".join(f"{visible(other)} {_fmt(k)}" for other, k in a["kappa"].items())
        agree = "n/a" if a["agreement_with_consensus"] is None else f"{a['agreement_with_consensus']:.1%}"
        table.add_row(visible(a["annotator"]), str(a["faces"]), agree, _fmt(a["quality"]), kappas)
    return table
