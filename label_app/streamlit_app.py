"""The label-app page. Run through `label-app` (which sets LABEL_APP_DB), not directly.

A thin view over `label_app.session.LabelSession`: every button calls one of its
methods in an `on_click` callback, so an action costs one script run.
"""

from __future__ import annotations

import atexit
import gc
import os
import time
from pathlib import Path

import streamlit as st

from db import SPLITS, Catalog, CatalogError
from db import labelling as q
from curate.quality.agreement import annotator_agreement
from label_app import annotator_figures, draw_page, keyboard, learning, progress_cache, review
from label_app.context import source_context
from label_app.safe_text import md
from label_app.session import LabelSession

_run_started = time.perf_counter()  # server-side time of this run, shown in the sidebar and benchmarked


@st.cache_resource(show_spinner=False)
def _startup_objects_frozen() -> bool:
    """Once per server: the objects every run shares (torch, numpy, Streamlit: some 240,000) moved out
    of the garbage collector's sight. Streamlit collects all generations after each run, which took
    about 140 ms here while holding the GIL, so the page's new painting waited on it; the garbage of
    the runs themselves is still collected."""
    gc.collect()
    gc.freeze()
    return True


_startup_objects_frozen()
st.set_page_config(page_title="label-app", page_icon="🏷️", layout="wide")
st.markdown("""<style>
  .block-container {padding-top: 2.2rem; padding-bottom: 1rem;}
  div[data-testid="stButton"] button {padding: 0.1rem 0.3rem; min-height: 1.9rem; width: 100%;}
  div[data-testid="stButton"] button p {font-size: 0.8rem; white-space: nowrap; overflow: hidden;
      text-overflow: ellipsis;}
  div[data-testid="stHorizontalBlock"] {gap: 0.35rem;}
  .face img {image-rendering: auto; border-radius: 6px;}
  .suggest {font-size: 0.92rem; line-height: 1.55;}
  .suggest .p {color: #888; font-variant-numeric: tabular-nums;}
  .kbd {font-family: ui-monospace, monospace; background: #eef0f4; border: 1px solid #c9ccd3;
        border-radius: 4px; padding: 0 0.3rem; font-size: 0.8rem;}
</style>""", unsafe_allow_html=True)

PRETTY = {"hair_color": "Hair colour", "eye_color": "Eye colour", "hair_style": "Hair style", "other": "Other"}
NONE = "(none)"


def pretty(group: str) -> str:
    return PRETTY.get(group, group.replace("_", " ").capitalize())


# -- the session's own catalog (each browser session opens its own connection) -------------

ss = st.session_state
if "catalog" not in ss:
    db_path = os.environ.get("LABEL_APP_DB")
    if not db_path:
        st.error("Start the app with `label-app --db catalog.db` (LABEL_APP_DB is not set).")
        st.stop()
    try:
        ss.catalog = Catalog(db_path, create=False)
    except CatalogError as e:
        st.error(md(e))
        st.stop()
catalog: Catalog = ss.catalog


def run_action(fn, *args) -> None:
    """Call a session method from a button; a CatalogError becomes a message, not a crash."""
    ss.action_started = time.perf_counter()
    try:
        fn(*args)
        ss.pop("error", None)
    except CatalogError as e:
        ss.error = str(e)


# -- annotator name, asked once -----------------------------------------------------------

if "labeller" not in ss:
    st.title("🏷️ label-app")
    st.caption(f"Catalog: {md(catalog.path)}")
    with st.form("who"):
        name = st.text_input("Your name (stored with every label you give)", max_chars=60, key="who_name")
        if st.form_submit_button("Start labelling", type="primary"):
            try:
                ss.labeller = LabelSession(catalog, name)
                st.rerun()
            except CatalogError as e:
                st.error(md(e))
    st.stop()

lab: LabelSession = ss.labeller
groups = lab.groups
all_tags = [t for g in groups for t in g["tags"]]
tag_key = keyboard.tag_keys(groups, catalog.tag_hotkeys())

def sidebar_progress() -> None:
    """Progress in the sidebar, from a count a background thread refreshes (never waited for)."""
    st.subheader("Progress")
    counts, age = progress_cache.progress(str(catalog.path), max_age=4)
    for row in counts["groups"]:
        frac = row["labelled"] / row["total"] if row["total"] else 0.0
        st.progress(frac, text=f"{md(pretty(row['group']))}: {row['labelled']:,} / {row['total']:,}")
    st.caption(f"This session: **{lab.written}** labels · **{lab.labels_per_minute():.1f}** labels/min")
    per_person = " · ".join(f"{md(r['annotator'])} {r['labels']:,}" for r in counts["annotators"][:6])
    st.caption(f"By annotator: {per_person or '—'}  \n(refreshed in the background) · "
               f"last labelling action {ss.get('last_run_ms', 0):.0f} ms on the server")


