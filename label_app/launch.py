"""`label-app`: start the Streamlit labelling app on a catalog.

Listens on 127.0.0.1 unless `--host` says otherwise; prints the URL to open.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from db import DEFAULT_DB, Catalog, CatalogError

SCRIPT = Path(__file__).with_name("streamlit_app.py")
app = typer.Typer(rich_markup_mode=None, add_completion=False, pretty_exceptions_enable=False)


def fail(message: str) -> None:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(2)


def streamlit_command(db: Path, host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "streamlit", "run", str(SCRIPT), "--server.address", host,
            "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none", "--client.toolbarMode", "minimal"]


@app.command()
def run(
    db: Annotated[Path, typer.Option("--db", help="The catalog to label.", envvar="CURATE_DB")] = Path(DEFAULT_DB),
    host: Annotated[str, typer.Option(help="Address to listen on; 0.0.0.0 exposes the app to your network.")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8501,
) -> None:
    """Label faces in the browser: keyboard-first single view, grid view for bulk labels, progress.

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
    env = dict(os.environ, LABEL_APP_DB=str(db))
    try:
        code = subprocess.call(streamlit_command(db, host, port), env=env, stdout=subprocess.DEVNULL)
    except KeyboardInterrupt:
        code = 0
    raise typer.Exit(code)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
