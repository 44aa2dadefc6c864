"""One person's labelling session: the queue, the face on screen, the actions and their undo.

Plain Python over a `Catalog`, so the Streamlit page stays a thin view and tests
and the benchmark drive the very same code. Each browser session owns one.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import replace

from db import Catalog, CatalogError
from db import labelling as q
from curate.quality.active_source import ACTIVE_ORDERS, active_picks
from curate.quality.suspects import likely_labels, queue_ranking


# Queues built lately, per catalog connection: (spec, limit) -> (the catalog's change count then,
# queue, reasons). A filter changed back, or another order tried and left, comes back at once
# while nothing was written; any write, here or by another connection, builds it anew.
_BUILT: "weakref.WeakKeyDictionary[Catalog, dict]" = weakref.WeakKeyDictionary()
_BUILT_LOCK = threading.Lock()
_BUILT_KEPT = 8


def ranked_queue(catalog: Catalog, spec: q.QueueSpec, limit: int | None = None
                 ) -> tuple[list[int], Mapping[int, str]]:
    """The catalog's queue for `spec` and, for the orders that pick faces for a reason ("useful",
    "second-opinion"), face id -> why it was picked. The judge orders are ranked here:
    curate.quality.active_source for those two, curate.quality.suspects for the others.
    Built again only once the catalog changed (see _BUILT)."""
    spec = catalog.validate_spec(spec)
    state = catalog.change_count()
    with _BUILT_LOCK:
        built = _BUILT.setdefault(catalog, {})
        hit = built.get((spec, limit))
    if hit is not None and hit[0] == state:
        return list(hit[1]), hit[2]
    if spec.order in ACTIVE_ORDERS:
        picks = active_picks(catalog, spec)
        queue, reasons = catalog.build_queue(spec, limit, ranking=(picks.face_ids, picks.scores)), picks.reasons()
    else:
        queue, reasons = catalog.build_queue(spec, limit, ranking=queue_ranking(catalog, spec)), {}
    with _BUILT_LOCK:
        for key in [k for k, (then, _, _) in built.items() if then != state]:     # built before a change
            del built[key]
        built[(spec, limit)] = (state, queue, reasons)
        while len(built) > _BUILT_KEPT:
            del built[next(iter(built))]
    return list(queue), reasons


def build_queue(catalog: Catalog, spec: q.QueueSpec, limit: int | None = None) -> list[int]:
    """The catalog's queue for `spec` (see `ranked_queue`)."""
    return ranked_queue(catalog, spec, limit)[0]


