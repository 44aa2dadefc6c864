"""`label-app`: start the Streamlit labelling app on a catalog.

Listens on 127.0.0.1 unless `--host` says otherwise; prints the URL to open. On a loopback
address the server takes only loopback Host headers, so a web page whose name an attacker
re-resolves to 127.0.0.1 (DNS rebinding) cannot talk to it; another address is warned about,
since anyone who can reach it can label. The Streamlit
server is a child process that stops with this one: SIGTERM, SIGINT and SIGHUP are passed on
to it, and on Linux the kernel stops it should this process die without a word (SIGKILL).
"""

from __future__ import annotations

import ctypes
import ipaddress
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
# The Host names a browser sends for a loopback server (Streamlit compares them without the port).
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
app = typer.Typer(rich_markup_mode=None, context_settings=CONTEXT, pretty_exceptions_enable=False)


def streamlit_command(db: Path, host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "streamlit", "run", str(SCRIPT), "--server.address", host,
            "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none", "--client.toolbarMode", "minimal",
            *[arg for name in (LOOPBACK_HOSTS if is_loopback(host) else ())
              for arg in ("--server.allowedHosts", name)]]


def is_loopback(host: str) -> bool:
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def addresses_shown(host: str) -> list[str]:
    """The addresses people can open: `host` itself, or this machine's own for 0.0.0.0 / ::."""
    if host not in ("0.0.0.0", "::"):
        return [host]
    try:
        found = socket.gethostbyname_ex(socket.gethostname())[2]
    except OSError:
        found = []
    return [a for a in found if not is_loopback(a)] + ["127.0.0.1"]


@app.command()
def run(
    db: DbOption = DEFAULT_DB_PATH,
    host: Annotated[str, typer.Option(help="Address to listen on; 0.0.0.0 exposes the app to your network.")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8501,
    runs: Annotated[Path, typer.Option(help="Folder of training runs: the Draw page paints with the sketch "
                                       "(pix2pix) runs in it.")] = Path("runs"),
    learn: Annotated[int, typer.Option(min=0, help="Retrain the judge tagger in the background after every N "
                                       "new manual labels (`curate tag --tagger judge --labels manual`, one at a "
                                       "time); its queues re-rank on the new probabilities. 0: never.")] = 0,
    paint_threads: Annotated[int, typer.Option(min=0, help="Torch threads the Draw page paints with: 1 keeps a "
                                               "stroke's painting quick when other jobs share the cores (on a "
                                               "busy 2-core machine 2 threads took 1.7x as long, with spikes of "
                                               "1 s); 0: torch's own, one per core.")] = 1,
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
    typer.echo(f"label-app on {db}")
    for address in addresses_shown(host):
        typer.echo(f"  open http://{'[' + address + ']' if ':' in address else address}:{port}   (Ctrl+C stops it)")
    if not is_loopback(host):
        typer.echo(f"  listening on {host}:{port}")
        typer.echo(f"warning: --host {host} is reachable from the network: anyone who can reach this "
                   f"machine can open the app and label as anyone", err=True)
    if learn:
        typer.echo(f"  the judge retrains after every {learn} new labels")
    env = dict(os.environ, LABEL_APP_DB=str(db), LABEL_APP_RUNS=str(runs.expanduser().resolve()),
               LABEL_APP_LEARN=str(learn), LABEL_APP_PAINT_THREADS=str(paint_threads))
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
