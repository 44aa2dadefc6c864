"""`train experiment` (seeds, run specs with options, the experiment folder, resume), the same faces
and classes for every run, `train compare`'s grouping over seeds, `train runs`, and `train eval`
finding the experiment's judge. Tiny: 32x32, 2-3 steps, 8-channel nets."""

from __future__ import annotations

import json
import math

import pytest
import torch
from typer.testing import CliRunner

import train.cli  # noqa: F401  (registers the commands)
from conftest import make_tiny_catalog
from test_train import interrupted_after
from db import Catalog
from train.app import app
from train.data import select_faces
from train.experiment import ExperimentStopped, Plan, new_folder, run_experiment, save_plan
from curate.taggers.classifier import JudgeOptions, train_judge
from train.loop import train
from train.options import TrainOptions
from train.runs import load_checkpoint, load_run
from train.eval.spread import beyond_spread, group_runs, mean_std, summarise

runner = CliRunner()
TINY = ["--iters", "2", "--batch", "4", "--ngf", "8", "--ndf", "8", "--z-dim", "8", "--min-per-tag", "1",
        "-n", "16", "--no-progress"]


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    """2 configurations x 2 seeds, run once through the CLI for the tests below."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)        # as conftest's one_thread, which a module's fixture runs before
    tmp = tmp_path_factory.mktemp("experiment")
    db = make_tiny_catalog(tmp / "tiny.db")
    with Catalog(db) as cat:      # a judge given to the experiment (training one is tested below)
        train_judge(cat, JudgeOptions(size=16, width=4, feature_dim=8, epochs=1, batch=8)).save(tmp / "judge.pt")
    folder = tmp / "exp"
    r = runner.invoke(app, ["experiment", "--db", str(db), "--judge", str(tmp / "judge.pt"), "--run", "acgan:manual",
                            "--run", "acgan:manual --diffaug translation,cutout", "--seeds", "0,1",
                            "-o", str(folder), "--cache-dir", str(tmp / "cache"), *TINY])
    torch.set_num_threads(threads)
    assert r.exit_code == 0, r.output
    return db, folder, r.output


def test_experiment_trains_every_configuration_once_per_seed_and_reports_the_spread(experiment):
    db, folder, output = experiment
    plan = json.loads((folder / "plan.json").read_text())
    assert plan["seeds"] == [0, 1] and [c["spec"] for c in plan["configurations"]] == [
        "acgan:manual", "acgan:manual --diffaug translation,cutout"]
    runs = sorted((folder / "runs").iterdir())
    options = [load_run(r).options for r in runs]
    assert sorted((o["diffaug"], o["seed"]) for o in options) == [
        ("", 0), ("", 1), ("translation,cutout", 0), ("translation,cutout", 1)]
    # the experiment's defaults and the options for every run, as `train acgan` reads them
    assert all(o["size"] == 32 and o["iters"] == 2 and o["z_dim"] == 8 and o["experiment"] == str(folder)
               for o in options)
    for run in runs:      # one judge for all
        assert json.loads((run / "eval.json").read_text())["judge"]["path"] == str(folder.parent / "judge.pt")

    summary = json.loads((folder / "report" / "summary.json").read_text())
    assert [len(c["runs"]) for c in summary["configurations"]] == [2, 2]
    assert [c["seeds"] for c in summary["configurations"]] == [[0, 1], [0, 1]]
    # the configuration's cell is the mean ± sample std of its seeds' figures
    table = summary["configuration_table"]
    col = table[0].index("judge FID")
    for row, conf in zip(table[1:], summary["configurations"]):
        fids = [json.loads((load_run(r).dir / "eval.json").read_text())["judge_fid"] for r in conf["runs"]]
        mean, std = sum(fids) / 2, math.sqrt(sum((f - sum(fids) / 2) ** 2 for f in fids))
        assert row[col].split(" *")[0] == f"{mean:.2f} ± {std:.2f}"
        assert row[1] == "2 (0,1)"
    assert "--diffaug translation,cutout" in table[2][0]
    page = (folder / "report" / "index.html").read_text()
    assert "Configurations over seeds" in page and "<details><summary>Metrics per run" in page
    assert "do not overlap" in (folder / "report" / "report.md").read_text()


def test_spread_rule_and_grouping_of_run_folders_written_by_af5c202():
    """options.json as main's code at af5c202 wrote it (no drop_tags, same_faces, experiment): the
    seed, device and precision do not split a configuration; an option does, and names it."""
    base = {"model": "acgan", "catalog": "/work/exp/labelled.db", "catalog_fingerprint": "c6f06d4f67647e56",
            "labels": "manual", "attrs": ["hair_color", "eye_color"], "min_prob": None, "common": [],
            "min_per_tag": 10, "drop_rare": True, "split": "train", "size": 32, "iters": 4000, "epochs": None,
            "batch": 64, "z_dim": 100, "ngf": 64, "ndf": 64, "deep": False, "backbone": "dcgan", "loss": "bce",
            "sn": "none", "diffaug": "", "lr_g": 0.0002, "lr_d": 0.0002, "beta1": 0.5, "beta2": 0.999,
            "n_critic": 1, "gp_weight": 10.0, "aux_weight": 1.0, "ema_beta": 0.995, "flip": True, "seed": 0,
            "runs_dir": "/work/exp/runs", "cache_dir": None, "log_every": 50, "diag_every": 200,
            "sample_every": None, "checkpoint_every": 1000, "keep_checkpoints": 3, "dwin_window": 200,
            "device": "cpu", "precision": "bf16", "tensorboard": False, "wandb": False, "progress": False,
            "faces": 7103, "world_size": 1}
    pd = dict(base, model="cgan-pd", loss="hinge", sn="d", diffaug="translation,cutout")
    runs = [base, dict(base, seed=1, device="cuda:0", precision="fp32"), dict(base, diffaug="translation,cutout"),
            pd, dict(pd, seed=1), dict(pd, seed=2), dict(pd, deep=True)]
    groups = group_runs(runs)
    assert [g.members for g in groups] == [[0, 1], [2], [3, 4, 5], [6]]
    assert [g.seeds for g in groups] == [[0, 1], [0], [0, 1, 2], [0]]
    assert groups[0].name == "acgan · manual"                       # its options at acgan's defaults
    assert groups[1].name == "acgan · manual --diffaug translation,cutout"
    assert groups[2].name == "cgan-pd · manual --diffaug translation,cutout"   # hinge and SN in D: cgan-pd's own
    assert groups[3].name == "cgan-pd · manual --deep --diffaug translation,cutout"
    # a run folder written by today's code with today's defaults joins the old ones; so does an
    # experiment's run that left out the same tags by name; fewer faces or classes are another
    today = dict(TrainOptions(**{k: v for k, v in base.items() if k not in ("faces", "world_size")}).to_dict(),
                 faces=7103)
    shared = dict(today, same_faces=True, drop_tags=["grey eyes"], drop_rare=False, experiment="experiments/x")
    fewer = dict(base, faces=7000)
    grey = [{"name": "eye_color", "tags": ["blue eyes", "grey eyes"]}]
    groups = group_runs([base, today, shared, fewer, dict(base, conditions=grey)])
    assert [g.members for g in groups] == [[0, 1, 2], [3], [4]]
    assert [g.name for g in groups] == ["acgan · manual 7103 faces without blue eyes, grey eyes",
                                        "acgan · manual 7000 faces without blue eyes, grey eyes",
                                        "acgan · manual 7103 faces every class"]

    assert mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0) and mean_std([4.0]) == (4.0, None)
    assert beyond_spread([1.0, 2.0, 3.0], [5.0, 6.0, 7.0])         # 1..3 and 5..7 apart
    assert beyond_spread([1.0, 2.0, 3.0], [3.5, 4.0, 4.5])         # 1..3 and 3.5..4.5: apart
    assert not beyond_spread([1.0, 2.0, 3.0], [2.5, 3.5, 4.5])     # 1..3 and 2.5..4.5 overlap
    assert not beyond_spread([1.0], [9.0]) and not beyond_spread([1.0, 1.2], [9.0])   # one seed: no claim
    # the report's table: mean ± std per configuration, * against the first, and the pairs listed
    runs = [base, dict(base, seed=1), dict(base, seed=2), pd, dict(pd, seed=1), dict(pd, seed=2), dict(base, deep=True)]
    fid = [1.0, 2.0, 3.0, 5.0, 6.0, 7.0, 0.5]
    acc = [0.5, 0.6, 0.7, 0.6, 0.7, 0.5, 0.9]
    per_run = [[("judge FID", f, "num"), ("judge acc.", a, "pct")] for f, a in zip(fid, acc)]
    table, pairs = summarise(group_runs(runs), per_run, lambda v, kind: f"{100 * v:.0f}%" if kind == "pct"
                             else f"{v:.2f}")
    assert [row[1:] for row in table[1:]] == [["3 (0,1,2)", "2.00 ± 1.00", "60% ± 10%"],
                                              ["3 (0,1,2)", "6.00 ± 1.00 *", "60% ± 10%"],
                                              ["1 (0)", "0.50", "90%"]]
    assert pairs[1:] == [["judge FID", table[1][0] + " (2.00)", table[2][0] + " (6.00)"]]


def test_eval_uses_the_experiment_judge_and_runs_lists_the_runs(experiment):
    db, folder, _ = experiment
    run = sorted((folder / "runs").iterdir())[0]
    r = runner.invoke(app, ["eval", str(run), "--n", "8", "--no-download"])
    assert r.exit_code == 0, r.output
    assert f"judge: {folder.parent / 'judge.pt'} (the judge of experiment {folder})" in r.output
    assert json.loads((run / "eval.json").read_text())["judge"]["path"] == str(folder.parent / "judge.pt")

    r = runner.invoke(app, ["runs", "--runs-dir", str(folder.parent), "--json"])
    assert r.exit_code == 0, r.output
    listed = json.loads(r.stdout)
    assert len(listed) == 4 and {x["status"] for x in listed} == {"done"}
    first = next(x for x in listed if x["run"] == str(run))
    assert (first["model"], first["labels"], first["steps"], first["total_steps"]) == ("acgan", "manual", 2, 2)
    assert first["judge_fid"] is not None and set(first["judge_accuracy"]) == {"hair_color", "eye_color"}
    assert any("--diffaug translation,cutout" in x["options"] for x in listed)
    r = runner.invoke(app, ["runs", "--runs-dir", str(folder.parent)])
    assert r.exit_code == 0 and "4 runs in" in r.output and "2/2 steps" in r.output and "judge FID" in r.output
    assert runner.invoke(app, ["runs", "--runs-dir", str(folder / "nope")]).exit_code == 2


def test_rerun_is_refused_and_resume_reuses_runs_and_rebuilds_the_report(experiment):
    db, folder, _ = experiment
    r = runner.invoke(app, ["experiment", "--db", str(db), "--run", "acgan:manual", "-o", str(folder), *TINY])
    assert r.exit_code == 2 and "--resume" in r.output and "not empty" in r.output
    stale = folder / "report" / "samples_9_old-run.png"
    stale.write_bytes(b"\x89PNG old")
    finished = {p: p.stat().st_mtime for p in (folder / "runs").glob("*/G_ema.pt")}
    r = runner.invoke(app, ["experiment", "--resume", str(folder), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert r.output.count("finished before (2 steps), reused") == 4
    assert {p: p.stat().st_mtime for p in (folder / "runs").glob("*/G_ema.pt")} == finished
    assert not stale.exists() and (folder / "report" / "index.html").is_file()
    # the plan is the experiment's: what would change it is refused
    r = runner.invoke(app, ["experiment", "--resume", str(folder), "--iters", "5"])
    assert r.exit_code == 2 and "--iters" in r.output and "keeps its plan" in r.output


def test_an_interrupted_experiment_resumes_exactly(tiny_catalog, tmp_path):
    args = ["experiment", "--db", str(tiny_catalog), "--run", "acgan:manual,cgan:manual", "--iters", "3",
            "--batch", "4", "--ngf", "8", "--ndf", "8", "--z-dim", "8", "--min-per-tag", "1", "-n", "16",
            "--checkpoint-every", "1", "--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    r = runner.invoke(app, args + ["--dry-run"])
    assert r.exit_code == 0, r.output
    plan = Plan.from_json(json.loads(r.stdout), "dry run")
    assert not (tmp_path / "experiments").exists()          # a dry run writes nothing
    folder = new_folder(tmp_path / "experiments", plan.name)
    save_plan(folder, plan)
    with pytest.raises(ExperimentStopped, match="stopped at step 1 of 3"), interrupted_after(1):
        run_experiment(folder, plan, train_judge=_small_judge, log=lambda m: None,
                       overrides={"cache_dir": str(tmp_path / "cache")})     # given on the command line, not planned
    (stopped,) = (folder / "runs").iterdir()
    assert not (stopped / "G_ema.pt").exists()
    r = runner.invoke(app, ["runs", "--runs-dir", str(folder / "runs"), "--json"])
    assert [(x["steps"], x["total_steps"], x["status"]) for x in json.loads(r.stdout)] == [(1, 3, "stopped")]

    with Catalog(tiny_catalog) as cat:      # the catalog moves on meanwhile: said, not silent
        cat.add_labels([(cat.face_ids("ok", None)[0], "blue eyes", 1.0)], "later", "someone")
    r = runner.invoke(app, ["experiment", "--resume", str(folder), "--no-progress", "--cache-dir",
                            str(tmp_path / "cache")])
    assert r.exit_code == 0, r.output
    assert "changed since the experiment began" in r.output
    assert "resuming at step 1 of 3" in r.output and "training cgan" in r.output
    assert "resumed at step 1" in (stopped / "log.txt").read_text()
    assert len(list((folder / "runs").iterdir())) == 2 and (folder / "report" / "index.html").is_file()
    assert json.loads((stopped / "eval.json").read_text())["judge"]["path"] == str(folder / "judge.pt")
    # exactly as if it had never stopped: the same weights as the run trained straight through
    opts = plan.run_options(plan.configurations[0], 0, tmp_path / "straight",
                            {"progress": False, "cache_dir": str(tmp_path / "cache")})
    straight = load_checkpoint(train(opts) / "G_ema.pt")["state"]
    resumed = load_checkpoint(stopped / "G_ema.pt")["state"]
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


def _small_judge(catalog, options):
    options.epochs = 2
    return train_judge(catalog, options)


@pytest.fixture
def two_sources(tiny_catalog):
    """A second source, 'auto', that agrees with 'manual' except: it calls two faces 'blue hair'
    (too rare in it) and gives one face no eye colour."""
    with Catalog(tiny_catalog) as cat:
        current = cat.labelled_faces("manual", split=None, groups=["hair_color", "eye_color"])
        train_faces = cat.labelled_faces("manual", "train", groups=["hair_color"])
        black = [f for f, lab in sorted(train_faces.items()) if lab["hair_color"][0] == "black hair"]
        red = [f for f, lab in sorted(train_faces.items()) if lab["hair_color"][0] == "red hair"]
        blue, eyeless = black[:2], red[0]       # manual keeps >= 3 faces of every tag without them
        labels = [(fid, lab[key][0], 1.0) for fid, lab in current.items() for key in lab
                  if not (fid == eyeless and key == "eye_color")]
        labels = [(f, "blue hair" if f in blue and t.endswith("hair") else t, v) for f, t, v in labels]
        cat.add_labels(labels, "auto", "tagger")
    return tiny_catalog, blue, eyeless


def test_runs_of_one_experiment_train_on_the_same_faces_and_classes(two_sources, tmp_path):
    db, blue, eyeless = two_sources
    r = runner.invoke(app, ["experiment", "--db", str(db), "--run", "acgan:manual,acgan:auto", "--judge-labels",
                            "manual", "--min-per-tag", "3", "--dry-run", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "left out of every run" in r.output and "blue hair" in r.output
    plan = Plan.from_json(json.loads(r.stdout), "dry run")
    assert plan.shared["drop_tags"] == ["blue hair"]
    with Catalog(db) as cat:
        chosen = [select_faces(cat, TrainOptions.from_dict({**c.options, "seed": 0})) for c in plan.configurations]
        manual, auto = chosen
        assert manual.ids == auto.ids and len(manual.ids) == plan.shared["faces"]
        assert not set(manual.ids) & set(blue + [eyeless])
        assert manual.spec.to_json()[0]["tags"] == auto.spec.to_json()[0]["tags"]
        # the old way, each source on its own with --drop-rare: different faces (what this fixes)
        alone = [select_faces(cat, TrainOptions(model="acgan", catalog=str(db), labels=s, attrs=["hair_color",
                              "eye_color"], min_per_tag=3, drop_rare=True, common=[o]))
                 for s, o in (("manual", "auto"), ("auto", "manual"))]
        assert alone[0].ids != alone[1].ids
    # what was left out is in the run's options.json and log.txt
    opts = plan.run_options(plan.configurations[1], 0, tmp_path, {"iters": 1, "batch": 4, "ngf": 8, "ndf": 8,
                                                                   "progress": False})
    run = load_run(train(opts))
    assert run.options["drop_tags"] == ["blue hair"] and run.options["faces"] == len(manual.ids)
    assert run.options["left_out"]["hair_color"]["blue hair"] >= 1
    assert "blue hair" in (run.dir / "log.txt").read_text()


def test_a_refused_tag_prints_the_counts_table(two_sources, tmp_path):
    db, _, _ = two_sources
    r = runner.invoke(app, ["acgan", "--db", str(db), "--labels", "auto", "--min-per-tag", "3", "--dry-run",
                            "--no-progress"])
    assert r.exit_code == 2 and "too few faces" in r.output
    assert "blue hair" in r.output and "too few (< --min-per-tag 3)" in r.output and "black hair" in r.output
    r = runner.invoke(app, ["experiment", "--db", str(db), "--run", "acgan:manual,acgan:auto", "--min-per-tag", "3",
                            "--no-drop-rare", "--dry-run"])
    assert r.exit_code == 2 and "'auto'" in r.output and "too few" in r.output and "black hair" in r.output


def test_run_specs_are_checked_as_train_checks_them(tiny_catalog):
    def run(*args):
        return runner.invoke(app, ["experiment", "--db", str(tiny_catalog), "--dry-run", *args])
    r = run("--run", "acgan:manual --difaug translation")
    assert r.exit_code == 2 and "acgan:manual --difaug translation" in r.output and "--difaug" in r.output
    r = run("--run", "acgan:manual --diffaug blur")
    assert r.exit_code == 2 and "blur" in r.output and "--run 'acgan:manual --diffaug blur'" in r.output
    r = run("--run", "acgan:manual --seed 3")
    assert r.exit_code == 2 and "--seeds" in r.output
    r = run("--run", "gan:manual")
    assert r.exit_code == 2 and "MODEL:LABELS" in r.output
    r = run("--run", "acgan:nobody")
    assert r.exit_code == 2 and "nobody" in r.output
    r = run("--run", "acgan:manual", "--run", "acgan:manual --loss bce")
    assert r.exit_code == 2 and "same configuration" in r.output
    r = run("--run", "cgan:manual", "--seeds", "0,x")
    assert r.exit_code == 2 and "--seeds" in r.output
    r = run("--run", "cgan:manual", "--size", "48")        # an option for every run, checked the same way
    assert r.exit_code == 2 and "--size must be one of" in r.output


def test_train_options_pass_through_and_a_plan_file_says_the_same(tiny_catalog, tmp_path):
    """--device, --deep, --precision and the new trainer options reach every run; a TOML plan file
    gives the same plan as the command line."""
    args = ["--seeds", "0,1,2", "--size", "32", "--iters", "40", "--device", "cpu", "--deep", "--precision", "fp32",
            "--min-per-tag", "1"]
    runs = ["acgan:manual", "cgan-pd:manual --diffaug translation,cutout --sn both"]
    r = runner.invoke(app, ["experiment", "--db", str(tiny_catalog), "--dry-run", *args,
                            *[x for spec in runs for x in ("--run", spec)]])
    assert r.exit_code == 0, r.output
    plan = json.loads(r.stdout)
    acgan, pd = (c["options"] for c in plan["configurations"])
    assert plan["seeds"] == [0, 1, 2]
    for o in (acgan, pd):
        assert (o["device"], o["deep"], o["precision"], o["iters"], o["drop_rare"]) == ("cpu", True, "fp32", 40, True)
    assert (pd["model"], pd["diffaug"], pd["sn"], pd["loss"]) == ("cgan-pd", "translation,cutout", "both", "hinge")
    assert (acgan["diffaug"], acgan["sn"]) == ("", "none")
    toml = tmp_path / "plan.toml"
    toml.write_text('seeds = [0, 1, 2]\noptions = "' + " ".join(args[2:]) + '"\nruns = [\n'
                    + "".join(f'  "{spec}",\n' for spec in runs) + "]\n")
    r = runner.invoke(app, ["experiment", "--db", str(tiny_catalog), "--dry-run", "--plan", str(toml)])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["configurations"] == plan["configurations"]
    toml.write_text('seeds = [0]\nrunz = ["acgan:manual"]\n')
    r = runner.invoke(app, ["experiment", "--db", str(tiny_catalog), "--dry-run", "--plan", str(toml)])
    assert r.exit_code == 2 and "'runz'" in r.output


def test_train_runs_shows_common_and_same_faces():
    """`train runs` left out `--common manual` that a run's options.json records (issue 25)."""
    import dataclasses

    from train.options import TrainOptions
    from train.run_index import key_options

    options = dataclasses.asdict(TrainOptions(model="acgan"))
    options.update(attrs=["hair_color", "eye_color"])
    assert key_options(options) == ""
    options.update(common=["manual"], same_faces=True)
    assert key_options(options) == "--common manual --same-faces"


