"""Run with the code of commit a896ac2: the same run as make_old_run.py straight to 4 steps; its
generator is what resuming the 2-step run to --iters 4 must reach."""
from pathlib import Path
import torch
torch.set_num_threads(1)
from train.loop import train
from train.options import TrainOptions
out = Path("/tmp/oldgen")
opts = TrainOptions(model="acgan", catalog=str(out / "tiny.db"), labels="manual", attrs=["hair_color", "eye_color"],
                    size=32, ngf=4, ndf=4, batch=4, z_dim=8, min_per_tag=1, log_every=1, diag_every=1,
                    iters=4, checkpoint_every=1000, keep_checkpoints=1, sample_every=1,
                    runs_dir=str(out / "runs4"), cache_dir=str(out / "cache"), progress=False, precision="fp32")
run_dir = train(opts)
ckpt = torch.load(sorted((run_dir / "checkpoints").glob("*.pt"))[-1], weights_only=False)
assert ckpt["step"] == 4
torch.save({"G": ckpt["G"], "G_ema": ckpt["G_ema"]}, out / "expected_step4.pt")
