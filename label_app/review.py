"""The app's review of given labels against a judge: "likely label errors first", "most uncertain first".

With the queue order `suspects` (curate/quality/suspects.py: confident learning on the judge tagger's
held-out probabilities) the single view shows the face's given label and the likely one;
Enter accepts the likely one, Space keeps the given one (recorded under the person's name),
and the grid shows a page of suspects of one given label ("labelled blonde, probably not")
to fix in bulk. `margin` shows the faces the judge is least decided about. Kept apart from
streamlit_app.py, which calls these functions; every data string is shown as text (safe_text.md).
"""

from __future__ import annotations

import streamlit as st

from label_app.safe_text import md
from label_app.session import LabelSession

NONE = "(none)"
ORDER_NAMES = {"suspects": "likely label errors first (judge)", "margin": "most uncertain first (judge)",
               "useful": "most useful next (judge, ActiveLab)",
               "second-opinion": "second opinion needed (judge, consensus)"}
KEYS = {"Enter": "rev-accept", " ": "rev-keep"}


def short(tag: str | None) -> str:
    return "—" if tag is None else tag.removesuffix(" hair").removesuffix(" eyes")


def judge_picker(catalog) -> str:
    """Sidebar, for the judge orders: which learned tagger's probabilities (and suggestions) to use."""
    return st.selectbox("Judge (its likely label is the suggestion)",
                        catalog.distribution_sources() or [NONE], key="f_judge", format_func=md)


def given_filter(catalog, order: str, group: str) -> str | None:
    """Sidebar: "Labelled as" (only faces whose manual label is that tag), for the suspects order."""
    if order != "suspects":
        return None
    tags = catalog.group(group)["tags"]
    pick = st.selectbox("Labelled as (manual)", [NONE, *tags], key="f_given", format_func=md)
    return None if pick == NONE else pick


def panel(lab: LabelSession, face_id: int, run_action) -> dict[str, str]:
    """Single view: given vs likely label and the two keys (buttons call `run_action(method)`);
    returns key -> widget key bindings."""
    if lab.spec.order != "suspects":
        return {}
    r = lab.review(face_id)
    if r is None:
        st.info("The judge has no probabilities for this face.")
        return {}
    st.markdown(f"<div class='suggest'>{md(lab.spec.group)}: given <b>{md(r['given'] or '—')}</b> · likely "
                f"<b>{md(r['likely'])}</b> <span class='p'>{r['p_likely']:.2f}</span></div>",
                unsafe_allow_html=True)
    c1, c2 = st.columns(2)
    c1.button(f"⏎ Accept likely: {md(short(r['likely']))}", key=KEYS["Enter"], type="primary",
              on_click=run_action, args=(lab.accept_likely,))
    c2.button(f"Space · Keep {md(short(r['given']))}", key=KEYS[" "], on_click=run_action, args=(lab.keep_given,),
              disabled=r["given"] is None)
    return dict(KEYS)


def grid_caption(lab: LabelSession, face_ids: list[int]) -> dict[int, str]:
    """Grid: face id -> "given → likely p" for the suspects order (empty otherwise)."""
    return {f: f"{short(r['given'])} → {short(r['likely'])} {r['p_likely']:.2f}"
            for f, r in lab.review_many(face_ids).items()}