def test_a_quick_look_is_quick_and_says_how_long_before_it_starts(tiny_catalog, tmp_path):
    """--quick sets the steps, the judge's epochs and the evaluation's sizes together; options given
    explicitly win; the plan's time is estimated from a few timed steps and said first (issue 25)."""
    def dry(*args):
        r = runner.invoke(app, ["experiment", "--db", str(tiny_catalog), "--run", "acgan:manual,cgan:manual",
                                "--min-per-tag", "1", "--batch", "4", "--ngf", "8", "--ndf", "8", "--dry-run",
                                "--no-progress", *args])
        assert r.exit_code == 0, r.output
        return json.loads(r.stdout), r.output
    plan, output = dry("--quick")
    assert (plan["n"], plan["judge_epochs"], plan["per_class"]) == (500, 2, 100)
    assert [c["options"]["iters"] for c in plan["configurations"]] == [200, 200]
    assert "about " in output and " minutes: judge ~" in output and "training ~" in output
    assert "(2 runs x 200 steps), evaluation ~" in output
    plan, output = dry("--quick", "-n", "16", "--judge-epochs", "1", "--iters", "3")     # explicit wins
    assert (plan["n"], plan["judge_epochs"], plan["configurations"][0]["options"]["iters"]) == (16, 1, 3)
    assert "(2 runs x 3 steps)" in output
    plan, _ = dry()
    assert (plan["n"], plan["judge_epochs"], plan["per_class"]) == (5000, 10, 500)      # as before
    # the judge trains for the plan's epochs
    seen = []
    folder = tmp_path / "exp"
    folder.mkdir()
    loaded = Plan.from_json(dry("--judge-epochs", "3", "--iters", "1")[0], "dry run")
    run_experiment(folder, loaded, train_judge=lambda cat, o: seen.append(o.epochs) or _small_judge(cat, o),
                   log=lambda m: None, overrides={"cache_dir": str(tmp_path / "cache")})
    assert seen == [3]
    r = runner.invoke(app, ["experiment", "--help"])
    assert "--quick" in r.output and "--judge-epochs" in r.output


