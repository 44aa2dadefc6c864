"""The progress page's annotator figures: what `curate annotators` prints (per exclusive group and
annotator: faces labelled, agreement with the consensus, CROWDLAB's estimated quality, Cohen's
kappa with each other annotator), from the same functions (curate/quality/consensus_source.py).

Computed per group the judge has probabilities for, so one group without them does not hide the
others; a group that cannot have a consensus says why in one line. Names shown through md().
"""

from __future__ import annotations

import streamlit as st

from curate.quality.consensus_source import annotator_report
from curate.quality.suspects import JUDGE, exclusive_groups
from db import Catalog, CatalogError
from db.labelling import MANUAL
from label_app.safe_text import md


def render(catalog: Catalog, n_annotators: int, pretty=str) -> None:
    st.markdown("#### Annotators against the consensus (CROWDLAB, as `curate annotators`)")
    if n_annotators < 2:
        st.info(f"A consensus needs two or more annotators: so far there is {'one' if n_annotators else 'none'}.")
        return
    groups = [g for g in exclusive_groups(catalog, None) if catalog.distributions_exist(JUDGE, g)]
    if not groups:
        st.info(md(f"No {JUDGE!r} probabilities yet: run `curate tag --tagger judge --labels {MANUAL}` first "
                   f"(the consensus weighs the people against a model)."))
        return
    for group in groups:
        try:
            report = annotator_report(catalog, group=group)[0]
        except CatalogError as e:
            st.caption(f"{md(pretty(group))}: {md(e)}")
            continue
        st.caption(f"{md(pretty(group))}: {report['faces']} faces, {report['faces_with_two_or_more']} labelled by "
                   f"two or more, mean consensus quality {_fmt(report['mean_quality'])}")
        st.dataframe([_row(a) for a in report["annotators"]], hide_index=True)


def _row(a: dict) -> dict:
    kappas = "; ".join(f"{md(other)} {_fmt(k)}" for other, k in a["kappa"].items())
    agree = None if a["agreement_with_consensus"] is None else round(a["agreement_with_consensus"], 3)
    return {"annotator": md(a["annotator"]), "faces": a["faces"], "agrees with consensus": agree,
            "quality": None if a["quality"] is None else round(a["quality"], 3),
            "kappa with each other annotator": kappas}


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"
