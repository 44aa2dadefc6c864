"""Run by tests/test_train.py under torchrun: train a tiny run, save this rank's G weights.

A separate script (not mp.spawn inside pytest) so each rank starts as torchrun starts it
for real users, from a clean interpreter. Only rank 0 writes a run folder, so each rank's
weights are read from its own run state (train.training.state.RunState) when training ends.
"""

import json
import sys

import torch
import torch.distributed as dist

from train.loop import train
from train.options import TrainOptions
from train.training.state import RunState

opts_json, out_dir = sys.argv[1], sys.argv[2]
torch.set_num_threads(1)
states, init = [], RunState.__init__


def remembered(self, *args, **kwargs):
    init(self, *args, **kwargs)
    states.append(self)


RunState.__init__ = remembered
run_dir = train(TrainOptions.from_dict(json.loads(opts_json)))
(state,) = states
params = {k: v for k, v in state.G.state_dict().items() if "running" not in k and "num_batches" not in k}
torch.save({"run_dir": str(run_dir), "G": params, "step": state.step, "loss": state.loss.state_dict()},
           f"{out_dir}/rank{dist.get_rank()}.pt")
dist.destroy_process_group()
