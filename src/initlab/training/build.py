"""The steps of a run, each one call (shared by train, lr_find and analyze)."""

import logging
import math
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, open_dict
from torch import Tensor, nn

from initlab.models import instantiate_model
from initlab.schema import LR_CEIL, problem

log = logging.getLogger(__name__)

Batch = tuple[Tensor, Tensor]
# Keys of an optim node that configure the run around the optimizer, not the optimizer's constructor:
# ``lr_refresh`` (with ``lr=auto``) is :class:`initlab.training.callbacks.LrAutoGuard`'s ``refresh_every_n_steps``.
OPTIM_RUN_KEYS = ("lr_refresh",)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (and loader workers): the same seed gives the same run."""
    import pytorch_lightning as pl

    pl.seed_everything(seed, workers=True, verbose=False)


def build_datamodule(cfg: DictConfig) -> Any:
    """Load the dataset into memory (cached under ``data/processed``)."""
    from hydra.utils import instantiate

    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def total_steps(trainer_cfg: DictConfig, datamodule: Any) -> int:
    """Optimizer steps of the whole run as Lightning's ``estimated_stepping_batches`` counts them (schedules and
    warm-up are checked against it): each process's share of the batches, ceil over gradient accumulation, max_steps."""
    devices = trainer_cfg.get("devices")
    processes = len(devices) if isinstance(devices, ListConfig | list) else devices if isinstance(devices, int) and devices > 0 else 1
    batches = math.ceil(len(datamodule.train_dataloader()) / (processes * int(trainer_cfg.get("num_nodes") or 1)))
    limit = trainer_cfg.get("limit_train_batches")
    if isinstance(limit, float):
        batches = int(batches * limit)
    elif isinstance(limit, int):
        batches = min(batches, limit)
    steps = math.ceil(batches / int(trainer_cfg.get("accumulate_grad_batches") or 1)) * int(trainer_cfg.get("max_epochs") or 0)
    max_steps = trainer_cfg.get("max_steps")
    return steps if max_steps in (None, -1) else min(steps, int(max_steps))


def initialize(cfg: DictConfig, model: nn.Module, datamodule: Any) -> Batch:
    """Initialize ``model`` in place by ``cfg.init``; returns the ``init_batch_size`` training samples data-aware inits saw."""
    from hydra.utils import instantiate

    init_batch = datamodule.sample_batch(cfg.init_batch_size, seed=cfg.seed)
    instantiate(cfg.init)(model, batch=init_batch, class_freqs=datamodule.class_frequencies())
    return init_batch


def build_model(cfg: DictConfig, datamodule: Any) -> tuple[nn.Module, Batch]:
    """The model of ``cfg.model`` initialized by ``cfg.init`` (for apps that need no step in between)."""
    model = instantiate_model(cfg.model)
    return model, initialize(cfg, model, datamodule)


