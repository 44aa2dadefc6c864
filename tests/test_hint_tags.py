"""Tags and colour hints that disagree: the hints decide the tags they speak for (train/sketch/hint_tags.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from curate.lineart import params_from_json
from train.conditions import ConditionGroup, ConditionSpec
from train.runs import load_run
from train.sketch.drawing import normalise_drawing
from train.sketch.hint_tags import hint_fit, settle
from train.sketch.paint import generator, hint_channels, paint_with_tags

from test_sketch_input import drawn_face, png

S = 8
COLOURS = {"black hair": (-0.9, -0.9, -0.9), "pink hair": (0.9, 0.2, 0.5), "blonde hair": (0.9, 0.8, 0.1)}
SPEC = ConditionSpec([ConditionGroup("hair_color", True, list(COLOURS), [0.4, 0.3, 0.3]),
                      ConditionGroup("eye_color", True, ["blue eyes", "red eyes"], [0.5, 0.5])])


class Painter:
    """A stand-in model: the whole face in its hair tag's colour (eyes change nothing); counts rows."""

    def __init__(self):
        self.rows: list[int] = []

    def __call__(self, rows, tags):
        self.rows += list(rows)
        return torch.tensor([COLOURS[t["hair_color"]] for t in tags])[:, :, None, None].expand(-1, 3, S, S)


def hints(n: int, colour=None) -> torch.Tensor:
    h = torch.zeros(n, 4, S, S)
    if colour is not None:
        h[:, :3, 2:4, 2:4] = torch.tensor(colour)[:, None, None]
        h[:, 3, 2:4, 2:4] = 1
    return h


def sketches(n: int, same: bool = True) -> torch.Tensor:
    """n sketches, all alike (the n paintings of one drawing) or all different."""
    rows = torch.zeros(n, dtype=torch.uint8) if same else torch.arange(n, dtype=torch.uint8)
    return rows.view(n, 1, 1, 1).expand(n, 1, S, S).contiguous()


def candidates() -> torch.Tensor:
    """One drawing painted with each hair tag of COLOURS: [1, 3, 3, S, S], the whole face in the tag's colour."""
    return torch.stack([torch.tensor(c)[:, None, None].expand(3, S, S) for c in COLOURS.values()])[None]


def test_hint_fit_is_zero_for_the_painting_with_the_hinted_colours():
    fit = hint_fit(candidates(), hints(1, COLOURS["pink hair"]))[0]
    assert fit[1].item() == pytest.approx(0, abs=1e-6) and fit[0] > 1 and fit[2] > 0.3


def test_a_hint_the_candidates_paint_alike_does_not_drown_one_that_tells_them_apart():
    """A second hint where every candidate paints the same colour (the eyes, for hair tags) says
    nothing about them: the candidates' distances stay what the first hint makes them."""
    paintings = candidates().clone()
    paintings[..., 5:, 5:] = -1.0                              # the same at and around the second hint
    one = hints(1, COLOURS["pink hair"])
    both = one.clone()
    both[:, :3, 6:8, 6:8], both[:, 3, 6:8, 6:8] = 1.0, 1     # a white hint where all paint black
    assert torch.allclose(hint_fit(paintings, both), hint_fit(paintings, one), atol=1e-6)


def test_hints_choose_the_tag_they_speak_for_and_leave_the_others():
    asked = [{"hair_color": "black hair", "eye_color": "red eyes"}] * 2
    out = settle(SPEC, Painter(), sketches(2, same=False), asked, hints(2, COLOURS["pink hair"]))
    assert out == [{"hair_color": "pink hair", "eye_color": "red eyes"}] * 2   # eyes: the hints say nothing


def test_hints_that_agree_or_are_absent_change_no_tag_and_paint_nothing():
    asked = [{"hair_color": "pink hair", "eye_color": "blue eyes"}] * 2
    assert settle(SPEC, Painter(), sketches(2, same=False), asked, hints(2, COLOURS["pink hair"])) == asked
    painter = Painter()
    assert settle(SPEC, painter, sketches(2), asked, hints(2)) == asked and painter.rows == []


