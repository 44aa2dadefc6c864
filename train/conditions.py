"""Condition vectors: the catalog's tag groups as one-hot (exclusive) and multi-hot (independent) slices.

A `ConditionSpec` is the vocabulary a run was trained on (only tags that had faces)
plus the training set's label frequencies, so fakes can be conditioned like the data.
It is stored in the run's options.json and rebuilt from there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from curate.conventions import did_you_mean


class ConditionError(ValueError):
    """A tag or group that the run's vocabulary does not know."""


@dataclass
class ConditionGroup:
    name: str
    exclusive: bool
    tags: list[str]
    freq: list[float]          # exclusive: share of each tag; independent: P(tag present)
    offset: int = 0


@dataclass
class ConditionSpec:
    groups: list[ConditionGroup] = field(default_factory=list)
    # tags the run's data left out (--drop-rare, --drop-tags) -> their faces: asked for, they are
    # explained, not mistaken for a typo of a kept tag
    left_out: dict[str, int] = field(default_factory=dict)

    def __post_init__(self):
        offset = 0
        for g in self.groups:
            g.offset = offset
            offset += len(g.tags)
        self.dim = offset

    # -- (de)serialisation --------------------------------------------------

    def to_json(self) -> list[dict]:
        return [{"name": g.name, "exclusive": g.exclusive, "tags": g.tags, "freq": g.freq} for g in self.groups]

    @classmethod
    def from_json(cls, groups: list[dict], left_out: dict[str, dict[str, int]] | None = None) -> "ConditionSpec":
        """`left_out`: the run's options.json "left_out" ({group: {tag: faces}})."""
        return cls([ConditionGroup(g["name"], bool(g["exclusive"]), list(g["tags"]), list(g["freq"]))
                    for g in groups],
                   {tag: n for tags in (left_out or {}).values() for tag, n in tags.items()})

    # -- lookup ---------------------------------------------------------------

    @property
    def tags(self) -> list[str]:
        return [t for g in self.groups for t in g.tags]

    def group(self, name: str) -> ConditionGroup:
        for g in self.groups:
            if g.name == name:
                return g
        raise ConditionError(f"this run has no condition group {name!r} (it has: "
                             f"{', '.join(g.name for g in self.groups)})")

    def tag_group(self, tag: str) -> ConditionGroup:
        for g in self.groups:
            if tag in g.tags:
                return g
        self._refuse_left_out(tag, self.tags)
        raise ConditionError(f"unknown tag {tag!r} for this run{did_you_mean(tag, self.tags)}; "
                             f"known tags: {', '.join(self.tags)}")

    def _refuse_left_out(self, tag: str, known: list[str]) -> None:
        if tag in self.left_out:
            raise ConditionError(f"tag {tag!r} was left out of this run's training data ({self.left_out[tag]} "
                                 f"faces; --drop-rare or --drop-tags): the run cannot make it; "
                                 f"known: {', '.join(known)}")

    def parse_tags(self, text: str | list[str]) -> dict:
        """"blonde hair, blue eyes" -> {"hair_color": "blonde hair", "eye_color": "blue eyes"}."""
        names = [t.strip() for t in (text.split(",") if isinstance(text, str) else text) if t.strip()]
        out: dict = {}
        for tag in names:
            g = self.tag_group(tag)
            if g.exclusive:
                if g.name in out and out[g.name] != tag:
                    raise ConditionError(f"{out[g.name]!r} and {tag!r} are both {g.name}: pick one")
                out[g.name] = tag
            else:
                out.setdefault(g.name, [])
                if tag not in out[g.name]:
                    out[g.name].append(tag)
        return out

    # -- vectors ----------------------------------------------------------------

    def encode(self, tag_dicts: list[dict]) -> torch.Tensor:
        """Tag dicts -> float [N, dim].

        Keys: an exclusive group's name -> one tag; an independent group's name -> a tag
        or a list of tags; or a tag's own name -> truthy. A group left out stays all zero
        (use `complete()` to draw it from the training distribution instead).
        """
        c = torch.zeros(len(tag_dicts), self.dim)
        for i, d in enumerate(tag_dicts):
            for key, value in d.items():
                if any(g.name == key for g in self.groups):
                    g = self.group(key)
                    values = [value] if isinstance(value, str) else list(value or [])
                    if g.exclusive and len(values) > 1:
                        raise ConditionError(f"{key} is exclusive: one tag, not {values}")
                    for tag in values:
                        if tag not in g.tags:
                            self._refuse_left_out(tag, g.tags)
                            raise ConditionError(f"unknown {key} {tag!r} for this run{did_you_mean(tag, g.tags)}; "
                                                 f"known: {', '.join(g.tags)}")
                        c[i, g.offset + g.tags.index(tag)] = 1.0
                else:
                    g = self.tag_group(key)
                    if value:
                        if g.exclusive:
                            c[i, g.offset:g.offset + len(g.tags)] = 0.0
                        c[i, g.offset + g.tags.index(key)] = 1.0
        return c

    def decode(self, c: torch.Tensor) -> list[dict]:
        """Condition vectors (or classifier logits) -> tag dicts: argmax per exclusive group, > 0.5 otherwise."""
        out = []
        for row in c:
            d: dict = {}
            for g in self.groups:
                part = row[g.offset:g.offset + len(g.tags)]
                if g.exclusive:
                    d[g.name] = g.tags[int(part.argmax())]
                else:
                    d[g.name] = [t for t, v in zip(g.tags, part.tolist()) if v > 0.5]
            out.append(d)
        return out

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, list[dict]]:
        """n conditions from the training label distribution: one tag per exclusive
        group at its share, each independent tag at its own frequency."""
        dicts: list[dict] = [{} for _ in range(n)]
        for g in self.groups:
            p = torch.tensor(g.freq, dtype=torch.float64)
            if g.exclusive:
                idx = torch.multinomial(p, n, replacement=True, generator=generator).tolist()
                for d, k in zip(dicts, idx):
                    d[g.name] = g.tags[k]
            else:
                on = torch.rand(n, len(g.tags), generator=generator, dtype=torch.float64) < p
                for d, row in zip(dicts, on.tolist()):
                    d[g.name] = [t for t, v in zip(g.tags, row) if v]
        return self.encode(dicts), dicts

    def sample_tensor(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Like `sample` but only the [n, dim] tensor, without building tag dicts (the training step)."""
        c = torch.zeros(n, self.dim)
        for g in self.groups:
            p = torch.tensor(g.freq, dtype=torch.float64)
            if g.exclusive:
                idx = torch.multinomial(p, n, replacement=True, generator=generator)
                c[torch.arange(n), g.offset + idx] = 1.0
            else:
                on = torch.rand(n, len(g.tags), generator=generator, dtype=torch.float64) < p
                c[:, g.offset:g.offset + len(g.tags)] = on.float()
        return c

    def complete(self, tag_dicts: list[dict], generator: torch.Generator | None = None) -> list[dict]:
        """Fill the groups a tag dict leaves out with draws from the training distribution."""
        _, drawn = self.sample(len(tag_dicts), generator)
        out = []
        for given, extra in zip(tag_dicts, drawn):
            d = dict(extra)
            for key, value in given.items():
                name = key if any(g.name == key for g in self.groups) else self.tag_group(key).name
                if name == key:
                    d[name] = value
                else:  # a bare tag name
                    g = self.group(name)
                    d[name] = key if g.exclusive else sorted({*d.get(name, []), key}, key=g.tags.index)
            out.append(d)
        return out

    def loss_slices(self):
        """(group, slice) per group, for the auxiliary classifier's losses."""
        return [(g, slice(g.offset, g.offset + len(g.tags))) for g in self.groups]
