"""One training run from a composed config: validate -> seed -> data -> model -> init -> fit -> test -> records."""

import logging
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from initlab.config import ConfigError, validate_config
from initlab.training.records import metrics_record, write_json

log = logging.getLogger(__name__)


def _hydra_runtime() -> dict[str, Any]:
    """Choices, overrides and sweep facts of the current Hydra job (empty outside Hydra)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return {"multirun": False, "choices": {}, "overrides": [], "sweep_dir": None}
    hc = HydraConfig.get()
    return {
        "multirun": hc.mode == RunMode.MULTIRUN,
        "choices": dict(hc.runtime.choices),
        "overrides": list(hc.overrides.task),
        "sweep_dir": hc.sweep.dir if hc.mode == RunMode.MULTIRUN else None,
    }


def _instantiate_dict(node: DictConfig | None) -> list[Any]:
    from hydra.utils import instantiate

    if not node:
        return []
    return [instantiate(child) for child in node.values() if isinstance(child, DictConfig) and "_target_" in child]


def _fill_wandb_identity(cfg: DictConfig, runtime: dict[str, Any], output_dir: Path) -> None:
    """Name from the overrides, group = one id per sweep, tags from the choices, id kept for resume."""
    node = cfg.get("logger", {}).get("wandb") if cfg.get("logger") else None
    if node is None:
        return
    choices = runtime["choices"]
    id_file = output_dir / "wandb_id.txt"
    if not id_file.exists():
        id_file.parent.mkdir(parents=True, exist_ok=True)
        id_file.write_text(secrets.token_hex(4))
    overrides = [o for o in runtime["overrides"] if not o.startswith(("hydra.", "paths."))]
    with open_dict(node):
        node.id = id_file.read_text().strip()
        node.resume = "allow"
        if node.get("name") is None:
            node.name = ",".join(overrides) or "defaults"
        if node.get("group") is None and runtime["sweep_dir"]:
            node.group = f"{cfg.task_name}-{Path(runtime['sweep_dir']).name}"
        if node.get("tags") is None:
            node.tags = [f"{g}={choices[g]}" for g in ("data", "model", "init", "optim", "sched") if g in choices] + list(cfg.get("tags", []))


def _resolve_ckpt_path(ckpt_path: str | None, output_dir: Path) -> str | None:
    if ckpt_path in (None, "", "null"):
        return None
    path = output_dir / "checkpoints" / "last.ckpt" if ckpt_path == "last" else Path(ckpt_path)
    if not path.is_file():
        raise ConfigError(f"ckpt_path: no checkpoint at {path} (for `last`, run in the interrupted run's dir: hydra.run.dir=<run dir>)")
    return str(path)


def fit(cfg: DictConfig, output_dir: Path, runtime: dict[str, Any]) -> dict[str, Any]:
    """Build everything from ``cfg`` and train; returns the metrics.json record."""
    import pytorch_lightning as pl
    from hydra.utils import instantiate
    from pytorch_lightning.utilities import rank_zero_only

    from initlab.training.build import build_datamodule, build_model, build_module, log_init_report
    from initlab.training.callbacks import DivergenceMonitor

    ckpt_path = _resolve_ckpt_path(cfg.get("ckpt_path"), output_dir)
    datamodule = build_datamodule(cfg)
    model, init_batch = build_model(cfg, datamodule)
    log_init_report(model, output_dir / "init.json" if rank_zero_only.rank == 0 else None)
    module, lr_auto = build_module(cfg, model, init_batch)
    extra: dict[str, Any] = {"lr_auto": lr_auto} if lr_auto else {}
    _fill_wandb_identity(cfg, runtime, output_dir)
    if cfg.get("logger") and cfg.logger.get("wandb"):
        extra["wandb"] = {k: cfg.logger.wandb.get(k) for k in ("id", "group", "name")}
    loggers = _instantiate_dict(cfg.get("logger"))
    callbacks = _instantiate_dict(cfg.get("callbacks"))
    trainer: pl.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    for lg in loggers:
        lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        if "lr_auto" in extra:
            lg.log_metrics({f"lr_auto/{k}": v for k, v in extra["lr_auto"].items()}, step=0)

    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    monitor = next((c for c in callbacks if isinstance(c, DivergenceMonitor)), None)
    status = "diverged" if monitor is not None and monitor.diverged_step is not None else "done"
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    if status == "done" and cfg.get("test", True):
        for result in trainer.test(module, datamodule=datamodule, verbose=False):
            metrics |= result
    if status == "diverged":
        extra |= {"diverged_step": monitor.diverged_step, "error": monitor.reason}
        for lg in loggers:
            if hasattr(lg, "experiment") and hasattr(lg.experiment, "tags"):
                lg.experiment.tags = tuple(lg.experiment.tags or ()) + ("diverged",)
    extra |= {"epochs": trainer.current_epoch, "steps": trainer.global_step, "rank_zero": trainer.is_global_zero}
    _finish_wandb(loggers)
    return metrics_record(status, metrics, **extra)


def _finish_wandb(loggers: list[Any]) -> None:
    for lg in loggers:
        if type(lg).__name__ == "WandbLogger":
            lg.experiment.finish()


def run_job(cfg: DictConfig, body: Callable[[DictConfig, Path, dict[str, Any]], dict[str, Any]]) -> dict[str, Any] | None:
    """Validate, run ``body`` and write ``metrics.json`` whatever happens.

    A failure is recorded as ``status: failed`` with its message; inside a sweep the job then
    returns None so the other jobs go on, in a single run the error propagates (non-zero exit).
    Returns the record on global rank zero, None elsewhere or after a failure in a sweep.
    """
    runtime = _hydra_runtime()
    output_dir = Path(cfg.paths.output_dir)
    start = time.perf_counter()
    facts = {"seed": cfg.get("seed"), "overrides": runtime["overrides"], "output_dir": str(output_dir)}
    try:
        validate_config(cfg)
        record = body(cfg, output_dir, runtime)
    except (KeyboardInterrupt, SystemExit) as err:
        reason = f"interrupted ({type(err).__name__}); resume with ckpt_path=last hydra.run.dir={output_dir}"
        write_json(output_dir / "metrics.json", metrics_record("failed", {}, error=reason) | facts)
        raise
    except Exception as err:
        record = metrics_record("failed", {}, error=f"{type(err).__name__}: {err}")
        write_json(output_dir / "metrics.json", record | facts | {"wall_s": time.perf_counter() - start})
        if runtime["multirun"]:
            log.error("job failed (sweep continues): %s: %s", type(err).__name__, err)
            return None
        raise
    if not record.pop("rank_zero", True):
        return None
    record |= facts | {"wall_s": round(time.perf_counter() - start, 3)}
    write_json(output_dir / "metrics.json", record)
    return record


def run_training(cfg: DictConfig) -> float | None:
    """Hydra task body of train.py; returns the final val loss (for sweepers) of a finished run."""
    record = run_job(cfg, fit)
    if record is None:
        return None
    _print_summary(record, Path(cfg.paths.output_dir))
    return record["val"].get("loss") if record["status"] == "done" else None


def _print_summary(record: dict[str, Any], output_dir: Path) -> None:
    parts = [f"status={record['status']}"]
    for stage in ("train", "val", "test"):
        parts += [f"{stage}/{k}={v:.4f}" for k, v in record[stage].items()]
    print(" ".join(parts) + f"  (wall {record['wall_s']:.1f}s, {output_dir})", flush=True)
