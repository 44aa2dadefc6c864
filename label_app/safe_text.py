"""Data shown on the page as text, never as markup.

File names, sources, annotators, tags and messages come from files and people. Streamlit reads
Markdown (links, emphasis, `$math$`, `:color[...]`) in markdown, captions, labels and alerts,
and HTML where `unsafe_allow_html` is on. `md()` writes every character that means something
to either as a numeric character reference, which both show as the character itself, so a
source named `<style>...` or `[x](http://...)` is shown, never obeyed.
"""

from __future__ import annotations

import re

SPECIAL = frozenset("\\`*_{}[]()<>#+-.!|~&\"'$:=^@")
# GFM turns bare "http://...", "www...." and e-mail addresses in plain text into links after
# references are decoded; an invisible word joiner inside the pattern keeps them text.
AUTOLINK = re.compile(r"(?i)(?<=[a-z])(?=://)|(?<=www)(?=\.)|(?=@)")
WORD_JOINER = "\u2060"


def md(text: object) -> str:
    """`text` for st.markdown / st.caption / widget labels / alerts, and inside our own HTML."""
    text = AUTOLINK.sub(WORD_JOINER, str(text))
    return "".join(f"&#{ord(c)};" if c in SPECIAL else " " if c in "\r\n" else c for c in text)
