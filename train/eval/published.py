"""The study's published result (the README's table, `published.json` beside this file) held
against a new report's verdict: where they disagree, the report says so loudly instead of
printing a contradicting table in silence.

A published finding is one figure of one pair of label sources that differed beyond the spread
over seeds, under a setup (the options both configurations shared). A report's verdict finding
answers it when it compares the same two label sources on the same figure and its configurations
trained with the same setup values. Then:
- the other source better beyond the spread: it **contradicts** the published table;
- within the spread (two seeds or more): it **does not reproduce** it;
- one seed, the other source better: an anecdote that **disagrees** with it.

Pure functions of the findings; reading the file happens in `load_published`.
"""

from __future__ import annotations

import json
from pathlib import Path

from train.eval.verdict import Finding

PUBLISHED = Path(__file__).with_name("published.json")


def load_published(path: Path = PUBLISHED) -> dict:
    """The published result, or an empty one where the file is missing or unreadable (a report is
    still written: this check is a courtesy, not a requirement)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"findings": []}
    return data if isinstance(data.get("findings"), list) else {"findings": []}


def _applies(published: dict, found: Finding) -> bool:
    """Whether a report's finding compares what a published finding compared, under its setup."""
    if found.figure != published["figure"] or set(found.labels) != {published["better"], published["worse"]}:
        return False
    try:
        options = json.loads(found.alike)
    except ValueError:
        return False
    return all(options.get(k) == v for k, v in published.get("setup", {}).items())


def disagreements(found: list[Finding], published: dict) -> list[str]:
    """One warning per published finding that a report's finding contradicts, does not reproduce
    or (one seed) disagrees with."""
    where = published.get("where", "the published table")
    out = []
    for p in published.get("findings", []):
        said = (f"{where} found {p['better']} better than {p['worse']} on {p['figure']} beyond the spread of "
                f"{p.get('seeds', 'several')} seeds")
        for f in found:
            if not _applies(p, f) or f.better == p["better"] and (f.beyond or not f.decidable):
                continue
            if f.beyond:
                out.append(f"this contradicts the published result: here {f.better} is better on {f.figure} beyond "
                           f"the spread; {said}")
            elif f.decidable:
                out.append(f"this does not reproduce the published result: here {f.figure} differs within the spread; "
                           f"{said}")
            elif f.better is not None:
                out.append(f"one seed, so an anecdote, disagrees with the published result: here {f.better} is better "
                           f"on {f.figure}; {said}")
    return out
