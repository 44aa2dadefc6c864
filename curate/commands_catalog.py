"""Catalog commands: labels import, split, stats, export, vocab."""

from __future__ import annotations

from .app import app  # noqa: F401
