"""The Draw page's latency: from the end of a stroke to the new painting, at three levels side by side.

Goal: p95 from the end of a stroke to the new painting < 1 s on a CPU (issue 21), for n = 1 and 4
paintings (4: the page's default), with and without colour hints.

    python benchmarks/draw_latency.py                 # makes the runs once, in /tmp/draw_latency_bench
    python benchmarks/draw_latency.py --paint-threads 1,0 --screenshot docs/draw_page.png
    python benchmarks/draw_latency.py --strokes 30 --no-browser
    python benchmarks/draw_latency.py --run RUN --db CATALOG [--hints-run RUN]    # other sketch runs
    python benchmarks/draw_latency.py --run pretrained:sketch     # the model that ships (hints: its own)

The latency depends on the architecture, not on the weights' values, so without --run it times a
64x64 `train pix2pix --labels manual --attrs hair_color,eye_color` run of the default architecture
(ngf = ndf = 64) trained a few steps on 96 of ../shared's labelled faces, and the same with --hints.
Three levels, each over the same strokes (a face drawn stroke by stroke, each drawing one stroke
more than the last; the page's tags left at "(any)"):

    [1] the painter alone: `normalise_drawing` of the canvas picture, `train.sketch.paint.paint`,
        called from a thread of their own as Streamlit's script thread calls them, and paint() on the
        main thread beside it (torch's threads behave differently there);
    [2] one whole page rerun through Streamlit's AppTest after a new canvas picture (what the
        server does after a stroke; the canvas's PNG is decoded as the canvas component does);
    [3] real Chromium (/usr/bin/chromium) on `label-app --runs`: a stroke drawn with the mouse on
        the canvas, timed from mouse-up to the new painting's caption ("N faces painted ... in X ms")
        changing. The first painting after the page opens (the generator loads) is not timed.
        `--paint-threads 1,0` times it with `label-app --paint-threads 1` (its default) and 0 (torch's
        own, one thread per core); `--screenshot` saves the page after the strokes (4 faces, no hints).

Printed per case: wall-clock p50/p95 and p95/goal, and the CPU time spent (this process's; the app
server's for the browser), which other jobs do not skew. Other jobs on the machine skew the wall
clock: the CPU and the load average are printed at start and end. Takes about 11 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import base64
import csv
import io
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))     # before benchmarks/, whose label_app.py is not the package

LABELLED = ROOT.parent / "shared" / "data" / "anime_faces_labelled"
SCRIPT = ROOT / "label_app" / "streamlit_app.py"
CHROMIUM = Path("/usr/bin/chromium")
GOAL_MS = 1000.0
SIDE = 320                       # the page's canvas (label_app/draw_page.CANVAS_SIDE)
LINE_WIDTH = 3                   # the page's default line width
HINT_WIDTH = 10                  # the hint brush (label_app/draw_hints.HINT_STROKE)


# ---------------------------------------------------------------- the run timed
def prepare(work: Path, faces: int = 96, iters: int = 2) -> tuple[Path, Path, Path]:
    """(catalog, run, hints run): a tiny catalog of ../shared's labelled faces with line art, and two
    few-step 64x64 pix2pix runs of the default architecture (without and with --hints). Made once."""
    done = work / "ready.txt"
    if done.exists():
        db, run, hints_run = done.read_text().split("\n")[:3]
        return Path(db), Path(run), Path(hints_run)
    if not (LABELLED / "labels.csv").is_file():
        sys.exit(f"{LABELLED} is missing: this benchmark needs ../shared beside the checkout (or give --run)")
    from curate.derive import derive
    from curate.labels_io import import_labels
    from curate.pipeline import CropOptions, run as crop
    from db import Catalog
    from train.loop import train
    from train.options import TrainOptions

    shutil.rmtree(work, ignore_errors=True)
    (work / "faces" / "images").mkdir(parents=True)
    with open(LABELLED / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))[:faces]
    for r in rows:
        shutil.copy(LABELLED / r["file"], work / "faces" / r["file"])
    with open(work / "faces" / "labels.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    db = work / "tiny.db"
    with Catalog(db) as cat:
        crop(cat, work / "faces" / "images", CropOptions(no_detect=True, workers=1))
        import_labels(cat, work / "faces" / "labels.csv", "manual")
        cat.assign_splits(val=0.1, test=0.1, seed=0)
        derive(cat, workers=1)
    runs = []
    for hints in (False, True):
        t0 = time.perf_counter()
        runs.append(train(TrainOptions(
            model="pix2pix", catalog=str(db), labels="manual", attrs=["hair_color", "eye_color"], size=64,
            min_per_tag=1, iters=iters, batch=8, hints=hints, runs_dir=str(work / ("runs-hints" if hints else "runs")),
            cache_dir=str(work / "cache"), progress=False)))
        print(f"  trained {runs[-1]} ({iters} steps, {time.perf_counter() - t0:.0f} s)", flush=True)
    done.write_text(f"{db}\n{runs[0]}\n{runs[1]}\n")
    return db, runs[0], runs[1]


def shipped_copy(name: str, work: Path) -> Path:
    """A shipped model (`pretrained:NAME`, its hashes checked) copied as a run folder into work/shipped/."""
    from train import pretrained
    folder = pretrained.resolve(name)
    dest = work / "shipped" / f"00001-pix2pix-{folder.name}"
    shutil.rmtree(dest.parent, ignore_errors=True)
    shutil.copytree(folder, dest)
    return dest


# ---------------------------------------------------------------- the strokes
def _curve(*points: tuple[float, float], steps: int = 12) -> list[tuple[float, float]]:
    """A smooth polyline through `points` (Catmull-Rom), in canvas pixels."""
    pts = [points[0], *points, points[-1]]
    out = []
    for i in range(1, len(pts) - 2):
        p0, p1, p2, p3 = (np.array(p, float) for p in pts[i - 1:i + 3])
        for t in np.linspace(0, 1, steps, endpoint=False):
            out.append(tuple(0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t * t
                                    + (-p0 + 3 * p1 - 3 * p2 + p3) * t ** 3)))
    out.append(tuple(map(float, points[-1])))
    return out


def _ellipse(cx: float, cy: float, rx: float, ry: float, a0: float = 0, a1: float = 360, n: int = 24):
    return [(cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
            for a in np.linspace(a0, a1, n)]


def face_strokes(count: int = 24) -> list[list[tuple[float, float]]]:
    """A face drawn stroke by stroke on the 320x320 canvas: jaw, hair, fringe, eyes, brows, nose,
    mouth, strands, neck (24 strokes), then short shading strokes in the hair up to `count`."""
    s = [_curve((92, 128), (104, 196), (134, 236), (160, 248), (186, 236), (216, 196), (228, 128)),     # jaw
         _curve((80, 170), (78, 110), (108, 62), (160, 46), (212, 62), (242, 110), (240, 170))]     # skull
    tips = [(100, 150), (122, 132), (140, 148), (160, 128), (180, 148), (198, 132), (220, 150)]
    roots = [(96, 86), (118, 70), (140, 60), (160, 56), (180, 60), (202, 70), (224, 86)]
    s += [_curve(r, ((r[0] + t[0]) / 2 + 4, (r[1] + t[1]) / 2), t) for r, t in zip(roots, tips)]   # fringe
    for ex in (126, 194):
        s.append(_ellipse(ex, 176, 20, 12, 190, 350, 14))                   # upper lid
        s.append(_ellipse(ex, 182, 9, 12, 0, 360, 20))                      # iris
        s.append(_curve((ex - 20, 148), (ex, 142), (ex + 20, 148)))         # brow
    s += [_curve((160, 196), (156, 208), (162, 210)),                        # nose
          _curve((146, 224), (160, 230), (174, 224)),                        # mouth
          _curve((80, 170), (84, 220), (76, 262), (70, 290)),                # strands beside the face
          _curve((240, 170), (236, 220), (244, 262), (250, 290)),
          _curve((92, 150), (90, 210), (96, 270)),
          _curve((228, 150), (230, 210), (224, 270)),
          _curve((140, 244), (142, 300)),                                    # neck
          _curve((180, 244), (178, 300)),
          _curve((104, 300), (160, 312), (216, 300))]                        # collar
    rng = np.random.default_rng(0)
    while len(s) < count:                                                    # shading in the hair
        x, y = rng.uniform(90, 230), rng.uniform(64, 100)
        s.append(_curve((x, y), (x + rng.uniform(-6, 6), y + 12), (x + rng.uniform(-8, 8), y + 22)))
    return s[:count]


def canvas_rgba(strokes, width: int = LINE_WIDTH, colour=(0, 0, 0, 255)) -> np.ndarray:
    """The canvas's picture of these strokes: RGBA, transparent paper (what the canvas component sends)."""
    im = Image.new("RGBA", (SIDE, SIDE), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    for pts in strokes:
        d.line(pts, fill=colour, width=width, joint="curve")
    return np.asarray(im)


HINT = _curve((112, 180), (126, 184), (140, 180), (160, 178))      # over the left eye: inside the face crop


def hint_rgba() -> np.ndarray:
    """One stroke of the hint brush (a blonde) over the left eye: animeface's face crop of these strokes
    (what the model sees) leaves out the top of the hair, and hints with it."""
    return canvas_rgba([HINT], HINT_WIDTH, (0xe0, 0xb0, 0x40, 255))


def png_data_url(rgba: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(rgba).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def decoded(url: str) -> np.ndarray:
    """As streamlit_drawable_canvas's CanvasResult.image_data decodes the canvas's PNG."""
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(";base64,", 1)[1]))))