@st.cache_resource
def learner(db: str, every: int) -> learning.Learner:
    """`label-app --learn N`: one background retrainer for the whole app, stopped with it."""
    it = learning.Learner(db, every)
    atexit.register(it.stop)
    return it


def sidebar_learning() -> None:
    """Start a retrain when due, say how it goes, and re-rank a judge queue once one ended well."""
    every = int(os.environ.get("LABEL_APP_LEARN") or 0)
    if every <= 0:
        return
    it = learner(str(catalog.path), every)
    wanted = it.poll(catalog)
    st.caption(md(it.status()) + (f" · next after {wanted} more labels" if wanted else ""))
    if ss.setdefault("learn_generation", it.generation) != it.generation:
        ss.learn_generation = it.generation
        if lab.spec.order in q.JUDGE_ORDERS:
            try:
                lab.set_spec(lab.spec)
            except CatalogError as e:
                ss.error = str(e)


# -- sidebar: mode, queue, progress -----------------------------------------------------------

with st.sidebar:
    st.markdown(f"**{md(lab.annotator)}** · {md(catalog.path.name)}")
    mode = st.segmented_control("Mode", ["Single", "Grid", "Progress", "Draw"], default="Single",
                                key="mode") or "Single"

    st.subheader("Queue")
    sources = [NONE] + lab.sources
    order = st.selectbox("Order", q.ORDERS, key="f_order", format_func={
        "unlabelled": "unlabelled first", "confidence": "lowest auto-tag confidence first",
        "disagreement": "where two sources disagree most", "random": "random", "id": "catalog order",
        **review.ORDER_NAMES}.get)
    group = st.selectbox("Group", [g["name"] for g in groups], key="f_group", format_func=pretty)
    if order in q.JUDGE_ORDERS:
        source = review.judge_picker(catalog)
    else:
        source = st.selectbox("Suggestions from", sources, index=1 if len(sources) > 1 else 0, key="f_source")
    given = review.given_filter(catalog, order, group)
    other = (st.selectbox("Compare with", catalog.label_source_names() or [q.MANUAL], key="f_other")
             if order == "disagreement" else q.MANUAL)
    tag = st.selectbox("Only faces the source tags", [NONE] + all_tags, key="f_tag")
    min_prob = st.slider("… with probability at least", 0.0, 1.0, 0.5, 0.05, key="f_prob") if tag != NONE else 0.5
    c1, c2 = st.columns(2)
    split = c1.selectbox("Split", ["all", *SPLITS], key="f_split")
    status = c2.selectbox("Status", ["ok", "rejected", "duplicate"], key="f_status")
    unlabelled_only = st.checkbox("Only faces without a manual label in this group", key="f_unl")
    auto_advance = st.checkbox("Auto-advance once every exclusive group is labelled", value=True, key="f_auto")

    spec = q.QueueSpec(order=order, group=group, split=None if split == "all" else split, status=status,
                       source=None if source == NONE else source, tag=None if tag == NONE else tag,
                       min_prob=min_prob, unlabelled_only=unlabelled_only, other_source=other, given=given)
    if ss.get("spec_inputs") != spec:
        try:
            lab.set_spec(spec)
            ss.grid_offset = 0
            ss.pop("error", None)
        except CatalogError as e:
            ss.error = str(e)
        ss.spec_inputs = spec
    st.caption(f"{len(lab.queue):,} faces in the queue")

    sidebar_progress()
    sidebar_learning()

# -- single mode ----------------------------------------------------------------------------

def suggestion_html(view: dict) -> str:
    """Every source's current labels of this face, as compact HTML lines."""
    lines = []
    labels = view["labels"]
    for src in sorted(labels, key=lambda s: (s == q.MANUAL, s)):
        parts = []
        for g in groups:
            keys = [g["name"]] if g["exclusive"] else g["tags"]
            for k in keys:
                if k in labels[src]:
                    t, v, who = labels[src][k]
                    if not g["exclusive"] and v is not None and v < 0.5:
                        continue
                    prob = "" if src == q.MANUAL or v is None else f" <span class='p'>{v:.2f}</span>"
                    parts.append(f"<b>{md(t)}</b>{prob}")
        who = ""
        if src == q.MANUAL:
            names = sorted({lab_[2] for lab_ in labels[src].values() if lab_[2]})
            who = f" <span class='p'>({md(', '.join(names))})</span>" if names else ""
        lines.append(f"<div><span class='p'>{md(src)}</span>{who}: {' · '.join(parts) or '—'}</div>")
    return "<div class='suggest'>" + ("".join(lines) or "<i>no labels from any source yet</i>") + "</div>"


