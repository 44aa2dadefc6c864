"""One CLI: every command of `curate`, `train` and `label-app` spells the shared options the same
way (README, "Conventions"; the definitions are in curate/conventions.py), and answers -h."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from PIL import Image
from typer.testing import CliRunner

import curate.cli
import label_app.launch
import train.cli
from db import Catalog
from test_colors import shared_faces_catalog

runner = CliRunner()
APPS = {"curate": curate.cli.app, "train": train.cli.app, "label-app": label_app.launch.app}


def commands():
    """(path, click command) of every command and group of the three programs."""
    out = []

    def walk(path, cmd):
        out.append((path, cmd))
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(path + [name], sub)
    for name, app in APPS.items():
        walk([name], typer.main.get_command(app))
    return out


COMMANDS = commands()
SPELLINGS = {   # any one of these names means the option must be spelled exactly so
    ("-n", "--n"): {"-n", "--n", "--count"},
    ("-o", "--out"): {"-o", "--out", "--output"},
    ("-j", "--jobs"): {"-j", "--jobs", "--workers"},
}
NEVER = {"--source", "--output", "--workers", "--dir", "--catalog", "--count"}


def options(cmd):
    return [p for p in cmd.params if getattr(p, "param_type_name", "") == "option"]


def by_name(cmd, name):
    return next((p for p in options(cmd) if name in p.opts), None)


def test_arguments_are_named_in_capitals():
    """`crop {FOLDER}` beside `show {FACE}`, never `{folder}` (issue 25)."""
    for path, cmd in COMMANDS:
        for p in cmd.params:
            if getattr(p, "param_type_name", "") == "argument":
                name = p.metavar and p.metavar.split(".")[0]     # OUT.csv: a name and the file's kind
                assert name and name.upper() == name, f"{' '.join(path)}: argument {p.name}"


def test_every_command_answers_h():
    assert len(COMMANDS) > 30
    for path, cmd in COMMANDS:
        app = APPS[path[0]]
        r = runner.invoke(app, path[1:] + ["-h"])
        assert r.exit_code == 0 and "Usage:" in r.output, (path, r.output)


@pytest.mark.parametrize("program", ["curate", "train"])
def test_every_command_is_in_its_programs_table(program):
    table = {"curate": curate.cli.COMMANDS, "train": train.cli.COMMANDS}[program]
    assert sorted(typer.main.get_command(APPS[program]).commands) == sorted(table)   # what a run can load lazily


@pytest.mark.parametrize("argv, loaded", [
    (["curate", "--version"], []),
    (["curate", "stats", "--help"], ["curate.commands.catalog"]),
    (["curate", "agree", "--help"], ["curate.commands.quality"]),
    (["train", "--version"], []),
])
def test_a_run_imports_only_the_command_invoked(argv, loaded):
    code = (f"import sys; sys.argv = {argv!r}; import {argv[0]}.cli as cli\n"
            "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith(('curate.commands.', 'train.commands.')) "
            "or m == 'torch'))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == repr(loaded)


@pytest.mark.parametrize("program", list(APPS))
def test_version_and_completion(program):
    r = runner.invoke(APPS[program], ["--version"])
    assert r.exit_code == 0 and re.fullmatch(r"\d+\.\d+\.\d+\S*|animeface-gan-study.*", r.output.strip())
    assert "--install-completion" in runner.invoke(APPS[program], ["-h"]).output


def test_shared_options_are_spelled_the_same_everywhere():
    for path, cmd in COMMANDS:
        where = " ".join(path)
        for p in options(cmd):
            names = set(p.opts) | set(p.secondary_opts)
            assert not names & NEVER, f"{where}: {sorted(names & NEVER)}"
            for spelled, aliases in SPELLINGS.items():
                if names & aliases:
                    assert tuple(p.opts) == spelled, f"{where}: {p.opts} should be {spelled}"
            if "--device" in names:
                assert p.default == "auto", f"{where}: --device defaults to {p.default!r}"
            if "--progress" in names:
                assert p.secondary_opts == ["--no-progress"] and p.default is True, where
            if "--db" in names:
                assert p.envvar == "CURATE_DB", where
            if "--json" in names or "--dry-run" in names:
                assert p.is_flag, where
            if "--labels" in names:
                assert "label source" in (p.help or "").lower() or "source" in (p.help or ""), where


@pytest.mark.parametrize("path, option", [
    *[(p, "--progress") for p in (["curate", "crop"], ["curate", "import"], ["curate", "sketch"],
                                  ["curate", "tag"], ["curate", "calibrate-colors"], ["train", "acgan"],
                                  ["train", "judge"], ["train", "eval"], ["train", "experiment"])],
    *[(p, "-j") for p in (["curate", "crop"], ["curate", "import"], ["curate", "sketch"], ["curate", "tag"],
                          ["curate", "calibrate-colors"])],
    *[(p, "--json") for p in (["curate", "labels", "sources"], ["curate", "agree"], ["curate", "vocab", "list"],
                              ["curate", "stats"], ["curate", "show"], ["train", "judge"], ["train", "eval"],
                              ["train", "runs"])],
    *[(p, "--device") for p in (["curate", "tag"], ["train", "acgan"], ["train", "sample"])],
    *[(p, "-n") for p in (["curate", "stats"], ["curate", "suspects"], ["train", "eval"], ["train", "sample"],
                          ["train", "experiment"])],
    *[(p, "-o") for p in (["curate", "calibrate-colors"], ["curate", "show"], ["train", "sample"],
                          ["train", "animate"], ["train", "judge"], ["train", "compare"], ["curate", "export"],
                          ["curate", "labels", "export"])],
    (["curate", "export"], "--overwrite"), (["curate", "split"], "--labels"),
    (["curate", "tag"], "--target"), (["curate", "tag"], "--labels"), (["curate", "labels", "import"], "--target"),
    (["curate", "export"], "--labels"), (["curate", "suspects"], "--labels"), (["train", "acgan"], "--labels"),
    (["curate", "tag"], "--model-dir"), (["curate", "i2v", "download"], "--model-dir"),
    (["curate", "suspects"], "--judge-source"),
    *[(p, "--columns") for p in (["curate", "stats"], ["train", "sample"])],
    *[(["train", "experiment"], o) for o in ("--quick", "--judge-epochs")],
    (["train", "sample"], "--progress"),
])
def test_the_commands_that_need_an_option_have_it(path, option):
    cmd = dict((tuple(p), c) for p, c in COMMANDS)[tuple(path)]
    assert by_name(cmd, option) is not None, f"{' '.join(path)} has no {option}"


OLD_SPELLINGS = {"--force": "--overwrite", "--stratify": "--labels"}   # still work for one release, unlisted


def test_old_spellings_are_hidden_from_help():
    for path, cmd in COMMANDS:
        for p in options(cmd):
            if set(p.opts) & set(OLD_SPELLINGS):
                assert p.hidden, f"{' '.join(path)}: {p.opts} is an old spelling: hide it"


@pytest.mark.parametrize("old, new, note", [
    (["export", "{out}", "--format", "csv"], ["export", "-o", "{out}", "--format", "csv"],
     "`curate export OUT` is now spelled `curate export -o OUT`"),
    (["export", "-o", "{full}", "--force"], ["export", "-o", "{full}", "--overwrite"],
     "--force is now spelled --overwrite"),
    (["labels", "export", "{out}.csv"], ["labels", "export", "-o", "{out}.csv"],
     "`curate labels export OUT.csv` is now spelled `curate labels export -o OUT.csv`"),
    (["split", "--stratify", "manual", "--reassign"], ["split", "--labels", "manual", "--reassign"],
     "--stratify is now spelled --labels"),
])
def test_old_spellings_still_work_with_a_note_on_stderr(tiny_catalog, tmp_path, old, new, note):
    full = tmp_path / "full"     # an export there already, for --overwrite to replace
    assert runner.invoke(curate.cli.app, ["export", "-o", str(full), "--db", str(tiny_catalog)]).exit_code == 0
    for args, is_old in ((old, True), (new, False)):
        out = tmp_path / ("old" if is_old else "new")
        r = runner.invoke(curate.cli.app, [a.format(out=out, full=full) for a in args] + ["--db", str(tiny_catalog)])
        assert r.exit_code == 0, r.output
        assert (note in r.stderr) == is_old and note not in r.stdout, r.stderr
        assert len([line for line in r.stderr.splitlines() if line.startswith("note:")]) == is_old


def test_judge_names_a_file_and_judge_source_a_label_source(tiny_catalog):
    """`--judge` is a judge file in `train eval`/`experiment`; `curate suspects` calls the source the
    judge tagger wrote `--judge-source` (issue 25); its old `--judge` still works, hidden, with a note."""
    suspects = dict((tuple(p), c) for p, c in COMMANDS)[("curate", "suspects")]
    assert by_name(suspects, "--judge").hidden and not by_name(suspects, "--judge-source").hidden
    for args, is_old in ((["--judge", "judge"], True), (["--judge-source", "judge"], False)):
        r = runner.invoke(curate.cli.app, ["suspects", *args, "--db", str(tiny_catalog)])
        assert r.exit_code == 2 and "no 'judge' probabilities" in r.output
        assert ("--judge is now spelled --judge-source" in r.stderr) == is_old


def test_an_output_given_twice_or_not_at_all_is_one_error(tiny_catalog, tmp_path):
    db = ["--db", str(tiny_catalog)]
    r = runner.invoke(curate.cli.app, ["export", str(tmp_path / "a"), "-o", str(tmp_path / "b"), *db])
    assert r.exit_code == 2 and "error: OUT given twice" in r.output
    r = runner.invoke(curate.cli.app, ["labels", "export", *db])
    assert r.exit_code == 2 and "error: give the output to write: curate labels export -o OUT.csv" in r.output


@pytest.mark.parametrize("program, args", [("curate", ["stats", "--nope"]), ("curate", ["--nope"]),
                                           ("curate", ["labels", "nope"]), ("curate", ["split", "--val", "x"]),
                                           ("curate", ["show"]), ("train", ["acgan", "--nope"])])
def test_usage_errors_begin_error_as_every_other_error(program, args):
    r = runner.invoke(APPS[program], args)
    assert r.exit_code == 2
    last = r.output.strip().splitlines()[-1]
    assert last.startswith("error: ") and "Error:" not in r.output, r.output
def test_images_per_row_are_columns_and_epochs_are_written_alike_everywhere(tiny_catalog, tmp_path):
    """issue 25: images per row are --columns (the old --nrow is hidden, and says so); the judge's
    --epochs takes a number as the models' does (10.0), refusing a fraction in one line."""
    for path, cmd in COMMANDS:
        p = by_name(cmd, "--nrow")
        assert p is None or p.hidden, f"{' '.join(path)}: --nrow shown; images per row are --columns"
    out = tmp_path / "judge.pt"
    r = runner.invoke(train.cli.app, ["judge", "--db", str(tiny_catalog), "--epochs", "1.0", "--width", "4",
                                      "-o", str(out), "--no-progress", "--json"])
    assert r.exit_code == 0 and out.is_file(), r.output
    r = runner.invoke(train.cli.app, ["judge", "--db", str(tiny_catalog), "--epochs", "2.5"])
    assert r.exit_code == 2 and "whole number" in r.output
    r = runner.invoke(train.cli.app, ["experiment", "--db", str(tiny_catalog), "--judge-epochs", "2.5"])
    assert r.exit_code == 2 and "--judge-epochs" in r.output and "whole number" in r.output