# ---------------------------------------------------------------- figures
def pct(values: list[float], p: float) -> float:
    return float(np.percentile(values, p))


ROWS: list[tuple[str, str, list[float], list[float] | None]] = []


def row(level: str, name: str, ms: list[float], cpu: list[float] | None = None) -> None:
    """Wall-clock p50/p95 (what a person waits), and the CPU time spent (p50), which other jobs do not skew."""
    ROWS.append((level, name, ms, cpu))
    p50, p95 = statistics.median(ms), pct(ms, 95)
    print(f"  {name:<72} n={len(ms):<3} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   p95/goal {p95 / GOAL_MS:5.2f}"
          + (f"   CPU p50 {statistics.median(cpu):6.1f} ms" if cpu else ""), flush=True)


def timed(fn, *args, **kwargs) -> tuple[float, float, object]:
    """(wall ms, this process's CPU ms over all its threads, fn's result)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000, out


def session_cpu_ms(sid: int) -> float:
    """CPU time (user + system) of the processes in session `sid` (the app server), from /proc."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:                # session id; utime, stime in clock ticks
            total += int(fields[11]) + int(fields[12])
    return total * 1000 / os.sysconf("SC_CLK_TCK")


def cases(run: Path, hints_run: Path | None) -> list[tuple[str, Path, int, bool]]:
    """(label, run, n, hints): n = 1 and 4 without hints; with a hints run, n = 1 and 4 with hints."""
    out = [(f"n={n}", run, n, False) for n in (1, 4)]
    if hints_run is not None:
        out += [(f"n={n}, hints", hints_run, n, True) for n in (1, 4)]
    return out


