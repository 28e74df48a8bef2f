"""The spine end to end: every config option composes, runs train, writes its records."""

import json
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from initlab.config import CONFIG_DIR
from initlab.models import instantiate_model
from initlab.training.run import run_training
from tests.conftest import FAST, run_cli

GROUPS = ("data", "model", "init", "optim", "sched", "trainer", "logger", "callbacks", "debug", "experiment")
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((CONFIG_DIR / g).glob("*.yaml"))]


def _records(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes_and_instantiates(compose_cfg, group, option):
    cfg = compose_cfg([f"{group}={option}"])
    assert cfg.hydra.runtime.choices[group] == option
    if group == "data":
        datamodule = instantiate(cfg.data)
        assert datamodule.num_classes == cfg.data.num_classes
    model = instantiate_model(cfg.model)
    assert isinstance(model, torch.nn.Module)
    instantiate(cfg.init)(model, batch=(torch.randn(32, *cfg.data.input_shape), torch.arange(32) % cfg.data.num_classes),
                          class_freqs=torch.full((cfg.data.num_classes,), 1 / cfg.data.num_classes))
    optimizer = instantiate(cfg.optim)(model.parameters()) if cfg.optim.lr != "auto" else None
    if optimizer is not None:
        assert isinstance(optimizer, torch.optim.Optimizer)
        scheduler = instantiate(cfg.sched)(optimizer, total_steps=100)
        assert isinstance(scheduler, torch.optim.lr_scheduler.LRScheduler)
    if cfg.trainer.accelerator == "cpu":
        trainer = instantiate(cfg.trainer, logger=False, enable_progress_bar=False)
        assert trainer.max_epochs == cfg.trainer.max_epochs
    for node in (cfg.get("logger") or {}).values():
        assert "_target_" in node
    for node in (cfg.get("callbacks") or {}).values():
        instantiate(node)


def test_train_digits_writes_every_record(compose_cfg):
    cfg = compose_cfg([*FAST, "init=spectral", "optim=adam"])
    val_loss = run_training(cfg)
    run_dir = Path(cfg.paths.output_dir)
    record = _records(run_dir)
    assert record["status"] == "done"
    assert record["val"]["loss"] == pytest.approx(val_loss)
    assert 0 <= record["test"]["acc"] <= 1 and record["steps"] == 5 and record["epochs"] == 1
    assert record["wall_s"] > 0
    layers = json.loads((run_dir / "init.json").read_text())
    assert [row["name"] for row in layers["layers"]] == ["hidden1", "hidden2", "output"] and set(layers["fields"]) == set(layers["layers"][0])
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["last.ckpt", "last.ckpt.sha256"]
    assert "val/acc" in (run_dir / "history.csv").read_text().splitlines()[0]


def test_same_seed_same_metrics_different_seed_different_init(compose_cfg):
    records = []
    for seed in (3, 3, 4):
        cfg = compose_cfg([*FAST, f"seed={seed}"])
        run_training(cfg)
        run_dir = Path(cfg.paths.output_dir)
        records.append((_records(run_dir), json.loads((run_dir / "init.json").read_text())))
    (first, init_a), (second, init_b), (third, init_c) = records
    for stage in ("train", "val", "test"):
        assert first[stage] == second[stage]
    assert init_a == init_b and init_a != init_c


def test_train_mnist_t10k_smoke(compose_cfg):
    cfg = compose_cfg([*FAST, "data=mnist_t10k"])
    run_training(cfg)
    assert _records(Path(cfg.paths.output_dir))["status"] == "done"


def test_train_cnn_smoke(compose_cfg):
    cfg = compose_cfg([*FAST, "model=cnn", "init=kaiming_normal"])
    run_training(cfg)
    assert _records(Path(cfg.paths.output_dir))["status"] == "done"


def test_unknown_choice_lists_valid_ones(tmp_path):
    result = run_cli(["train.py", "init=nope", f"paths.log_dir={tmp_path}"], cwd=tmp_path, timeout=120)
    assert result.returncode != 0
    message = result.stdout + result.stderr
    assert "nope" in message and "spectral" in message and "xavier_normal" in message


def test_multirun_sweep_four_jobs_one_wandb_group(tmp_path):
    result = run_cli(
        ["train.py", "-m", "init=xavier_normal,spectral", "optim=sgd,adam", "debug=fast", "logger=wandb",
         f"paths.log_dir={tmp_path}"],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    records = sorted(tmp_path.glob("train/multiruns/*/*/metrics.json"))
    assert len(records) == 4
    assert all(json.loads(p.read_text())["status"] == "done" for p in records)
    wandb_runs = sorted(tmp_path.glob("train/multiruns/*/*/wandb/offline-run-*"))
    assert len(wandb_runs) == 4
    identities = [json.loads(p.read_text())["wandb"] for p in records]
    assert len({ident["group"] for ident in identities}) == 1 and identities[0]["group"]
    for ident in identities:
        (run,) = [r for r in wandb_runs if r.name.endswith(ident["id"])]
        assert ident["group"].encode() in next(run.glob("*.wandb")).read_bytes()
    assert "4 done" in result.stdout
