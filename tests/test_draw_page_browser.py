"""The Draw page in real Chromium: strokes drawn with the mouse reach Python, are normalised and
painted; the canvas's own undo and reset reach the page too.

The painter is the test's deterministic stand-in (tests/draw_app_with_test_painter.py runs the
real app with it), so this checks the browser-to-page wiring, not a model.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from label_app.draw_page import CANVAS_SIDE
from test_draw_page import make_sketch_run
from test_label_app_browser import ARGS, CHROMIUM, free_port, wait_until_up

# (found, not imported: the canvas registers itself only inside a running app)
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install chromium)"),
              pytest.mark.skipif(importlib.util.find_spec("streamlit_drawable_canvas") is None,
                                 reason="needs the draw extra: pip install -e '.[draw]'")]

APP = Path(__file__).resolve().parent / "draw_app_with_test_painter.py"


@contextlib.contextmanager
def serving(app: Path, catalog: Path, runs: Path):
    """`streamlit run app` on a free loopback port, the catalog and runs folder given as label-app gives
    them: its URL, the server stopped at the end."""
    port = free_port()
    env = dict(os.environ, LABEL_APP_DB=str(catalog), LABEL_APP_RUNS=str(runs))
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(app), "--server.headless", "true",
                             "--server.port", str(port), "--server.address", "127.0.0.1",
                             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, proc)
        yield url
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=20)


@pytest.fixture
def draw_app(tiny_catalog, tmp_path, request):
    make_sketch_run(tmp_path / "runs", size=64, hints=getattr(request, "param", False))   # param: with hints
    with serving(APP, tiny_catalog, tmp_path / "runs") as url:
        yield url


def stroke(page, points) -> None:
    page.mouse.move(*points[0])
    page.mouse.down()
    for p in points[1:]:
        page.mouse.move(*p, steps=2)
    page.mouse.up()


def open_draw_page(browser, url: str, height: int, width: int = 1500):
    """A new page of the app at `url`, signed in, on its Draw page."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(url)
    page.get_by_label("Your name").fill("kim")
    page.get_by_role("button", name="Start labelling").click()
    page.get_by_text("Face #", exact=False).first.wait_for(timeout=30_000)
    page.get_by_text("Draw", exact=True).click()
    return page


def draw_face(page, canvas) -> tuple[float, float, float]:
    """An oval and two eyes on `canvas`; its centre and radius."""
    box = canvas.bounding_box()
    cx, cy, r = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, box["width"] * 0.35
    stroke(page, [(cx + r * math.cos(a / 20 * math.pi), cy + 1.15 * r * math.sin(a / 20 * math.pi))
                  for a in range(41)])                                              # the face
    for ex in (-0.35, 0.35):
        stroke(page, [(cx + ex * r - 8, cy - 0.1 * r), (cx + ex * r + 8, cy - 0.1 * r)])   # eyes
    return cx, cy, r


