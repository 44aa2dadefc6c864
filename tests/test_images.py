"""Reading what users' folders really hold: every format, mode and broken file."""

from __future__ import annotations

import io
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from curate.images import ImageError, decode, iter_image_files, to_rgb


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def gradient(w: int = 40, h: int = 30) -> Image.Image:
    arr = np.zeros((h, w, 3), np.uint8)
    arr[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
    arr[..., 1] = np.linspace(0, 255, h, dtype=np.uint8)[:, None]
    arr[..., 2] = 90
    return Image.fromarray(arr)


def png_with_header(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height: a decompression bomb's calling card."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + \
        chunk(b"IEND", b"")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "TIFF"])
def test_formats_decode_to_rgb(fmt):
    image, got_fmt, plain = decode(encode(gradient(), fmt))
    assert image.mode == "RGB" and image.size == (40, 30) and got_fmt == fmt
    assert plain == (fmt in ("JPEG", "PNG"))
    # colours survive (JPEG/WebP are lossy: loose tolerance)
    diff = np.abs(np.asarray(image, np.int16) - np.asarray(gradient(), np.int16)).mean()
    assert diff < 6


def test_gif_takes_first_frame():
    red, blue = Image.new("RGB", (20, 20), (255, 0, 0)), Image.new("RGB", (20, 20), (0, 0, 255))
    data = encode(red, "GIF", save_all=True, append_images=[blue], duration=100)
    image, fmt, plain = decode(data)
    assert fmt == "GIF" and not plain
    assert image.getpixel((10, 10))[0] > 200 and image.getpixel((10, 10))[2] < 50


def test_exif_orientation_is_applied():
    im = Image.new("RGB", (60, 20), (0, 0, 0))
    im.paste((255, 255, 255), (0, 0, 10, 20))  # white stripe on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    image, _, plain = decode(encode(im, "JPEG", exif=exif.tobytes(), quality=95))
    assert image.size == (20, 60) and not plain
    assert np.asarray(image)[:10].mean() > 200  # the stripe is now at the top


def test_alpha_is_composited_on_white():
    rgba = Image.new("RGBA", (10, 10), (255, 0, 0, 0))
    rgba.putpixel((0, 0), (255, 0, 0, 255))
    image, _, plain = decode(encode(rgba, "PNG"))
    assert image.getpixel((5, 5)) == (255, 255, 255)
    assert image.getpixel((0, 0)) == (255, 0, 0)
    assert not plain  # RGBA files are not kept as they are


def test_palette_with_transparency():
    p = Image.new("P", (8, 8), 0)
    p.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    p.putpixel((1, 1), 1)
    image, _, _ = decode(encode(p, "PNG", transparency=0))
    assert image.getpixel((0, 0)) == (255, 255, 255) and image.getpixel((1, 1)) == (10, 200, 30)


def test_cmyk_greyscale_and_one_bit():
    cmyk, _, _ = decode(encode(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG"))
    assert cmyk.mode == "RGB" and cmyk.getpixel((4, 4))[0] > 200 and cmyk.getpixel((4, 4))[1] < 60
    grey, _, plain = decode(encode(Image.new("L", (8, 8), 77), "PNG"))
    assert grey.getpixel((3, 3)) == (77, 77, 77) and plain
    bw, _, _ = decode(encode(Image.new("1", (8, 8), 1), "PNG"))
    assert bw.getpixel((3, 3)) == (255, 255, 255)


def test_16_bit_png_is_scaled_not_clipped():
    arr = np.array([[0, 32768, 65535, 1000]], dtype=np.uint16)
    image, _, _ = decode(encode(Image.fromarray(arr), "PNG"))
    values = [image.getpixel((x, 0))[0] for x in range(4)]
    assert values[0] == 0 and 126 <= values[1] <= 129 and values[2] == 255 and values[3] <= 4


def test_float_mode():
    assert to_rgb(Image.fromarray(np.full((2, 2), 0.5, np.float32))).getpixel((0, 0)) == (127, 127, 127)


@pytest.mark.parametrize("data, reason", [
    (b"", "empty file"),
    (b"hello, I am a text file\n" * 10, "not a picture"),
    (png_with_header(100_000, 100_000), "decompression bomb"),
])
def test_bad_bytes_raise_a_reason(data, reason):
    with pytest.raises(ImageError, match=reason):
        decode(data)


def test_truncated_files():
    for fmt in ("JPEG", "PNG"):
        data = encode(gradient(200, 200), fmt)
        with pytest.raises(ImageError, match="cannot decode"):
            decode(data[: len(data) // 2])


def test_pixel_limit_is_configurable():
    data = encode(gradient(100, 100), "PNG")
    with pytest.raises(ImageError, match="10,000 pixels exceeds the limit of 9,999"):
        decode(data, max_pixels=9_999)
    assert decode(data, max_pixels=10_000).image.size == (100, 100)


def test_walk_nested_unicode_symlink_loops(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    names = ["a/b/日本語 の 絵.png", "a/with space.JPG", "top.webp", "a/b/deeper.gif"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("not a picture")
    (tmp_path / ".hidden.png").write_bytes(b"x")
    os.symlink(tmp_path / "a", tmp_path / "a" / "b" / "loop")  # a -> b -> loop -> a ...
    os.symlink(tmp_path / "missing.png", tmp_path / "dangling.png")
    found = sorted(str(p.relative_to(tmp_path)) for p in iter_image_files(tmp_path))
    assert found == sorted(names)


def test_walk_one_file(tmp_path):
    f = tmp_path / "one.png"
    f.write_bytes(b"x")
    assert list(iter_image_files(f)) == [f]


def test_walk_records_what_it_passes_over(tmp_path):
    from curate.images import Skipped

    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "x.png").write_bytes(b"x")
    os.symlink(tmp_path / "a", tmp_path / "a" / "b" / "loop")         # back to an ancestor
    os.symlink(tmp_path / "a" / "b", tmp_path / "alias")              # a second way into a/b
    os.symlink(tmp_path / "missing.png", tmp_path / "dangling.png")
    os.symlink("self.png", tmp_path / "self.png")                     # a link to itself
    os.symlink(tmp_path / "gone", tmp_path / "gone-folder")           # dangling, no suffix
    os.symlink(tmp_path / "missing.txt", tmp_path / "notes.txt")      # not a picture: not ours
    skipped: list[Skipped] = []
    found = [p.relative_to(tmp_path) for p in iter_image_files(tmp_path, skipped)]
    assert [str(p) for p in found] == ["a/b/x.png"]
    got = {str(s.path.relative_to(tmp_path)): (s.status, s.reason) for s in skipped}
    assert got == {
        "a/b/loop": ("error", f"symbolic link loop: leads back to {tmp_path / 'a'}"),
        "alias": ("duplicate", f"same folder as {tmp_path / 'a' / 'b'}, read there"),
        "dangling.png": ("error", f"dangling symbolic link: {tmp_path / 'missing.png'} does not exist"),
        "self.png": ("error", "symbolic link loop"),
        "gone-folder": ("error", f"dangling symbolic link: {tmp_path / 'gone'} does not exist"),
    }


def test_16_bit_png_decodes_without_deep_copies():
    """A 16-bit picture is brought to 8 bits in its own type: the decode path's Python and numpy
    allocations stay near two copies of its 2 bytes a pixel (one float64 copy alone is 8; the
    old path made three, 26 bytes a pixel)."""
    import tracemalloc

    side = 1000
    data = encode(Image.fromarray((np.arange(side * side) % 65536).astype(np.uint16).reshape(side, side)), "PNG")
    tracemalloc.start()
    try:
        image, _, _ = decode(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 6 * side * side, f"{peak / side / side:.1f} bytes a pixel"
    assert image.mode == "RGB" and image.getpixel((513, 0))[0] in (1, 2)   # 513 / 257
