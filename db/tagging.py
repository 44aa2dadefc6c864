"""Queries of the auto-taggers (curate/taggers.py) and of label agreement."""

from __future__ import annotations

from .catalog import SPLIT_JOIN, Catalog


def tagged_face_ids(catalog: Catalog, source: str, version: str) -> set[int]:
    """Faces that already carry events from `source` written by this model `version`
    (the taggers store the version as the event's annotator): a re-run skips them."""
    return {r[0] for r in catalog.conn.execute(
        "SELECT DISTINCT face_id FROM label_events WHERE source = ? AND annotator = ?", (source, version))}


def ensure_group(catalog: Catalog, group: str, exclusive: bool, tags: list[str]) -> list[str]:
    """Create `group` and any of `tags` missing from the vocabulary; returns the tags added.
    A tag that exists already in another group is left where it is."""
    added = []
    with catalog.transaction():
        if not any(g["name"] == group for g in catalog.groups()):
            catalog.add_group(group, exclusive)
        index = catalog.tag_index()
        for tag in tags:
            if tag not in index:
                catalog.add_tag(tag, group)
                added.append(tag)
    return added


def face_splits(catalog: Catalog) -> dict[int, str | None]:
    """Face id -> split, for ok faces."""
    return dict(catalog.conn.execute(f"SELECT f.id, sp.split FROM faces f {SPLIT_JOIN} WHERE f.status = 'ok'"))