def test_hints_close_to_the_asked_colour_keep_it():
    """Within the margin the asked tag stays: a hint a little off the asked colour is not a change of mind."""
    asked = [{"hair_color": "pink hair", "eye_color": "blue eyes"}]
    off = (0.9, 0.35, 0.4)           # pinker than blonde, a little towards it
    assert settle(SPEC, Painter(), sketches(1), asked, hints(1, off)) == asked


def test_copies_of_one_drawing_are_settled_once_and_alike():
    """The n paintings of one drawing: one search on the first row; the hair the hints chose goes to
    every row, the eyes drawn per row stay as drawn."""
    asked = [{"hair_color": "black hair", "eye_color": e} for e in ("blue eyes", "red eyes", "red eyes")]
    painter = Painter()
    out = settle(SPEC, painter, sketches(3), asked, hints(3, COLOURS["blonde hair"]))
    assert [t["hair_color"] for t in out] == ["blonde hair"] * 3
    assert [t["eye_color"] for t in out] == ["blue eyes", "red eyes", "red eyes"]
    assert set(painter.rows) == {0} and len(painter.rows) == len(COLOURS) + 2     # each group's tags, once


def pink_hair_hints() -> Image.Image:
    """A hint picture over `drawn_face(256)`: pink strokes on the hair around the face."""
    picture = Image.new("RGBA", (256, 256), (0, 0, 0, 0))
    for box in ((40, 8, 216, 40), (16, 40, 48, 160), (208, 40, 240, 160)):
        picture.paste((245, 140, 200, 255), box)
    return picture


def test_the_shipped_model_paints_the_hinted_hair_when_the_tags_say_otherwise():
    """Pink strokes over the hair of a drawing asked for black hair: painted with pink hair (the
    network alone, `hints_decide=False`, keeps the asked black)."""
    run = load_run("pretrained:sketch")
    _, params = params_from_json(run.sketch["params"])
    sketch = normalise_drawing(png(drawn_face(256)), 64, params, crop_face=False)
    picture = pink_hair_hints()
    h = hint_channels(run, np.asarray(picture))
    tags = [{"hair_color": "black hair", "eye_color": "blue eyes"}] * 2
    G = generator(run)
    _, decided = paint_with_tags(run, G, np.stack([sketch] * 2), tags, seed=0, hints=h)
    _, alone = paint_with_tags(run, G, np.stack([sketch] * 2), tags, seed=0, hints=h, hints_decide=False)
    assert [t["hair_color"] for t in decided] == ["pink hair"] * 2
    assert [t["hair_color"] for t in alone] == ["black hair"] * 2
    assert [t["eye_color"] for t in decided] == ["blue eyes"] * 2


def test_train_sample_says_which_tags_the_hints_chose(tmp_path):
    """`train sample --tags "black hair" --hints` with pink strokes over the hair: painted pink, and
    said in one line naming the drawing (its name escaped, never obeyed by the terminal)."""
    from test_pix2pix import invoke

    drawing, hints, out = tmp_path / "f\x1b[31mace.png", tmp_path / "hints.png", tmp_path / "out.png"
    drawing.write_bytes(png(drawn_face(256)))
    pink_hair_hints().save(hints)
    res = invoke("sample", "pretrained:sketch", "--sketch", drawing, "--tags", "black hair, blue eyes", "-n", 2,
                 "--hints", hints, "-o", out)
    assert res.exit_code == 0, res.output
    assert "f\\x1b[31mace.png: the hints chose pink hair over black hair" in res.output and "\x1b" not in res.output
    res = invoke("sample", "pretrained:sketch", "--sketch", drawing, "--tags", "black hair, blue eyes", "-n", 2,
                 "-o", out)
    assert res.exit_code == 0 and "the hints chose" not in res.output
