"""The config schema: every bad input is one ConfigError line, every shipped option passes.

In process: compose with Hydra's Compose API as ``train.py`` does, then validate. The
subprocess variant of the issue-13 list lives in test_robust.py.
"""

import os
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from omegaconf import DictConfig, open_dict
from omegaconf.errors import OmegaConfBaseException

from initlab import schema
from initlab.cli.common import print_config_tree
from initlab.config import (CONFIG_DIR, PROJECT_ROOT, ConfigError, check_overrides, hydra_error, register_resolvers, validate_config,
                            validate_with_data)

from tests.conftest import run_cli

register_resolvers()
ON_CPU_ONLY = not torch.cuda.is_available()
TOO_MANY_CPU_PROCESSES = (os.cpu_count() or 1) + 1


def compose_train(overrides: list[str], output_dir: Path = Path("/tmp/initlab-schema")) -> DictConfig:
    """``train.yaml`` composed like the CLI does; Hydra's errors as ConfigError."""
    check_overrides(overrides)
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg = compose("train", overrides=overrides, return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as err:
        raise hydra_error(err) from None
    finally:
        GlobalHydra.instance().clear()
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    return cfg


def rejection(overrides: list[str]) -> str | None:
    """The one-line message a config is rejected with, or None when it passes."""
    try:
        validate_config(compose_train(overrides))
    except ConfigError as err:
        return str(err)
    return None


# Issue 13's commands (and the README's promises): overrides -> the start of the one line.
ISSUE_13 = {
    "check_val_every_n_epoch=0": (["trainer.check_val_every_n_epoch=0"], "trainer.check_val_every_n_epoch: got 0, must be"),
    "seed beyond 2^32-1": (["seed=4294967296"], "seed: got 4294967296, must be an integer in [0, 4294967295]"),
    "nan init value": (["init=constant", "init.value=nan"], "init.value: got nan, must be finite"),
    "inf anywhere": (["trainer.gradient_clip_val=inf"], "trainer.gradient_clip_val: got inf, must be finite"),
    "output_marginals without head bias": (["init.bias=output_marginals", "model.bias=false", "init=lsuv"],
                                           "init.bias: got 'output_marginals', needs an output layer with a bias"),
    "2,000-character key": ([f"+{'k' * 2000}=1"], "unknown key"),
    "test=maybe": (["test=maybe"], "test: got 'maybe', must be true or false"),
    "tags=5": (["tags=5"], "tags: got 5, must be a list"),
    "zero train batches": (["trainer.limit_train_batches=0"], "trainer.limit_train_batches: got 0"),
    "zero val batches": (["trainer.limit_val_batches=0"], "trainer.limit_val_batches: got 0"),
    "negative log interval": (["trainer.log_every_n_steps=-1"], "trainer.log_every_n_steps: got -1"),
    "negative clip": (["trainer.gradient_clip_val=-1"], "trainer.gradient_clip_val: got -1"),
    "underflowing lr": (["optim.lr=1e-300"], "optim.lr: got 1e-300, must be 'auto' or a number >= 1e-12 and <= 1e+06"),
    "null epochs": (["trainer.max_epochs=null"], "trainer.max_epochs: got None, must be an integer >= 1"),
    "unknown top-level key lr": (["+lr=0.1"], "lr: got 0.1, unknown key (did you mean 'optim.lr'?)"),
    "unknown top-level key sed": (["+sed=3"], "sed: got 3, unknown key (did you mean 'seed'?)"),
    "unknown top-level node": (["+optimizer.lr=0.1"], "optimizer: got {'lr': 0.1}, unknown key (did you mean 'optim'?)"),
    "unknown group option": (["init=nope"], "init: got 'nope', must be one of ['constant',"),
    "bad override syntax": (["optim.lr=="], "optim.lr: got '=', cannot be parsed"),
    "+key that exists": (["+seed=3"], "seed: got '+seed=...', already in the config: set it without '+'"),
    "key without +": (["foo=3"], "foo: got '3', unknown key"),
    "missing value": (["trainer.max_epochs=???"], "trainer.max_epochs: got '???', must be given a value"),
    "zero lr": (["optim.lr=0"], "optim.lr: got 0"),
    "lr of wrong type": (["optim.lr=fast"], "optim.lr: got 'fast'"),
    "fractional epochs": (["trainer.max_epochs=1.5"], "trainer.max_epochs: got 1.5"),
    "zero width": (["model.widths=[0,16]"], "model.widths: got [0, 16]"),
    "bool for int": (["model.widths=[true]"], "model.widths: got [True]"),
    "negative batch size": (["data.batch_size=-5"], "data.batch_size: got -5"),
    "typo in model key": (["+model.widht=3"], "model.widht: got 3, unknown key (did you mean 'widths'?)"),
    "typo in trainer key": (["+trainer.max_epoch=3"], "trainer.max_epoch: got 3, unknown key (did you mean 'max_epochs'?)"),
    "typo in a plain group": (["+lr_find.min=3"], "lr_find.min: got 3, unknown key (did you mean 'min_lr'?)"),
    "wrong type from the signature": (["trainer.deterministic=maybe"], "trainer.deterministic: got 'maybe', must be"),
    "typo in init key": (["+init.sdt=0.1"], "unknown init key(s) ['sdt']"),
    "unknown activation": (["model.activation=swish"], "model: got 'mlp', unknown activation 'swish'"),
    "momentum out of range": (["optim=momentum", "optim.alpha=1.5"], "alpha must be in [0.0, 1.0)"),
    "bad schedule value": (["sched=linear_decay", "sched.end_factor=-1"], "sched: got 'linear_decay', end_factor"),
    "negative seed": (["seed=-1"], "seed: got -1"),
    "cnn too deep for 8x8": (["model=cnn", "model.channels=[4,4,4,4]"], "too small for 4 pooling stages"),
    "model/data shape mismatch": (["model.num_classes=5"], "model.num_classes: got 5, but data=digits has 10 classes"),
    "unknown data device": (["data.device=tpu"], "data: got 'digits', unknown data device 'tpu'"),
    "too many CPU processes": (["trainer=ddp", f"trainer.devices={TOO_MANY_CPU_PROCESSES}"], "trainer.devices: got"),
}
CPU_ONLY = {
    "float16 on the CPU": (["trainer.precision=16-mixed"], "trainer.precision: got '16-mixed'"),
    "gpu without one": (["trainer=gpu"], "trainer.accelerator: got 'gpu', needs a CUDA device"),
    "data on a missing GPU": (["data.device=cuda"], "data.device: got 'cuda', needs a CUDA device"),
}


@pytest.mark.parametrize(("overrides", "start"), ISSUE_13.values(), ids=ISSUE_13.keys())
def test_bad_input_is_one_clean_line(overrides, start):
    message = rejection(overrides)
    assert message is not None and "\n" not in message and len(message) <= 400
    assert start in message


@pytest.mark.skipif(not ON_CPU_ONLY, reason="this machine has a GPU")
@pytest.mark.parametrize(("overrides", "start"), CPU_ONLY.values(), ids=CPU_ONLY.keys())
def test_what_the_cpu_cannot_run_is_rejected(overrides, start):
    assert start in rejection(overrides)


@pytest.mark.parametrize(("trainer", "gpus", "bf16", "start"), [
    ({"accelerator": "gpu", "devices": 1, "precision": "16-mixed"}, 1, True, None),
    ({"accelerator": "gpu", "devices": 2}, 1, True, "trainer.devices: got 2, must be <= 1: this machine has 1 CUDA devices"),
    ({"accelerator": "auto", "strategy": "ddp", "devices": [0, 1, 2]}, 2, True, "trainer.devices: got [0, 1, 2], must be <= 2"),
    ({"accelerator": "gpu", "devices": 1, "precision": "bf16-mixed"}, 1, False, "trainer.precision: got 'bf16-mixed', needs a GPU"),
    ({"accelerator": "gpu", "devices": 1}, 0, False, "trainer.accelerator: got 'gpu', needs a CUDA device"),
    ({"accelerator": "cpu", "devices": TOO_MANY_CPU_PROCESSES}, 0, False, "trainer.devices: got"),
    ({"accelerator": "cpu", "devices": 1, "precision": "bf16-mixed"}, 0, False, None),
    ({"accelerator": "cpu", "devices": 1, "precision": 16}, 0, False, "trainer.precision: got 16, must be 32-true"),
])
def test_devices_the_machine_has(monkeypatch, trainer, gpus, bf16, start):
    monkeypatch.setattr(schema, "_cuda_devices", lambda: gpus)
    monkeypatch.setattr(schema, "_cuda_bf16", lambda: bf16)
    problems = schema.device_problems({"trainer": trainer})
    assert (problems == []) if start is None else problems[0].startswith(start)


GROUP_OPTIONS = [f"{g}={p.stem}" for g in ("data", "model", "init", "optim", "sched", "callbacks", "logger", "debug", "experiment")
                 for p in sorted((CONFIG_DIR / g).glob("*.yaml"))]


@pytest.mark.parametrize("override", [*GROUP_OPTIONS, "hparams_search=optuna", "optim.lr=auto", "trainer=ddp trainer.devices=1",
                                      "init/bias=output_marginals", "seed=4294967295", "trainer.precision=bf16-mixed"])
def test_every_shipped_option_passes(override):
    assert rejection(override.split()) is None


def test_a_typo_is_rejected_in_a_second_without_importing_torch(tmp_path):
    result = run_cli(["-X", "importtime", str(PROJECT_ROOT / "train.py"), "+sed=3", f"hydra.run.dir={tmp_path}"], cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert "initlab.config" in imported and not {"torch", "pytorch_lightning"} & imported
    assert result.stderr.splitlines()[-1] == "initlab: sed: got 3, unknown key (did you mean 'seed'?)"


def test_every_run_level_key_of_the_root_configs_is_declared():
    """conf/train.yaml, analyze.yaml and lr_find.yaml hold no key the schema does not check."""
    from omegaconf import OmegaConf

    for name in ("train", "analyze", "lr_find"):
        root = OmegaConf.load(CONFIG_DIR / f"{name}.yaml")
        for key in root:
            if key != "defaults":
                assert key in schema.TARGET_GROUPS + schema.CONTAINERS + schema.PLAIN_GROUPS or schema.rules_for(key), (name, key)


class _Data:
    """The facts validate_with_data reads from a loaded datamodule (one val batch, like digits)."""

    def __init__(self, train_size: int, input_shape: tuple[int, ...] = (1, 8, 8), num_classes: int = 10) -> None:
        self.train_data = type("Split", (), {"y": torch.zeros(train_size)})()
        self.input_shape, self.num_classes = input_shape, num_classes

    def train_dataloader(self) -> list[int]:
        return [0] * (len(self.train_data.y) // 128)

    def val_dataloader(self) -> list[int]:
        return [0]

    test_dataloader = val_dataloader


@pytest.mark.parametrize(("overrides", "data", "steps", "start"), [
    (["data.limit_train=10", "init_batch_size=64"], _Data(10), 100,
     "init_batch_size: got 64, must be <= 10: data=digits with data.limit_train=10 has 10"),
    (["sched.warmup_steps=50"], _Data(1257), 5, "sched.warmup_steps: got 50, must be < the run's 5 optimizer steps"),
    (["sched=step", "sched.warmup_steps=4"], _Data(1257), 5, None),
    ([], _Data(1257, num_classes=5), 100, "model.num_classes: got 10, but data=digits has 5 classes"),
    ([], _Data(1257, input_shape=(1, 28, 28)), 100, "model.input_shape: got [1, 8, 8], but data=digits has inputs of shape [1, 28, 28]"),
    ([], _Data(1257), 100, None),
    (["trainer.limit_val_batches=0.5"], _Data(1257), 100, "trainer.limit_val_batches: got 0.5, keeps no batch: data=digits has 1 val"),
    (["trainer.limit_train_batches=0.2"], _Data(1257), 100, None),
    (["trainer.limit_train_batches=0.1"], _Data(1257), 100, "trainer.limit_train_batches: got 0.1, keeps no batch: data=digits has 9 train"),
])
def test_checks_that_need_the_data(overrides, data, steps, start):
    cfg = compose_train(overrides)
    validate_config(cfg)
    if start is None:
        validate_with_data(cfg, data, total_steps=steps)
        return
    with pytest.raises(ConfigError) as info:
        validate_with_data(cfg, data, total_steps=steps)
    assert str(info.value).startswith(start)


def test_the_default_init_batch_shrinks_to_a_small_train_split():
    """README: ``data.limit_train=100`` runs; the default init_batch_size=512 asks for at most 512 samples."""
    cfg = compose_train(["data.limit_train=100"])
    validate_config(cfg)
    validate_with_data(cfg, _Data(100), total_steps=100)
    assert cfg.init_batch_size == 100


def test_config_tree_log_keeps_long_lines_whole(tmp_path):
    long_tag = "t" * 60
    cfg = compose_train([f"tags=[{long_tag},{long_tag}]", f"paths.log_dir={tmp_path / ('x' * 120)}"])
    print_config_tree(cfg, save_dir=tmp_path)
    lines = (tmp_path / "config_tree.log").read_text().splitlines()
    assert any(f"'{long_tag}', '{long_tag}'" in line for line in lines)
    assert any(str(tmp_path / ("x" * 120)) in line for line in lines)
    assert max(len(line) for line in lines) < 1000, "no padding to the console width"


def test_hydra_errors_become_one_line():
    assert str(hydra_error(HydraException("a\n  b\n\nc"))) == "a b c"
