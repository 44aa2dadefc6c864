"""A run's sample grids as a GIF and an MP4, one frame per grid with its step written on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from train.runs import Run, RunError


def frames(run: Run) -> list[np.ndarray]:
    paths = sorted(run.samples_dir.glob("[0-9]*.png"))
    if not paths:
        raise RunError(f"{run.samples_dir} holds no sample grids yet")
    grids = [Image.open(path).convert("RGB") for path in paths]
    # one frame size (a run resumed across versions has grids of two sizes); even: H.264 needs it
    w = max(g.width for g in grids)
    h = max(g.height for g in grids) + 14
    out = []
    for path, img in zip(paths, grids):
        canvas = Image.new("RGB", (w + w % 2, h + h % 2), "white")
        canvas.paste(img, (0, 14))
        ImageDraw.Draw(canvas).text((2, 1), f"step {int(path.stem)}", fill="black")
        out.append(np.asarray(canvas))
    return out


def animate_run(run: Run, output: Path | None = None, fps: float = 4.0, mp4: bool = True) -> list[Path]:
    import imageio.v2 as imageio

    if fps <= 0:
        raise ValueError("--fps must be positive")
    base = Path(output) if output is not None else run.dir / "progress"
    base = base.with_suffix("") if base.suffix in (".gif", ".mp4") else base
    base.parent.mkdir(parents=True, exist_ok=True)
    images = frames(run)
    gif = base.with_suffix(".gif")
    imageio.mimsave(gif, images, duration=1000 / fps, loop=0)
    written = [gif]
    if mp4:
        path = base.with_suffix(".mp4")
        writer = imageio.get_writer(path, fps=fps, codec="libx264", macro_block_size=1, pixelformat="yuv420p")
        for frame in images:
            writer.append_data(frame)
        writer.close()
        written.append(path)
    return written
