"""How far apart two label sources, or two people, are: the one place agreement is computed.

Exclusive groups (hair colour, eye colour): accuracy of B against A, Cohen's kappa
(agreement beyond what the two sources' tag frequencies give by chance) and the
confusion matrix. Independent tags: the same on present/absent (value >= 0.5).
`worst_disagreements` lists the faces where two sources disagree most confidently: the
ones a person should look at first. `annotator_agreement` is the same kappa between two
people of source `manual` (the labelling app's progress page). Used by `curate agree`,
`curate suspects`, the app and `train compare`'s report, so it lives below all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from db import Catalog, CatalogError
from db.labelling import MANUAL, label_probability

PRESENT = 0.5   # an independent tag is present when its value reaches this


@dataclass
class GroupAgreement:
    group: str
    tags: list[str]                 # row/column order of `confusion`
    confusion: np.ndarray           # rows: source A's tag, columns: source B's
    exclusive: bool = True

    @property
    def n(self) -> int:
        return int(self.confusion.sum())

    @property
    def accuracy(self) -> float:
        return float(np.trace(self.confusion) / self.n) if self.n else float("nan")

    @property
    def kappa(self) -> float:
        return cohen_kappa(self.confusion)

    def per_tag(self) -> list[dict]:
        """Per tag of A: faces, recall (B agrees), precision (of B's uses of it)."""
        out = []
        for i, tag in enumerate(self.tags):
            row, col = self.confusion[i].sum(), self.confusion[:, i].sum()
            hit = self.confusion[i, i]
            out.append({"tag": tag, "a": int(row), "b": int(col),
                        "recall": hit / row if row else float("nan"),
                        "precision": hit / col if col else float("nan")})
        return out


@dataclass
class Agreement:
    a: str
    b: str
    split: str | None
    groups: list[GroupAgreement] = field(default_factory=list)
    faces_a: int = 0
    faces_b: int = 0
    faces_both: int = 0


def cohen_kappa(confusion: np.ndarray) -> float:
    """Kappa of a confusion matrix (rows one rater, columns the other); NaN when undefined
    (no pairs, or both raters always give the same one category)."""
    n = confusion.sum()
    if not n:
        return float("nan")
    po = np.trace(confusion) / n
    pe = float((confusion.sum(0) * confusion.sum(1)).sum()) / n ** 2
    return float((po - pe) / (1 - pe)) if pe < 1 else float("nan")


def confusion_of(pairs: list[tuple]) -> np.ndarray:
    """Paired labels [(a, b)] -> their confusion matrix over the categories either uses."""
    cats = sorted({x for pair in pairs for x in pair}, key=str)
    pos = {c: i for i, c in enumerate(cats)}
    conf = np.zeros((len(cats), len(cats)), int)
    for a, b in pairs:
        conf[pos[a], pos[b]] += 1
    return conf


def agreement(catalog: Catalog, a: str, b: str, split: str | None = None) -> Agreement:
    """Compare sources `a` (taken as the reference) and `b` on every face both labelled."""
    la, lb = catalog.labelled_faces(a, split=split), catalog.labelled_faces(b, split=split)
    both = sorted(set(la) & set(lb))
    result = Agreement(a, b, split, faces_a=len(la), faces_b=len(lb), faces_both=len(both))
    for g in catalog.groups():
        if g["exclusive"]:
            pairs = [(la[f][g["name"]][0], lb[f][g["name"]][0]) for f in both
                     if g["name"] in la[f] and g["name"] in lb[f]]
            if not pairs:
                continue
            used = {t for p in pairs for t in p}
            tags = [t for t in g["tags"] if t in used]
            pos = {t: i for i, t in enumerate(tags)}
            conf = np.zeros((len(tags), len(tags)), int)
            for ta, tb in pairs:
                conf[pos[ta], pos[tb]] += 1
            result.groups.append(GroupAgreement(g["name"], tags, conf))
        else:
            for tag in g["tags"]:
                # Compare only faces where both sources said something about this tag.
                seen = [f for f in both if tag in la[f] and tag in lb[f]]
                if not seen:
                    continue
                conf = np.zeros((2, 2), int)
                for f in seen:
                    conf[int(la[f][tag][1] >= PRESENT), int(lb[f][tag][1] >= PRESENT)] += 1
                result.groups.append(GroupAgreement(tag, ["absent", "present"], conf, exclusive=False))
    return result


def worst_disagreements(catalog: Catalog, a: str, b: str, n: int | None = 20, split: str | None = None
                        ) -> list[dict]:
    """The `n` (None: all) faces where `a` and `b` disagree most confidently, most confident first.

    A disagreement's confidence is the product of the two values (a person's label is
    1.0, a model's its probability), so a sure model contradicting a person ranks above
    a hesitant one. Each row: face_id, key (the group), tag_a, value_a, tag_b, value_b,
    confidence, split."""
    la, lb = catalog.labelled_faces(a, split=None), catalog.labelled_faces(b, split=None)
    splits = catalog.face_splits()
    rows = []
    for f in set(la) & set(lb):
        if split is not None and splits.get(f) != split:
            continue
        for key, (ta, va) in la[f].items():
            if key not in lb[f]:
                continue
            tb, vb = lb[f][key]
            va, vb = 1.0 if va is None else va, 1.0 if vb is None else vb
            if ta == key and tb == key:   # an independent tag: present in one, absent in the other
                if (va >= PRESENT) == (vb >= PRESENT):
                    continue
                conf = max(va, 1 - va) * max(vb, 1 - vb)
            elif ta == tb:
                continue
            else:
                conf = va * vb
            rows.append({"face_id": f, "key": key, "tag_a": ta, "value_a": va, "tag_b": tb, "value_b": vb,
                         "confidence": conf, "split": splits.get(f)})
    rows.sort(key=lambda r: (-r["confidence"], r["face_id"], r["key"]))
    return rows if n is None else rows[:n]


def plot_confusions(result: Agreement, path: str | Path, max_groups: int = 2) -> Path:
    """Row-normalised confusion matrices of the exclusive groups, side by side, as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    groups = [g for g in result.groups if g.exclusive][:max_groups] or result.groups[:max_groups]
    if not groups:
        raise CatalogError(f"{result.a} and {result.b} share no labelled face: nothing to plot")
    fig, axes = plt.subplots(1, len(groups), figsize=(6.2 * len(groups), 5.6), squeeze=False)
    for ax, g in zip(axes[0], groups):
        rows = g.confusion.sum(1, keepdims=True)
        norm = np.divide(g.confusion, rows, out=np.zeros_like(g.confusion, float), where=rows > 0)
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        short = [t.replace(" hair", "").replace(" eyes", "") for t in g.tags]
        ax.set_xticks(range(len(short)), short, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(len(short)), short, fontsize=8)
        for i in range(len(short)):
            for j in range(len(short)):
                if g.confusion[i, j]:
                    ax.text(j, i, g.confusion[i, j], ha="center", va="center", fontsize=6,
                            color="white" if norm[i, j] > 0.5 else "black")
        ax.set_ylabel(f"{result.a}")
        ax.set_xlabel(f"{result.b}")
        ax.set_title(f"{g.group}: accuracy {g.accuracy:.1%}, kappa {g.kappa:.2f}, n={g.n}", fontsize=10)
    split = f" ({result.split} split)" if result.split else ""
    fig.suptitle(f"{result.a} vs {result.b}{split}: rows {result.a}'s tag, normalised", fontsize=11)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def annotator_agreement(catalog: Catalog, a: str, b: str) -> list[dict]:
    """Per group, Cohen's kappa between two annotators of source `manual` on the faces both labelled.

    Exclusive groups compare the chosen tags; independent groups pool every (face, tag)
    both people decided, as yes/no. Rows: group, faces, pairs, agree, kappa (None where
    undefined)."""
    out = []
    for g in catalog.groups():
        keys = [g["name"]] if g["exclusive"] else list(g["tags"])
        la = catalog.current_for_keys(MANUAL, keys, annotator=a)
        lb = catalog.current_for_keys(MANUAL, keys, annotator=b)
        pairs = []
        for face_id in la.keys() & lb.keys():
            for key in la[face_id].keys() & lb[face_id].keys():
                if g["exclusive"]:
                    pairs.append((la[face_id][key][0], lb[face_id][key][0]))
                else:
                    pairs.append((label_probability(la[face_id][key]) >= PRESENT,
                                  label_probability(lb[face_id][key]) >= PRESENT))
        kappa = cohen_kappa(confusion_of(pairs))
        out.append({"group": g["name"], "faces": len(la.keys() & lb.keys()), "pairs": len(pairs),
                    "agree": (sum(x == y for x, y in pairs) / len(pairs)) if pairs else None,
                    "kappa": None if np.isnan(kappa) else kappa})
    return out
