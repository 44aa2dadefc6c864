"""The `train` typer app; command modules register themselves on it."""

from __future__ import annotations

from curate.conventions import fail, make_app  # noqa: F401  (the commands import fail from here)

app = make_app("Train and evaluate GANs on the catalog's labelled faces.")