# ---------------------------------------------------------------- [1] the painter alone
def bench_painter(run: Path, hints_run: Path | None, strokes: int) -> None:
    import torch
    from label_app import painting
    from label_app.draw_hints import framed
    from train.sketch.drawing import normalise_framed
    from train.sketch.paint import paint

    print(f"\n[1] the painter alone, called from a thread of its own as Streamlit's script thread calls it "
          f"(torch threads {torch.get_num_threads()}); paint() on the main thread beside it")
    all_strokes = face_strokes(strokes)
    drawings = [canvas_rgba(all_strokes[:1 + i]) for i in range(strokes)]
    hints = hint_rgba()
    for label, run_dir, n, hinted in cases(run, hints_run):
        sr = painting.read_sketch_run(run_dir)
        warm = normalise_framed(canvas_rgba(all_strokes[:2], 5), sr.size, sr.params)[0]
        first, _, _ = timed(paint, sr.dir, warm, {}, n, 0, hints=hints if hinted else None)
        got = {k: ([], []) for k in ("norm", "paint", "both", "main")}

        def add(key: str, wall: float, cpu: float) -> None:
            got[key][0].append(wall)
            got[key][1].append(cpu)

        def strokes_painted() -> None:
            for i, picture in enumerate(drawings):
                t_norm, c_norm, (lines, frame) = timed(normalise_framed, picture, sr.size, sr.params,
                                                       name="your drawing")      # as the page: the face crop
                given = framed(hints, frame) if hinted else None                  # ... and the hints cut to it
                t_paint, c_paint, faces = timed(paint, sr.dir, lines, {}, n, i, hints=given)
                assert len(faces) == n and faces[0].shape == (sr.size, sr.size, 3)
                add("norm", t_norm, c_norm)
                add("paint", t_paint, c_paint)
                add("both", t_norm + t_paint, c_norm + c_paint)
        worker = threading.Thread(target=strokes_painted)
        worker.start()
        worker.join()
        for i, picture in enumerate(drawings):
            lines, frame = normalise_framed(picture, sr.size, sr.params)
            add("main", *timed(paint, sr.dir, lines, {}, n, i, hints=framed(hints, frame) if hinted else None)[:2])
        print(f"  {label}: first paint() {first:.0f} ms (loads the generator; not in the figures)")
        row("painter", f"{label}: normalise_drawing", *got["norm"])
        row("painter", f"{label}: paint()", *got["paint"])
        row("painter", f"{label}: normalise + paint", *got["both"])
        row("painter", f"{label}: paint() on the main thread", *got["main"])


