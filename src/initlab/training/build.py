"""Build the parts of a run from a composed config (shared by train, lr_find and analyze)."""

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

log = logging.getLogger(__name__)

Batch = tuple[Tensor, Tensor]


def build_datamodule(cfg: DictConfig) -> Any:
    """Seed everything, then load the dataset into memory (cached under ``data/processed``)."""
    import pytorch_lightning as pl
    from hydra.utils import instantiate

    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def instantiate_model(model_cfg: DictConfig) -> nn.Module:
    """The ``nn.Module`` of a model config (its ``compile`` flag is applied by :func:`build_module`)."""
    from hydra.utils import instantiate

    node = OmegaConf.to_container(model_cfg, resolve=True)
    node.pop("compile", None)
    return instantiate(node)


def build_model(cfg: DictConfig, datamodule: Any) -> tuple[nn.Module, Batch]:
    """The model initialized by ``cfg.init`` (data-aware inits see ``init_batch_size`` training samples)."""
    from hydra.utils import instantiate

    model = instantiate_model(cfg.model)
    init_batch = datamodule.sample_batch(cfg.init_batch_size, seed=cfg.seed)
    instantiate(cfg.init)(model, batch=init_batch, class_freqs=datamodule.class_frequencies())
    return model, init_batch


def log_init_report(model: nn.Module, path: Path | None) -> list[dict[str, Any]]:
    """Per-layer init report (fans, std, spectral norm vs paper eq. (7)) to the log and ``init.json``."""
    from initlab.init import init_report
    from initlab.training.records import write_json

    report = init_report(model)
    if path is not None:
        write_json(path, report)
    for row in report:
        log.info("init %s", " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    return report


def curvature_scaled_lr(model: nn.Module, batch: Batch, scale: float) -> dict[str, float]:
    """``scale / lambda_max`` of the loss Hessian on ``batch``: the paper's gamma* = 1/||H|| (METHODS.md §4)."""
    from torch.nn import functional as F

    from initlab.analysis import hessian_eigenvalues

    result = hessian_eigenvalues(model, F.cross_entropy, batch[0], batch[1], k=1, which="LA", tol=1e-3)
    lambda_max = result.lambda_max
    if not lambda_max > 0:
        raise RuntimeError(f"optim.lr=auto: lambda_max = {lambda_max} is not positive; set optim.lr explicitly")
    return {"lambda_max": lambda_max, "lr": scale / lambda_max}


def optimizer_config(cfg: DictConfig, model: nn.Module, batch: Batch) -> tuple[DictConfig, dict[str, float]]:
    """``cfg.optim`` with ``lr=auto`` replaced by the curvature-scaled value (and what was measured)."""
    if cfg.optim.get("lr") != "auto":
        return cfg.optim, {}
    measured = curvature_scaled_lr(model, batch, cfg.lr_auto_scale)
    log.info("optim.lr=auto: lambda_max=%.5g -> lr=%.5g", measured["lambda_max"], measured["lr"])
    optim_cfg = cfg.optim.copy()
    optim_cfg.lr = measured["lr"]
    return optim_cfg, measured


def build_module(cfg: DictConfig, model: nn.Module, batch: Batch) -> tuple[Any, dict[str, float]]:
    """The LightningModule with the optimizer/schedule partials (``lr=auto`` resolved on ``batch``)."""
    from hydra.utils import instantiate

    from initlab.training.module import ClassifierModule

    optim_cfg, lr_auto = optimizer_config(cfg, model, batch)
    if cfg.model.get("compile", False):
        model.compile()  # in place: checkpoints keep the plain parameter names
    module = ClassifierModule(model, instantiate(optim_cfg), instantiate(cfg.sched), num_classes=cfg.data.num_classes)
    return module, lr_auto


def load_model_weights(model: nn.Module, ckpt_path: str | Path) -> nn.Module:
    """Load the ``model.*`` weights of a training checkpoint into ``model`` (weights only, no code)."""
    import torch

    import initlab.optim  # noqa: F401  (registers the schedule classes stored in checkpoints as safe)

    state = torch.load(ckpt_path, map_location="cpu", weights_only=True)["state_dict"]
    prefix = "model."
    model.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
    return model