def test_a_plan_may_not_say_where_files_go(tiny_catalog, tmp_path):
    """issue 24 item 2: --cache-dir (any option the metadata marks as a path) in a plan file's options
    or run specs, or in an experiment's plan.json, is refused in one line; on the command line it
    is where the runs' caches go, and it is not written into plan.json."""
    def run(*args):
        return runner.invoke(app, ["experiment", "--db", str(tiny_catalog), "--min-per-tag", "1", "--dry-run",
                                   "--no-progress", *args])
    plan_file = tmp_path / "plan.json"
    for plan in ({"runs": ["acgan:manual"], "options": ["--cache-dir", str(tmp_path / "elsewhere")]},
                 {"runs": ["acgan:manual --cache-dir=/elsewhere"]}, {"runs": ["acgan:manual"],
                                                                       "options": "--cache-dir /elsewhere"}):
        plan_file.write_text(json.dumps(plan))
        r = run("--plan", str(plan_file))
        assert r.exit_code == 2 and "--cache-dir" in r.output and "on the command line" in r.output, r.output
    assert not (tmp_path / "elsewhere").exists()
    r = run("--run", "acgan:manual --cache-dir /elsewhere")
    assert r.exit_code == 2 and "--cache-dir" in r.output
    r = run("--run", "acgan:manual", "--cache-dir", str(tmp_path / "cache"))
    assert r.exit_code == 0, r.output
    saved = json.loads(r.stdout)
    assert saved["configurations"][0]["options"]["cache_dir"] is None and "--cache-dir" not in saved["train_args"]
    # a plan.json changed afterwards: refused on --resume, before anything runs
    folder = tmp_path / "exp"
    folder.mkdir()
    saved["configurations"][0]["options"]["cache_dir"] = "/elsewhere"
    (folder / "plan.json").write_text(json.dumps(saved))
    r = runner.invoke(app, ["experiment", "--resume", str(folder), "--no-progress"])
    assert r.exit_code == 2 and "'cache_dir'" in r.output and "--cache-dir on the command line" in r.output
    assert r.output.count("\n") <= 2 and not (folder / "judge.pt").exists()