def log_init_report(model: nn.Module, path: Path | None) -> dict[str, Any]:
    """Per-layer init report (fans, std, spectral norm vs paper eq. (7), with its legend) to the log and ``init.json``."""
    from initlab.init import init_report
    from initlab.training.records import write_json

    report = init_report(model)
    if path is not None:
        write_json(path, report)
    for row in report["layers"]:
        log.info("init %s", " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    return report


def curvature_scaled_lr(model: nn.Module, batch: Batch, scale: float) -> dict[str, float]:
    """``scale / lambda_max`` of the loss Hessian on ``batch`` (on the model's device): gamma* = 1/||H|| (docs/methods.md)."""
    from torch.nn import functional as F

    from initlab.analysis import CurvatureProblem, top_eigenvalue

    lambda_max = top_eigenvalue(CurvatureProblem(model, F.cross_entropy, batch, batch_size=1024), tol=1e-3)
    if not lambda_max > 0:
        raise RuntimeError(f"optim.lr=auto: lambda_max = {lambda_max} is not positive; set optim.lr explicitly")
    lr = scale / lambda_max
    if not lr <= LR_CEIL:
        from initlab.errors import ConfigError

        raise ConfigError(problem("optim.lr", "auto", f"gave lr_auto_scale / lambda_max = {scale:g} / {lambda_max:.3g} = {lr:.3g}, "
                                                      f"above the largest lr {LR_CEIL:g}; lower lr_auto_scale or set optim.lr"))
    return {"lambda_max": lambda_max, "lr": lr}


def optimizer_node(optim_cfg: DictConfig) -> DictConfig:
    """The optimizer's own keys of an ``optim`` node (without ``OPTIM_RUN_KEYS``), ready to instantiate."""
    node = optim_cfg.copy()
    with open_dict(node):
        for key in OPTIM_RUN_KEYS:
            node.pop(key, None)
    return node


def optimizer_config(cfg: DictConfig, model: nn.Module, batch: Batch) -> tuple[DictConfig, dict[str, float]]:
    """``cfg.optim`` with ``lr=auto`` replaced by the curvature-scaled value (and what was measured): the one place it is resolved."""
    optim_cfg = optimizer_node(cfg.optim)
    if optim_cfg.get("lr") != "auto":
        return optim_cfg, {}
    measured = curvature_scaled_lr(model, batch, cfg.lr_auto_scale)
    log.info("optim.lr=auto: lambda_max=%.5g -> lr=%.5g", measured["lambda_max"], measured["lr"])
    optim_cfg.lr = measured["lr"]
    return optim_cfg, measured


def lr_auto_guard(cfg: DictConfig, lr_auto: dict[str, float]) -> list[Any]:
    """With ``optim.lr=auto``, the callback that re-measures lambda_max during training (warns past 2/lr,
    re-sets the lr every ``optim.lr_refresh`` steps) on the samples the lr was set on."""
    from initlab.training.callbacks import LrAutoGuard

    if not lr_auto:
        return []
    refresh = {"refresh_every_n_steps": cfg.optim.lr_refresh} if cfg.optim.get("lr_refresh") is not None else {}
    return [LrAutoGuard(lr_auto["lambda_max"], num_samples=cfg.init_batch_size, seed=cfg.seed, **refresh)]


def build_module(cfg: DictConfig, model: nn.Module, batch: Batch) -> tuple[Any, dict[str, float]]:
    """The LightningModule with the optimizer/schedule partials (``lr=auto`` resolved on ``batch``)."""
    from hydra.utils import instantiate

    from initlab.training.module import ClassifierModule

    optim_cfg, lr_auto = optimizer_config(cfg, model, batch)
    module = ClassifierModule(model, instantiate(optim_cfg), instantiate(cfg.sched), num_classes=cfg.data.num_classes,
                              compile=bool(cfg.model.get("compile", False)))
    return module, lr_auto


def instantiate_all(node: DictConfig | None) -> list[Any]:
    """The objects of every ``_target_`` child of a group node (loggers, callbacks)."""
    from hydra.utils import instantiate

    if not node:
        return []
    return [instantiate(child) for child in node.values() if isinstance(child, DictConfig) and "_target_" in child]


def build_trainer(cfg: DictConfig, loggers: list[Any], extra_callbacks: list[Any] = ()) -> tuple[Any, list[Any]]:
    """The Trainer of ``cfg.trainer`` with the callbacks of ``cfg.callbacks`` and ``extra_callbacks`` (Lightning adds no
    checkpoint of its own)."""
    from hydra.utils import instantiate
    from pytorch_lightning.callbacks import ModelCheckpoint

    callbacks = instantiate_all(cfg.get("callbacks")) + list(extra_callbacks)
    checkpointing = any(isinstance(c, ModelCheckpoint) for c in callbacks)
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, enable_checkpointing=checkpointing)
    return trainer, callbacks


def load_model_weights(model: nn.Module, ckpt_path: str | Path) -> nn.Module:
    """Load the ``model.*`` weights of a verified training checkpoint into ``model`` (weights only, no code)."""
    from initlab.training.checkpoints import check_fit, verified_checkpoint

    state = check_fit(verified_checkpoint(ckpt_path), model)["state_dict"]
    prefix = "model."
    model.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
    return model
