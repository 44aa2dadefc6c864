"""Training augmentation that makes XDoG sketches look more like hand-drawn ones.

XDoG lines are even: one width, one darkness, unbroken, exactly on the picture's edges.
People draw lines of varying width and pressure, leave gaps, and miss the edges by a pixel
or two. `SketchAugment` draws, per sample, a random mix of:

- line width and crispness: the slightly softened ink thresholded at a random level (low:
  thicker lines, high: thinner) with a random slope (soft grey pencil to crisp pen). A 3x3
  dilation or erosion was tried first: at 64x64, where XDoG lines are 1-2 px, it doubled the
  ink or erased it (ink share 0.22 -> 0.53 / 0.01);
- pressure: the ink's darkness scaled by a smooth random field;
- blur: a Gaussian of random width (soft pencil, scanned paper);
- gaps: pieces of stroke erased where a coarse random field falls below a random share;
- jitter: a small smooth random displacement (lines a pixel or two off, slightly wobbly).

Everything is batched on tensors (a handful of convolutions and one grid_sample per batch),
runs on the batch's device, and is drawn from the `torch.Generator` it is given, so a step's
augmentation is reproducible from the step's seed. Sketches are float [N, 1, H, W] in [-1, 1],
paper +1 and ink -1 (as the trainer scales images); the result has the same shape and range.
Its fields are plain numbers: `asdict(aug)` goes into options.json.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class SketchAugment:
    p: float = 0.9                             # share of samples augmented at all
    level: tuple[float, float] = (0.25, 0.55)  # threshold of the softened ink: low = thick lines, high = thin
    sharpness: tuple[float, float] = (12.0, 32.0)  # slope of that threshold: low = soft grey, high = crisp pen
    pressure: tuple[float, float] = (0.6, 1.0)    # range of the ink's darkness field
    blur: float = 0.5              # largest Gaussian sigma, in pixels at 64x64 (scaled with size)
    gaps: float = 0.3              # largest share of ink erased in pieces
    jitter: float = 1.2            # largest displacement, in pixels at 64x64 (scaled with size)

    def __post_init__(self):
        ranges = (self.level, self.sharpness, self.pressure)
        if not (0 <= self.p <= 1 and 0 <= self.gaps <= 1 and self.blur >= 0 and self.jitter >= 0
                and all(len(r) == 2 and r[0] <= r[1] for r in ranges)
                and 0 < self.level[0] and self.level[1] < 1 and self.sharpness[0] > 0
                and 0 <= self.pressure[0] and self.pressure[1] <= 1):
            raise ValueError(f"SketchAugment: a field out of range: {self}")

    @torch.no_grad()
    def __call__(self, sketch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, _, h, w = sketch.shape
        dev, dtype = sketch.device, sketch.dtype
        scale = h / 64

        def rand(*shape) -> torch.Tensor:       # drawn on the CPU generator, then moved: same on any device
            return torch.rand(*shape, generator=generator).to(dev, torch.float32)

        def between(bounds) -> torch.Tensor:    # one value per sample, [n, 1, 1, 1]
            return (bounds[0] + (bounds[1] - bounds[0]) * rand(n)).view(n, 1, 1, 1)

        ink = ((1 - sketch.float()) / 2).clamp(0, 1)                   # 1 = ink, 0 = paper
        on = (rand(n) < self.p).view(n, 1, 1, 1)

        # line width and crispness: threshold the softened ink at a random level with a random slope,
        # rescaled so that paper stays 0 and full ink 1
        soft = _blur(ink, torch.full((n,), 0.5 * scale, device=dev))
        t, k = between(self.level), between(self.sharpness)
        out = (torch.sigmoid((soft - t) * k) - torch.sigmoid(-t * k)) / \
            (torch.sigmoid((1 - t) * k) - torch.sigmoid(-t * k))

        # pressure: darkness from a smooth field (4x4 control points)
        lo, hi = self.pressure
        field = F.interpolate(rand(n, 1, 4, 4), size=(h, w), mode="bilinear", align_corners=False)
        out = out * (lo + (hi - lo) * field)

        # gaps: erase ink where a coarse field (about one cell per 6 px) falls below a per-sample share
        cells = (max(2, h // 6), max(2, w // 6))
        holes = F.interpolate(rand(n, 1, *cells), size=(h, w), mode="bilinear", align_corners=False)
        out = out * (holes >= self.gaps * rand(n).view(n, 1, 1, 1)).float()

        # blur: a per-sample Gaussian as one grouped convolution
        out = _blur(out, self.blur * scale * rand(n))

        # jitter: a smooth displacement field (3x3 control points) through grid_sample
        if self.jitter > 0:
            px = torch.tensor([2 / w, 2 / h], device=dev).view(1, 2, 1, 1)     # one pixel in grid units
            amp = self.jitter * scale * rand(n).view(n, 1, 1, 1) * px
            flow = F.interpolate(rand(n, 2, 3, 3) * 2 - 1, size=(h, w), mode="bilinear", align_corners=False) * amp
            ys, xs = torch.meshgrid(torch.linspace(-1, 1, h, device=dev), torch.linspace(-1, 1, w, device=dev),
                                    indexing="ij")
            grid = torch.stack([xs, ys], -1).unsqueeze(0) + flow.permute(0, 2, 3, 1)
            out = F.grid_sample(out, grid, mode="bilinear", padding_mode="border", align_corners=True)

        return torch.where(on, (1 - 2 * out.clamp(0, 1)).to(dtype), sketch)


def _blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur each sample of x [N, 1, H, W] with its own Gaussian sigma [N] (0: unchanged)."""
    n = x.shape[0]
    radius = max(1, int(torch.ceil(2.5 * sigma.max()).item())) if n else 1
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=torch.float32)
    s = sigma.clamp(min=1e-3).view(n, 1)
    k1 = torch.exp(-0.5 * (t.view(1, -1) / s) ** 2)
    k1 = k1 / k1.sum(1, keepdim=True)                      # sigma ~ 0 leaves a delta: no blur
    k2 = (k1[:, :, None] * k1[:, None, :]).unsqueeze(1)    # [N, 1, k, k]
    padded = F.pad(x.transpose(0, 1), (radius,) * 4, mode="replicate")   # [1, N, H+2r, W+2r]
    return F.conv2d(padded, k2, groups=n).transpose(0, 1)


def ink_tensor(lines_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 line maps [N, 1, H, W] (paper 255) -> float [-1, 1] as SketchAugment takes them."""
    return lines_uint8.float() / 127.5 - 1
