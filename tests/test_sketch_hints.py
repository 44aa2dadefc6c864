"""Colour hints for the sketch model (`train pix2pix --hints`, train/sketch/hints.py): the channels a
hint picture makes, the hints sampled from real faces in training, and hints reaching the network."""

from __future__ import annotations

import dataclasses

import json

import numpy as np
import pytest
import torch
from PIL import Image

from train.losses.pix2pix import Pix2Pix
from train.models import build_discriminator
from train.models.pix2pix import UNetGenerator, arch_kwargs
from train.runs import RunError, load_run
from train.sketch.hints import MAX_POINTS, HintError, hint_colour_error, hints_from_picture, patch_side, sample_hints
from train.sketch.paint import paint

from test_pix2pix import invoke, options, sketch_catalog, train_cli  # noqa: F401  (a fixture)
from test_sketch_input import drawn_face, png
from train.loop import train


def red_square_picture(mode: str) -> Image.Image:
    """64x64, a red 8x8 square at (16, 8) (x, y); elsewhere transparent (RGBA) or white (RGB)."""
    im = Image.new(mode, (64, 64), (0, 0, 0, 0) if mode == "RGBA" else (255, 255, 255))
    im.paste((255, 0, 0, 255) if mode == "RGBA" else (255, 0, 0), (16, 8, 24, 16))
    return im


@pytest.mark.parametrize("mode", ["RGBA", "RGB"])
def test_hint_channels_from_a_picture(mode):
    h = hints_from_picture(png(red_square_picture(mode)), 32)
    assert h.shape == (1, 4, 32, 32)
    mask = h[0, 3]
    want = torch.zeros(32, 32)
    want[4:8, 8:12] = 1                      # the square, halved
    assert torch.equal(mask, want)           # the mask: where alpha > 0 (or, without alpha, not white)
    assert torch.allclose(h[0, :3, 4:8, 8:12], torch.tensor([1.0, -1.0, -1.0])[:, None, None])
    assert (h[0, :3][:, mask == 0] == 0).all()   # no colour where there is no hint


def test_a_faint_stroke_keeps_its_colour_and_a_bad_picture_is_refused():
    im = Image.new("RGBA", (128, 128), (0, 0, 0, 0))
    im.paste((0, 0, 255, 255), (10, 10, 11, 60))      # a 1 px blue line: averaged away, its colour kept
    h = hints_from_picture(im, 32)
    assert h[0, 3].sum() > 0 and torch.allclose(h[0, :3][:, h[0, 3] > 0], torch.tensor([-1.0, -1.0, 1.0])[:, None])
    with pytest.raises(HintError, match="cannot read the hint picture") as e:
        hints_from_picture(b"not a picture", 32)
    assert "not a picture Pillow can read" in str(e.value) and "BytesIO" not in str(e.value)


def test_training_hints_are_the_real_faces_colours_at_the_mask():
    colours = torch.rand(64, 3) * 2 - 1                       # each face one flat colour
    faces = colours[:, :, None, None].expand(-1, -1, 64, 64).contiguous()
    h = sample_hints(faces, torch.Generator().manual_seed(0))
    assert torch.equal(h, sample_hints(faces, torch.Generator().manual_seed(0)))    # drawn from the generator
    mask = h[:, 3:]
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert (h[:, :3] * (1 - mask) == 0).all()                 # colour only under the mask
    assert torch.allclose(h[:, :3], colours[:, :, None, None] * mask)   # the face's colour under it
    patches = mask.sum((1, 2, 3)) / patch_side(64) ** 2
    assert (patches == 0).any() and (patches > 0).sum() > 40 and patches.max() <= MAX_POINTS
    # one patch on a face of many colours: the face's mean colour over that patch
    faces = torch.rand(16, 3, 64, 64) * 2 - 1
    h = sample_hints(faces, torch.Generator().manual_seed(1), max_points=1)
    side = patch_side(64)
    for i in range(16):
        at = h[i, 3].nonzero()
        if len(at):
            (y, x), = [at.min(0).values.tolist()]
            assert len(at) == side * side
            want = faces[i, :, y:y + side, x:x + side].mean((1, 2))
            assert torch.allclose(h[i, :3, y:y + side, x:x + side], want[:, None, None].expand(-1, side, side))


