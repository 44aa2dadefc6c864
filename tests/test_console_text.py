"""Names from files and users are printed as text, never read as Rich markup."""

from __future__ import annotations

import unicodedata

import pytest
from typer.testing import CliRunner

from curate.cli import app
from db import Catalog

runner = CliRunner()


def run(*args) -> str:
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exit_code == 0, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    return r.output


def test_vocab_add_markup_names_prints_them_whole(tiny_catalog):
    out = run("vocab", "add", "[/bold]", "--group", "other", "--db", tiny_catalog)
    assert "[/bold]" in out
    out = run("vocab", "add", "cat ears [cosplay]", "--group", "other", "--db", tiny_catalog)
    assert "cat ears [cosplay]" in out
    out = run("vocab", "list", "--db", tiny_catalog)
    assert "[/bold]" in out and "cat ears [cosplay]" in out
    with Catalog(tiny_catalog) as cat:   # added once each, nothing else
        assert cat.group("other")["tags"][-2:] == ["[/bold]", "cat ears [cosplay]"]


@pytest.fixture
def markup_source(tiny_catalog):
    """tiny_catalog plus a label source named `[/x]` with a tag `[red]x[/red]` in a new group."""
    with Catalog(tiny_catalog) as cat:
        cat.add_group("[b]group", exclusive=True)
        cat.add_tag("[red]x[/red]", "[b]group")
        ids = cat.face_ids()
        cat.add_labels([(f, "blonde hair", 1.0) for f in ids] + [(f, "[red]x[/red]", 1.0) for f in ids],
                       "[/x]", "[/annotator]")
    return tiny_catalog


@pytest.mark.parametrize("args", [("vocab", "list"), ("labels", "sources"), ("stats",),
                                  ("agree", "manual", "[/x]", "--worst", "3")])
def test_a_source_named_like_markup_is_printed_as_text(markup_source, args):
    out = run(*args, "--db", markup_source)
    if args[0] == "vocab":
        assert "[b]group" in out and "[red]x[/red]" in out
    else:
        assert "[/x]" in out
    if args[0] in ("labels", "stats"):
        assert "[/annotator]" in out


def test_visible_writes_out_every_control_character():
    from curate.text import visible

    assert visible("blonde hair") == "blonde hair" and visible("çà [x] <b>") == "çà [x] <b>"
    shown = visible("a\x1b]0;pwned\x07b\nc\rd\te\x9b2J\u202efdp.exe\u2028")
    assert shown == "a\\x1b]0;pwned\\x07b\\nc\\rd\\te\\x9b2J\\u202efdp.exe\\u2028"
    assert all(ch.isprintable() for ch in shown)
    controls = [chr(c) for c in range(0x3000) if unicodedata.category(chr(c)) in ("Cc", "Zl", "Zp")]
    assert controls and all(visible(ch).isprintable() for ch in controls)


def test_labels_sources_shows_names_whole_and_controls_escaped(tiny_catalog):
    long_name = "animeface-palette-5f3a9c1e2b7d4a6f8e9d0c1b2a3f4e5d6c7b8a9"
    with Catalog(tiny_catalog) as cat:
        face = cat.face_ids()[0]
        cat.add_labels([(face, "blonde hair", 0.9)], "animeface", annotator=long_name)
        cat.add_labels([(face, "red eyes", 0.9)], "evil\x1b]0;pwned\x07\nsource")
    out = run("labels", "sources", "--db", tiny_catalog)
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in out.splitlines() if "│" in line]
    column = ["".join(row[i] for row in rows) for i in range(len(rows[0]))]
    assert long_name in column[-1]                          # folded over lines, never cut
    assert "\x1b" not in out and "evil\\x1b]0;pwned\\x07\\nsource" in column[0]


# -- control characters in names reach no terminal raw ---------------------------------------

EVIL = "\x1b]0;x\x07\n"        # retitles the window, then starts a forged line
SHOWN = "\\x1b]0;x\\x07\\n"     # what the terminal gets instead


def run_wide(*args) -> str:
    """`run` on a terminal wide enough that no table folds a name over lines."""
    r = runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "400"})
    assert r.exit_code == 0 and (r.exception is None or isinstance(r.exception, SystemExit)), r.output
    return r.output


def assert_escaped(out: str, *names: str) -> None:
    assert "\x1b" not in out and "\x07" not in out, out
    for name in names:
        assert name.replace(EVIL, SHOWN) in out, (name, out)


@pytest.fixture
def evil_names(tiny_catalog):
    """tiny_catalog where a group, a tag, a label source, an annotator, a source path and a
    rejection reason each hold ESC ... BEL and a newline."""
    with Catalog(tiny_catalog) as cat:
        cat.add_group(f"g{EVIL}roup", exclusive=True)
        cat.add_tag(f"t{EVIL}ag", f"g{EVIL}roup")
        cat.add_tag("plain", f"g{EVIL}roup")
        ids = cat.face_ids()
        cat.add_labels([(f, f"t{EVIL}ag" if i % 2 else "plain", 1.0) for i, f in enumerate(ids)],
                       f"s{EVIL}rc", f"a{EVIL}nn")
        cat.conn.execute("UPDATE sources SET path = ? WHERE id = 2", (f"/pics/p{EVIL}ath.png",))
        cat.conn.commit()
        cat.set_face_status(ids[-1], "rejected", reason=f"r{EVIL}eason")
    return tiny_catalog


def test_crop_error_list_shows_control_characters_as_escapes(tmp_path):
    folder = tmp_path / "raw"
    folder.mkdir()
    (folder / f"bad{EVIL}name.png").write_bytes(b"not a picture")
    out = run_wide("crop", folder, "--db", tmp_path / "c.db", "--no-progress", "-j", "1")
    assert "error: " in out
    assert_escaped(out, f"bad{EVIL}name.png")


def test_show_shows_control_characters_as_escapes(evil_names):
    with Catalog(evil_names) as cat:
        face = cat.query("SELECT id FROM faces WHERE source_id = 2")[0]["id"]   # labelled t{EVIL}ag
    out = run_wide("show", face, "--db", evil_names)
    assert_escaped(out, f"/pics/p{EVIL}ath.png", f"s{EVIL}rc", f"a{EVIL}nn", f"t{EVIL}ag")


def test_stats_shows_control_characters_as_escapes(evil_names):
    out = run_wide("stats", "--db", evil_names)
    assert_escaped(out, f"s{EVIL}rc", f"a{EVIL}nn", f"t{EVIL}ag", f"r{EVIL}eason")


def test_vocab_list_shows_control_characters_as_escapes(evil_names):
    assert_escaped(run_wide("vocab", "list", "--db", evil_names), f"g{EVIL}roup", f"t{EVIL}ag")


@pytest.mark.parametrize("fmt", ["dataset-json", "webdataset"])
def test_export_summaries_show_control_characters_as_escapes(evil_names, tmp_path, fmt):
    out = run_wide("export", "-o", tmp_path / "out", "--format", fmt, "--group", f"g{EVIL}roup", "--labels",
              f"s{EVIL}rc", "--no-progress", "--db", evil_names)
    assert_escaped(out, f"t{EVIL}ag")
