"""Queries of the labelling app: queues, filters, progress, face status changes.

The orders that read a judge's probabilities ("likely label errors first", "most undecided
first") take their ranking from the caller: it is analysis (curate/quality/suspects.py), and
label_app/session.py hands it over. (Agreement between annotators: curate/quality/agreement.py.)

People's labels go to source `manual` (one row per event, with the annotator's
name). The app never touches another source's events. Everything a browser sends
(split, status, source, tag, group) is checked against the catalog's known values
by `validate_spec` before it reaches a query, and every query is parameterised.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

import numpy as np

from db.base import FACE_STATUSES, IMAGE_JOIN, SPLIT_JOIN, SPLITS, CatalogError

MANUAL = "manual"
# "Unsure" is a skip with a record: an event of source `manual` whose key is not a
# tag or group and whose tag is NULL, so it is never a current label (current_labels
# and every training set ignore it) but it is undoable and countable.
UNSURE_KEY = "_unsure"
ORDERS = ("unlabelled", "confidence", "disagreement", "suspects", "margin", "useful", "second-opinion", "random",
          "id")
# Orders read from a learned tagger's whole distributions (`curate tag --tagger judge`), `source`:
# "suspects" = likely label errors first (curate/quality/suspects.py), "margin" = most undecided first,
# "useful" = most useful next (ActiveLab over new and labelled faces, curate/quality/active.py),
# "second-opinion" = faces one person labelled, lowest consensus quality first.
JUDGE_ORDERS = ("suspects", "margin", "useful", "second-opinion")
# Of those, the orders whose queue is the ranked faces only (a face without a rank is not wanted:
# the person's own labels, or a face nobody needs a second opinion on).
RANKED_ONLY = ("useful", "second-opinion")


@dataclass(frozen=True)
class QueueSpec:
    """Which faces to show, in which order. Every field is validated against the catalog."""

    order: str = "unlabelled"          # one of ORDERS
    group: str | None = None           # group for "unlabelled"/confidence/disagreement (None: first exclusive)
    split: str | None = None           # train / val / test, None = all
    status: str = "ok"                 # face status
    source: str | None = None          # auto source for suggestions, confidence and the tag filter
    tag: str | None = None             # only faces `source` says have this tag (value >= min_prob)
    given: str | None = None           # only faces whose manual label in `group` is this tag
    min_prob: float = 0.5
    unlabelled_only: bool = False      # only faces without a manual label in `group`
    other_source: str = MANUAL         # second source of the "disagreement" order
    annotator: str | None = None       # hides the faces this person marked unsure
    seed: int = 0


class LabellingMixin:
    """The labelling app's queries (one of the mixins `Catalog` is made of)."""

    # -- small lookups --------------------------------------------------------

    def auto_sources(self) -> list[str]:
        return [s for s in self.label_source_names() if s != MANUAL]

    def annotators(self) -> list[str]:
        rows = self.conn.execute("SELECT DISTINCT annotator FROM label_events WHERE source = ? "
                                 "AND annotator IS NOT NULL ORDER BY 1", (MANUAL,)).fetchall()
        return [r[0] for r in rows]

    def validate_spec(self, spec: QueueSpec) -> QueueSpec:
        """The spec with its defaults filled in, or CatalogError naming the bad field."""
        if spec.order not in ORDERS:
            raise CatalogError(f"order must be one of {', '.join(ORDERS)}, not {spec.order!r}")
        if spec.split is not None and spec.split not in SPLITS:
            raise CatalogError(f"split must be one of {', '.join(SPLITS)}, not {spec.split!r}")
        if spec.status not in FACE_STATUSES:
            raise CatalogError(f"status must be one of {', '.join(FACE_STATUSES)}, not {spec.status!r}")
        known = self.label_source_names()
        for name in (spec.source, spec.other_source if spec.order == "disagreement" else None):
            if name is not None and name not in known:
                raise CatalogError(f"unknown label source {name!r} (known: {', '.join(known) or 'none'})")
        group = spec.group or self.first_exclusive_group()
        self.group(group)  # raises on an unknown group
        if spec.tag is not None:
            if spec.tag not in self.tag_index():
                raise CatalogError(f"unknown tag {spec.tag!r}")
            if spec.source is None:
                raise CatalogError("a tag filter needs the source whose suggestion it filters on")
        if not 0 <= float(spec.min_prob) <= 1:
            raise CatalogError(f"min_prob must be in [0, 1], not {spec.min_prob}")
        if spec.order == "confidence" and spec.source is None:
            raise CatalogError("the confidence order needs an auto-tag source")
        if spec.order == "disagreement" and spec.source is None:
            raise CatalogError("the disagreement order needs a source to compare")
        if spec.given is not None and spec.given not in self.group(group)["tags"]:
            raise CatalogError(f"{spec.given!r} is not a tag of {group}")
        if spec.order in JUDGE_ORDERS:
            if spec.source is None or not self.distributions_exist(spec.source, group):
                raise CatalogError(f"the {spec.order} order needs a judge's probabilities for {group} as suggestion "
                                   f"source: run `curate tag --tagger judge --labels {MANUAL}` first")
        return replace(spec, group=group, min_prob=float(spec.min_prob), seed=int(spec.seed))

    # -- queues ---------------------------------------------------------------

    def build_queue(self, spec: QueueSpec, limit: int | None = None,
                    ranking: dict[int, float] | tuple[np.ndarray, np.ndarray] | None = None) -> list[int]:
        """Face ids matching `spec`, in its order. Run once per filter change, then paged.

        The judge orders (JUDGE_ORDERS) sort by `ranking`, face id -> key (a dict, or the face ids
        and their keys as two arrays), lowest first, faces without one last: ranking label errors
        is analysis, done above the catalog (curate.quality.suspects.queue_ranking, which
        label_app.session.build_queue hands over). Ties go by face id.

        At a million faces: one query for the faces the filters keep (each filter's few faces found
        through an index, not looked up per face), the orders' scores from label arrays
        (`label_column`, db/kept.py: read once per process, then brought up to date from new
        events), numpy sorting (benchmarks/label_app.py [1a])."""
        spec = self.validate_spec(spec)
        where, params = ["f.status = ?"], [spec.status]
        if spec.split is not None:
            where.append("f.id IN (SELECT face_id FROM face_splits WHERE split = ?)")
            params.append(spec.split)
        if spec.tag is not None:
            # the faces whose current label of that key is the tag, through the (source, tag) index
            tag_group, exclusive = self.tag_index()[spec.tag]
            where.append("f.id IN (SELECT t.face_id FROM label_current t WHERE t.source = ? AND t.tag = ? "
                         "AND t.key = ? AND coalesce(t.value, 1) >= ?)")
            params += [spec.source, spec.tag, tag_group if exclusive else spec.tag, spec.min_prob]
        if spec.given is not None:
            where.append("f.id IN (SELECT g.face_id FROM label_current g WHERE g.source = ? AND g.tag = ? "
                         "AND g.key = ?)")
            params += [MANUAL, spec.given, spec.group]
        if spec.annotator is not None:
            # The faces this person's newest "unsure" event still marks. Every face with an unsure event
            # has a label_current row of that key, and its tag is NULL (unsure events and their undos
            # carry none): the (source, tag) index finds those few, instead of a look-up per face.
            where.append("f.id NOT IN (SELECT c.face_id FROM label_current c WHERE c.source = ? AND c.tag IS NULL "
                         "AND c.key = ? AND EXISTS (SELECT 1 FROM label_events u WHERE u.source = c.source "
                         "AND u.face_id = c.face_id AND u.key = c.key AND u.annotator = ? AND u.value = 1 "
                         "AND u.id = (SELECT max(x.id) FROM label_events x WHERE x.source = u.source "
                         "AND x.face_id = u.face_id AND x.key = u.key AND x.annotator = u.annotator)))")
            params += [MANUAL, UNSURE_KEY, spec.annotator]
        # the faces as one text, parsed by numpy: half the time of a million rows through Python
        listed = self.conn.execute(f"SELECT group_concat(f.id) FROM faces f WHERE {' AND '.join(where)}",
                                   params).fetchone()[0]
        ids = np.sort(np.fromstring(listed, dtype=np.int64, sep=",")) if listed else np.zeros(0, np.int64)
        if spec.unlabelled_only or spec.order == "unlabelled":
            labelled = np.isin(ids, self.labelled_face_ids(spec.group))
            ids = ids[~labelled] if spec.unlabelled_only else ids[np.argsort(labelled, kind="stable")]
        if spec.order == "confidence":           # least confident first; faces the source never tagged last
            ids = _ranked(ids, self.confidence_scores(spec.source, spec.group), False)
        elif spec.order == "disagreement":       # strongest disagreement first; faces not labelled by both last
            faces, score = self.disagreement_scores(spec.source, spec.other_source, spec.group)
            ids = _ranked(ids, (faces, -score), False)
        elif spec.order in JUDGE_ORDERS:
            if ranking is None:
                raise CatalogError(f"the {spec.order} order needs its ranking from curate.quality.suspects "
                                   f"(queue_ranking)")
            ids = _ranked(ids, ranking, spec.order in RANKED_ONLY)
        queue = ids.tolist()
        if spec.order == "random":
            shuffle(queue, spec.seed)
        return queue[:limit] if limit is not None else queue

    def labelled_face_ids(self, group: str) -> np.ndarray:
        """The faces (ascending) with a current manual label in `group`."""
        columns = [self.label_column(MANUAL, key).face_ids for key in self.group_keys(group)]
        return np.unique(np.concatenate(columns)) if len(columns) > 1 else columns[0]

    def confidence_scores(self, source: str, group: str) -> tuple[np.ndarray, np.ndarray]:
        """(face ids, how sure `source` is about `group`): the chosen tag's probability for an
        exclusive group, the least decided tag's max(p, 1-p) for an independent one (a value of
        NULL counts as 1)."""
        if self.group(group)["exclusive"]:
            column = self.label_column(source, group)
            return column.face_ids, column.values
        columns = [self.label_column(source, key) for key in self.group_keys(group)]
        faces = np.concatenate([c.face_ids for c in columns])
        sure = np.concatenate([np.maximum(c.values, 1 - c.values) for c in columns])
        order = np.argsort(faces, kind="stable")
        faces, sure = faces[order], sure[order]
        starts = np.flatnonzero(np.r_[True, faces[1:] != faces[:-1]]) if len(faces) else np.zeros(0, int)
        return faces[starts], np.minimum.reduceat(sure, starts) if len(faces) else sure

    def disagreement_scores(self, a: str, b: str, group: str) -> tuple[np.ndarray, np.ndarray]:
        """(face ids, probability that sources `a` and `b` name different tags) for the faces both
        labelled in `group`. A source's exclusive label (tag t, probability p) is read as p on t
        and 1-p spread evenly over the group's other tags; disagreement = 1 - sum_t pa(t) pb(t).
        For an independent group, the mean |pa - pb| over the tags either source labelled (an
        absent label 0), summed in the vocabulary's order."""
        g = self.group(group)
        if g["exclusive"]:
            ca, cb = self.label_column(a, group), self.label_column(b, group)
            faces, ia, ib = np.intersect1d(ca.face_ids, cb.face_ids, assume_unique=True, return_indices=True)
            pa, pb, k = ca.values[ia], cb.values[ib], max(len(g["tags"]), 2)
            same = np.where(ca.tags[ia] == cb.tags[ib], pa * pb + (1 - pa) * (1 - pb) / (k - 1),
                            (pa * (1 - pb) + pb * (1 - pa)) / (k - 1) + (1 - pa) * (1 - pb) * (k - 2) / (k - 1) ** 2)
            return faces, 1 - same
        keys = self.group_keys(group)
        ca, cb = [self.label_column(a, key) for key in keys], [self.label_column(b, key) for key in keys]
        faces = np.intersect1d(np.unique(np.concatenate([c.face_ids for c in ca])),
                               np.unique(np.concatenate([c.face_ids for c in cb])), assume_unique=True)
        total, count = np.zeros(len(faces)), np.zeros(len(faces), int)
        for x, y in zip(ca, cb):
            (pa, in_a), (pb, in_b) = _on(faces, x), _on(faces, y)
            total = total + np.where(in_a | in_b, np.abs(pa - pb), 0.0)
            count += in_a | in_b
        return faces, total / count

    def confidence(self, source: str, group: str) -> dict[int, float]:
        """Face id -> how sure `source` is about `group` (see `confidence_scores`)."""
        faces, score = self.confidence_scores(source, group)
        return dict(zip(faces.tolist(), score.tolist()))

    def disagreement(self, a: str, b: str, group: str) -> dict[int, float]:
        """Face id -> probability that sources `a` and `b` name different tags, for faces both
        labelled (see `disagreement_scores`)."""
        faces, score = self.disagreement_scores(a, b, group)
        return dict(zip(faces.tolist(), score.tolist()))

    def is_labelled(self, face_id: int, group: str) -> bool:
        """Does the face have a current manual label in `group`?"""
        sql, params = _current_sql("f", self.group_keys(group))
        return self.conn.execute(f"SELECT {sql} FROM faces f WHERE f.id = ?",
                                 [MANUAL, *params, face_id]).fetchone()[0] == 1

    def face_status(self, face_id: int) -> str | None:
        row = self.conn.execute("SELECT status FROM faces WHERE id = ?", (face_id,)).fetchone()
        return row[0] if row else None

    # -- what one face / one page shows ---------------------------------------

    def face_view(self, face_id: int) -> dict | None:
        """Everything the single view shows for one face, in two indexed queries."""
        rows = self.query(
            "SELECT f.id, i.image, f.format, f.width, f.height, f.box_x, f.box_y, f.box_w, f.box_h, f.crop_x, "
            "f.crop_y, f.crop_size, f.status, f.reason, sp.split, f.detector, f.score, s.path AS source_path, "
            "s.width AS source_width, s.height AS source_height "
            f"FROM faces f JOIN sources s ON s.id = f.source_id {IMAGE_JOIN} {SPLIT_JOIN} WHERE f.id = ?", [face_id])
        if not rows:
            return None
        face = rows[0]
        face["labels"] = self.labels_of_faces([face_id]).get(face_id, {})
        return face

    def face_images(self, face_ids: list[int]) -> dict[int, bytes]:
        if not face_ids:
            return {}
        marks = ",".join("?" * len(face_ids))
        return dict(self.conn.execute(f"SELECT face_id, image FROM face_images WHERE face_id IN ({marks})",
                                      list(face_ids)))

    def source_of_face(self, face_id: int) -> dict | None:
        """The stored source path and boxes of one face: the only way the app finds a picture on disk."""
        rows = self.query(
            "SELECT s.path, f.box_x, f.box_y, f.box_w, f.box_h, f.crop_x, f.crop_y, f.crop_size "
            "FROM faces f JOIN sources s ON s.id = f.source_id WHERE f.id = ?", [face_id])
        return rows[0] if rows else None

    # -- writes ---------------------------------------------------------------

    def suggestion_labels(self, face_ids: list[int], source: str,
                          groups: list[str] | None = None) -> list[tuple[int, str, float]]:
        """The manual events that accept `source`'s suggestions: each exclusive group's tag,
        and every independent tag it gives p >= 0.5 (as 1)."""
        wanted = {g["name"]: g for g in self.groups() if groups is None or g["name"] in groups}
        keys: dict[str, bool] = {}
        for g in wanted.values():
            for key in ([g["name"]] if g["exclusive"] else g["tags"]):
                keys[key] = g["exclusive"]
        if not keys:
            return []
        current = self.current_for_keys(source, list(keys), face_ids=list(face_ids))
        out = []
        for face_id in face_ids:
            for key, (tag, value) in current.get(face_id, {}).items():
                if keys[key] or (value is None or value >= 0.5):
                    out.append((face_id, tag, 1.0))
        return out

    def add_manual(self, labels: list[tuple[int, str, float]], annotator: str) -> int:
        """Write people's labels (source manual); all or nothing."""
        if not labels:
            return 0
        return self.add_labels(labels, MANUAL, annotator)

    def mark_unsure(self, face_id: int, annotator: str) -> int:
        """Record "this person could not decide" (see UNSURE_KEY); undoable with Catalog.undo_last."""
        with self.transaction() as conn:
            if not conn.execute("SELECT 1 FROM faces WHERE id = ?", (face_id,)).fetchone():
                raise CatalogError(f"no face with id {face_id}")
            cur = conn.execute("INSERT INTO label_events (face_id, key, tag, value, source, annotator) "
                               "VALUES (?, ?, NULL, 1, ?, ?)", (face_id, UNSURE_KEY, MANUAL, annotator))
            return cur.lastrowid

    def reject_face(self, face_id: int, annotator: str) -> dict:
        """Mark a face "not a face / bad crop"; returns its previous status (for undo)."""
        before = self.query("SELECT status, reason, duplicate_of FROM faces WHERE id = ?", [face_id])
        if not before:
            raise CatalogError(f"no face with id {face_id}")
        self.set_face_status(face_id, "rejected", reason=f"bad crop (marked by {annotator} in label-app)")
        return before[0]

    def restore_face(self, face_id: int, before: dict) -> None:
        self.set_face_status(face_id, before["status"], reason=before["reason"],
                             duplicate_of=before["duplicate_of"])

    # -- progress -------------------------------------------------------------

    def progress(self) -> list[dict]:
        """[{group, labelled, total}]: ok faces with a current manual label in each group."""
        groups = self.groups()
        total = self.conn.execute("SELECT count(*) FROM faces WHERE status = 'ok'").fetchone()[0]
        case, params = [], []
        for g in groups:
            for key in ([g["name"]] if g["exclusive"] else g["tags"]):
                case.append("WHEN ? THEN ?")
                params += [key, g["name"]]
        counts: dict[str, int] = {}
        if case:
            # Faces that are not ok are few: excluding them through the status index is cheap.
            rows = self.conn.execute(
                f"SELECT grp, count(DISTINCT face_id) FROM (SELECT CASE e.key {' '.join(case)} END AS grp, e.face_id "
                f"FROM label_events e JOIN (SELECT max(id) AS id FROM label_events WHERE source = ? "
                f"GROUP BY face_id, key) m ON m.id = e.id WHERE e.tag IS NOT NULL AND e.face_id NOT IN "
                f"(SELECT id FROM faces WHERE status != 'ok')) WHERE grp IS NOT NULL GROUP BY grp",
                params + [MANUAL]).fetchall()
            counts = dict(rows)
        return [{"group": g["name"], "labelled": counts.get(g["name"], 0), "total": total} for g in groups]

    def newest_manual_event(self) -> int:
        """The id of the newest manual label event (0 without any)."""
        return self.manual_events_after(0)[1]

    def manual_events_after(self, event_id: int) -> tuple[int, int]:
        """(manual label events after `event_id`, the newest one's id): what `label-app --learn`
        counts. A walk of the rowid from `event_id` on: cheap, however big the catalog."""
        n, newest = self.conn.execute("SELECT count(*), max(id) FROM label_events WHERE id > ? AND source = ? "
                                      "AND tag IS NOT NULL", (event_id, MANUAL)).fetchone()
        return n, newest or event_id

    def annotator_counts(self) -> list[dict]:
        """[{annotator, labels, faces, unsure}]: label events each person gave (undone ones not counted)."""
        return self.query(
            "SELECT coalesce(annotator, '(none)') AS annotator, "
            "sum(tag IS NOT NULL) AS labels, count(DISTINCT CASE WHEN tag IS NOT NULL THEN face_id END) AS faces, "
            "sum(key = ? AND value = 1) AS unsure FROM label_events "
            "WHERE source = ? AND undoes IS NULL AND id NOT IN (SELECT undoes FROM label_events "
            "WHERE undoes IS NOT NULL AND source = ?) GROUP BY 1 ORDER BY labels DESC",
            [UNSURE_KEY, MANUAL, MANUAL])