class LabelSession:
    def __init__(self, catalog: Catalog, annotator: str, spec: q.QueueSpec | None = None):
        annotator = (annotator or "").strip()
        if not annotator or len(annotator) > 60:
            raise CatalogError("the annotator name must be 1 to 60 characters")
        self.catalog = catalog
        self.annotator = annotator
        self.groups = catalog.groups()
        self.exclusive = [g["name"] for g in self.groups if g["exclusive"]]
        self._all_keys = [k for g in self.groups for k in ([g["name"]] if g["exclusive"] else g["tags"])]
        self.tag_index = catalog.tag_index()
        self.sources = catalog.auto_sources()
        self.history: list[tuple] = []   # ("events", face_id, n) | ("reject", face_id, before)
        self.written = 0                  # label events this session (undone ones taken off)
        self.started = time.monotonic()
        self.first_action: float | None = None
        self.spec = q.QueueSpec()
        self.queue: list[int] = []
        self.reasons: Mapping[int, str] = {}   # face id -> why the queue's order picked it
        self.pos = 0
        self.current: int | None = None
        self.set_spec(spec or q.QueueSpec(source=self.sources[0] if self.sources else None))

    # -- queue ---------------------------------------------------------------

    def set_spec(self, spec: q.QueueSpec) -> None:
        """Validate the filters and rebuild the queue (raises CatalogError on a bad filter)."""
        spec = self.catalog.validate_spec(replace(spec, annotator=self.annotator))
        self.queue, self.reasons = ranked_queue(self.catalog, spec)
        self.spec = spec
        self.pos = 0
        self.current = None
        self.advance()

    def reason(self, face_id: int) -> str | None:
        """Why the queue's order picked this face ("most useful next", "second opinion"), if it says."""
        return self.reasons.get(face_id)

    @property
    def suggest_source(self) -> str | None:
        """The auto source whose suggestion Enter accepts."""
        return self.spec.source or (self.sources[0] if self.sources else None)

    def _still_wanted(self, face_id: int) -> bool:
        if self.catalog.face_status(face_id) != self.spec.status:
            return False
        return not (self.spec.unlabelled_only and self.catalog.is_labelled(face_id, self.spec.group))

    def advance(self) -> int | None:
        """Move to the next face of the queue that still matches (others may have labelled it)."""
        while self.pos < len(self.queue):
            face_id = self.queue[self.pos]
            self.pos += 1
            if face_id != self.current and self._still_wanted(face_id):
                self.current = face_id
                return face_id
        self.current = None
        return None

    @property
    def remaining(self) -> int:
        return max(len(self.queue) - self.pos, 0)

    def view(self) -> dict | None:
        return None if self.current is None else self.catalog.face_view(self.current)

    # -- single-face actions ----------------------------------------------------

    def _record(self, face_id: int, n: int) -> None:
        if n:
            self.history.append(("events", face_id, n))
            self.written += n
            self.first_action = self.first_action or time.monotonic()

    def my_labels(self, face_id: int) -> dict[str, tuple[str, float | None]]:
        """Key -> (tag, value): this annotator's current labels of the face (others' don't count)."""
        return self.catalog.current_for_keys(q.MANUAL, self._all_keys, [face_id],
                                             annotator=self.annotator).get(face_id, {})

    def press_tag(self, tag: str, auto_advance: bool = True) -> None:
        """A tag key: set an exclusive group's tag, or flip an independent tag.
        Advances once every exclusive group of the face has a manual label."""
        if self.current is None:
            return
        if tag not in self.tag_index:
            raise CatalogError(f"unknown tag {tag!r}")
        face_id = self.current
        group, exclusive = self.tag_index[tag]
        mine = self.my_labels(face_id)
        if exclusive:
            if mine.get(group, (None,))[0] == tag:
                return  # already so: no duplicate event
            value = 1.0
        else:
            current = mine.get(tag)
            value = 0.0 if current is not None and (current[1] is None or current[1] >= 0.5) else 1.0
        self._record(face_id, self.catalog.add_manual([(face_id, tag, value)], self.annotator))
        if exclusive and auto_advance:
            mine = self.my_labels(face_id)
            if all(g in mine for g in self.exclusive):
                self.advance()

    def accept(self) -> int:
        """Enter: accept the suggestion for every group not labelled by hand yet, then next face."""
        if self.current is None:
            return 0
        face_id, n = self.current, 0
        if self.suggest_source is not None:
            mine = self.my_labels(face_id)
            todo = [g["name"] for g in self.groups
                    if not any(k in mine for k in ([g["name"]] if g["exclusive"] else g["tags"]))]
            labels = self.catalog.suggestion_labels([face_id], self.suggest_source, todo)
            n = self.catalog.add_manual(labels, self.annotator)
            self._record(face_id, n)
        self.advance()
        return n

    def skip(self) -> None:
        """Next face without writing anything."""
        self.advance()

    def unsure(self) -> None:
        """Skip with a record (see db.labelling.UNSURE_KEY), then next face."""
        if self.current is None:
            return
        self.catalog.mark_unsure(self.current, self.annotator)
        self.history.append(("events", self.current, 1))
        self.first_action = self.first_action or time.monotonic()
        self.advance()

    def reject(self) -> None:
        """Not a face / bad crop: status rejected (undoable), then next face."""
        if self.current is None:
            return
        before = self.catalog.reject_face(self.current, self.annotator)
        self.history.append(("reject", self.current, before))
        self.first_action = self.first_action or time.monotonic()
        self.advance()

    def undo(self) -> int | None:
        """Backspace: undo this session's last action (or, with none, the annotator's last
        event in the catalog) and show that face again. Returns the face id, or None."""
        if self.history:
            kind, face_id, data = self.history.pop()
            if kind == "reject":
                self.catalog.restore_face(face_id, data)
            else:
                for _ in range(data):
                    ev = self.catalog.undo_last(q.MANUAL, self.annotator)
                    if ev is not None and ev["tag"] is not None:
                        self.written -= 1
        else:
            ev = self.catalog.undo_last(q.MANUAL, self.annotator)
            if ev is None:
                return None
            face_id = ev["face_id"]
        if self.current is not None and self.current != face_id:
            # Put the face we leave back in line, right after the one we return to.
            self.pos -= 1 if self.pos > 0 and self.queue[self.pos - 1] == self.current else 0
        self.current = face_id
        return face_id

    # -- grid actions -----------------------------------------------------------------

    def page(self, offset: int, size: int) -> list[int]:
        return self.queue[offset:offset + size]

    def accept_many(self, face_ids: list[int]) -> int:
        """Confirm the suggestion for these faces (groups the person already labelled are kept)."""
        if self.suggest_source is None or not face_ids:
            return 0
        have = self.catalog.current_for_keys(q.MANUAL, self._all_keys, list(face_ids),
                                             annotator=self.annotator)
        labels = []
        for face_id, tag, value in self.catalog.suggestion_labels(list(face_ids), self.suggest_source):
            group, exclusive = self.tag_index[tag]
            if (group if exclusive else tag) not in have.get(face_id, {}):
                labels.append((face_id, tag, value))
        return self._bulk(labels)

    def apply_tag(self, face_ids: list[int], tag: str) -> int:
        if tag not in self.tag_index:
            raise CatalogError(f"unknown tag {tag!r}")
        return self._bulk([(face_id, tag, 1.0) for face_id in face_ids])

    def _bulk(self, labels: list[tuple[int, str, float]]) -> int:
        n = self.catalog.add_manual(labels, self.annotator)
        if n:
            self.history.append(("events", labels[-1][0], n))
            self.written += n
            self.first_action = self.first_action or time.monotonic()
        return n

    # -- reviewing given labels against a judge (queue orders "suspects" and "margin") -----------

    def review(self, face_id: int) -> dict | None:
        """{given, likely, p_likely} of the queue's group for one face (given: its current manual
        tag or None), when the queue reads a judge's probabilities; else None."""
        return self.review_many([face_id]).get(face_id)

    def review_many(self, face_ids: list[int]) -> dict[int, dict]:
        if self.spec.order not in q.JUDGE_ORDERS or not face_ids:
            return {}
        group = self.spec.group
        given = self.catalog.current_for_keys(q.MANUAL, [group], list(face_ids))
        return {f: {"given": given.get(f, {}).get(group, (None,))[0], "likely": tag, "p_likely": p}
                for f, (tag, p) in likely_labels(self.catalog, group, face_ids, self.spec.source).items()}

    def accept_likely(self) -> int:
        """Replace the given label of the queue's group by the judge's likely one, then next face."""
        n = self.accept_likely_many([self.current]) if self.current is not None else 0
        self.advance()
        return n

    def keep_given(self) -> int:
        """The given label is right: confirm it under this person's name, then next face."""
        n = 0
        if self.current is not None:
            given = (self.review(self.current) or {}).get("given")
            if given is not None:
                n = self.catalog.add_manual([(self.current, given, 1.0)], self.annotator)
                self._record(self.current, n)
        self.advance()
        return n

    def accept_likely_many(self, face_ids: list[int]) -> int:
        """Grid: the judge's likely tag of the queue's group for each of these faces."""
        return self._bulk([(f, r["likely"], 1.0) for f, r in self.review_many(list(face_ids)).items()
                           if r["likely"] != r["given"]])

    # -- numbers ----------------------------------------------------------------------

    def labels_per_minute(self) -> float:
        if self.first_action is None:
            return 0.0
        minutes = max((time.monotonic() - self.first_action) / 60, 1 / 60)
        return self.written / minutes