def test_the_old_word_source_says_what_replaced_it(tiny_catalog):
    r = runner.invoke(curate.cli.app, ["labels", "export", "x.csv", "--source", "manual", "--db", str(tiny_catalog)])
    assert r.exit_code == 2 and "--labels where a command reads it, --target where it writes it" in r.output


# -- the outputs people script, and the human ones --------------------------------------------

def test_json_of_labels_sources_vocab_and_show(tiny_catalog):
    db = ["--db", str(tiny_catalog)]
    sources = json.loads(runner.invoke(curate.cli.app, ["labels", "sources", "--json", *db]).stdout)
    assert sources == [{"source": "manual", "events": 48, "faces": 24, "tried_without_result": 0, "annotators": "tester"}]
    vocab = json.loads(runner.invoke(curate.cli.app, ["vocab", "list", "--json", *db]).stdout)
    assert vocab[0]["group"] == "hair_color" and "blonde hair" in vocab[0]["tags"]
    agree = json.loads(runner.invoke(curate.cli.app, ["agree", "manual", "manual", "--json", *db]).stdout)
    assert agree["faces_both"] == 24 and agree["groups"][0]["accuracy"] == 1.0


def _thirteen_colours(db: Path) -> None:
    """Two sources that give the tiny catalog's faces every hair colour, and disagree."""
    with Catalog(db) as cat:
        hair = cat.group("hair_color")["tags"]
        for tag in ["aqua hair", "black hair", "blonde hair", "blue hair", "brown hair", "green hair", "grey hair",
                    "orange hair", "pink hair", "purple hair", "red hair", "silver hair", "white hair"]:
            if tag not in hair:
                cat.add_tag(tag, "hair_color")
        hair = cat.group("hair_color")["tags"]
        faces = cat.face_ids("ok")
        cat.add_labels([(f, hair[i % len(hair)], 0.9) for i, f in enumerate(faces)], "a", "x")
        cat.add_labels([(f, hair[(i * 7) % len(hair)], 0.8) for i, f in enumerate(faces)], "b", "x")


