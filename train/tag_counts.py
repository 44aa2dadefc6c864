"""The table of faces per tag that `train <model>` and `train experiment` print before training,
and whenever a tag is refused: one column per label source, and a note on each tag left out
or refused. One function, so the two commands always show the same thing."""

from __future__ import annotations

from rich.table import Table


def tag_counts_table(title: str, counts: dict[str, dict[str, dict[str, int]]],
                     notes: dict[str, str] | None = None) -> Table:
    """`counts`: label source -> group -> tag -> faces; `notes`: tag -> what happened to it
    ("left out", "too few (< 10)"). Rows: every tag some source counts, most faces first."""
    notes = notes or {}
    sources = list(counts)
    table = Table(title=title)
    table.add_column("group")
    table.add_column("tag")
    for source in sources:
        table.add_column(f"faces ({source})" if len(sources) > 1 else "faces", justify="right")
    if notes:
        table.add_column("")
    groups: dict[str, dict[str, int]] = {}
    for per_group in counts.values():
        for group, tags in per_group.items():
            for tag, n in tags.items():
                groups.setdefault(group, {})[tag] = max(n, groups.get(group, {}).get(tag, 0))
    for group, tags in groups.items():
        for tag in sorted(tags, key=lambda t: -tags[t]):
            cells = [str(counts[s].get(group, {}).get(tag, 0)) for s in sources]
            table.add_row(group, tag, *cells, *([notes.get(tag, "")] if notes else []))
    return table


def merged_counts(counts: dict[str, dict[str, int]], left_out: dict[str, dict[str, int]]) -> dict:
    """The counts of the tags trained on and of those left out, in one group -> tag -> faces."""
    out = {g: dict(tags) for g, tags in counts.items()}
    for g, tags in left_out.items():
        out.setdefault(g, {}).update(tags)
    return out
