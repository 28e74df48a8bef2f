"""conf/optim and conf/sched honour the training code's contract, match the registries, and
reject bad hyperparameters at construction with an error naming the key."""

import inspect
from itertools import cycle
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import get_object, instantiate
from omegaconf import OmegaConf

from initlab.config import CONFIG_DIR
from initlab.optim import OPTIMIZERS, SCHEDULES

OPTIM_YAMLS = sorted((Path(CONFIG_DIR) / "optim").glob("*.yaml"))
SCHED_YAMLS = sorted((Path(CONFIG_DIR) / "sched").glob("*.yaml"))


def model_params() -> list[torch.nn.Parameter]:
    return list(torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2)).parameters())


def yaml_defaults(cfg) -> dict:
    return {k: v for k, v in OmegaConf.to_container(cfg).items() if not k.startswith("_")}


def signature_defaults(factory) -> dict:
    return {n: p.default for n, p in inspect.signature(factory).parameters.items() if p.default is not p.empty}


def test_registries_match_yaml_files() -> None:
    assert {p.stem for p in OPTIM_YAMLS} == set(OPTIMIZERS)
    assert {p.stem for p in SCHED_YAMLS} == set(SCHEDULES)


@pytest.mark.parametrize("path", OPTIM_YAMLS, ids=lambda p: p.stem)
def test_optim_yaml_instantiates_an_optimizer(path: Path) -> None:
    cfg = OmegaConf.load(path)
    assert cfg._partial_ is True and "lr" in cfg
    assert get_object(cfg._target_) is OPTIMIZERS[path.stem]
    assert yaml_defaults(cfg) == signature_defaults(OPTIMIZERS[path.stem]), "YAML and code defaults differ"
    optimizer = instantiate(cfg)(model_params())
    assert isinstance(optimizer, torch.optim.Optimizer)


@pytest.mark.parametrize("path", SCHED_YAMLS, ids=lambda p: p.stem)
def test_sched_yaml_instantiates_a_scheduler(path: Path) -> None:
    cfg = OmegaConf.load(path)
    assert cfg._partial_ is True and cfg.warmup_steps == 0
    assert get_object(cfg._target_) is SCHEDULES[path.stem]
    assert yaml_defaults(cfg) == signature_defaults(SCHEDULES[path.stem])
    optimizer = torch.optim.SGD(model_params(), lr=0.1)
    scheduler = instantiate(cfg)(optimizer, total_steps=100)
    assert isinstance(scheduler, torch.optim.lr_scheduler.LRScheduler)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1)


@pytest.mark.parametrize("optim, sched", zip(sorted(OPTIMIZERS), cycle(sorted(SCHEDULES))))
def test_groups_compose_with_hydra(optim: str, sched: str) -> None:
    """Each option composes as a config group, with overrides of its keys, next to a schedule."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(overrides=[f"+optim={optim}", f"+sched={sched}", "optim.lr=0.02", "sched.warmup_steps=3"])
    GlobalHydra.instance().clear()
    optimizer = instantiate(cfg.optim)(model_params())
    scheduler = instantiate(cfg.sched)(optimizer, total_steps=50)
    assert scheduler.base_lrs[0] == pytest.approx(0.02 * cfg.optim.get("beta", 1.0))  # lowpass: eta*beta
    assert optimizer.param_groups[0]["lr"] == pytest.approx(scheduler.base_lrs[0] / 4)


BAD_OPTIM = [
    *[(name, "lr", -0.1) for name in sorted(OPTIMIZERS)],
    *[(name, "alpha", bad) for name in ("momentum", "nesterov", "rmsprop_nesterov") for bad in (1.0, -0.1)],
    *[(name, "rho", bad) for name in ("rmsprop", "rmsprop_nesterov") for bad in (1.0, -0.5)],
    ("adam", "rho1", 1.0),
    ("adam", "rho2", -0.1),
    *[("momentum_lowpass", "beta", bad) for bad in (0.0, 1.5)],
    *[(name, "delta", 0.0) for name in ("adagrad", "rmsprop", "rmsprop_nesterov", "adam")],
]


@pytest.mark.parametrize("name, key, value", BAD_OPTIM)
def test_bad_optimizer_hyperparameter_names_its_key(name: str, key: str, value: float) -> None:
    with pytest.raises(ValueError, match=rf"^{key} must be"):
        OPTIMIZERS[name](model_params(), **{key: value})


BAD_SCHED = [
    *[(name, "warmup_steps", -1) for name in sorted(SCHEDULES)],
    ("linear_decay", "warmup_steps", 100),
    ("linear_decay", "tau", 0),
    ("linear_decay", "end_factor", -0.1),
    ("inverse_time", "tau", -5),
    ("step", "step_size", 0),
    ("step", "gamma", 0.0),
    ("exponential", "gamma", 1.5),
    ("cosine", "end_factor", 2.0),
]


@pytest.mark.parametrize("name, key, value", BAD_SCHED)
def test_bad_schedule_hyperparameter_names_its_key(name: str, key: str, value: float) -> None:
    optimizer = torch.optim.SGD(model_params(), lr=0.1)
    with pytest.raises(ValueError, match=rf"^{key} must be"):
        SCHEDULES[name](optimizer, total_steps=100, **{key: value})