def _current_sql(alias: str, keys: list[str]) -> tuple[str, list]:
    """SQL (and params) true when face `alias`.id has a current label of source ? in `keys`
    (label_current: each (source, face, key)'s newest event, kept by triggers)."""
    marks = ",".join("?" * len(keys))
    sql = (f"EXISTS (SELECT 1 FROM label_current e WHERE e.source = ? AND e.face_id = {alias}.id "
           f"AND e.key IN ({marks}) AND +e.tag IS NOT NULL)")
    return sql, keys


def shuffle(ids: list, seed: int) -> None:
    """`random.Random(seed).shuffle(ids)`, the same draws in the same order (Fisher-Yates, each index
    drawn by `_randbelow_with_getrandbits`: k = n.bit_length() bits, again while >= n), without
    its two Python calls per element: a fifth faster on a million faces."""
    getrandbits = random.Random(seed).getrandbits
    for i in reversed(range(1, len(ids))):
        n = i + 1
        k = n.bit_length()
        j = getrandbits(k)
        while j >= n:
            j = getrandbits(k)
        ids[i], ids[j] = ids[j], ids[i]


def _on(faces: np.ndarray, column) -> tuple[np.ndarray, np.ndarray]:
    """A LabelColumn's values on `faces` (ascending), 0.0 where it has none, and where it has one."""
    if not len(column.face_ids):
        return np.zeros(len(faces)), np.zeros(len(faces), bool)
    at = np.minimum(np.searchsorted(column.face_ids, faces), len(column.face_ids) - 1)
    present = column.face_ids[at] == faces
    return np.where(present, column.values[at], 0.0), present


