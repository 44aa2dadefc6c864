"""Data shown on the page as text, never as markup.

File names, sources, annotators, tags and messages come from files and people. Streamlit reads
Markdown (links, emphasis, `$math$`, `:color[...]`) in markdown, captions, labels and alerts,
and HTML where `unsafe_allow_html` is on. `md()` writes every character that means something
to either as a numeric character reference, which both show as the character itself, so a
source named `<style>...` or `[x](http://...)` is shown, never obeyed: the one Markdown rule,
`curate.text.markdown_text`, which the compare report's report.md follows too.
"""

from __future__ import annotations

from curate.text import markdown_text


def md(text: object) -> str:
    """`text` for st.markdown / st.caption / widget labels / alerts, and inside our own HTML."""
    return markdown_text(text)