# ---------------------------------------------------------------- [2] AppTest
def bench_apptest(db: Path, run: Path, hints_run: Path | None, strokes: int) -> None:
    from streamlit import logger
    from streamlit.testing.v1 import AppTest

    logger.set_log_level("ERROR")             # not AppTest's "no runtime found" warnings
    from label_app import draw_hints, draw_page

    print("\n[2] one whole page rerun through AppTest after a new canvas picture (server side, no browser)")
    all_strokes = face_strokes(strokes)
    urls = [png_data_url(canvas_rgba(all_strokes[:1 + i])) for i in range(strokes)]
    warm = png_data_url(canvas_rgba(all_strokes[:2], 5))
    hint_url = png_data_url(hint_rgba())
    now = {"lines": None, "hints": None}
    # the canvases stand in: each rerun decodes the canvas's PNG, as the component's result does
    draw_page.canvas_picture = lambda nonce, stroke: None if now["lines"] is None else decoded(now["lines"])
    draw_hints.hint_canvas = lambda picture, colour, side, nonce: None if now["hints"] is None else decoded(
        now["hints"])
    os.environ["LABEL_APP_DB"] = str(db)
    for label, run_dir, n, hinted in cases(run, hints_run):
        os.environ["LABEL_APP_RUNS"] = str(run_dir.parent)
        draw_page._normalised.clear()             # every stroke makes a new drawing: nothing cached
        draw_hints._backdrop.clear()
        now.update(lines=warm, hints=hint_url if hinted else None)
        at = AppTest.from_file(str(SCRIPT), default_timeout=120).run()
        logger.set_log_level("ERROR")         # the loggers made since too
        at.text_input(key="who_name").input("bench-draw")
        at.button[0].click().run()
        at.segmented_control(key="mode").set_value("Draw").run()
        at.slider(key="draw_n").set_value(n).run()           # the first painting: loads the generator
        assert not at.exception and not at.error, (at.exception, at.error)
        caption = f"{n} faces painted {'with colour hints ' if hinted else ''}in"
        assert caption in " ".join(c.value for c in at.caption), [c.value for c in at.caption]
        ms, cpu, script = [], [], []
        for url in urls:
            now["lines"] = url
            t, c_ms, _ = timed(at.run)
            assert not at.exception and not at.error, (at.exception, at.error)
            assert caption in " ".join(c.value for c in at.caption)
            ms.append(t)
            cpu.append(c_ms)
            script.append(at.session_state["last_run_ms"])
        row("apptest", f"{label}: page script run (server time)", script)
        row("apptest", f"{label}: AppTest round trip (adds its polling)", ms, cpu)


