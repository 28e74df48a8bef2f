"""One training run from a validated config: seed -> data -> data checks -> model -> init -> fit -> test -> records."""

import logging
import math
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from initlab.files import atomic_write
from initlab.training.records import interrupted_record, last_csv_row, metrics_record, read_status, sweep_id, write_json
from initlab.training.signals import Interrupted, interruptible, received, settle, signal_of

log = logging.getLogger(__name__)


def fit(cfg: DictConfig, output_dir: Path, runtime: dict[str, Any]) -> dict[str, Any]:
    """Train the model of ``cfg`` and test it; returns the metrics.json record."""
    from pytorch_lightning.utilities import rank_zero_only

    from initlab.config import validate_with_data
    from initlab.models import instantiate_model
    from initlab.training.build import (
        build_datamodule,
        build_module,
        build_trainer,
        initialize,
        instantiate_all,
        log_init_report,
        lr_auto_guard,
        seed_everything,
        total_steps,
    )

    ckpt_path = _resume_checkpoint(cfg.get("ckpt_path"), output_dir)
    seed_everything(cfg.seed)
    datamodule = build_datamodule(cfg)
    validate_with_data(cfg, datamodule, total_steps(cfg.trainer, datamodule))
    model = instantiate_model(cfg.model)
    init_batch = initialize(cfg, model, datamodule)
    log_init_report(model, output_dir / "init.json" if rank_zero_only.rank == 0 else None)
    module, lr_auto = build_module(cfg, model, init_batch)
    loggers = instantiate_all(_with_wandb_identity(cfg, runtime, output_dir).get("logger"))
    guards = lr_auto_guard(cfg, lr_auto)
    trainer, callbacks = build_trainer(cfg, loggers, guards)
    _log_run_facts(loggers, cfg, lr_auto)
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    metrics = _last_epoch_metrics(cfg) | {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    divergence = _divergence(metrics, callbacks)
    if divergence is None and cfg.get("test", True):
        metrics |= trainer.test(module, datamodule=datamodule, verbose=False)[0]
    _finish_loggers(loggers, diverged=divergence is not None)
    return _record(cfg, trainer, metrics, divergence, lr_auto | (guards[0].summary if guards else {}))


def _record(cfg: DictConfig, trainer: Any, metrics: dict[str, float], divergence: dict[str, Any] | None,
            lr_auto: dict[str, float]) -> dict[str, Any]:
    """The metrics.json record of a run that ran to its end: status, metrics, what was measured and who we are."""
    extra = {"lr_auto": lr_auto} if lr_auto else {}
    if "wandb" in (cfg.get("logger") or {}):
        extra["wandb"] = {k: cfg.logger.wandb.get(k) for k in ("id", "group", "name")}
    extra |= (divergence or {}) | {"epochs": trainer.current_epoch, "steps": trainer.global_step, "rank_zero": trainer.is_global_zero}
    return metrics_record("diverged" if divergence else "done", metrics, **extra)


def _resume_checkpoint(ckpt_path: str | None, output_dir: Path) -> str | None:
    """The checkpoint to resume from, verified against its sha256 (``last``: this run dir's ``last.ckpt``)."""
    from initlab.training.checkpoints import resume_path

    path = resume_path(ckpt_path, output_dir)
    return None if path is None else str(path)


def _last_epoch_metrics(cfg: DictConfig) -> dict[str, float]:
    """The train/val metrics of the last finished epoch from history.csv: what a resumed run whose training had already
    ended (interrupted during test) reports, since its fit runs no epoch."""
    import numpy as np

    path = OmegaConf.select(cfg, "callbacks.history.path")
    row = last_csv_row(path) if path else {}
    # float32, as Lightning's logged metrics are (history.csv's lr column is the optimizer's float64 lr)
    return {k: float(np.float32(v)) for k, v in row.items() if k.startswith(("train/", "val/")) and v not in ("", None)}


def _with_wandb_identity(cfg: DictConfig, runtime: dict[str, Any], output_dir: Path) -> DictConfig:
    """What the W&B node cannot say statically: the run id (kept in the run dir for resume), the sweep's group, the user's tags."""
    node = (cfg.get("logger") or {}).get("wandb")
    if node is None:
        return cfg
    id_file = output_dir / "wandb_id.txt"
    if not id_file.exists():
        atomic_write(id_file, secrets.token_hex(4))
    with open_dict(node):
        node.id = id_file.read_text().strip()
        if node.get("group") is None and runtime["sweep_dir"]:
            node.group = f"{cfg.task_name}-{Path(runtime['sweep_dir']).name}"
        node.tags = list(node.get("tags") or []) + list(cfg.get("tags") or [])
    return cfg


def _log_run_facts(loggers: list[Any], cfg: DictConfig, lr_auto: dict[str, float]) -> None:
    for lg in loggers:
        lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        if lr_auto:
            lg.log_metrics({f"lr_auto/{k}": v for k, v in lr_auto.items()}, step=0)


def _divergence(metrics: dict[str, float], callbacks: list[Any]) -> dict[str, Any] | None:
    """Why the run diverged: the monitor's stop, or the final train/val loss judged by the monitor's own rule (a loss
    above its limit between two checks ends ``diverged`` too); without a monitor, a non-finite final loss."""
    from initlab.training.callbacks import DivergenceMonitor

    monitor = next((c for c in callbacks if isinstance(c, DivergenceMonitor)), None)
    if monitor is not None and monitor.diverged_step is not None:
        return {"diverged_step": monitor.diverged_step, "error": monitor.reason}
    for key in ("train/loss", "val/loss"):
        loss = metrics.get(key)
        if loss is None:
            continue
        if monitor is not None and monitor.initial_loss is not None and (reason := monitor.reason_for(loss)):
            return {"error": f"final {key}: {reason}"}
        if not math.isfinite(loss):
            return {"error": f"non-finite final {key}={loss}"}
    return None


def _finish_loggers(loggers: list[Any], diverged: bool) -> None:
    for lg in loggers:
        if type(lg).__name__ == "WandbLogger":
            if diverged:
                lg.experiment.tags = tuple(lg.experiment.tags or ()) + ("diverged",)
            lg.experiment.finish()


def run_job(cfg: DictConfig, body: Callable[[DictConfig, Path, dict[str, Any]], dict[str, Any]]) -> dict[str, Any] | None:
    """Run ``body`` and write ``metrics.json`` whatever happens.

    A failure is recorded as ``status: failed`` with its message; inside a sweep the job then
    returns None so the other jobs go on, in a single run the error propagates (non-zero exit).
    SIGINT/SIGTERM are recorded as ``status: interrupted`` and exit with 128 + the signal number.
    Returns the record on global rank zero, None elsewhere or after a failure in a sweep.
    """
    runtime = _hydra_runtime()
    output_dir = Path(cfg.paths.output_dir)
    start = time.perf_counter()
    facts = {"seed": cfg.get("seed"), "overrides": runtime["overrides"], "output_dir": str(output_dir)}
    if runtime["sweep_dir"]:
        facts["sweep"] = sweep_id(runtime["sweep_dir"])
    if read_status(output_dir / "metrics.json") != "interrupted":  # an interrupted record stays true (and resumable) until
        (output_dir / "metrics.json").unlink(missing_ok=True)     # this attempt's replaces it; any other is an earlier attempt's
    try:
        with interruptible():
            record = body(cfg, output_dir, runtime)
            if received() is not None:  # a signal raised where something swallowed it: the run did not do what was asked
                raise Interrupted(received())
            if not record.pop("rank_zero", True):
                return None
            record |= facts | _wall(start)
            write_json(output_dir / "metrics.json", record)  # a signal before it is sealed makes the run interrupted
            if not runtime["multirun"]:
                settle()  # the record is final: a signal from here on would only make the exit code contradict it
    except BaseException as err:
        signum = signal_of(err)
        if signum is None and not isinstance(err, Exception):
            raise
        if signum is not None:
            settle()  # a second signal must not cut the record's write
        _remove_partial(output_dir)
        record = interrupted_record(output_dir, repr(err)) if signum else metrics_record("failed", {}, error=f"{type(err).__name__}: {err}")
        _write_last_record(output_dir, record | facts | _wall(start))
        if signum is not None:
            raise SystemExit(128 + signum) from err
        error = record["error"]
        if runtime["multirun"]:
            log.error("job failed (sweep continues): %s", error)
            return None
        raise
    return record


def _remove_partial(output_dir: Path) -> None:
    from initlab.training.checkpoints import remove_partial

    for folder in (output_dir, output_dir / "checkpoints"):
        remove_partial(folder)


def _write_last_record(output_dir: Path, record: dict[str, Any]) -> None:
    """Write the record of a run that failed or was stopped; a disk that refuses it (full, read-only) is logged, and the
    original error goes on."""
    try:
        write_json(output_dir / "metrics.json", record)
    except OSError as err:
        log.error("could not write %s: %s", output_dir / "metrics.json", err)


def _wall(start: float) -> dict[str, float]:
    return {"wall_s": round(time.perf_counter() - start, 3)}


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


def run_training(cfg: DictConfig) -> float | None:
    """Hydra task body of train.py; returns the sweep objective (``initlab.aggregate.OBJECTIVE``) of a finished run."""
    from initlab.aggregate import OBJECTIVE

    record = run_job(cfg, fit)
    if record is None:
        return None
    _print_summary(record, Path(cfg.paths.output_dir))
    stage, name = OBJECTIVE.split("/")
    return record[stage].get(name) if record["status"] == "done" else None


def _print_summary(record: dict[str, Any], output_dir: Path) -> None:
    parts = [f"status={record['status']}"]
    for stage in ("train", "val", "test"):
        parts += [f"{stage}/{k}={v:.4f}" for k, v in record[stage].items()]
    print(" ".join(parts) + f"  (wall {record['wall_s']:.1f}s, {output_dir})", flush=True)