def test_hints_reach_the_generator():
    """Fails if the hints were ignored: only the hints change, and the painting changes."""
    torch.manual_seed(0)
    G = UNetGenerator(**arch_kwargs(32, 0, 4, 8, 8, hints=True)["G"]).eval()
    sketch = torch.ones(2, 1, 32, 32)
    z = torch.zeros(2, 4)
    red = hints_from_picture(red_square_picture("RGBA"), 32).expand(2, -1, -1, -1)
    blue = red.clone()
    blue[:, :3] = blue[:, :3].flip(1)                # the same mask, another colour
    with torch.no_grad():
        a, b, none = G(sketch, None, z, red), G(sketch, None, z, blue), G(sketch, None, z)
    assert not torch.allclose(a, b) and not torch.allclose(a, none)
    assert "hint_channels" not in arch_kwargs(32)["G"]         # runs without hints keep their arch
    with pytest.raises(ValueError, match="trained without colour hints"):
        UNetGenerator(**arch_kwargs(32)["G"])(sketch, None, z, red)


def test_a_hints_run_trains_paints_and_samples_with_hints(sketch_catalog, tmp_path):  # noqa: F811
    run = train_cli(sketch_catalog, tmp_path, "--labels", "manual", "--hints", "--iters", 2)
    assert run.options["hints"] is True and run.options["arch"]["G"]["hint_channels"] == 4
    run_dir = run.dir
    sketch = np.full((32, 32), 255, np.uint8)
    sketch[8:24, 10] = 0
    hints = red_square_picture("RGBA")
    other = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    other.paste((0, 255, 0, 255), (40, 40, 56, 56))
    a = paint(run_dir, sketch, {}, 2, seed=0, hints=np.asarray(hints))
    assert all(np.array_equal(x, y) for x, y in zip(a, paint(run_dir, sketch, {}, 2, seed=0, hints=hints)))
    assert not np.array_equal(a[0], paint(run_dir, sketch, {}, 2, seed=0, hints=other)[0])
    drawing, hint_file, out = tmp_path / "face.png", tmp_path / "hints.png", tmp_path / "out.png"
    drawing.write_bytes(png(drawn_face()))
    hint_file.write_bytes(png(hints))
    res = invoke("sample", run_dir, "--sketch", drawing, "--hints", hint_file, "-n", 2, "-o", out)
    assert res.exit_code == 0, res.output
    assert out.exists()
    res = invoke("sample", run_dir, "--hints", hint_file, "-o", out)
    assert res.exit_code == 2 and "give --sketch too" in res.output
    wide = tmp_path / "wide.png"
    wide.write_bytes(png(Image.new("RGBA", (128, 64), (0, 0, 0, 0))))
    res = invoke("sample", run_dir, "--sketch", drawing, "--hints", wide, "-o", out)
    assert res.exit_code == 2 and "not of the hint picture's proportions (128x64)" in res.output


def test_a_run_without_hints_refuses_a_hint_picture_in_one_line(sketch_catalog, tmp_path):  # noqa: F811
    run_dir = train(options(sketch_catalog, tmp_path, iters=1))
    with pytest.raises(RunError, match="trained without colour hints"):
        paint(run_dir, np.full((32, 32), 255, np.uint8), {}, 1, seed=0, hints=red_square_picture("RGBA"))
    drawing, hint_file = tmp_path / "face.png", tmp_path / "hints.png"
    drawing.write_bytes(png(drawn_face()))
    hint_file.write_bytes(png(red_square_picture("RGBA")))
    res = invoke("sample", run_dir, "--sketch", drawing, "--hints", hint_file, "-o", tmp_path / "out.png")
    assert res.exit_code == 2 and "trained without colour hints" in res.output
    assert len(res.output.strip().splitlines()) == 1