def test_agree_is_readable_at_80_columns(tiny_catalog, monkeypatch):
    _thirteen_colours(tiny_catalog)
    monkeypatch.setattr(curate.commands.quality.console, "_width", 80)
    r = runner.invoke(curate.cli.app, ["agree", "a", "b", "--worst", "5", "--db", str(tiny_catalog)])
    assert r.exit_code == 0, r.output
    assert "…" not in r.output and max(len(line) for line in r.output.splitlines()) <= 80
    confusion = r.output[r.output.index("hair_color confusion"):]
    for tag in ("pink hair", "aqua hair", "green hair", "grey hair"):   # whole names, never "pin", "aqu"
        assert tag in confusion, tag
    assert "curate show FACE" in r.output


def test_show_prints_one_face_and_writes_its_crop(tiny_catalog, tmp_path):
    with Catalog(tiny_catalog) as cat:
        cat.conn.execute("UPDATE sources SET path = '/pics/[bold]x[/bold].png' WHERE id = 1")
        cat.conn.commit()
        face = cat.query("SELECT id FROM faces WHERE source_id = 1")[0]["id"]
        cat.add_labels([(face, "red hair", 1.0)], "manual", "[red]anna[/red]")
    out = tmp_path / "crop.png"
    r = runner.invoke(curate.cli.app, ["show", str(face), "-o", str(out), "--db", str(tiny_catalog)])
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    for part in ("/pics/[bold]x[/bold].png", "status", "ok", "split", "labels of source manual", "red hair",
                 "[red]anna[/red]"):
        assert part in text, part
    assert Image.open(out).size == (32, 32)
    data = json.loads(runner.invoke(curate.cli.app, ["show", str(face), "--json", "--db", str(tiny_catalog)]).stdout)
    assert data["face"]["source_path"] == "/pics/[bold]x[/bold].png" and len(data["labels"]) == 3
    r = runner.invoke(curate.cli.app, ["show", "99999", "--db", str(tiny_catalog)])
    assert r.exit_code == 2 and "no face with id 99999" in r.output


