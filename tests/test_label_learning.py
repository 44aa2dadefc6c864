"""`label-app --learn N`: the judge retrains in the background after every N new manual labels."""

from __future__ import annotations

import sys
import time

from typer.testing import CliRunner

from curate.quality.active_source import useful_picks
from db import Catalog
from label_app import keyboard, launch, learning
from label_app.learning import Learner, judge_command
from label_app.safe_text import md

from test_active_learning import judge as plant_judge   # the planted judge of the queue tests
from test_label_app import start

SLEEP = [sys.executable, "-c", "import time; time.sleep(60)"]
QUICK = [sys.executable, "-c", "print('trained')"]
FAILS = [sys.executable, "-c", "import sys; print('no faces to learn'); sys.exit(3)"]


def label(cat: Catalog, faces: range, who: str = "alice") -> None:
    cat.add_labels([(f, "red hair", None) for f in faces], "manual", who)


def test_a_retrain_starts_after_n_labels_one_at_a_time_and_stops(tiny_catalog):
    with Catalog(tiny_catalog) as cat:
        it = Learner(str(tiny_catalog), every=3, command=SLEEP)
        try:
            label(cat, range(1, 3))
            assert it.poll(cat) == 1 and it.state == "idle"
            label(cat, range(3, 4))
            assert it.poll(cat) == 0
            for _ in range(100):
                if it.state == "running":
                    break
                time.sleep(0.05)
            assert it.state == "running" and it.status().startswith("retraining the judge")
            first = it.process
            label(cat, range(4, 10))          # more labels while it runs: still one retrain
            assert it.poll(cat) == 0 and it.process is first
        finally:
            it.stop()
        assert first.poll() is not None and it.state == "stopped"   # stopping the app stops it


def test_a_retrain_that_ends_well_moves_the_generation_on(tiny_catalog):
    with Catalog(tiny_catalog) as cat:
        it = Learner(str(tiny_catalog), every=2, command=QUICK)
        label(cat, range(1, 3))
        it.poll(cat)
        assert it.wait(30) and it.generation == 1 and it.state == "done" and "re-ranked" in it.status()
        assert it.poll(cat) == 2                   # counted afresh from the retrain's start
        it.command = FAILS
        label(cat, range(3, 5))
        it.poll(cat)
        assert it.wait(30) and it.generation == 1 and it.state == "failed"
        assert "no faces to learn" in it.status()
        it.command = ["/nonexistent/python"]
        label(cat, range(5, 7))
        it.poll(cat)
        assert it.wait(30) and it.state == "failed" and "did not start" in it.status()
        it.stop()


class SlowToSay(Learner):
    """A learner whose thread is held up a moment after each change of state: a page that reads
    the state in that moment must already see the outcome that goes with it."""

    def __setattr__(self, name, value):
        super().__setattr__(name, value)
        if name == "state" and value in ("done", "failed"):
            time.sleep(0.5)


def test_a_finished_retrain_is_said_whole_with_its_state(tiny_catalog):
    with Catalog(tiny_catalog) as cat:
        it = SlowToSay(str(tiny_catalog), every=2, command=QUICK)
        label(cat, range(1, 3))
        it.poll(cat)
        assert it.wait(30) and it.state == "done"
        assert it.generation == 1 and "re-ranked" in it.status()
        time.sleep(0.6)
        it.command = FAILS
        label(cat, range(3, 5))
        it.poll(cat)
        assert it.wait(30) and it.state == "failed" and "no faces to learn" in it.status()
        it.stop()


def test_the_retrain_is_the_judge_command_and_launch_passes_n(tiny_catalog, monkeypatch):
    assert judge_command("x.db")[2:] == ["curate.cli", "tag", "--tagger", "judge", "--labels", "manual", "--db",
                                         "x.db", "--no-progress"]
    seen = {}
    monkeypatch.setattr(launch, "run_child", lambda command, env: seen.update(env) or 0)
    monkeypatch.setattr(launch.socket.socket, "bind", lambda self, address: None)
    r = CliRunner().invoke(launch.app, ["--db", str(tiny_catalog), "--learn", "25"])
    assert r.exit_code == 0 and seen["LABEL_APP_LEARN"] == "25" and "after every 25 new labels" in r.output


def test_the_page_shows_the_retrain(tiny_catalog, monkeypatch):
    monkeypatch.setattr(learning, "judge_command", lambda db: QUICK)
    monkeypatch.setenv("LABEL_APP_LEARN", "2")
    at = start(tiny_catalog, monkeypatch)
    assert any("next after 2 more labels" in c.value for c in at.sidebar.caption)
    at.button(key=keyboard.widget_key("tag", "red hair")).click().run()
    at.button(key=keyboard.widget_key("tag", "green eyes")).click().run()
    assert not at.exception
    assert any("retraining the judge" in c.value for c in at.sidebar.caption)
    for _ in range(100):                                 # the retrain ends: the page moves on to its result
        time.sleep(0.1)
        at.run()
        if at.session_state["learn_generation"] == 1:
            break
    assert any(md("the queue re-ranked") in c.value for c in at.sidebar.caption) and not at.exception


def test_a_killed_retrain_leaves_the_old_judge_in_use(tiny_catalog, monkeypatch):
    """The real retrain (`curate tag --tagger judge`), killed while it trains: the catalog keeps the
    judge it had, whole (same version, same probabilities), and the queue still builds on it."""
    with Catalog(tiny_catalog) as cat:
        plant_judge(cat)
        monkeypatch.setenv("PROGRESS_EVERY", "0")      # the child's log gets a line per epoch: we see it train
        command = [c for c in judge_command(str(tiny_catalog)) if c != "--no-progress"] + ["--epochs", "1000"]
        it = Learner(str(tiny_catalog), every=1, command=command)
        try:
            label(cat, range(1, 2), who="bob")
            before = cat.distributions("judge", "hair_color")
            picks_before = useful_picks(cat, "hair_color", "judge")
            it.poll(cat)
            for _ in range(1200):                    # until the child has begun training (its log says so)
                if it.state == "running" and it.log.exists() and "/" in it.log.read_text():
                    break
                time.sleep(0.05)
            assert it.state == "running", it.log.read_text()
            it.process.kill()                          # no SIGTERM courtesy: killed outright
            it.process.wait(30)
            assert it.wait(10) and it.state == "failed" and it.generation == 0, it.log.read_text()
        finally:
            it.stop()
        assert cat.distributions("judge", "hair_color") == before
        assert useful_picks(cat, "hair_color", "judge") == picks_before