def hints_training_step(catalog, tmp_path, batch: int, **kw):
    """A hints run's loss with `kw` as its options, and a step's (labels, real faces, real condition)."""
    opts = options(catalog, tmp_path, iters=1, hints=True, batch=batch, **kw)
    spec = load_run(train(opts)).spec
    D = build_discriminator(Pix2Pix.arch(opts, spec)["D"])
    labels = spec.sample_tensor(4 * batch, torch.Generator().manual_seed(0))
    loss = Pix2Pix(opts, spec, D, labels, torch.device("cpu"))
    real = torch.rand(batch, 3, 32, 32) * 2 - 1
    c_real = loss.real_condition(labels[:batch], torch.ones(batch, 1, 32, 32), torch.Generator().manual_seed(0))
    return loss, labels[:batch], real, c_real


def test_fakes_painted_with_other_tags_get_no_hints_and_pairs_repeat_theirs(sketch_catalog, tmp_path):  # noqa: F811
    """What a hints run's training step gives G: hints for the fakes that keep their own tags (the
    real face's colours), none for those painted with another face's tags; the mode-seeking half
    repeats the first half's hints with other noise."""
    loss, labels, real, c_real = hints_training_step(sketch_catalog, tmp_path, batch=8, tag_swap=0.5)
    for seed in range(20):       # some draws give 4 fakes that keep their tags: at least one shows a hint
        (sketch, tags, z, hints), paired = loss.fake_inputs(torch.Generator().manual_seed(seed), real, c_real)
        own = paired.own[:4]
        if not own.all() and own.any() and hints[:4][own, 3].sum() > 0:
            break
    assert hints.shape == (8, 4, 32, 32) and paired.pairs == 4
    assert torch.equal(hints[4:], hints[:4])                           # pairs: the same hints
    assert (hints[:4][~own] == 0).all()                                # swapped tags: no hint
    assert hints[:4][own, 3].sum() > 0                                 # own tags: hints


def test_hint_colour_error_measures_the_painting_at_and_around_the_hints():
    hints = torch.zeros(3, 4, 16, 16)
    hints[:2, :3, 4:6, 4:6] = torch.tensor([1.0, -1.0, -1.0])[:, None, None]     # red, 2x2, on faces 0 and 1
    hints[:2, 3, 4:6, 4:6] = 1
    red = np.zeros((16, 16, 3), np.uint8)
    red[..., 0] = 255
    blue_around = red.copy()
    blue_around[3, 4] = (0, 0, 255)                    # one pixel beside the patch: inside a ring of 1 px
    err = hint_colour_error(np.stack([red, blue_around, red]), hints, ring=1.0)
    assert err[0] == pytest.approx(0, abs=1e-3)        # red painted where red was hinted
    assert np.isnan(err[2])                             # no hints: nothing to measure
    red_to_blue = float(np.linalg.norm(np.subtract([53.24, 80.09, 67.20], [32.30, 79.19, -107.86])))
    assert err[1] == pytest.approx(red_to_blue / 12, rel=0.01)    # 1 of the 12 pixels at or within 1 px (not diagonal)
    assert hint_colour_error(np.stack([blue_around] * 3), hints, ring=0.0)[1] == pytest.approx(0, abs=1e-3)
    with pytest.raises(ValueError, match="2 paintings"):
        hint_colour_error(np.stack([red, red]), hints, ring=1.0)


def test_evaluation_hints_are_a_fixed_number_of_patches():
    faces = torch.rand(6, 3, 64, 64) * 2 - 1
    h = sample_hints(faces, torch.Generator().manual_seed(0), points=5)
    patches = h[:, 3].sum((1, 2)) / patch_side(64) ** 2
    assert ((patches > 0) & (patches <= 5)).all() and (patches == 5).sum() >= 3   # overlaps may merge two


