"""Names from files and people (file names, tags, sources, annotators) shown as text, never as
commands to what shows them; one rule per medium, written once:

- `visible()`, the terminal: every control character is written out as its escape (`\\x1b`,
  `\\n`, `\\u202e`), so a name can neither move the cursor, retitle the window, clear the
  screen, nor forge a line of output, and a reader still sees exactly which bytes it holds.
- `markdown_text()`, Markdown and the HTML around it (the labelling app's pages through
  `label_app.safe_text.md`, the compare report's report.md): every character that means
  something to Markdown (links, emphasis, `$math$`, `:color[...]`) or to HTML is written as a
  numeric character reference, which both show as the character itself, so a source named
  `<img src=x onerror=...>` or `[x](javascript:...)` is shown, never obeyed.
"""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, the Unicode line/paragraph separators and the bidirectional
# overrides and isolates (which reorder what the reader sees)
_CONTROLS = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), 0x2028, 0x2029, *range(0x202A, 0x202F),
             *range(0x2066, 0x206A)]
_VISIBLE = {c: (f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}") for c in _CONTROLS}
_VISIBLE.update({ord("\t"): "\\t", ord("\n"): "\\n", ord("\r"): "\\r"})

MARKDOWN_SPECIAL = frozenset("\\`*_{}[]()<>#+-.!|~&\"'$:=^@")
# GFM turns bare "http://...", "www...." and e-mail addresses in plain text into links after
# references are decoded; an invisible word joiner inside the pattern keeps them text.
AUTOLINK = re.compile(r"(?i)(?<=[a-z])(?=://)|(?<=www)(?=\.)|(?=@)")
WORD_JOINER = "\u2060"
# What means nothing to Markdown inside a line of text (only where a line or block starts, or
# after a `[...]`, which is always escaped): a document escaping everything it writes may keep
# these, for a file people also read raw.
MID_LINE = frozenset(".-+#:()!='\"^{}")


def visible(name: object) -> str:
    """`name` as a string with its control characters made visible."""
    return str(name).translate(_VISIBLE)


def _opens_block(text: str) -> int | None:
    """Where `text` would open a block if it started a line: `- x`, `+ x`, `# x`, `---`, `1. x`,
    `1) x` (the index of the marker), else None."""
    lead = len(text) - len(text.lstrip("0123456789"))
    if lead >= len(text) or (lead and text[lead] not in ".)"):
        return None
    after = text[lead + 1:lead + 2]
    return lead if after in ("", " ", "\t") or (not lead and after == text[lead]) else None


def markdown_text(text: object, keep: frozenset[str] | str = frozenset()) -> str:
    """`text` as Markdown (or HTML) that shows it as it is, on one line. `keep`: special
    characters written as they are (e.g. MID_LINE, for text that never starts a line on its
    own), except a marker that would open a list, heading or rule where the text starts."""
    text = AUTOLINK.sub(WORD_JOINER, str(text))
    marker = _opens_block(text) if keep else None
    return "".join(f"&#{ord(c)};" if c in MARKDOWN_SPECIAL and (c not in keep or i == marker)
                   else " " if c in "\r\n" else c for i, c in enumerate(text))