def test_a_plan_is_checked_whole_before_anything_runs(tiny_catalog, tmp_path):
    """issue 24 item 7: a wrong type, deeply nested JSON or a seed beyond every RNG is refused in one
    line naming the key, before the judge trains."""
    plan_file = tmp_path / "plan.json"
    for text, key in ((json.dumps({"runs": ["acgan:manual"], "n": "lots"}), "'n'"),
                      ("[" * 100000 + "]" * 100000, "nested"),
                      (json.dumps({"runs": ["acgan:manual"], "seeds": [2 ** 70]}), "seed"),
                      (json.dumps({"runs": "acgan:manual", "seeds": True}), "'seeds'"),
                      (json.dumps({"runs": [3]}), "'runs'"), (json.dumps({"runs": ["acgan:manual"], "name": 5}),
                                                             "'name'")):
        plan_file.write_text(text)
        r = runner.invoke(app, ["experiment", "--db", str(tiny_catalog), "--plan", str(plan_file), "--no-progress",
                                "-o", str(tmp_path / "exp")])
        assert r.exit_code == 2 and key in r.output, (text[:60], r.output)
        assert isinstance(r.exception, SystemExit) and not (tmp_path / "exp").exists()
    r = runner.invoke(app, ["experiment", "--db", str(tiny_catalog), "--seeds", str(2 ** 70), "--no-progress",
                            "-o", str(tmp_path / "exp")])
    assert r.exit_code == 2 and "--seeds" in r.output and not (tmp_path / "exp").exists()
    folder = tmp_path / "nested"
    folder.mkdir()
    (folder / "plan.json").write_text("[" * 100000 + "]" * 100000)
    r = runner.invoke(app, ["experiment", "--resume", str(folder), "--no-progress"])
    assert r.exit_code == 2 and "nested" in r.output and isinstance(r.exception, SystemExit)
