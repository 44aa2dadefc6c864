"""Colour hints for the sketch model (`train pix2pix --hints`), Zhang et al. 2017's way.

A hint is 4 channels beside the sketch: RGB in [-1, 1] where a colour is hinted, 0 elsewhere, and
a 0/1 mask saying where. In training, hints are sampled from the real face: a random number of
small patches (geometric, as Zhang et al.: many faces get none or few, a few get many), each
filled with the face's mean colour there. At use they come from a hint picture laid over the drawing:
RGBA, transparent where there is no hint (a picture without transparency: white means no hint).
"""

from __future__ import annotations

import io

import cv2
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from curate.images import DEFAULT_MAX_PIXELS, ImageError

HINT_CHANNELS = 4       # R, G, B in [-1, 1] where hinted (0 elsewhere), and the mask
MAX_POINTS = 10         # patches per face in training at most
POINTS_P = 0.125        # geometric: P(k patches) = p (1 - p)^k, so 1 face in 8 gets none (Zhang et al.'s p)
WHITE = 250             # without transparency, pixels with every channel >= this are paper, not hints


class HintError(ValueError):
    """A hint picture that cannot be used; the message names it and says why."""


def patch_side(size: int) -> int:
    """The side of a training hint patch: 3 px at 64 px, scaled with the model's size."""
    return max(1, round(3 * size / 64))


def sample_hints(faces: torch.Tensor, gen: torch.Generator, max_points: int = MAX_POINTS,
                 points: int | None = None, where: torch.Tensor | None = None) -> torch.Tensor:
    """Hints [N, 4, S, S] sampled from real faces [N, 3, S, S] in [-1, 1], drawn from `gen` (CPU) so a
    resumed run draws the same: per face a geometric number of patches (at most `max_points`; exactly
    `points` when given, as the evaluation asks), each holding the face's mean colour over it, the mask
    1 there. `where` (bool [N, S, S]): only patches centred there (as a user strokes the hair), each
    place at most once; None: anywhere."""
    n, _, size, _ = faces.shape
    side = patch_side(size)
    max_points = max_points if points is None else points
    u = torch.rand(n, generator=gen).clamp(min=1e-7)
    if points is None:                                             # geometric, by inversion
        points = torch.clamp((u.log() / np.log1p(-POINTS_P)).floor(), max=max_points).long()
    else:
        points = torch.full((n,), points)
    corners = (torch.randint(0, size - side + 1, (n, max_points, 2), generator=gen) if where is None
               else _corners_within(where, side, max_points, gen))
    mask = torch.zeros(n, 1, size, size, device=faces.device)
    colour = torch.zeros(n, 3, size, size, device=faces.device)
    for i in range(n):
        for y, x in corners[i, :int(points[i])].tolist():
            patch = faces[i, :, y:y + side, x:x + side].float()
            colour[i, :, y:y + side, x:x + side] = patch.mean((1, 2))[:, None, None]
            mask[i, :, y:y + side, x:x + side] = 1
    return torch.cat([colour * mask, mask], 1)