def test_draw_with_the_mouse_and_see_painted_faces(draw_app, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = open_draw_page(browser, draw_app, 1000, width=1280)      # a laptop's window, sidebar open
        canvas = page.locator("canvas").last
        expect(canvas).to_be_visible(timeout=30_000)
        whole = page.locator(".st-key-draw-canvas-0").bounding_box()
        assert whole["width"] >= CANVAS_SIDE        # its column holds the canvas whole (it cut its right edge)
        expect(page.get_by_text("Draw with the mouse or a pen")).to_be_visible(timeout=30_000)
        cx, cy, r = draw_face(page, canvas)
        expect(page.get_by_text("4 faces painted in")).to_be_visible(timeout=30_000)
        sketch = page.get_by_role("img").first            # "as the model sees it"
        before = sketch.get_attribute("src")
        stroke(page, [(cx - 0.2 * r, cy + 0.45 * r), (cx + 0.2 * r, cy + 0.45 * r)])   # a mouth
        expect(page.get_by_role("img").first).not_to_have_attribute("src", before, timeout=30_000)
        with_mouth = page.get_by_role("img").first.get_attribute("src")
        page.screenshot(path=str(tmp_path / "draw_page.png"))

        page.get_by_role("button", name="Undo").click()            # the canvas's own undo reaches the page:
        expect(page.get_by_role("img").first).to_have_attribute("src", before, timeout=30_000)   # no mouth
        assert with_mouth != before
        page.get_by_role("button", name="Reset canvas & history").click()
        expect(page.get_by_text("Draw with the mouse or a pen")).to_be_visible(timeout=30_000)
        expect(page.get_by_text("faces painted in")).to_have_count(0)
        browser.close()
    assert (tmp_path / "draw_page.png").stat().st_size > 10_000


@pytest.mark.parametrize("draw_app", [True], indirect=True)
def test_hints_painted_with_the_hint_brush_reach_the_painter(draw_app, tmp_path):
    """A run trained with hints: lines on the line canvas, a stroke of the hint brush on the hint
    canvas below it; the faces are then painted with colour hints (the stand-in painter is given them)."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = open_draw_page(browser, draw_app, 1300)
        lines = page.locator(".st-key-draw-canvas-0 canvas").last
        hints = page.locator(".st-key-draw-hints-0 canvas").last
        expect(lines).to_be_visible(timeout=30_000)
        expect(page.get_by_text("Hint colour")).to_be_visible(timeout=30_000)
        draw_face(page, lines)
        expect(page.get_by_text("4 faces painted in")).to_be_visible(timeout=30_000)
        hints.scroll_into_view_if_needed()
        box = hints.bounding_box()
        hx, hy = box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.3
        stroke(page, [(hx - 30, hy), (hx + 30, hy)])                  # hair colour, over the forehead
        expect(page.get_by_text("4 faces painted with colour hints in")).to_be_visible(timeout=30_000)
        page.screenshot(path=str(tmp_path / "draw_hints.png"), full_page=True)
        browser.close()


# The caption can be on the page before its pictures are decoded (a new src loads in the
# background): wait for each picture's pixels, or the canvas would be 0 wide.
IMAGE_SPREAD_JS = """async img => { img.loading = 'eager'; await img.decode();
  const c = document.createElement('canvas'); c.width = img.naturalWidth;
  c.height = img.naturalHeight; const x = c.getContext('2d'); x.drawImage(img, 0, 0);
  const d = x.getImageData(0, 0, c.width, c.height).data; let s = 0, s2 = 0, n = 0;
  for (let i = 0; i < d.length; i += 4) { for (let k = 0; k < 3; k++) { s += d[i + k]; s2 += d[i + k] ** 2; n++; } }
  return Math.sqrt(s2 / n - (s / n) ** 2); }"""


@pytest.fixture
def shipped_app(tiny_catalog, tmp_path):
    """`label-app`'s real app (no stand-in painter), no runs of one's own: only the shipped model."""
    from train import pretrained
    if "sketch" not in pretrained.known():
        pytest.skip("no sketch model ships in this checkout")
    app = Path(__file__).resolve().parent.parent / "label_app" / "streamlit_app.py"
    with serving(app, tiny_catalog, tmp_path / "no-runs") as url:
        yield url


def test_a_fresh_install_paints_with_the_shipped_model(shipped_app, tmp_path):
    """A fresh install (no runs of one's own): the Draw page paints mouse strokes at once with
    `pretrained:sketch`, then with a stroke of the hint brush."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = open_draw_page(browser, shipped_app, 1300, width=1280)
        expect(page.get_by_role("combobox", name="Sketch model (run)")).to_have_value("pretrained:sketch",
                                                                                   timeout=30_000)
        lines = page.locator(".st-key-draw-canvas-0 canvas").last
        draw_face(page, lines)
        expect(page.get_by_text("4 faces painted in")).to_be_visible(timeout=60_000)
        faces = page.get_by_role("img")
        spreads = [faces.nth(i).evaluate(IMAGE_SPREAD_JS) for i in range(1, 5)]
        assert min(spreads) > 15, spreads          # painted faces, not flat tints
        plain = faces.nth(1).get_attribute("src")
        hints = page.locator(".st-key-draw-hints-0 canvas").last
        hints.scroll_into_view_if_needed()
        box = hints.bounding_box()
        hx, hy = box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.3
        stroke(page, [(hx - 30, hy), (hx + 30, hy)])
        expect(page.get_by_text("4 faces painted with colour hints in")).to_be_visible(timeout=60_000)
        assert page.get_by_role("img").nth(1).get_attribute("src") != plain
        page.screenshot(path=str(tmp_path / "shipped.png"), full_page=True)
        browser.close()