def single_view() -> dict[str, str]:
    """Draw one face; returns key -> widget key for the keyboard."""
    keys: dict[str, str] = {}
    view = lab.view()
    if view is None:
        st.success("Nothing left in this queue. Change the filters in the sidebar, or press ⌫ to undo.")
        st.button("⌫ Undo last", key="act-undo", on_click=run_action, args=(lab.undo,))
        return {"Backspace": "act-undo"}
    mine = lab.my_labels(view["id"])
    left, mid, right = st.columns([1.0, 1.25, 1.35], gap="medium")
    with left:
        st.markdown(f"#### Face #{view['id']}")
        st.image(view["image"], width=288)
        st.caption(f"{view['width']}×{view['height']} · split {view['split'] or '—'} · {md(view['detector'])}"
                   + (f" {view['score']:.2f}" if view["score"] is not None else "")
                   + ("" if view["status"] == "ok" else f" · **{view['status']}**"))
    with mid:
        st.markdown("#### Source")
        data, caption = source_context(catalog, view["id"], max_side=380)
        if data is None:
            st.warning(md(caption))
        else:
            st.image(data)
            st.caption(md(caption) + " · <span style='color:#ff4040'>■</span> box  "
                       "<span style='color:#ffd200'>■</span> crop", unsafe_allow_html=True)
        why = lab.reason(view["id"])
        if why:
            st.caption(f"Why this face: {md(why)}")
    with right:
        st.markdown("#### Labels")
        st.markdown(suggestion_html(view), unsafe_allow_html=True)
        st.caption(f"Enter accepts **{md(lab.suggest_source or 'nothing (no auto source)')}** for every group "
                   f"you have not labelled. {lab.remaining:,} faces ahead.")
        review_keys = review.panel(lab, view["id"], run_action)

    for g in groups:
        selected = set()
        if g["exclusive"] and g["name"] in mine:
            selected = {mine[g["name"]][0]}
        elif not g["exclusive"]:
            selected = {t for t in g["tags"] if t in mine and (mine[t][1] is None or mine[t][1] >= 0.5)}
        st.markdown(f"**{md(pretty(g['name']))}**" + (" · one of" if g["exclusive"] else " · any of"))
        per_row = 13 if g["exclusive"] else 8
        for start in range(0, len(g["tags"]), per_row):
            chunk = g["tags"][start:start + per_row]
            cols = st.columns(per_row)
            for col, t in zip(cols, chunk):
                wkey = keyboard.widget_key("tag", t)
                hot = tag_key.get(t)
                short = t.removesuffix(" hair").removesuffix(" eyes") if g["exclusive"] else t
                label = f"{md(keyboard.key_label(hot))} · {md(short)}" if hot else md(short)
                col.button(label, key=wkey, type="primary" if t in selected else "secondary",
                           on_click=run_action, args=(lab.press_tag, t, auto_advance), help=md(t))
                if hot:
                    keys[hot] = wkey
    st.write("")
    actions = [("accept", "⏎ Accept suggestion & next", lab.accept), ("skip", "→ Skip", lab.skip),
               ("unsure", "/ Unsure (skip, recorded)", lab.unsure),
               ("reject", "N · Not a face / bad crop", lab.reject), ("undo", "⌫ Undo last", lab.undo)]
    cols = st.columns(len(actions))
    for col, (name, label, fn) in zip(cols, actions):
        col.button(label, key=f"act-{name}", on_click=run_action, args=(fn,),
                   type="primary" if name == "accept" else "secondary")
    for key, name in keyboard.ACTIONS.items():
        keys[key] = f"act-{name}"
    keys.update(review_keys)   # suspects order: Enter accepts the likely label, Space keeps the given
    return keys


# -- grid mode ------------------------------------------------------------------------------

