"""animeface on small faces, for `train eval`: a face found (in a white margin) and where its eyes are,
for the eye-colour hints on the eyes: the eye boxes mapped back to the painting's pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from curate.detectors import Box
from train.sketch.evaluate import DETECT_SIDE, eye_places, faces_found


class OneFace:
    """A detector that finds one face with its eyes at fixed places of the picture it is given."""

    def __init__(self, eyes):
        self.seen, self._eyes = [], eyes

    def eyes(self, rgb: Image.Image):
        self.seen.append(rgb.size)
        return [self._eyes] if self._eyes else []


def shared_faces(shared, which: slice) -> torch.Tensor:
    """Those of the shared labelled faces (by file name) at 64 px, uint8 [N, 3, 64, 64]."""
    files = sorted((shared / "data" / "anime_faces_labelled" / "images").iterdir())[which]
    faces = np.stack([np.array(Image.open(f).convert("RGB").resize((64, 64))) for f in files])
    return torch.from_numpy(faces).permute(0, 3, 1, 2)


def test_eye_boxes_found_in_the_margin_map_back_to_the_middle_of_each_eye():
    margin = DETECT_SIDE // 2
    # in the 128 px face: eyes at x 32..64 and 80..112, y 48..80 -> at 64 px, halves 8 px on a side
    detector = OneFace((Box(margin + 32, margin + 48, 32, 32), Box(margin + 80, margin + 48, 32, 32)))
    where = eye_places(torch.zeros(2, 3, 64, 64, dtype=torch.uint8), detector)
    assert detector.seen == [(DETECT_SIDE + 2 * margin,) * 2] * 2
    expected = torch.zeros(64, 64, dtype=torch.bool)
    expected[28:36, 20:28] = expected[28:36, 44:52] = True        # the middle half of each eye
    assert torch.equal(where[0], expected) and torch.equal(where[1], expected)


def test_no_face_found_means_no_eye_place():
    assert not eye_places(torch.zeros(3, 3, 64, 64, dtype=torch.uint8), OneFace(None)).any()


def test_animeface_finds_the_eyes_of_most_shared_faces_in_their_upper_middle(shared):
    where = eye_places(shared_faces(shared, slice(0, 20)))
    found = where.flatten(1).any(1)
    assert found.float().mean() >= 0.7
    rows = where[found].nonzero()[:, 1].float()
    assert 12 <= rows.min() and rows.max() <= 52                # eyes, not chins or hair tops


def test_animeface_finds_most_real_64px_faces_in_a_margin(shared):
    """Upscaled to 256 px without a margin, animeface found none of 200 real test faces, so `train
    eval`'s face count said nothing at this size."""
    assert faces_found(shared_faces(shared, slice(20, 40))).mean() >= 0.7