# ---------------------------------------------------------------- [3] real Chromium
CAPTION = ("Array.from(document.querySelectorAll('[data-testid=stCaptionContainer]')).map(e => e.innerText)"
           ".find(t => / faces? painted /.test(t)) || ''")
LAST_IMAGE = "(Array.from(document.images).pop() || {}).src || ''"
SKETCH_IMAGE = "(document.images[0] || {}).src || ''"       # "as the model sees it": new with every stroke


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(db: Path, runs: Path, threads: str = "default") -> tuple[subprocess.Popen, str]:
    """`label-app` on a free port; `threads`: its --paint-threads ("default": label-app's own default)."""
    port = free_port()
    threads_option = [] if threads == "default" else ["--paint-threads", threads]
    proc = subprocess.Popen([sys.executable, "-m", "label_app.launch", "--db", str(db), "--runs", str(runs),
                             "--port", str(port), *threads_option], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=2).read()
            return proc, url
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"label-app did not start (exit {proc.poll()})") from None
            time.sleep(0.3)


def mouse_stroke(page, box: dict, points) -> None:
    """A stroke with the mouse, canvas pixels -> screen; the mouse is left down (the caller lifts it)."""
    sx, sy = box["width"] / SIDE, box["height"] / SIDE
    page.mouse.move(box["x"] + points[0][0] * sx, box["y"] + points[0][1] * sy)
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x * sx, box["y"] + y * sy, steps=2)


def first_stroke(page, box: dict, points, tries: int = 3) -> None:
    """A line stroke on an empty canvas, drawn again until the faces are painted (an untimed set-up)."""
    for attempt in range(tries):
        mouse_stroke(page, box, points)
        page.mouse.up()
        try:
            page.get_by_text("faces painted").wait_for(timeout=20_000)
            return
        except Exception:
            if attempt == tries - 1:
                raise
            page.wait_for_timeout(1000)


def hint_stroke(page, tries: int = 3) -> None:
    """One stroke of the hint brush over the left eye, until the faces are painted with it (the hint canvas
    takes the drawing as its backdrop after each line stroke, and a stroke drawn meanwhile can be lost)."""
    for attempt in range(tries):
        page.wait_for_timeout(500)
        hcanvas = page.locator(".st-key-draw-hints-1 canvas").last
        hcanvas.scroll_into_view_if_needed()
        mouse_stroke(page, hcanvas.bounding_box(), HINT)
        page.mouse.up()
        try:
            page.get_by_text("painted with colour hints").wait_for(timeout=20_000)
            page.wait_for_timeout(300)
            return
        except Exception:
            if attempt == tries - 1:
                raise


def wait_painted(page, before: tuple[str, str, str], timeout_ms: float) -> None:
    """Until the sketch as the model sees it has changed (this stroke reached the page: a rerun for any
    other reason changes the caption alone) and then the caption of the paintings (or, should the new
    one read the same, the last painting)."""
    page.wait_for_function(f"([c, i, s]) => {{const now = {CAPTION}; return ({SKETCH_IMAGE}) !== s && now !== '' "
                           f"&& (now !== c || ({LAST_IMAGE}) !== i)}}", arg=list(before), timeout=timeout_ms,
                           polling="raf")