def _corners_within(where: torch.Tensor, side: int, points: int, gen: torch.Generator) -> torch.Tensor:
    """long [N, points, 2]: patch corners (y, x) drawn without replacement among those whose patch is
    centred where `where` holds (for a face with fewer such places than patches, the rest anywhere)."""
    n, size, _ = where.shape
    span = size - side + 1
    centred = where[:, side // 2:side // 2 + span, side // 2:side // 2 + span].reshape(n, -1).float()
    centred[centred.sum(1) < points] += 1e-6
    k = torch.multinomial(centred, points, generator=gen)
    return torch.stack([k // span, k % span], -1)


def no_hints(n: int, size: int, like: torch.Tensor | None = None) -> torch.Tensor:
    """Hint channels saying "no hint anywhere"."""
    return torch.zeros(n, HINT_CHANNELS, size, size, device=None if like is None else like.device)


def read_hint_picture(source, name: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """A hint picture (path, bytes, PIL image or HxWx3/4 uint8 array) as RGBA: transparency kept; a
    picture without it gets alpha 0 where it is white (paper) and 255 elsewhere."""
    label = name or (str(source) if not isinstance(source, (bytes, bytearray, np.ndarray, Image.Image))
                     else "the hint picture")
    try:
        if isinstance(source, Image.Image):
            picture = source
        elif isinstance(source, np.ndarray):
            picture = Image.fromarray(np.ascontiguousarray(source.astype(np.uint8)))
        else:
            data = bytes(source) if isinstance(source, (bytes, bytearray)) else open(source, "rb").read()
            picture = _open(data, max_pixels)     # not curate.images.decode: it flattens transparency
    except (ImageError, OSError, ValueError, TypeError) as e:
        raise HintError(f"{label}: cannot read the hint picture ({e})") from None
    if picture.width * picture.height > max_pixels:
        raise HintError(f"{label}: {picture.width}x{picture.height} pixels exceeds the limit of {max_pixels:,}")
    if "A" in picture.getbands() or "transparency" in picture.info:
        return picture.convert("RGBA")
    rgb = np.asarray(picture.convert("RGB"))
    alpha = np.where((rgb >= WHITE).all(-1), 0, 255).astype(np.uint8)
    return Image.fromarray(np.dstack([rgb, alpha]))      # HxWx4 uint8: RGBA


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """The picture, its size checked before decoding (a decompression bomb is refused unread)."""
    try:
        picture = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:      # its own message names an in-memory buffer, not the file
        raise ImageError("not a picture Pillow can read") from None
    if picture.width * picture.height > max_pixels:
        raise ImageError(f"{picture.width}x{picture.height} pixels exceeds the limit of {max_pixels:,}")
    picture.load()
    return picture


def framed_hint_picture(source, frame=None, name: str | None = None) -> Image.Image:
    """A hint picture (RGBA) centred on square (transparent) paper, as a drawing is, then cut to `frame`
    (train.sketch.drawing.Frame: the drawing's face crop, in fractions of that square; None: whole), so
    the hints land where they were drawn over the drawing the model sees."""
    rgba = read_hint_picture(source, name)
    w, h = rgba.size
    side = max(w, h)
    if w != h:
        square = Image.new("RGBA", (side, side), (0, 0, 0, 0))
        square.paste(rgba, ((side - w) // 2, (side - h) // 2))
        rgba = square
    if frame is not None:     # beyond the paper PIL's crop adds transparent pixels: no hint there
        rgba = rgba.crop(tuple(round(f * side) for f in (frame.left, frame.top, frame.right, frame.bottom)))
    return rgba


def hints_from_picture(source, size: int, name: str | None = None, frame=None) -> torch.Tensor:
    """A hint picture -> hint channels [1, 4, size, size]: centred on square and cut to `frame` as the
    drawing was (framed_hint_picture), resized with its colours averaged over the covered part only
    (premultiplied alpha), the mask 1 where alpha > 0 after resizing."""
    rgba = framed_hint_picture(source, frame, name)
    small = np.asarray(rgba.convert("RGBa").resize((size, size), Image.BOX).convert("RGBA"), dtype=np.float32)
    mask = torch.from_numpy(small[..., 3] > 0).float()[None]
    colour = torch.from_numpy(small[..., :3] / 127.5 - 1).permute(2, 0, 1) * mask
    return torch.cat([colour, mask])[None]


def hint_colour_error(paintings: np.ndarray, hints: torch.Tensor, ring: float) -> np.ndarray:
    """How far paintings are from the colours hinted: per painting (uint8 [N, S, S, 3]) the mean CIELAB
    distance (Delta E 1976) between each pixel at or within `ring` px of a hinted one and the colour of
    the nearest hinted pixel (hints [N, 4, S, S] as G takes them); NaN for a painting without hints.
    The ring is there because a hint says "this colour here", and a patch painted a pixel off is still
    followed."""
    from scipy import ndimage      # lazy, as in train/sketch/metrics.py: training imports this module

    hints = torch.as_tensor(hints).float().cpu()
    if len(paintings) != len(hints) or paintings.shape[1:3] != hints.shape[2:]:
        raise ValueError(f"{len(paintings)} paintings of {paintings.shape[1:3]} for {len(hints)} hints of "
                         f"{tuple(hints.shape[2:])}")
    wanted = ((hints[:, :3].permute(0, 2, 3, 1).numpy() + 1) / 2).clip(0, 1).astype(np.float32)
    errors = np.full(len(paintings), np.nan)
    for i, (painting, mask) in enumerate(zip(paintings, hints[:, 3].numpy() > 0.5)):
        if not mask.any():
            continue
        distance, (ys, xs) = ndimage.distance_transform_edt(~mask, return_indices=True)
        near = distance <= ring
        lab_painted = cv2.cvtColor(painting.astype(np.float32) / 255, cv2.COLOR_RGB2LAB)[near]
        lab_wanted = cv2.cvtColor(np.ascontiguousarray(wanted[i][ys, xs]), cv2.COLOR_RGB2LAB)[near]
        errors[i] = float(np.linalg.norm(lab_painted - lab_wanted, axis=1).mean())
    return errors
