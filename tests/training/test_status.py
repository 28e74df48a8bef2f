"""Status from the facts: a non-finite loss is `diverged` whatever the callbacks; the stop is decided by all ranks together."""

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from initlab.training.callbacks import DivergenceMonitor
from initlab.training.run import run_training
from tests.conftest import FAST


def _record(cfg) -> dict:
    return json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())


def test_non_finite_loss_is_diverged_without_any_callback(compose_cfg):
    cfg = compose_cfg([*FAST, "callbacks=none", "optim=sgd", "optim.lr=1e4"])
    assert run_training(cfg) is None
    record = _record(cfg)
    assert record["status"] == "diverged", record
    assert record["train"]["loss"] == "nan" and "non-finite final" in record["error"]
    assert "test" not in record or record["test"] == {}


def test_divergence_monitor_stops_the_real_trainer_on_a_check_step(compose_cfg):
    cfg = compose_cfg([*FAST, "optim=sgd", "optim.lr=1e4", "callbacks.divergence.check_every_n_steps=2"])
    run_training(cfg)
    record = _record(cfg)
    assert record["status"] == "diverged" and record["diverged_step"] == 2 and record["steps"] == 2
    assert "initial loss" in record["error"] or "non-finite" in record["error"]


class FakeStrategy:
    """Reduces a boolean decision the way DDP does (``any`` over ranks), with the other ranks' flags given."""

    def __init__(self, other_ranks: list[bool]) -> None:
        self.other_ranks, self.calls = other_ranks, 0

    def reduce_boolean_decision(self, decision: bool, all: bool = True) -> bool:
        self.calls += 1
        flags = [decision, *self.other_ranks]
        return builtins_all(flags) if all else any(flags)


builtins_all = all


def _trainer(strategy: FakeStrategy, step: int) -> SimpleNamespace:
    return SimpleNamespace(strategy=strategy, global_step=step, should_stop=False)


@pytest.mark.parametrize(("local_loss", "others", "stops"), [
    (2.0, [False, False], False),
    (2.0, [False, True], True),       # another rank diverged: this finite rank stops with it
    (math.nan, [False, False], True),
    (500.0, [False], True),           # > 100 x the first loss (2.0)
])
def test_divergence_decision_is_reduced_over_ranks(local_loss, others, stops):
    monitor, strategy = DivergenceMonitor(max_loss_ratio=100.0, check_every_n_steps=5), FakeStrategy(others)
    monitor.on_train_batch_end(_trainer(strategy, 1), None, torch.tensor(2.0), None, 0)
    trainer = _trainer(strategy, 5)
    monitor.on_train_batch_end(trainer, None, {"loss": torch.tensor(local_loss)}, None, 0)
    assert trainer.should_stop is stops and (monitor.diverged_step == 5) is stops
    if stops and local_loss == 2.0:
        assert monitor.reason == "diverged on another rank"


def test_divergence_is_checked_only_every_n_steps():
    monitor, strategy = DivergenceMonitor(check_every_n_steps=10), FakeStrategy([])
    for step in range(1, 10):
        trainer = _trainer(strategy, step)
        monitor.on_train_batch_end(trainer, None, torch.tensor(math.nan), None, 0)
        assert not trainer.should_stop
    assert strategy.calls == 0
    trainer = _trainer(strategy, 10)
    monitor.on_train_batch_end(trainer, None, torch.tensor(math.nan), None, 0)
    assert trainer.should_stop and strategy.calls == 1 and monitor.reason == "non-finite loss nan"


def test_curvature_callback_with_cosine_schedule_ends_done(compose_cfg):
    cfg = compose_cfg([*FAST, "sched=cosine", "callbacks=curvature", "callbacks.curvature.every_n_steps=5",
                       "callbacks.curvature.num_samples=64", "callbacks.curvature.per_layer=false"])
    run_training(cfg)
    record = _record(cfg)
    assert record["status"] == "done", record.get("error")
    rows = (Path(cfg.paths.output_dir) / "curvature.csv").read_text().splitlines()
    header, last = rows[0].split(","), dict(zip(rows[0].split(","), rows[-1].split(",")))
    assert "eos_ratio" in header and "edge_2_over_lr" not in header
    assert float(last["lr"]) == 0.0 and float(last["eos_ratio"]) == 0.0  # cosine ends at lr 0: ratio 0, no division