def bench_browser(db: Path, run: Path, hints_run: Path | None, strokes: int, shot: Path | None,
                  server_threads: list[str]) -> None:
    import re
    from playwright.sync_api import sync_playwright

    print("\n[3] real Chromium (headless) on `label-app`: mouse-up -> the new painting's caption on screen")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        for (label, run_dir, n, hinted), threads in [(c, t) for t in server_threads for c in cases(run, hints_run)]:
            if threads != "default":
                label = f"{label}, --paint-threads {threads}"
            all_strokes = face_strokes(strokes + hinted)     # with hints, the first stroke is painted without
            proc, url = start_app(db, run_dir.parent, threads)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1300 if hinted else 900})
                page.goto(url)
                page.get_by_label("Your name").fill("bench-draw")
                page.get_by_role("button", name="Start labelling").click()
                page.get_by_text("Face #", exact=False).first.wait_for(timeout=60_000)
                page.get_by_text("Draw", exact=True).click()
                canvas = page.locator(".st-key-draw-canvas-0 canvas").last
                canvas.wait_for(timeout=60_000)
                page.get_by_text("Draw with the mouse or a pen").wait_for(timeout=60_000)
                box = canvas.bounding_box()
                mouse_stroke(page, box, _ellipse(160, 160, 60, 70))          # not timed: G loads
                page.mouse.up()
                page.get_by_text("4 faces painted").wait_for(timeout=120_000)
                if n != 4:
                    thumb = page.get_by_role("slider", name="Faces")
                    thumb.focus()
                    for _ in range(4 - n):
                        thumb.press("ArrowLeft")
                    page.get_by_text(f"{n} faces painted").wait_for(timeout=60_000)
                    page.wait_for_timeout(500)
                page.get_by_role("button", name="Clear drawing and upload").click()
                canvas = page.locator(".st-key-draw-canvas-1 canvas").last
                canvas.wait_for(timeout=60_000)
                page.get_by_text("Draw with the mouse or a pen").wait_for(timeout=60_000)
                page.wait_for_timeout(1000)              # the new canvas readies itself
                box = canvas.bounding_box()
                if hinted:       # not timed: a first line stroke (hints need a drawing), then a hint stroke
                    first_stroke(page, box, all_strokes.pop(0))
                    hint_stroke(page)
                    box = canvas.bounding_box()
                ms, own, cpu, lost = [], [], [], 0
                for pts in all_strokes:
                    before = tuple(page.evaluate(f"() => [{CAPTION}, {LAST_IMAGE}, {SKETCH_IMAGE}]"))
                    mouse_stroke(page, box, pts)
                    page.wait_for_timeout(50)
                    c0 = session_cpu_ms(proc.pid)
                    t0 = time.perf_counter()
                    page.mouse.up()
                    try:
                        wait_painted(page, before, 30_000)
                    except Exception:       # the stroke was lost, or could not be used: counted, said below
                        lost += 1
                        continue
                    elapsed = (time.perf_counter() - t0) * 1000
                    server_cpu = session_cpu_ms(proc.pid) - c0
                    caption = page.evaluate(f"() => {CAPTION}")
                    ms.append(elapsed)
                    cpu.append(server_cpu)
                    own.append(float(re.search(r" in (\d+) ms", caption).group(1)))
                    page.wait_for_timeout(150)   # a person lifts the pen between strokes
                row("browser", f"{label}: mouse-up -> new painting's caption", ms, cpu)
                row("browser", f"{label}: (its caption's painting time)", own)
                if lost:
                    print(f"  {label}: strokes with no new painting within 30 s: {lost} of {len(all_strokes)}")
                if shot is not None and n == 4 and not hinted and threads == server_threads[0]:
                    page.mouse.move(5, 5)
                    page.wait_for_timeout(500)
                    take_screenshot(page, shot)
                page.close()
            finally:
                os.killpg(proc.pid, 15)
                proc.wait(timeout=30)
        browser.close()


