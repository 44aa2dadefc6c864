"""The labelling app shows data as text, and its server never outlives `label-app`."""

from __future__ import annotations

import html
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, png_bytes
from db import Catalog
from label_app import keyboard
from label_app.safe_text import md

SCRIPT = str(ROOT / "label_app" / "streamlit_app.py")
STYLE = "<style>body{display:none}</style>"
LINK = "<a href='http://evil.example'>click</a>"
MD_LINK = "[click](http://evil.example)"


def test_md_leaves_no_markup():
    for text in (STYLE, LINK, MD_LINK, "**bold** $x$ :red[y] `code`\n# heading"):
        out = md(text)
        assert "<" not in out and ">" not in out and "[" not in out and "*" not in out and "\n" not in out
    assert md("blonde hair") == "blonde hair"


@pytest.fixture
def hostile_catalog(tmp_path) -> Path:
    """A face whose source file, label source, annotator and tag carry markup."""
    folder = tmp_path / "pics"
    folder.mkdir()
    picture = folder / "<img src=x onerror=alert(1)>[a](javascript:alert(2)).png"
    picture.write_bytes(png_bytes(1, 64))
    path = tmp_path / "hostile.db"
    with Catalog(path) as cat:
        sid = cat.save_source(str(picture), sha256="0" * 64, size=1, width=64, height=64, status="ok",
                              detector="none")
        fid = cat.add_face(source_id=sid, image=png_bytes(1), format="png", width=32, height=32,
                           detector=STYLE, box_x=0, box_y=0, box_w=64, box_h=64)
        cat.add_group(f"{MD_LINK}group", exclusive=True)
        cat.add_tag(LINK, f"{MD_LINK}group")
        cat.add_labels([(fid, "blonde hair", 0.9), (fid, LINK, 0.8)], STYLE)
        cat.add_labels([(fid, "red eyes", 1.0)], "manual", annotator=MD_LINK + LINK)
    return path


def _shown_text(at: AppTest) -> list[str]:
    texts = [e.value for kind in ("markdown", "caption", "error", "warning", "info", "success")
             for e in getattr(at, kind)]
    texts += [b.label for b in at.button] + [b.help or "" for b in at.button] + [c.label for c in at.checkbox]
    return [t for t in texts if not t.startswith("<style>\n  .block-container")]   # the page's own CSS


def test_markup_in_data_is_shown_not_obeyed(hostile_catalog, monkeypatch):
    monkeypatch.setenv("LABEL_APP_DB", str(hostile_catalog))
    at = AppTest.from_file(SCRIPT, default_timeout=30).run()
    at.text_input(key="who_name").input(MD_LINK + "<b>me</b>")
    at.button[0].click().run()
    assert not at.exception
    at.selectbox(key="f_source").set_value(STYLE).run()
    assert not at.exception
    texts = _shown_text(at)
    joined = "\n".join(texts)
    assert md(STYLE) in joined and md(LINK) in joined and md("<img src=x onerror=alert(1)>") in joined
    assert md(MD_LINK + "<b>me</b>") in joined    # the sidebar's annotator
    for text in texts:
        # Our own markup stays (<div>, <span class='p'>, <b>), data never brings any
        for bad in ("<style", "<a ", "<img", "](http", "](javascript", "<b>me"):
            assert bad not in text, text
        # GFM links a bare URL even after references are decoded: it must not read as one then
        assert "http://evil" not in html.unescape(text), text


def test_a_stored_hotkey_cannot_end_the_key_script(monkeypatch):
    shown = []
    import streamlit as st
    monkeypatch.setattr(st, "iframe", lambda html, height: shown.append(html), raising=False)
    keyboard.install({"</script><script>alert(1)</script>": "tag-x"})
    assert "</script><script>" not in shown[0] and shown[0].count("</script>") == 1


# -- the server stops with label-app ----------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_until_up(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read()
            return
        except OSError:
            assert time.monotonic() < deadline and proc.poll() is None, "label-app did not come up"
            time.sleep(0.3)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_stopping_label_app_stops_its_server(tiny_catalog, signum):
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "label_app.launch", "--db", str(tiny_catalog),
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env, start_new_session=True)
    try:
        _wait_until_up(port, proc)
        children = _children(proc.pid)
        assert children
        proc.send_signal(signum)          # the parent only, as `kill PID` or a closed terminal does
        proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while any(_alive(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(c) for c in children), "the Streamlit server outlived label-app"
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)   # whatever is left of the test's own group
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


# -- DNS rebinding: on loopback, only loopback Host headers are taken (issue 24, item 10) -------

def _websocket_status(port: int, host_header: str) -> int:
    """The HTTP status of a WebSocket upgrade to the app's stream with this Host header."""
    request = (f"GET /_stcore/stream HTTP/1.1\r\nHost: {host_header}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: streamlit\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request.encode())
        return int(s.recv(1024).split(b" ", 2)[1])


def test_on_loopback_the_app_refuses_foreign_host_headers(tiny_catalog):
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "label_app.launch", "--db", str(tiny_catalog),
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=env, start_new_session=True, text=True)
    try:
        _wait_until_up(port, proc)
        assert _websocket_status(port, f"127.0.0.1:{port}") == 101
        assert _websocket_status(port, f"localhost:{port}") == 101
        assert _websocket_status(port, f"rebind.evil.example:{port}") != 101
        assert _websocket_status(port, "rebind.evil.example") != 101
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_a_network_host_is_named_and_warned_about(tiny_catalog, monkeypatch):
    from typer.testing import CliRunner

    from label_app import launch

    assert launch.is_loopback("127.0.0.1") and launch.is_loopback("localhost") and launch.is_loopback("::1")
    assert not launch.is_loopback("0.0.0.0") and not launch.is_loopback("192.168.1.5")
    assert "--server.allowedHosts" in launch.streamlit_command(Path("x.db"), "127.0.0.1", 8501)
    assert "--server.allowedHosts" not in launch.streamlit_command(Path("x.db"), "0.0.0.0", 8501)
    monkeypatch.setattr(launch.socket, "gethostbyname_ex", lambda name: (name, [], ["10.1.2.3", "127.0.1.1"]))
    assert launch.addresses_shown("0.0.0.0") == ["10.1.2.3", "127.0.0.1"]
    monkeypatch.setattr(launch, "run_child", lambda command, env: 0)
    monkeypatch.setattr(launch.socket.socket, "bind", lambda self, address: None)
    r = CliRunner().invoke(launch.app, ["--db", str(tiny_catalog), "--host", "0.0.0.0", "--port", "8123"])
    assert r.exit_code == 0, r.output
    assert "listening on 0.0.0.0:8123" in r.output and "open http://10.1.2.3:8123" in r.output
    assert "anyone who can reach this machine can open the app" in r.output
    r = CliRunner().invoke(launch.app, ["--db", str(tiny_catalog), "--port", "8123"])
    assert "open http://127.0.0.1:8123" in r.output and "warning" not in r.output
