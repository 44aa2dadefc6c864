"""Run with the code of commit a896ac2: a tiny acgan run folder and judge in the format of that day."""
import sys
from pathlib import Path
sys.path.insert(0, "tests")
from conftest import png_bytes
from db import Catalog
import torch
torch.set_num_threads(1)

out = Path("/tmp/oldgen")
path = out / "tiny.db"
cat = Catalog(path)
hair = ["blonde hair", "black hair", "red hair"]
eyes = ["blue eyes", "red eyes"]
labels = []
for i in range(24):
    sid = cat.save_source(f"/synthetic/{i}.png", sha256=f"{i:064x}", size=1, width=32, height=32,
                          status="ok", detector="none")
    fid = cat.add_face(source_id=sid, image=png_bytes(i), format="png", width=32, height=32, detector="none")
    labels += [(fid, hair[i % 3], 1.0), (fid, eyes[i % 2], 1.0)]
cat.add_labels(labels, "manual", "tester")
cat.assign_splits(val=0.2, test=0.2, seed=0)
cat.close()

from train.loop import train
from train.options import TrainOptions
opts = TrainOptions(model="acgan", catalog=str(path), labels="manual", attrs=["hair_color", "eye_color"],
                    size=32, ngf=4, ndf=4, batch=4, z_dim=8, min_per_tag=1, log_every=1, diag_every=1,
                    iters=2, checkpoint_every=1000, keep_checkpoints=1, sample_every=1,
                    runs_dir=str(out / "runs"), cache_dir=str(out / "cache"), progress=False, precision="fp32")
print(train(opts))
from train.judge import JudgeOptions, train_judge
with Catalog(path, create=False) as c:
    j = train_judge(c, JudgeOptions(source="manual", size=16, width=2, feature_dim=8, epochs=1, batch=4,
                                    catalog=str(path)))
j.save(out / "judge-manual.pt")