def test_crop_summary_has_no_python_dicts(shared, tmp_path):
    folder = tmp_path / "pics"
    folder.mkdir()
    for p in sorted((shared / "data" / "raw_illustrations").iterdir())[:3]:
        shutil.copy(p, folder)
    r = runner.invoke(curate.cli.app, ["crop", str(folder), "--db", str(tmp_path / "c.db"), "--min-face", "4000",
                                       "--no-progress", "-j", "1"])
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    assert "rejected:" in text and "{" not in text and "'" not in text.split("rejected:")[1]
    assert re.search(r"rejected: \d+ face smaller than --min-face 4000", text), text


# -- nothing silent ---------------------------------------------------------------------------

def test_crop_rerun_with_another_size_or_margin_says_so(shared, tmp_path):
    folder = tmp_path / "pics"
    folder.mkdir()
    pictures = sorted((shared / "data" / "raw_illustrations").iterdir())
    shutil.copy(pictures[0], folder)
    db = str(tmp_path / "c.db")
    first = runner.invoke(curate.cli.app, ["crop", str(folder), "--db", db, "--size", "64", "-j", "1"])
    assert first.exit_code == 0 and "cropped otherwise" not in first.output
    same = runner.invoke(curate.cli.app, ["crop", str(folder), "--db", db, "--size", "64", "-j", "1"])
    assert "cropped otherwise" not in same.output
    shutil.copy(pictures[1], folder)
    other = runner.invoke(curate.cli.app, ["crop", str(folder), "--db", db, "--size", "32", "--margin", "1.3",
                                           "-j", "1"])
    text = " ".join(other.output.split())
    assert other.exit_code == 0 and "already holds faces cropped otherwise" in text, text
    assert "at 64 px, margin 1.5" in text and "--db NEW.db --size 32 --margin 1.3" in text


