"""The report's pages and folder: its sections written as `report.md` (pictures beside it) and as a
self-contained `index.html` (pictures embedded), every string from runs and catalogs shown as
text in both (curate.text.markdown_text for the one, html.escape for the other),
into a folder that never mixes with an older report; and how the pages name runs and tags, for
every section, a model's own (train.eval.hooks) included."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

from curate.text import MID_LINE, markdown_text

from train.runs import Run


class ReportError(Exception):
    """Runs that cannot be compared (not evaluated, nothing in common), or a folder a report may not use."""


@dataclass
class Section:
    title: str
    text: str = ""                                   # markdown-ish paragraph (plain text)
    table: list[list[str]] | None = None              # first row = header
    images: list[tuple[str, Path]] = field(default_factory=list)   # (caption, png)
    collapsed: bool = False                           # HTML: folded under its title
    items: list[str] = field(default_factory=list)    # a list, after the text
    reference_rows: int = 0                           # the table's last rows are references (shaded)


REPORT_FILES = ("index.html", "report.md", "summary.json")


def run_label(run: Run) -> str:
    labels = run.options.get("labels") or "uncond"
    return f"{run.dir.name} ({run.model}, {labels})"


def short_tag(tag: str) -> str:
    return tag.replace(" hair", "").replace(" eyes", "")


def prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    """An empty report folder: a report never mixes with the pictures of an older one. A folder
    holding files is refused, or with `overwrite` emptied first, if it holds only report files."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ReportError(f"{out_dir} is a file, not a report folder")
    entries = sorted(out_dir.iterdir()) if out_dir.is_dir() else []
    if entries and not overwrite:
        raise ReportError(f"{out_dir} is not empty (an older report?): a report is never mixed into older files; "
                          f"choose another -o, or pass --overwrite to empty it first")
    foreign = [e.name for e in entries if not (e.is_file() and (e.name in REPORT_FILES or e.suffix == ".png"))]
    if foreign:
        raise ReportError(f"{out_dir} holds {foreign[0]!r}, which no report writes: not emptying it; "
                          f"choose another -o")
    for e in entries:
        e.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)


def _md(text: str) -> str:
    """Every string of report.md (names from runs, catalogs and people among them) as text,
    never as Markdown or HTML: the one Markdown rule (curate.text.markdown_text); characters
    that mean nothing inside a line stay as they are, for people who read the file raw."""
    return markdown_text(text, MID_LINE)


def write_markdown(title: str, sections: list[Section], path: Path) -> Path:
    lines = [f"# {_md(title)}", ""]
    for s in sections:
        lines += [f"## {_md(s.title)}", ""]
        if s.text:
            lines += [_md(s.text), ""]
        if s.items:
            lines += [f"- {_md(item)}" for item in s.items] + [""]
        if s.table:
            lines.append("| " + " | ".join(_md(c) for c in s.table[0]) + " |")
            lines.append("|" + "---|" * len(s.table[0]))
            lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in s.table[1:]]
            lines.append("")
        for caption, png in s.images:   # png names are the report's own (safe_slug'd where from a name)
            lines += [f"![{_md(caption)}]({png.name})" + (f"  \n*{_md(caption)}*" if caption else ""), ""]
    path.write_text("\n".join(lines))
    return path


def _data_uri(png: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode()


CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}tr.ref td{background:#f4f4f4}
summary{font-size:1.5em;font-weight:bold;margin:0.83em 0;cursor:pointer}
.side{display:flex;gap:1.5em;flex-wrap:wrap;align-items:flex-start}figure{margin:0}figcaption{font-size:13px;color:#555}
img{image-rendering:pixelated;max-width:100%}"""


def write_html(title: str, sections: list[Section], path: Path, samples_side_by_side: bool = True) -> Path:
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>{CSS}</style>"
             f"</head><body><h1>{e(title)}</h1>"]
    for s in sections:
        parts.append(f"<details><summary>{e(s.title)}</summary>" if s.collapsed else f"<h2>{e(s.title)}</h2>")
        if s.text:
            parts.append(f"<p>{e(s.text)}</p>")
        if s.items:
            parts.append("<ul>" + "".join(f"<li>{e(item)}</li>" for item in s.items) + "</ul>")
        if s.table:
            parts.append("<table><tr>" + "".join(f"<th>{e(c)}</th>" for c in s.table[0]) + "</tr>")
            body = s.table[1:]
            parts += [("<tr class='ref'>" if k >= len(body) - s.reference_rows else "<tr>")
                      + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for k, row in enumerate(body)]
            parts.append("</table>")
        if s.images:
            parts.append("<div class='side'>" if samples_side_by_side else "<div>")
            for caption, png in s.images:
                parts.append(f"<figure><img src='{_data_uri(png)}' alt='{e(caption)}'>"
                             f"<figcaption>{e(caption)}</figcaption></figure>")
            parts.append("</div>")
        if s.collapsed:
            parts.append("</details>")
    parts.append("</body></html>")
    path.write_text("".join(parts))
    return path
