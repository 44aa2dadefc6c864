"""Tags and colour hints that disagree: the hints decide the tags they speak for.

A user who asks for "black hair" and then puts a pink stroke on the hair wants pink hair. A
network taught to prefer hints over tags in training (`--tag-conflict`) pays for it in tag
accuracy everywhere (BENCHMARKS.md "What costs the tags"), so the painter settles the question at
use, by analysis by synthesis: for each exclusive tag group (hair colour, eye colour), in turn,
it paints the sketch with each of the group's tags, without the hints, and keeps the tag whose
painting has the hinted colours where they are hinted (the mean L1 distance there, weighed
towards the hints the group's tags paint differently: `hint_fit`), the other groups as settled so
far. Without the hints, because a model paints the hinted places in the hinted colours whatever the
tags: what tells the tags apart is what each would paint there on its own. The tag asked for (or
drawn, where the user left the group out) stays unless another fits the hints clearly better
(`MARGIN`, `MIN_GAIN`), so hints that say nothing about a group (a stroke on the skin) leave its
tag alone. It costs one painting per tag of each group (23 for hair and eye colours), only where
there are hints.

Rows with the same sketch and hints (the n paintings of one drawing) are settled once, on the
first row's noise and tags, and what changes there changes in all of them: the hints speak for
the drawing, not for one noise. Without hints nothing is painted twice and nothing changes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Another tag replaces the asked one when it lowers `hint_fit` by this share and by at least
# MIN_GAIN (mean |RGB| in [-1, 1]: 0.1 is 13 levels of 255), so that a group the hints say little
# about (eye colour, for strokes on the hair: its tags tint the hair a little) keeps its tag.
MARGIN = 0.15
MIN_GAIN = 0.1
REACH = 1          # px at 64x64 around a hint where its colour is expected (scaled with the size)
CHUNK = 64         # drawings searched at once (their candidates are held in memory together)


def tag_spread(paintings: torch.Tensor) -> torch.Tensor:
    """float [F, S, S]: how much T candidate paintings of F drawings (float [F, T, 3, S, S]) differ at
    each pixel (the std over the candidates, averaged over RGB): where a group's tags paint differently."""
    return paintings.float().std(1).mean(1)


def hint_fit(paintings: torch.Tensor, hints: torch.Tensor) -> torch.Tensor:
    """float [F, T]: how far each of T candidate paintings of F drawings (float [F, T, 3, S, S] in
    [-1, 1]) is from the hints ([F, 4, S, S]): the mean |painting - hint colour| at and around the
    hinted pixels (within `REACH`: a hint says "this colour here", a pixel off is still here), each
    pixel weighed by how much the candidates differ there. A hint the candidates all paint alike
    (a stroke on the eyes, for hair colours; on the background) says nothing about them, and left
    unweighed it would drown the hints that do."""
    size = hints.shape[-1]
    k = 2 * max(1, round(REACH * size / 64)) + 1
    mask = hints[:, 3:].float()
    near = F.avg_pool2d(mask, k, 1, k // 2, count_include_pad=False)
    wanted = F.avg_pool2d(hints[:, :3].float() * mask, k, 1, k // 2, count_include_pad=False) / near.clamp(min=1e-6)
    paintings = paintings.float()
    weight = tag_spread(paintings) * (near[:, 0] > 0)                         # [F, S, S]
    err = (paintings - wanted[:, None]).abs().mean(2)                         # [F, T, S, S]
    return (err * weight[:, None]).sum((2, 3)) / weight.sum((1, 2)).clamp(min=1e-6)[:, None]


def heads(sketches: torch.Tensor, hints: torch.Tensor) -> list[int]:
    """Per row, the first row with the same sketch and hints."""
    seen: dict[tuple[bytes, bytes], int] = {}
    return [seen.setdefault((sketches[i].numpy().tobytes(), hints[i].numpy().tobytes()), i)
            for i in range(len(sketches))]


@torch.no_grad()
def settle(spec, paint, sketches: torch.Tensor, tags: list[dict], hints: torch.Tensor,
           margin: float = MARGIN, min_gain: float = MIN_GAIN) -> list[dict]:
    """The tag dicts (complete: every exclusive group set), with the exclusive groups the hints speak
    for set to the hints' choice. `paint(rows, tag_dicts)` paints the rows (indices into `sketches`)
    with those tags and the rows' own noise, without hints: float [len(rows), 3, S, S] in [-1, 1].
    `sketches` uint8 [N, 1, S, S], `hints` [N, 4, S, S]; rows without hints are left as they are."""
    hints = hints.cpu()
    head = heads(sketches.cpu(), hints)
    first = sorted({i for i in head if hints[i, 3].any()})
    if not first:
        return tags
    groups = [g for g in spec.groups if g.exclusive and len(g.tags) > 1]
    settled = {i: dict(tags[i]) for i in first}
    for g in groups:
        for c in range(0, len(first), CHUNK):
            block = first[c:c + CHUNK]
            tried = [{**settled[i], g.name: tag} for i in block for tag in g.tags]
            painted = paint([i for i in block for _ in g.tags], tried)
            fit = hint_fit(painted.view(len(block), len(g.tags), *painted.shape[1:]), hints[block])
            for k, i in enumerate(block):
                asked, best = g.tags.index(settled[i][g.name]), int(fit[k].argmin())
                if fit[k, best] < (1 - margin) * fit[k, asked] and fit[k, asked] - fit[k, best] >= min_gain:
                    settled[i][g.name] = g.tags[best]
    out = []
    for i, t in enumerate(tags):
        j = head[i]
        changed = {} if j not in settled else {g.name: settled[j][g.name] for g in groups
                                               if settled[j][g.name] != tags[j][g.name]}
        out.append({**t, **changed})
    return out


def overruled(asked: dict, painted: list[dict] | None) -> dict:
    """{group: (asked tag, the tag the hints chose)} for the tags given in `asked` that the first
    painting (`painted`: the tags painted with, as `paint_with_tags` gives them) does not keep."""
    if not painted:
        return {}
    return {g: (t, painted[0][g]) for g, t in asked.items() if painted[0].get(g, t) != t}


def chosen_over(changes: dict) -> str:
    """"pink hair over black hair, ...": what the hints chose, for a message."""
    return ", ".join(f"{chosen} over {asked}" for asked, chosen in changes.values())