def test_crop_with_lbp_and_no_network_creates_nothing(tmp_path, monkeypatch):
    import curate.detectors
    monkeypatch.setattr(curate.detectors, "LBP_URL", "http://127.0.0.1:9/lbpcascade_animeface.xml")
    monkeypatch.setattr(curate.detectors, "shared_path", lambda *parts: None)   # no ../shared copy either
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = tmp_path / "pics"
    folder.mkdir()
    Image.new("RGB", (64, 64), "white").save(folder / "a.png")
    db = tmp_path / "new.db"
    r = runner.invoke(curate.cli.app, ["crop", str(folder), "--detector", "lbp", "--db", str(db)])
    assert r.exit_code == 2 and "cannot download" in r.output
    assert not db.exists() and not list(tmp_path.glob("new.db*"))
    assert "crop" not in r.output.split("error:")[0]   # no progress bar drawn before the error


def test_tag_writes_into_the_target_source(shared, tmp_path):
    db = shared_faces_catalog(shared, tmp_path / "faces.db", 6, labelled=False)
    r = runner.invoke(curate.cli.app, ["tag", "--tagger", "animeface", "--target", "animeface-v2", "-j", "2",
                                       "--batch", "2", "--db", str(db)])
    assert r.exit_code == 0, r.output
    assert "source 'animeface-v2'" in " ".join(r.output.split())
    with Catalog(db) as cat:
        assert [s["source"] for s in cat.label_sources()] == ["animeface-v2"]
        assert len(cat.labelled_faces("animeface-v2", split=None)) >= 4
    r = runner.invoke(curate.cli.app, ["tag", "--tagger", "animeface", "--target", "manual", "--db", str(db)])
    assert r.exit_code == 2 and "--target 'manual'" in r.output


def test_calibrate_colors_prints_held_out_accuracy_against_the_current_palette(shared, tmp_path):
    db = shared_faces_catalog(shared, tmp_path / "faces.db", 40)
    with Catalog(db) as cat:
        cat.assign_splits(0.0, 0.3, seed=0)
    out = tmp_path / "palette.json"
    r = runner.invoke(curate.cli.app, ["calibrate-colors", "-o", str(out), "--min-faces", "2", "-j", "2",
                                       "--no-progress", "--db", str(db)])
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    assert "accuracy against manual on" in text and "test faces" in text and out.exists()
    assert re.search(r"hair_color \S* ?\d+\.\d% \(\d+/\d+\) \S* ?\d+\.\d% \(\d+/\d+\)", text), text


# -- train ------------------------------------------------------------------------------------

def test_dry_run_prints_its_plan_on_stdout(tiny_catalog):
    r = runner.invoke(train.cli.app, ["acgan", "--labels", "manual", "--size", "32", "--min-per-tag", "1",
                                      "--dry-run", "--db", str(tiny_catalog)])
    assert r.exit_code == 0, r.output
    plan = json.loads(r.stdout[r.stdout.index("\n{") + 1:])
    assert plan["model"] == "acgan" and plan["labels"] == "manual"
    assert "dry run: nothing written" in r.stderr


def test_the_default_experiment_needs_no_download(tiny_catalog):
    with Catalog(tiny_catalog) as cat:   # what `curate tag --tagger animeface` writes
        cat.add_labels([(f, tag, 0.9) for f, labels in cat.labelled_faces("manual", split=None).items()
                        for tag, _ in labels.values()], "animeface", "palette")
    r = runner.invoke(train.cli.app, ["experiment", "--dry-run", "--min-per-tag", "1", "--db", str(tiny_catalog)])
    assert r.exit_code == 0, r.output
    specs = [c["spec"] for c in json.loads(r.stdout)["configurations"]]
    assert specs == ["acgan:manual", "acgan:animeface", "cgan:manual"]


def test_readme_conventions_section_names_every_shared_option():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Conventions", 1)[1].split("\n## ", 1)[0]
    for spelling in ("--db", "CURATE_DB", "-n/--n", "-o/--out", "-j/--jobs", "--device auto", "--progress",
                     "--json", "--dry-run", "--labels", "--target", "-h", "--version", "--install-completion"):
        assert spelling in section, spelling
