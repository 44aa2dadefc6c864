"""Names from files and people (file names, tags, sources, annotators) shown in a terminal as
text: every control character is written out as its escape (`\\x1b`, `\\n`, `\\u202e`), so a
name can neither move the cursor, retitle the window, clear the screen, nor forge a line of
output, and a reader still sees exactly which bytes the name holds. The one rule for the
terminal; `label_app.safe_text` is the one for the page."""

from __future__ import annotations

# C0 and C1 controls, DEL, the Unicode line/paragraph separators and the bidirectional
# overrides and isolates (which reorder what the reader sees)
_CONTROLS = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), 0x2028, 0x2029, *range(0x202A, 0x202F),
             *range(0x2066, 0x206A)]
_VISIBLE = {c: (f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}") for c in _CONTROLS}
_VISIBLE.update({ord("\t"): "\\t", ord("\n"): "\\n", ord("\r"): "\\r"})


def visible(name: object) -> str:
    """`name` as a string with its control characters made visible."""
    return str(name).translate(_VISIBLE)