def take_screenshot(page, path: Path) -> None:
    """The Draw page's three columns, cropped to them; PNG with a palette if that keeps it small."""
    top = page.get_by_text("Draw a face", exact=True).bounding_box()
    main = page.locator("[data-testid=stMainBlockContainer]").bounding_box()
    bottom = page.get_by_role("button", name="Clear drawing and upload").bounding_box()
    pad = top["x"] - main["x"] - 16                     # the page's side padding, but 16 px
    clip = {"x": main["x"] + pad, "y": top["y"] - 16, "width": main["width"] - 2 * pad,
            "height": bottom["y"] + bottom["height"] + 16 - (top["y"] - 16)}
    raw = page.screenshot(clip=clip)
    im = Image.open(io.BytesIO(raw)).convert("RGB")
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, optimize=True)
    if path.stat().st_size > 200_000:
        im.quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    print(f"  screenshot: {path} ({path.stat().st_size / 1000:.0f} KB, {im.width}x{im.height})")


# ---------------------------------------------------------------- main
def machine(when: str) -> None:
    model = next((line.split(":", 1)[1].strip() for line in subprocess.run(
        ["lscpu"], capture_output=True, text=True).stdout.splitlines() if line.startswith("Model name")), "?")
    print(f"{when}: CPU {model}, {os.cpu_count()} cores, load average "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)


def summary() -> None:
    print(f"\nsummary (goal: p95 < {GOAL_MS:.0f} ms from the end of a stroke to the new painting)")
    print("  (CPU: this process's for painter and AppTest, the app server's for the browser; p50)")
    print(f"  {'level':<8} {'case':<72} {'p50 ms':>8} {'p95 ms':>8} {'p95/goal':>9} {'CPU ms':>8}")
    for level, name, ms, cpu in ROWS:
        print(f"  {level:<8} {name:<72} {statistics.median(ms):8.1f} {pct(ms, 95):8.1f} "
              f"{pct(ms, 95) / GOAL_MS:9.2f} {statistics.median(cpu) if cpu else float('nan'):8.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/draw_latency_bench"),
                    help="where the tiny catalog and the few-step runs are made (once)")
    ap.add_argument("--run", type=Path, help="time this sketch run instead of making one (needs --db)")
    ap.add_argument("--hints-run", type=Path, help="with --run: a run trained with --hints")
    ap.add_argument("--db", type=Path, help="with --run: the catalog the app opens")
    ap.add_argument("--strokes", type=int, default=24, help="strokes timed per case and level (20+)")
    ap.add_argument("--no-browser", action="store_true", help="levels 1 and 2 only")
    ap.add_argument("--browser-only", action="store_true", help="level 3 only")
    ap.add_argument("--paint-threads", default="default", help="comma-separated `label-app --paint-threads` "
                    "values, each timed in the browser (0: torch's own, one per core); default: label-app's (1)")
    ap.add_argument("--screenshot", type=Path, help="the Draw page after the strokes (n = 4), e.g. docs/draw_page.png")
    args = ap.parse_args()
    machine("start")
    if args.run and str(args.run).startswith("pretrained:"):
        db = args.db or prepare(args.work)[0]
        run = shipped_copy(str(args.run), args.work)
        hints_run = run if json.loads((run / "options.json").read_text()).get("hints") else None
        print(f"run: {args.run}, copied to {run} (the app's --runs then shows it first)")
    elif args.run:
        if args.db is None:
            sys.exit("--run needs --db (the catalog the app opens)")
        db, run, hints_run = args.db, args.run, args.hints_run
    else:
        db, run, hints_run = prepare(args.work)
        print(f"runs: {run} and, with --hints, {hints_run} (a few steps: latency only; the paintings are "
              "not a model's)")
    if not args.browser_only:
        bench_painter(run, hints_run, args.strokes)
        bench_apptest(db, run, hints_run, args.strokes)
    if not args.no_browser:
        bench_browser(db, run, hints_run, args.strokes, args.screenshot, args.paint_threads.split(","))
    summary()
    machine("end")


if __name__ == "__main__":
    main()
