"""`label-app`: start the Streamlit labelling app on a catalog.

Listens on 127.0.0.1 unless `--host` says otherwise; prints the URL to open. The Streamlit
server is a child process that stops with this one: SIGTERM, SIGINT and SIGHUP are passed on
to it, and on Linux the kernel stops it should this process die without a word (SIGKILL).
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from db import Catalog, CatalogError
from curate.conventions import CONTEXT, DEFAULT_DB_PATH, DbOption, VersionOption, fail

SCRIPT = Path(__file__).with_name("streamlit_app.py")
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
app = typer.Typer(rich_markup_mode=None, context_settings=CONTEXT, pretty_exceptions_enable=False)


def streamlit_command(db: Path, host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "streamlit", "run", str(SCRIPT), "--server.address", host,
            "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none", "--client.toolbarMode", "minimal"]


@app.command()
def run(
    db: DbOption = DEFAULT_DB_PATH,
    host: Annotated[str, typer.Option(help="Address to listen on; 0.0.0.0 exposes the app to your network.")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8501,
    runs: Annotated[Path, typer.Option(help="Folder of training runs: the Draw page paints with the sketch "
                                       "(pix2pix) runs in it.")] = Path("runs"),
    version: VersionOption = False,
) -> None:
    """Label faces in the browser: keyboard-first single view, grid view for bulk labels, progress,
    and a Draw page that paints a drawn face with a sketch model from --runs.

    Labels are written as source `manual` with your name; other sources are never changed.
    """
    db = db.expanduser().resolve()
    try:
        Catalog(db, create=False).close()  # fail here, with the file's name, not in the browser
    except CatalogError as e:
        fail(str(e))
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError as e:
            fail(f"cannot listen on {host}:{port} ({e.strerror}); pick another --port")
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    typer.echo(f"label-app on {db}\n  open http://{shown}:{port}   (Ctrl+C stops it)")
    env = dict(os.environ, LABEL_APP_DB=str(db), LABEL_APP_RUNS=str(runs.expanduser().resolve()))
    raise typer.Exit(run_child(streamlit_command(db, host, port), env))


def run_child(command: list[str], env: dict) -> int:
    """Run the server until it ends or we are told to stop; it never outlives us.

    A stop signal is passed on as SIGTERM (Streamlit shuts down cleanly on it); a second one
    kills the server. Returns the server's exit code, or 0 when we stopped it."""
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, preexec_fn=_die_with_parent)
    stopping: list[int] = []

    def stop(signum, frame) -> None:
        stopping.append(signum)
        if child.poll() is None:
            child.send_signal(signal.SIGTERM if len(stopping) == 1 else signal.SIGKILL)

    previous = {s: signal.signal(s, stop) for s in STOP_SIGNALS}
    try:
        code = child.wait()   # retried after each handler (PEP 475) until the server is gone
    finally:
        if child.poll() is None:   # an exception of our own: still take the server down
            child.kill()
            child.wait()
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 0 if stopping else code


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to send it SIGTERM when its parent dies."""
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
