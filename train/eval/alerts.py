"""Runs not worth comparing, said loudly: the report's Warnings (right under the verdict) and
`train compare`'s terminal. Pure functions of a run's eval.json figures.

A run is suspect when the judge finds the asked tag no more often than chance would (at most
CHANCE_FACTOR / number of tags), when nearly all its faces are near-duplicates of another one
(mode collapse), when its judge FID is many times the real-vs-real floor, or when it trained too
few steps for its size; the judge itself is suspect when it reads real test faces near chance
(then no figure of it means much).
"""

from __future__ import annotations

CHANCE_FACTOR = 1.5           # accuracy <= 1.5 / number of tags: near chance
NEAR_DUPLICATES = 0.9         # share of near-duplicate fakes from which a run has collapsed
FID_OVER_FLOOR = 10           # judge FID more than 10x the real-vs-real floor
STEPS_AT_32 = 500             # fewer generator steps than this at 32 px (scaled with the size) is too few


def near_chance(accuracy: float, tags: int) -> bool:
    return tags > 1 and accuracy <= CHANCE_FACTOR / tags


def min_steps(size: int) -> int:
    """Too few steps below this: STEPS_AT_32 at 32 px, in proportion to the side above."""
    return int(STEPS_AT_32 * max(size, 32) / 32)


def judge_warnings(judge: dict) -> list[str]:
    """The judge (eval.json's `judge`) near chance on real test faces, per group."""
    out = []
    for group, acc in judge.get("test_accuracy", {}).items():
        tags = len(judge.get("test_per_tag", {}).get(group, {}))
        if near_chance(acc, tags):
            out.append(f"the judge ({judge.get('source')} labels) reads {group} on real test faces near chance "
                       f"({acc:.1%}, chance {1 / tags:.1%} with {tags} tags): no {group} figure of it means much; "
                       f"train it longer or on more faces")
    return out


def run_warnings(name: str, ev: dict, steps: int | None, size: int | None) -> list[str]:
    """Why the run `name` (its eval.json `ev`; `steps` trained at `size` px) is not worth comparing."""
    out = []
    per_tag = ev.get("judge", {}).get("test_per_tag", {})
    for group, s in ev.get("judge_accuracy", {}).items():
        tags = len(per_tag.get(group, {}))
        if near_chance(s["accuracy"], tags):
            out.append(f"{name}: the judge finds the asked {group} near chance ({s['accuracy']:.1%}, chance "
                       f"{1 / tags:.1%} with {tags} tags): the run does not follow its condition")
    dup = (ev.get("diversity", {}).get("fake") or {}).get("near_duplicates")
    if dup is not None and dup >= NEAR_DUPLICATES:
        out.append(f"{name}: {dup:.0%} of its faces are near-duplicates: it has collapsed to a few faces")
    fid, floor = ev.get("judge_fid"), (ev.get("floor") or {}).get("judge_fid")
    if fid is not None and floor and fid > FID_OVER_FLOOR * floor:
        out.append(f"{name}: judge FID {fid:.3g} is {fid / floor:.0f}x the real-vs-real floor ({floor:.3g}): its "
                   f"faces are far from real ones")
    if steps is not None and size and steps < min_steps(size):
        out.append(f"{name}: {steps} steps is too few at {size} px (at least {min_steps(size)}): its figures say "
                   f"how far it got, not what it can do")
    return out
