"""The training loop's parts alone (train.training): the schedule, the batches, the metrics
rows, the stop guard. The loop that puts them together is tested in test_train.py."""

from __future__ import annotations

import os
import signal
from types import SimpleNamespace

import pytest
import torch

from train.options import TrainOptions
from train.training.metrics_log import MetricsCollector
from train.training.sampler import BatchSampler, Schedule
from train.training.signals import StopGuard


class LabelsAsCondition:
    def real_condition(self, labels, aligned, gen):
        return labels


def test_the_schedule_counts_steps_from_iters_or_epochs():
    s = Schedule.of(TrainOptions(batch=4, epochs=2, n_critic=2), faces=13, world=2)
    assert (s.steps_per_epoch, s.total, s.per_rank, s.batch, s.full) == (3, 3, 2, 4, True)
    assert Schedule.of(TrainOptions(batch=16, iters=7), faces=13, world=1).batch == 13     # fewer faces than --batch
    assert Schedule.of(TrainOptions(batch=4, iters=7, sample_every=5), faces=13, world=1).sample_every == 5


def test_batches_are_a_pure_function_of_seed_step_and_rank():
    opts = TrainOptions(batch=4, iters=10, seed=3)
    data = SimpleNamespace(images=torch.arange(13, dtype=torch.uint8)[:, None, None, None].expand(13, 3, 2, 2),
                           labels=torch.arange(13.)[:, None], aligned=None)
    schedule = Schedule.of(opts, 13, world=2)
    ranks = [BatchSampler(data, LabelsAsCondition(), schedule, opts, rank, torch.device("cpu")) for rank in (0, 1)]
    for index in (0, 1, 2, 3, 7):
        a, b = (r.indices(index) for r in ranks)
        assert len(a) == len(b) == 2 and not set(a.tolist()) & set(b.tolist())      # each rank its half
        x, y, _ = ranks[0](index)
        x2, y2, _ = ranks[0](index)
        assert torch.equal(x, x2) and torch.equal(y, y2) and y[:, 0].long().tolist() == a.tolist()
        assert x.min() >= -1 and x.max() <= 1 and x.is_contiguous(memory_format=torch.channels_last)
    epochs = [torch.cat([ranks[0].indices(e * 3 + i) for i in range(3)]) for e in (0, 1)]
    assert len(set(epochs[0].tolist())) == 6 and not torch.equal(epochs[0], epochs[1])   # reshuffled per epoch


def test_metrics_rows_average_what_came_since_the_last():
    opts = TrainOptions(batch=4, iters=10, n_critic=1)
    metrics = MetricsCollector(opts, Schedule.of(opts, 13, 1), start=0, watch_discriminator=False)
    metrics.add(1, {"loss_d": torch.tensor(1.0), "loss_g": 2.0})
    metrics.add(2, {"loss_d": torch.tensor(3.0), "loss_g": 4.0})
    row = metrics.row(2)
    assert (row["step"], row["loss_d"], row["loss_g"], row["kimg"], row["d_wins"]) == (2, 2.0, 3.0, 0.008, 0)
    assert row["epoch"] == round(2 / 3, 3) and row["images_per_s"] > 0
    metrics.add(3, {"loss_d": torch.tensor(5.0), "loss_g": 6.0})
    assert metrics.row(3)["loss_d"] == 5.0


def test_the_stop_guard_asks_once_then_means_it():
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with StopGuard() as guard:
        assert not guard.stop_requested
        os.kill(os.getpid(), signal.SIGTERM)
        assert guard.stop_requested
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    with StopGuard(active=False):          # not rank 0: signals keep their usual effect
        assert signal.getsignal(signal.SIGINT) == before[0]
