"""Run folders across versions and from others: an old run folder still samples, evaluates and
resumes (to the very weights the old code reached); files that would run code are refused
unopened; a corrupt newest checkpoint falls back to the one before; run folder names stay
inside --runs-dir; names are printed as written, never as markup."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from typer.testing import CliRunner

from db import Catalog
import train.cli  # noqa: F401  (registers the commands)
from train.app import app
from train.loop import train
from train.options import TrainOptions
from train.runs import load_run, run_name

runner = CliRunner()
OLD = Path(__file__).parent / "data" / "old_run_a896ac2"      # written by the code of commit a896ac2


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def old_run(tmp_path) -> Path:
    return Path(shutil.copytree(OLD / "00000-acgan-manual", tmp_path / "runs" / "00000-acgan-manual"))


def tiny_run(tiny_catalog, tmp_path, **kw) -> Path:
    base = dict(model="acgan", catalog=str(tiny_catalog), labels="manual", attrs=["hair_color", "eye_color"],
                size=32, ngf=4, ndf=4, batch=4, z_dim=8, min_per_tag=1, iters=4, log_every=2, diag_every=2,
                runs_dir=str(tmp_path / "runs"), cache_dir=str(tmp_path / "cache"), progress=False)
    return train(TrainOptions(**{**base, **kw}))


def test_an_old_run_folder_samples_evaluates_and_resumes_exactly(tiny_catalog, tmp_path):
    run_dir = old_run(tmp_path)
    res = invoke("sample", run_dir, "--tags", "red hair", "-n", 4, "-o", tmp_path / "grid.png")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "grid.png").stat().st_size > 0
    res = invoke("eval", run_dir, "--judge", OLD / "judge-manual.pt", "--db", tiny_catalog, "--n", 16,
                 "--per-class", 4, "--no-download")
    assert res.exit_code == 0, res.output
    assert (run_dir / "eval.json").exists()
    # the run's catalog path is another machine's: --db points the resumed run at this one
    res = invoke("acgan", "--resume", run_dir, "--iters", 4, "--db", tiny_catalog, "--no-progress",
                 "--cache-dir", tmp_path / "cache")
    assert res.exit_code == 0, res.output
    ckpt = torch.load(load_run(run_dir).latest_checkpoint(), weights_only=True)
    assert ckpt["step"] == 4
    expected = torch.load(OLD / "expected_step4.pt", weights_only=True)   # the old code, 4 steps straight
    for net in ("G", "G_ema"):
        for k, v in expected[net].items():
            assert torch.allclose(ckpt[net][k].float(), v.float(), atol=1e-6), (net, k)
    assert load_run(run_dir).options["device"] == "cpu"          # what ran, never "auto"


def evil(marker: Path):
    class Evil:
        def __reduce__(self):
            return exec, (f"open({str(marker)!r}, 'w').write('ran')",)
    return Evil()


def test_files_that_would_run_code_are_refused_unopened(tiny_catalog, tmp_path):
    marker = tmp_path / "pwned"
    run_dir = old_run(tmp_path)
    torch.save({"arch": {}, "state": evil(marker)}, run_dir / "G_ema.pt")
    res = invoke("sample", run_dir, "-o", tmp_path / "x.png")
    assert res.exit_code == 2 and "G_ema.pt" in res.output and "builtins.exec" in res.output
    ckpt = load_run(run_dir).latest_checkpoint()
    torch.save({"step": 2, "G": evil(marker)}, ckpt)
    res = invoke("acgan", "--resume", run_dir, "--db", tiny_catalog, "--no-progress")
    assert res.exit_code == 2 and ckpt.name in res.output and "refusing" in res.output
    judge = tmp_path / "judge.pt"
    torch.save({"format": 1, "state": evil(marker)}, judge)
    res = invoke("eval", old_run(tmp_path / "again"), "--judge", judge, "--db", tiny_catalog, "--n", 4)
    assert res.exit_code == 2 and "judge.pt" in res.output and "refusing" in res.output
    assert not marker.exists()


def test_a_corrupt_newest_checkpoint_falls_back_to_the_one_before(tiny_catalog, tmp_path):
    run_dir = tiny_run(tiny_catalog, tmp_path, iters=6, checkpoint_every=2, keep_checkpoints=3)
    run = load_run(run_dir)
    (run_dir / "G_ema.pt").unlink()
    assert [p.name for p in run.checkpoints()] == ["000002.pt", "000004.pt", "000006.pt"]
    newest = run.checkpoints()[-1]
    newest.write_bytes(newest.read_bytes()[:500])            # a crash while it was written
    res = invoke("sample", run_dir, "-n", 2, "-o", tmp_path / "x.png")
    assert res.exit_code == 0, res.output
    assert "000006.pt" in res.output and "warning" in res.output
    res = invoke("acgan", "--resume", run_dir, "--iters", 8, "--no-progress")
    assert res.exit_code == 0, res.output
    assert "000006.pt" in res.output and "step 4" in res.output
    assert "resumed at step 4" in (run_dir / "log.txt").read_text()


def test_run_folder_names_stay_inside_the_runs_dir(tiny_catalog, tmp_path):
    assert run_name(3, "acgan", "x/../../../y") == "00003-acgan-x_.._.._.._y"
    assert run_name(4, "acgan", "..") == "00004-acgan-labels"
    assert run_name(5, "cgan", "[/x] é") == "00005-cgan-x_é"
    with Catalog(tiny_catalog) as cat:          # the same labels under a hostile source name
        rows = cat.conn.execute("SELECT face_id, tag FROM label_current WHERE source = 'manual'").fetchall()
        cat.add_labels([(f, t, 1.0) for f, t in rows], "x/../../../y", "tester")
    res = invoke("acgan", "--labels", "x/../../../y", "--db", tiny_catalog, "--size", 32, "--ngf", 4, "--ndf", 4,
                 "--batch", 4, "--z-dim", 8, "--min-per-tag", 1, "--iters", 1, "--no-progress",
                 "--runs-dir", tmp_path / "runs", "--cache-dir", tmp_path / "cache")
    assert res.exit_code == 0, res.output
    made = [p for p in tmp_path.rglob("options.json")]
    assert [p.parent for p in made] == [tmp_path / "runs" / "00000-acgan-x_.._.._.._y"]


def test_names_are_printed_as_written_never_as_markup(tiny_catalog, tmp_path):
    with Catalog(tiny_catalog) as cat:
        cat.add_tag("red [dark] hair", "hair_color")
        faces = [r[0] for r in cat.conn.execute("SELECT face_id FROM label_current WHERE source = 'manual' "
                                                "AND tag = 'red hair'")]
        rows = cat.conn.execute("SELECT face_id, tag FROM label_current WHERE source = 'manual'").fetchall()
        cat.add_labels([(f, "red [dark] hair" if f in faces and t == "red hair" else t, 1.0) for f, t in rows],
                       "[/x]", "tester")
    res = invoke("acgan", "--labels", "[/x]", "--db", tiny_catalog, "--min-per-tag", 1, "--dry-run",
                 "--runs-dir", tmp_path / "runs")
    assert res.exit_code == 0, res.output
    assert "'[/x]'" in res.output and "red [dark] hair" in res.output


def test_a_hostile_run_folder_is_refused_in_one_line_naming_the_file_and_key(tmp_path):
    """options.json from elsewhere: a net of 5 TB, a wrong type or a missing key is refused when the
    folder is read, naming options.json and the key, instead of a traceback or an allocation."""
    import json
    run_dir = old_run(tmp_path)
    saved = json.loads((run_dir / "options.json").read_text())
    assert load_run(run_dir).z_dim == 8           # the old folder itself still loads
    hostile = [({"arch": {**saved["arch"], "G": {**saved["arch"]["G"], "ngf": 100000}}}, "arch.G.ngf"),
               ({"size": "big"}, "'size'"), ({"z_dim": 10 ** 9}, "z_dim"), ({"arch": {}}, "'arch'"),
               ({"arch": {**saved["arch"], "D": {**saved["arch"]["D"], "evil": 1}}}, "arch.D.evil"),
               ({"conditions": [{"name": "hair_color"}]}, "'conditions'"), ({"ngf": 100000}, "'ngf'"),
               ({"batch": "64"}, "'batch'")]
    for change, key in hostile:
        (run_dir / "options.json").write_text(json.dumps({**saved, **change}))
        res = invoke("sample", run_dir, "-n", 4, "-o", tmp_path / "grid.png")
        if key in ("'ngf'", "'batch'"):      # not read by sample: refused where they become options
            res = invoke("acgan", "--resume", run_dir, "--iters", 4, "--no-progress", "--dry-run")
        assert res.exit_code == 2, (change, res.output)
        assert res.exception is None or isinstance(res.exception, SystemExit), (change, res.exception)
        assert key in res.output, (change, res.output)
        assert "Traceback" not in res.output
    saved.pop("z_dim")
    (run_dir / "options.json").write_text(json.dumps(saved))
    res = invoke("sample", run_dir, "-n", 4, "-o", tmp_path / "grid.png")
    assert res.exit_code == 2 and "options.json" in res.output and "'z_dim'" in res.output, res.output


def test_sample_caps_n_generates_in_batches_and_spells_columns_as_curate_does(tmp_path):
    """`train sample -n 100000000` tried to allocate 40 GB: capped with a one-line refusal; the
    generator runs batch by batch; images per row are --columns, as in `curate stats` (--nrow still
    works, with a hint)."""
    import numpy as np
    from PIL import Image

    from train.sampling import generate
    run_dir = old_run(tmp_path)
    res = invoke("sample", run_dir, "-n", 100_000_000, "-o", tmp_path / "big.png")
    assert res.exit_code == 2 and "at most 10,000" in res.output and "Traceback" not in res.output
    run = load_run(run_dir)
    G = run.generator()
    calls = []
    G.register_forward_hook(lambda module, args, out: calls.append(len(out)))
    images, _ = generate(run, 10, G=G, batch=4)
    assert calls == [4, 4, 2] and images.shape[0] == 10
    res = invoke("sample", run_dir, "-n", 20, "--columns", 4, "-o", tmp_path / "cols.png")
    assert res.exit_code == 0, res.output
    res = invoke("sample", run_dir, "-n", 20, "--nrow", 4, "-o", tmp_path / "nrow.png")
    assert res.exit_code == 0 and "--nrow is now spelled --columns" in res.output
    cols, nrow = (np.asarray(Image.open(tmp_path / f"{name}.png")) for name in ("cols", "nrow"))
    assert cols.shape == nrow.shape and cols.shape[0] == 5 * (64 + 4) + 4    # 5 rows of 4 (32 px shown at 64)
