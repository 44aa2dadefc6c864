"""The default attribute vocabulary: the 34 tags of Jin et al. 2017, plus "grey eyes".

Spelled as illustration2vec spells them, so i2v's predictions map onto them by name.
Exclusive groups hold one tag per face (softmax in the GANs); independent groups
hold any number (sigmoid). `VocabularyMixin` holds the queries of tag groups and tags.
"""

from __future__ import annotations

from db.base import CatalogError

HAIR_COLORS = [
    "blonde hair", "brown hair", "black hair", "blue hair", "pink hair", "purple hair",
    "green hair", "red hair", "silver hair", "white hair", "orange hair", "aqua hair",
    "grey hair",
]
EYE_COLORS = [
    "blue eyes", "red eyes", "brown eyes", "green eyes", "purple eyes", "yellow eyes",
    "pink eyes", "aqua eyes", "black eyes", "orange eyes", "grey eyes",
]
HAIR_STYLES = ["long hair", "short hair", "twintails", "drill hair", "ponytail"]
OTHER = ["blush", "smile", "open mouth", "hat", "ribbon", "glasses"]

# (group, exclusive, tags)
DEFAULT_GROUPS = [
    ("hair_color", True, HAIR_COLORS),
    ("eye_color", True, EYE_COLORS),
    ("hair_style", False, HAIR_STYLES),
    ("other", False, OTHER),
]


class VocabularyMixin:
    """Tag groups and tags (one of the mixins `Catalog` is made of)."""

    def _insert_default_vocabulary(self) -> None:
        for gpos, (group, exclusive, tags) in enumerate(DEFAULT_GROUPS):
            self.conn.execute("INSERT INTO tag_groups (name, exclusive, position) VALUES (?, ?, ?)",
                              (group, int(exclusive), gpos))
            for tpos, tag in enumerate(tags):
                self.conn.execute("INSERT INTO tags (name, group_name, position) VALUES (?, ?, ?)",
                                  (tag, group, tpos))

    def groups(self) -> list[dict]:
        """[{name, exclusive, tags: [names in order]}] in vocabulary order."""
        groups = self.query("SELECT name, exclusive FROM tag_groups ORDER BY position, name")
        tags = self.conn.execute("SELECT name, group_name FROM tags ORDER BY position, name").fetchall()
        for g in groups:
            g["exclusive"] = bool(g["exclusive"])
            g["tags"] = [t for t, grp in tags if grp == g["name"]]
        return groups

    def group(self, name: str) -> dict:
        for g in self.groups():
            if g["name"] == name:
                return g
        raise CatalogError(f"unknown tag group {name!r}; known: {', '.join(g['name'] for g in self.groups())}")

    def tag_index(self) -> dict[str, tuple[str, bool]]:
        """Tag -> (group, group is exclusive)."""
        return {t: (g, bool(e)) for t, g, e in self.conn.execute(
            "SELECT t.name, t.group_name, g.exclusive FROM tags t JOIN tag_groups g ON g.name = t.group_name")}

    def group_keys(self, group: str) -> list[str]:
        """The label_events keys of a group: the group itself if exclusive, else its tags."""
        g = self.group(group)
        return [g["name"]] if g["exclusive"] else list(g["tags"])

    def first_exclusive_group(self) -> str:
        groups = self.groups()
        for g in groups:
            if g["exclusive"]:
                return g["name"]
        if not groups:
            raise CatalogError("the catalog has no tag groups")
        return groups[0]["name"]

    def tag_hotkeys(self) -> dict[str, str]:
        """Tag -> the hotkey stored in the vocabulary (tags.hotkey), where one is set."""
        return dict(self.conn.execute("SELECT name, hotkey FROM tags WHERE hotkey IS NOT NULL AND hotkey != ''"))

    def add_group(self, name: str, exclusive: bool) -> None:
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM tag_groups WHERE name=?", (name,)).fetchone():
                raise CatalogError(f"tag group {name!r} exists already")
            pos = conn.execute("SELECT coalesce(max(position), -1) + 1 FROM tag_groups").fetchone()[0]
            conn.execute("INSERT INTO tag_groups (name, exclusive, position) VALUES (?, ?, ?)",
                         (name, int(exclusive), pos))

    def add_tag(self, tag: str, group: str) -> None:
        tag = tag.strip()
        if not tag:
            raise CatalogError("a tag needs a name")
        with self.transaction() as conn:
            if not conn.execute("SELECT 1 FROM tag_groups WHERE name=?", (group,)).fetchone():
                raise CatalogError(f"unknown tag group {group!r} (add it first)")
            if conn.execute("SELECT 1 FROM tags WHERE name=?", (tag,)).fetchone():
                raise CatalogError(f"tag {tag!r} exists already")
            pos = conn.execute("SELECT coalesce(max(position), -1) + 1 FROM tags WHERE group_name=?",
                               (group,)).fetchone()[0]
            conn.execute("INSERT INTO tags (name, group_name, position) VALUES (?, ?, ?)", (tag, group, pos))

    def remove_tag(self, tag: str) -> None:
        with self.transaction() as conn:
            if not conn.execute("SELECT 1 FROM tags WHERE name=?", (tag,)).fetchone():
                raise CatalogError(f"unknown tag {tag!r}")
            if conn.execute("SELECT 1 FROM label_events WHERE tag=? LIMIT 1", (tag,)).fetchone():
                raise CatalogError(f"tag {tag!r} has label events; it stays so no history is lost")
            conn.execute("DELETE FROM tags WHERE name=?", (tag,))

    def ensure_group(self, group: str, exclusive: bool, tags: list[str]) -> list[str]:
        """Create `group` and any of `tags` missing from the vocabulary; returns the tags added.
        A tag that exists already in another group is left where it is."""
        added = []
        with self.transaction():
            if not any(g["name"] == group for g in self.groups()):
                self.add_group(group, exclusive)
            index = self.tag_index()
            for tag in tags:
                if tag not in index:
                    self.add_tag(tag, group)
                    added.append(tag)
        return added
