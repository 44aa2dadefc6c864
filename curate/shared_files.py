"""The `../shared` folder that travels beside a checkout (test data: the LBP cascade, hand
drawings): found beside the working directory or beside this checkout, so a file it holds is
used offline instead of being downloaded or silently skipped."""

from __future__ import annotations

from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]


def shared_path(*parts: str) -> Path | None:
    """`shared/<parts>` beside the working directory or beside the checkout, if it exists."""
    for root in (Path.cwd().parent, CHECKOUT.parent):
        candidate = root.joinpath("shared", *parts)
        if candidate.exists():
            return candidate
    return None