def _ranked(ids: np.ndarray, ranking: dict[int, float] | tuple[np.ndarray, np.ndarray], ranked_only: bool
            ) -> np.ndarray:
    """`ids` (ascending) by their key in `ranking`, lowest first, ties by id; faces without a key
    last (or left out, `ranked_only`)."""
    if isinstance(ranking, dict):
        ranked = np.fromiter(ranking.keys(), np.int64, len(ranking))
        keys = np.fromiter(ranking.values(), np.float64, len(ranking))
    else:
        ranked, keys = np.asarray(ranking[0], np.int64), np.asarray(ranking[1], np.float64)
    by_id = np.argsort(ranked, kind="stable")
    ranked, keys = ranked[by_id], keys[by_id]
    at = np.minimum(np.searchsorted(ranked, ids), max(len(ranked) - 1, 0))
    found = ranked[at] == ids if len(ranked) else np.zeros(len(ids), bool)
    key = np.where(found, keys[at] if len(ranked) else 0.0, 0.0)
    if ranked_only:
        ids, key, found = ids[found], key[found], found[found]
    return ids[np.lexsort((ids, key, ~found))]


def label_probability(label: tuple[str, float | None] | None) -> float:
    """A (tag, value) label's probability: absent 0, a person's label (value None) 1."""
    if label is None:
        return 0.0
    return 1.0 if label[1] is None else label[1]