def test_evaluation_hints_can_be_placed_where_a_user_would_stroke():
    """`where`: patches only centred there (the hair, for hair colour), each place once; a face with fewer
    such places than patches gets the rest anywhere."""
    faces = torch.rand(3, 3, 64, 64) * 2 - 1
    where = torch.zeros(3, 64, 64, dtype=torch.bool)
    where[0, 40:, :] = True                           # the lower part
    where[1, 20, 30] = True                           # one place only: one patch there, four elsewhere
    h = sample_hints(faces, torch.Generator().manual_seed(0), points=5, where=where)
    side = patch_side(64)
    rows = h[0, 3].nonzero()[:, 0]
    assert rows.min() >= 40 - side // 2 and h[0, 3].sum() > 3 * side ** 2       # inside (5 patches, some may touch)
    assert h[1, 3, 20 - side // 2:20 + side // 2 + 1, 30 - side // 2:30 + side // 2 + 1].all()
    assert h[1, 3].sum() > side ** 2 and h[2, 3].sum() > 0                        # the rest anywhere


def test_eval_of_a_hints_run_measures_how_hints_are_followed(sketch_catalog, tmp_path):  # noqa: F811
    run_dir = train_cli(sketch_catalog, tmp_path, "--labels", "manual", "--hints", "--iters", 2).dir
    judge = tmp_path / "judge.pt"
    assert invoke("judge", "--db", sketch_catalog, "--epochs", 1, "--no-progress", "-o", judge).exit_code == 0
    res = invoke("eval", run_dir, "--judge", judge, "--no-download")
    assert res.exit_code == 0, res.output
    h = json.loads((run_dir / "eval.json").read_text())["sketch"]["hints"]
    e = h["delta_e"]
    assert h["points"] == 5 and set(e) == {"with", "without", "other_tags"}
    assert all(0 < v < 200 for v in e.values()) and e["with"] != e["without"]   # the hints change the painting
    assert h["reduction"] == pytest.approx(e["without"] / e["with"])
    assert set(h["judge_accuracy_other_tags"]["hints_face"]) == {"hair_color", "eye_color"}
    d = h["hints_decide"]          # as users get it: the hints decide the tags they speak for
    assert set(d["judge_accuracy_other_tags"]["asked"]) == {"hair_color", "eye_color"}
    assert all(0 <= v <= 1 for v in [*d["asked_changed"].values(), *d["own_changed"].values()])
    assert "CIELAB error at the hinted places" in res.output and "the hints' face" in res.output
    assert "the hints deciding the tags they speak for" in res.output
    placed = h["placed"]           # hints placed for one group: where its tags change the painting most
    assert placed["share"] == 0.25 and set(placed["groups"]) == {"hair_color", "eye_color"}
    for p in placed["groups"].values():
        assert all(0 <= p[way][who] <= 1 for way in ("network_alone", "hints_deciding") for who in ("hints_face", "asked"))
        assert 0 <= p["asked_changed"] <= 1
    assert "hints placed for one tag group" in res.output
    eyes = placed["on_the_eyes"]   # eye-colour hints on the eyes animeface finds (in few or none of the tiny faces)
    assert 0 <= eyes["found"] <= 1 and eyes["n"] >= 0 and (eyes["n"] < 2) == ("network_alone" not in eyes)
    report = tmp_path / "report"
    assert invoke("compare", run_dir, "-o", report, "--db", sketch_catalog).exit_code == 0
    assert "hint colour error with / without / other tags" in (report / "report.md").read_text()


def test_hinted_fakes_may_get_other_tags_but_keep_their_face_so_hints_win(sketch_catalog, tmp_path):  # noqa: F811
    """--tag-conflict: a hinted fake keeps its face (L1 target, hints, the tags D judges it by) while G is
    given another face's tags; unhinted fakes keep their own tags, since nothing else says their colours."""
    for conflict in (1.0, 0.0):
        loss, labels, real, c_real = hints_training_step(sketch_catalog, tmp_path / str(conflict), batch=16,
                                                         tag_swap=0.0, tag_conflict=conflict, ms_weight=0.0)
        (sketch, g_tags, z, hints), paired = loss.fake_inputs(torch.Generator().manual_seed(1), real, c_real)
        hinted = hints[:, 3].flatten(1).amax(1) > 0
        assert paired.own.all() and torch.equal(paired.tags, labels)     # judged as, and L1 to, their own face
        assert torch.equal(g_tags[~hinted], labels[~hinted])              # no hints: their own tags
        if conflict:
            assert hinted.any() and (~hinted).any()
            assert not torch.equal(g_tags[hinted], labels[hinted])        # hints: other tags given to G
        else:
            assert torch.equal(g_tags, labels)


def test_tag_conflict_is_a_share(sketch_catalog, tmp_path):  # noqa: F811
    res = invoke("pix2pix", "--db", sketch_catalog, "--labels", "manual", "--hints", "--tag-conflict", "1.5",
                 "--runs-dir", tmp_path / "runs", "--dry-run")
    assert res.exit_code == 2 and "--tag-conflict is a share: between 0 and 1" in res.output


def test_g_loss_weighs_the_hinted_places_by_hint_weight(sketch_catalog, tmp_path):  # noqa: F811
    """--hint-weight: G's loss grows by hint_weight x the L1 distance to the hint colours at the hinted
    places, and that distance is 0 for a painting that has the hint colours there."""
    loss, labels, real, c_real = hints_training_step(sketch_catalog, tmp_path, batch=8, tag_swap=0.0,
                                                     ms_weight=0.0, hint_weight=10.0)
    (sketch, tags, z, hints), paired = loss.fake_inputs(torch.Generator().manual_seed(3), real, c_real)
    assert torch.equal(paired.hints, hints) and hints[:, 3].sum() > 0
    fake, mask = torch.zeros_like(real), hints[:, 3:]
    expected = ((fake - hints[:, :3]).abs() * mask).sum() / (mask.sum() * 3)

    def g_loss(painted, weight):
        loss.opts = dataclasses.replace(loss.opts, hint_weight=weight)
        loss.D.eval()                                     # the same D scores for both weights
        with torch.no_grad():
            return loss.g_loss(painted, paired, torch.Generator().manual_seed(0))

    weighted, stats = g_loss(fake, 10.0)
    plain, plain_stats = g_loss(fake, 0.0)
    assert stats["hint_l1"] == pytest.approx(expected.item()) and "hint_l1" not in plain_stats
    assert (weighted - plain).item() == pytest.approx(10.0 * expected.item(), rel=1e-4)
    matched = torch.where(mask.bool(), hints[:, :3], fake)               # the hint colours where hinted
    assert g_loss(matched, 10.0)[1]["hint_l1"] == 0


def test_hints_are_cut_to_the_face_crop_as_the_drawing_is(sketch_catalog, tmp_path, monkeypatch):  # noqa: F811
    """A whole figure is cropped to its face; a hint over that face lands on the face in the hint channels
    (before, hinted drawings were used whole: a hint at the face's centre sat far off the middle)."""
    from curate.detectors import Box
    from train.sketch import drawing, paint as painting_module

    figure = Image.new("RGBA", (400, 200), (255, 255, 255, 255))
    figure.paste(drawn_face(100), (250, 50))                         # the face, right of the middle
    monkeypatch.setattr(drawing, "find_face", lambda rgb: Box(250, 50, 100, 100, 1.0))
    lines, frame = drawing.normalise_framed(png(figure), 32)
    assert frame == drawing.Frame(225 / 400, 125 / 400, 375 / 400, 275 / 400)   # on 400 x 400 square paper
    hint = Image.new("RGBA", (400, 200), (0, 0, 0, 0))
    hint.paste((255, 0, 0, 255), (290, 90, 310, 110))                # red over the face's middle
    centre = lambda h: [float(v.float().mean()) for v in torch.nonzero(h[0, 3] > 0, as_tuple=True)]  # noqa: E731
    assert centre(hints_from_picture(hint, 32, frame=frame)) == pytest.approx([15.5, 15.5], abs=1)
    assert centre(hints_from_picture(hint, 32))[1] > 22                            # whole: off to the right

    run_dir = train_cli(sketch_catalog, tmp_path, "--labels", "manual", "--hints", "--iters", 1).dir
    given = []
    monkeypatch.setattr(painting_module, "paint_with_tags",
                        lambda run, G, s, tags, seed, hints=None: given.append(hints) or (
                            torch.zeros(len(s), 3, 32, 32, dtype=torch.uint8), tags))
    (tmp_path / "figure.png").write_bytes(png(figure))
    (tmp_path / "hints.png").write_bytes(png(hint))
    painting_module.paint_drawings(load_run(run_dir), [tmp_path / "figure.png"], {}, 2, hints=tmp_path / "hints.png")
    assert centre(given[0]) == pytest.approx([15.5, 15.5], abs=1)                  # train sample --hints too
