"""End to end in a real browser: `label-app` on a loopback port, three faces labelled by keyboard.

Needs Debian's chromium at /usr/bin/chromium (skipped without it); driven by
Playwright's Python package, never by a browser Playwright downloads.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from db import Catalog

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install chromium)")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, proc: subprocess.Popen, seconds: float = 60) -> None:
    """Wait for a Streamlit server's health check to answer; fail if it exits or takes too long."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=2).read()
            return
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise AssertionError(f"the app did not come up on {url}")
            time.sleep(0.3)


def label_app_command() -> list[str]:
    exe = shutil.which("label-app")
    return [exe] if exe else [sys.executable, "-m", "label_app.launch"]


@pytest.fixture
def running_app(tiny_catalog):
    """`label-app` serving tiny_catalog (24 faces, an i2v source added) on a free loopback port."""
    cat = Catalog(tiny_catalog)
    ids = cat.face_ids()
    cat.add_labels([(fid, "blonde hair", 0.8) for fid in ids] + [(fid, "green eyes", 0.7) for fid in ids], "i2v")
    cat.close()
    port = free_port()
    proc = subprocess.Popen(label_app_command() + ["--db", str(tiny_catalog), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        first = proc.stdout.readline()
        first += proc.stdout.readline()
        assert url in first, first
        wait_until_up(url, proc)
        yield url, tiny_catalog
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=20)


def test_three_faces_by_keyboard(running_app, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    url, db = running_app
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        page.goto(url)
        page.get_by_label("Your name").fill("kim")
        page.get_by_role("button", name="Start labelling").click()
        heading = page.get_by_text("Face #", exact=False).first
        expect(heading).to_be_visible(timeout=30_000)
        start = int(heading.inner_text().split("#")[1])
        # The hotkey script loads in its own iframe, a moment after the page.
        page.wait_for_function("() => window.__labelAppListening === true", timeout=30_000)
        # and the page done running (a rerun still under way could replace the listening iframe:
        # a key pressed then was lost once, with the app's first page now loading torch)
        expect(page.locator("[data-testid='stStatusWidget']")).to_be_hidden(timeout=30_000)
        page.wait_for_function("() => window.__labelAppListening === true", timeout=30_000)

        # Face 1: R (blue hair) then S (red eyes) -> auto-advance.
        page.keyboard.press("r")
        expect(page.get_by_role("button", name="R · blue")).to_have_attribute("kind", "primary",
                                                                                 timeout=15_000)
        page.keyboard.press("s")
        expect(page.get_by_text(f"Face #{start + 1}")).to_be_visible(timeout=15_000)
        # Face 2: Enter accepts i2v's suggestion for every group.
        page.keyboard.press("Enter")
        expect(page.get_by_text(f"Face #{start + 2}")).to_be_visible(timeout=15_000)
        # Face 3: Q (blonde) and D (green eyes), plus 2 (smile, an independent tag: no advance).
        page.keyboard.press("2")
        expect(page.get_by_role("button", name="2 · smile")).to_have_attribute("kind", "primary", timeout=15_000)
        page.keyboard.press("q")
        expect(page.get_by_role("button", name="Q · blonde")).to_have_attribute("kind", "primary",
                                                                                    timeout=15_000)
        page.keyboard.press("f")
        expect(page.get_by_text(f"Face #{start + 3}")).to_be_visible(timeout=15_000)
        # Keys typed faster than the app answers are queued, not lost: W (brown), A (blue eyes),
        # then Enter twice, all without waiting.
        for key in ["w", "a", "Enter", "Enter"]:
            page.keyboard.press(key)
        expect(page.get_by_text(f"Face #{start + 6}")).to_be_visible(timeout=30_000)
        page.screenshot(path=str(tmp_path / "label_app.png"))
        browser.close()

    assert (tmp_path / "label_app.png").stat().st_size > 10_000
    cat = Catalog(db)
    mine = {(r["face_id"], r["key"]): r["tag"] for r in cat.current_labels("manual", annotator="kim")}
    assert mine[(start, "hair_color")] == "blue hair"
    assert mine[(start, "eye_color")] == "red eyes"
    assert mine[(start + 1, "hair_color")] == "blonde hair"
    assert mine[(start + 1, "eye_color")] == "green eyes"
    assert mine[(start + 2, "hair_color")] == "blonde hair"
    assert mine[(start + 2, "eye_color")] == "green eyes"
    assert mine[(start + 2, "smile")] == "smile"
    assert mine[(start + 3, "hair_color")] == "brown hair"
    assert mine[(start + 3, "eye_color")] == "blue eyes"
    assert mine[(start + 4, "hair_color")] == mine[(start + 5, "hair_color")] == "blonde hair"
    assert len(mine) == 7 + 2 + 4
    # The i2v events are untouched.
    assert len(cat.current_labels("i2v")) == 2 * len(cat.face_ids())
    assert {r["annotator"] for r in cat.annotator_counts()} >= {"kim"}
    cat.close()


def test_a_key_pressed_while_its_button_is_redrawn_waits_for_it():
    """A rerun redraws the page: a key pressed while its button is missing is clicked once the
    button is back (it was dropped: the first key of a session was lost under load)."""
    from playwright.sync_api import sync_playwright

    from label_app.keyboard import script

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page()
        page.set_content('<div data-testid="stApp" data-test-script-state="notRunning"></div>'
                         + script({"r": "tag-r"}).replace("<script>", "<script>window.clicks = 0;"))
        page.keyboard.press("r")            # no button yet: the page is being redrawn
        page.wait_for_timeout(300)
        page.evaluate("""() => {
            const d = document.createElement("div");
            d.className = "st-key-tag-r";
            d.innerHTML = "<button onclick='window.clicks += 1'>R</button>";
            document.querySelector("[data-testid=stApp]").appendChild(d);
        }""")
        page.wait_for_function("() => window.clicks === 1", timeout=5_000)
        page.wait_for_timeout(200)
        assert page.evaluate("window.clicks") == 1     # clicked once, not again
        browser.close()
