"""Queries of train/val/test splits, and the hash that places a face in one.

A face's split is a pure function of the seed and its content hash (or, stratified, of its
place in hash order within its stratum): adding faces never moves existing ones.
"""

from __future__ import annotations

import hashlib

from db.base import FACE_STATUSES, SPLIT_JOIN, SPLITS, CatalogError


class SplitsMixin:
    """Splits (one of the mixins `Catalog` is made of)."""

    def assign_splits(self, val: float, test: float, seed: int = 0, stratify: str | None = None,
                      reassign: bool = False) -> dict[str, int]:
        """Give every ok face without a split one of train/val/test.

        Without `stratify`, a face's split is a pure function of (seed, its content
        hash), so adding faces never moves existing ones. With `stratify=SOURCE`,
        faces are grouped by that source's current label of the first exclusive
        group, and each new face goes, in hash order, to the split furthest below
        its share within its stratum: still never moving a face that has a split.
        `reassign` clears all splits first. Returns counts of faces assigned now.
        """
        if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
            raise CatalogError(f"--val {val} and --test {test} must be fractions with val + test < 1")
        with self.transaction() as conn:
            if reassign:  # = forget every split, then draw them all; faces that keep theirs are not rewritten
                conn.execute("DELETE FROM face_splits WHERE face_id IN (SELECT id FROM faces WHERE status != 'ok')")
                todo = conn.execute(f"SELECT f.id, f.sha256, sp.split FROM faces f {SPLIT_JOIN} "
                                    "WHERE f.status = 'ok'").fetchall()
            else:
                todo = conn.execute(f"SELECT f.id, f.sha256, sp.split FROM faces f {SPLIT_JOIN} "
                                    "WHERE f.status = 'ok' AND sp.split IS NULL").fetchall()
            assigned: dict[int, str] = {}
            places = split_hashes(seed, [sha for _, sha, _ in todo])
            if stratify is None:
                for (fid, _, _), u in zip(todo, places):
                    assigned[fid] = "test" if u < test else "val" if u < test + val else "train"
            else:
                if not conn.execute("SELECT 1 FROM label_events WHERE source=? LIMIT 1", (stratify,)).fetchone():
                    raise CatalogError(f"label source {stratify!r} has no labels to stratify by")
                exclusive = [g for g in self.groups() if g["exclusive"]]
                key = exclusive[0]["name"] if exclusive else None
                stratum = dict(conn.execute("SELECT face_id, tag FROM label_current WHERE source = ? AND key = ? "
                                            "AND +tag IS NOT NULL", (stratify, key)))
                # per stratum: faces so far in test, val, train
                counts: dict[str | None, list[int]] = {}
                if not reassign:
                    for fid, split, in conn.execute(
                            "SELECT sp.face_id, sp.split FROM face_splits sp JOIN faces f ON f.id = sp.face_id "
                            "WHERE f.status = 'ok'"):
                        counts.setdefault(stratum.get(fid), [0, 0, 0])[("test", "val", "train").index(split)] += 1
                new_faces: dict[str | None, list[int]] = {}   # per stratum, in hash order
                ids = [fid for fid, _, _ in todo]
                for i in sorted(range(len(todo)), key=places.__getitem__):
                    new_faces.setdefault(stratum.get(ids[i]), []).append(ids[i])
                for key_tag, fids in new_faces.items():
                    picks = _stratified_picks(counts.get(key_tag, (0, 0, 0)), len(fids), (test, val, 1 - val - test))
                    assigned.update(zip(fids, picks))
            conn.executemany("INSERT OR REPLACE INTO face_splits (face_id, split) VALUES (?, ?)",
                             [(fid, assigned[fid]) for fid, _, split in todo if assigned[fid] != split])
        out = dict.fromkeys(SPLITS, 0)
        for s in assigned.values():
            out[s] += 1
        return out

    def split_counts(self) -> dict[str, int]:
        """Ok faces per split ("none": without one). Counted on face_splits' index, less the splits
        of faces that are not ok (few), rather than by joining every face to its split (0.5 s at
        a million faces)."""
        out = dict.fromkeys(SPLITS + ("none",), 0)
        others = [s for s in FACE_STATUSES if s != "ok"]
        not_ok = dict(self.conn.execute(
            f"SELECT sp.split, count(*) FROM faces f JOIN face_splits sp ON sp.face_id = f.id "
            f"WHERE f.status IN ({', '.join('?' * len(others))}) GROUP BY 1", others))
        for split, n in self.conn.execute("SELECT split, count(*) FROM face_splits GROUP BY split"):
            out[split] = n - not_ok.get(split, 0)
        ok = self.conn.execute("SELECT count(*) FROM faces WHERE status = 'ok'").fetchone()[0]
        out["none"] = ok - sum(out[s] for s in SPLITS)
        return out

    def face_splits(self) -> dict[int, str | None]:
        """Face id -> split, for ok faces."""
        return dict(self.conn.execute(f"SELECT f.id, sp.split FROM faces f {SPLIT_JOIN} WHERE f.status = 'ok'"))


def _stratified_picks(counts, n_new: int, shares: tuple[float, float, float]) -> list[str]:
    """Splits of a stratum's next `n_new` faces: each goes to the split furthest below its
    share given `counts` (test, val, train) so far; ties: test, val, train. (A plain loop over
    three ints: this runs once per face, 100,000 times for a large catalog.)"""
    t, v, r = counts
    st, sv, sr = shares
    out = []
    add = out.append
    for n in range(t + v + r + 1, t + v + r + n_new + 1):
        bt, bv, br = st * n - t, sv * n - v, sr * n - r
        if bt >= bv and bt >= br:
            t += 1
            add("test")
        elif bv >= br:
            v += 1
            add("val")
        else:
            r += 1
            add("train")
    return out

def split_hash(seed: int, sha256: str) -> float:
    """A face's place in [0, 1) for splitting: depends on nothing but seed and content."""
    return split_hashes(seed, [sha256])[0]

def split_hashes(seed: int, sha256s: list[str]) -> list[float]:
    """`split_hash` of many faces (one comprehension: a function call per face costs a third
    of a 100,000-face split)."""
    sha, prefix = hashlib.sha256, f"{seed}:"
    return [int.from_bytes(sha((prefix + s).encode()).digest()[:8], "big") / 2**64 for s in sha256s]
