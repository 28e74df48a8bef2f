"""``optim.lr=auto`` during training: lambda_max re-measured against a dense-Hessian oracle, the 2/lr warning,
and ``optim.lr_refresh`` re-setting the lr (schedule shape kept), in a fake trainer and in a real run."""

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch.nn import functional as F
from torch.optim.lr_scheduler import LambdaLR

from initlab.config import ConfigError, validate_config
from initlab.training.callbacks import LrAutoGuard
from initlab.training.run import run_training
from tests.analysis.curvature_oracles import classification_batch, dense_hessian, tiny_mlp
from tests.conftest import FAST

SCHEDULE_FACTOR = 0.5  # a schedule part-way through: the lr is half its base


def _setup(base_lr: float, step: int = 4):
    """A tiny float64 MLP, its batch, an SGD optimizer under a constant-factor LambdaLR, and a trainer stand-in."""
    model = tiny_mlp("tanh")
    batch = classification_batch()
    optimizer = torch.optim.SGD(model.parameters(), lr=base_lr)
    scheduler = LambdaLR(optimizer, lambda k: SCHEDULE_FACTOR)
    trainer = SimpleNamespace(is_global_zero=True, global_step=step, current_epoch=0, loggers=[], optimizers=[optimizer],
                              lr_scheduler_configs=[SimpleNamespace(scheduler=scheduler)],
                              strategy=SimpleNamespace(broadcast=lambda value, src=0: value),
                              datamodule=SimpleNamespace(sample_batch=lambda n, seed: batch))
    oracle = torch.linalg.eigvalsh(dense_hessian(model, F.cross_entropy, *batch))[-1].item()
    return trainer, SimpleNamespace(model=model, device=torch.device("cpu")), oracle


def _check(guard: LrAutoGuard, trainer, module) -> None:
    guard.on_train_start(trainer, module)
    guard.on_train_batch_end(trainer, module, None, None, 0)


def test_refresh_sets_lr_to_scale_over_the_dense_hessian_lambda_max_keeping_the_schedule():
    trainer, module, oracle = _setup(base_lr=0.4)
    lambda_at_init = 2.0  # the lr 0.4 was scale / 2.0: scale = 0.8
    guard = LrAutoGuard(lambda_at_init, refresh_every_n_steps=4, num_samples=32, tol=1e-6)
    _check(guard, trainer, module)
    scale = 0.4 * lambda_at_init
    assert trainer.lr_scheduler_configs[0].scheduler.base_lrs[0] == pytest.approx(scale / oracle, rel=1e-4)
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(SCHEDULE_FACTOR * scale / oracle, rel=1e-4)
    assert guard.summary["refreshes"] == 1 and guard.summary["lambda_max_last"] == pytest.approx(oracle, rel=1e-4)


def test_no_refresh_off_schedule_and_none_without_lr_refresh():
    trainer, module, _ = _setup(base_lr=0.4, step=3)
    guard = LrAutoGuard(2.0, refresh_every_n_steps=4, num_samples=32)
    _check(guard, trainer, module)  # step 3: not a refresh step, and nothing is measured at train start
    assert guard.summary["checks"] == 0 and trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.2)
    trainer.global_step = 25
    watch_only = LrAutoGuard(2.0, num_samples=32)  # checks every 25 steps, never changes the lr
    _check(watch_only, trainer, module)
    assert watch_only.summary["checks"] == 1 and watch_only.summary["refreshes"] == 0
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.2)


@pytest.mark.parametrize("past_edge", [False, True])
def test_warns_once_exactly_when_lambda_max_passes_two_over_lr(caplog, past_edge):
    _, _, oracle = _setup(base_lr=1.0)
    lr = (2.0 / oracle) * (1.05 if past_edge else 0.95)  # the lr in use (schedule included) on either side of the edge
    trainer, module, _ = _setup(base_lr=lr / SCHEDULE_FACTOR)
    guard = LrAutoGuard(1.0, check_every_n_steps=4, num_samples=32, tol=1e-6)
    with caplog.at_level(logging.WARNING, logger="initlab.training.callbacks"):
        _check(guard, trainer, module)
        trainer.global_step = 8
        _check(guard, trainer, module)
    warned = [r for r in caplog.records if "passed 2/lr" in r.getMessage()]
    assert len(warned) == (1 if past_edge else 0)
    assert guard.summary["edge_step"] == (4 if past_edge else None)
    assert guard.summary["max_eos_ratio"] == pytest.approx(oracle * lr / 2, rel=1e-4)


def test_lr_refresh_needs_lr_auto(compose_cfg):
    with pytest.raises(ConfigError, match="optim.lr_refresh: got 3, needs optim.lr=auto"):
        validate_config(compose_cfg([*FAST, "optim=sgd", "+optim.lr_refresh=3"]))


def test_a_run_with_lr_refresh_records_every_refresh(compose_cfg):
    cfg = compose_cfg([*FAST, "optim=sgd", "optim.lr=auto", "+optim.lr_refresh=2"])
    run_training(cfg)
    record = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    lr_auto = record["status"] == "done" and record["lr_auto"]
    assert lr_auto["refreshes"] == lr_auto["checks"] == record["steps"] // 2  # steps 2 and 4 of debug=fast's 5
    assert lr_auto["lr_last"] == pytest.approx(cfg.lr_auto_scale / lr_auto["lambda_max_last"], rel=1e-9)