def grid_view() -> dict[str, str]:
    size = st.session_state.get("grid_size", 48)
    offset = ss.setdefault("grid_offset", 0)
    ids = lab.page(offset, size)
    nonce = ss.setdefault("grid_nonce", 0)
    check_key = lambda fid: f"sel-{nonce}-{fid}"  # noqa: E731

    def checked() -> list[int]:
        return [fid for fid in ids if ss.get(check_key(fid), True)]

    def next_page(step: int) -> None:
        ss.grid_offset = max(0, min(ss.grid_offset + step, max(len(lab.queue) - 1, 0)))
        ss.grid_nonce += 1

    def bulk(fn, *args) -> None:
        run_action(fn, checked(), *args)
        if not ss.get("error"):
            next_page(size)

    def set_all(value: bool) -> None:
        for fid in ids:
            ss[check_key(fid)] = value

    top = st.columns([2.2, 1.6, 1.3, 0.9, 0.9, 0.8, 0.8, 1.0])
    reviewing = lab.spec.order == "suspects"   # accept the judge's likely label of the queue's group only
    top[0].button(f"⏎ Accept {'likely label' if reviewing else 'suggestion'} for {len(checked())} checked",
                  key="grid-accept", type="primary", on_click=bulk,
                  args=(lab.accept_likely_many if reviewing else lab.accept_many,),
                  disabled=lab.suggest_source is None)
    apply_tag = top[1].selectbox("Tag", all_tags, key="grid-tag", label_visibility="collapsed")
    top[2].button("Apply tag to checked", key="grid-apply", on_click=bulk, args=(lab.apply_tag, apply_tag))
    top[3].button("All", key="grid-all", on_click=set_all, args=(True,))
    top[4].button("None", key="grid-none", on_click=set_all, args=(False,))
    top[5].button("←", key="grid-prev", on_click=next_page, args=(-size,), disabled=offset == 0)
    top[6].button("→", key="grid-next", on_click=next_page, args=(size,))
    top[7].selectbox("Page size", [24, 48, 96], index=1, key="grid_size", label_visibility="collapsed")
    st.caption(f"Faces {offset + 1 if ids else 0}–{offset + len(ids)} of {len(lab.queue):,}. Uncheck the ones "
               f"that are wrong, then accept the rest; suggestions from **{md(lab.suggest_source or 'none')}**.")

    images = catalog.face_images(ids)
    labels = catalog.labels_of_faces(ids)
    reviewed = review.grid_caption(lab, ids)
    key_name = lab.spec.group
    per_row = 8
    for start in range(0, len(ids), per_row):
        cols = st.columns(per_row)
        for col, fid in zip(cols, ids[start:start + per_row]):
            have = labels.get(fid, {})
            sugg = have.get(lab.suggest_source or "", {}).get(key_name)
            mine = have.get(q.MANUAL, {}).get(key_name)
            short = lambda t: t.removesuffix(" hair").removesuffix(" eyes")  # noqa: E731
            text = (f"{short(sugg[0])} {sugg[1]:.2f}" if sugg and sugg[1] is not None
                    else (short(sugg[0]) if sugg else "—"))
            if mine:
                text += f" · ✓{short(mine[0])}"
            text = reviewed.get(fid, text)
            col.image(images[fid], width="stretch")
            col.checkbox(f"#{fid} {md(text)}", value=True, key=check_key(fid))
    return {"Enter": "grid-accept", "ArrowRight": "grid-next", "ArrowLeft": "grid-prev"}


# -- progress page -----------------------------------------------------------------------------

def progress_view() -> None:
    st.markdown("#### Labelled faces per group")
    rows = progress_cache.progress(str(catalog.path), wait=True)[0]["groups"]
    st.dataframe([{"group": pretty(r["group"]), "labelled": r["labelled"], "total": r["total"],
                   "share": f"{(r['labelled'] / r['total'] if r['total'] else 0):.1%}"} for r in rows],
                 hide_index=True)
    st.markdown("#### Per annotator")
    st.dataframe(catalog.annotator_counts(), hide_index=True)
    names = catalog.annotators()
    annotator_figures.render(catalog, len(names), pretty)
    st.markdown("#### Agreement between two annotators (Cohen's kappa on faces both labelled)")
    if len(names) < 2:
        st.info("Agreement needs two annotators who labelled the same faces.")
        return
    c1, c2 = st.columns(2)
    a = c1.selectbox("Annotator A", names, key="kappa-a")
    b = c2.selectbox("Annotator B", names, index=1, key="kappa-b")
    st.dataframe([{"group": pretty(r["group"]), "faces both labelled": r["faces"],
                   "agreement": None if r["agree"] is None else round(r["agree"], 3),
                   "kappa": None if r["kappa"] is None else round(r["kappa"], 3)}
                  for r in annotator_agreement(catalog, a, b)], hide_index=True)


def main_view() -> None:
    """The face or grid area. (Not a Streamlit fragment: fragment reruns were ~20 % faster in the
    browser, but with them the browser test once applied a fast key sequence out of order.)"""
    if ss.get("error"):
        st.error(md(ss.error))
    if mode == "Grid":
        bindings = grid_view()
    elif mode == "Progress":
        progress_view()
        bindings = {}
    elif mode == "Draw":
        draw_page.render(Path(os.environ.get("LABEL_APP_RUNS", "runs")))
        bindings = {}
    else:
        bindings = single_view()
    keyboard.install(bindings)
    # Server time of this action: from the button's callback (or the run's start) to here.
    ss.last_run_ms = (time.perf_counter() - ss.pop("action_started", _run_started)) * 1000


main_view()
