"""Callbacks every run uses: divergence stop and the per-epoch history file."""

import csv
import math
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from torch import Tensor


class DivergenceMonitor(pl.Callback):
    """Stop training cleanly when the loss is NaN/inf or blows up past ``max_loss_ratio`` x the first loss.

    The step is kept in ``diverged_step`` so the run can be recorded as ``status: diverged``
    (a sweep goes on with its other jobs).
    """

    def __init__(self, max_loss_ratio: float | None = 100.0, check_every_n_steps: int = 1) -> None:
        if max_loss_ratio is not None and max_loss_ratio <= 1:
            raise ValueError(f"callbacks.divergence.max_loss_ratio must be > 1 or null, got {max_loss_ratio}")
        if check_every_n_steps < 1:
            raise ValueError(f"callbacks.divergence.check_every_n_steps must be >= 1, got {check_every_n_steps}")
        self.max_loss_ratio = max_loss_ratio
        self.check_every_n_steps = check_every_n_steps
        self.initial_loss: float | None = None
        self.diverged_step: int | None = None
        self.reason: str | None = None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        if trainer.global_step % self.check_every_n_steps:
            return
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        value = float(loss.detach()) if isinstance(loss, Tensor) else float(loss)
        if self.initial_loss is None:
            self.initial_loss = value
        if not math.isfinite(value):
            self.reason = f"non-finite loss {value}"
        elif self.max_loss_ratio is not None and value > self.max_loss_ratio * max(self.initial_loss, 1e-12):
            self.reason = f"loss {value:.4g} > {self.max_loss_ratio} x initial loss {self.initial_loss:.4g}"
        if self.reason is not None:
            self.diverged_step = trainer.global_step
            trainer.should_stop = True

    def state_dict(self) -> dict[str, Any]:
        return {"initial_loss": self.initial_loss}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.initial_loss = state_dict.get("initial_loss")


class EpochHistory(pl.Callback):
    """Append one row of epoch-level metrics (train/val loss and accuracy, lr) to a CSV file."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        row = {"epoch": trainer.current_epoch, "step": trainer.global_step}
        row |= {k: float(v) for k, v in sorted(trainer.callback_metrics.items()) if v.numel() == 1}
        row["lr"] = trainer.optimizers[0].param_groups[0]["lr"]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new_file = not self.path.exists() or trainer.current_epoch == 0
        with self.path.open("w" if new_file else "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(row), extrasaction="ignore")
            if new_file:
                writer.writeheader()
            writer.writerow(row)


class InterruptCheckpoint(pl.Callback):
    """On Ctrl-C or SIGTERM, save ``interrupted.ckpt`` (mid-epoch state) before the process exits.

    ``ckpt_path=last`` resumes from ``last.ckpt``, written at every epoch end, which gives the
    same final metrics as an uninterrupted run; ``interrupted.ckpt`` keeps the partial epoch.
    """

    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        from pytorch_lightning.utilities.exceptions import SIGTERMException

        if isinstance(exception, (KeyboardInterrupt, SIGTERMException)):
            trainer.save_checkpoint(self.dirpath / "interrupted.ckpt")


class CurvatureTracker(pl.Callback):
    """Track lambda_max of the loss Hessian (full and per weight layer) every ``every_n_steps`` steps.

    Measured on a fixed sample of ``num_samples`` training points (mini-batch lambda_max is biased
    upward), by Lanczos warm-started from the previous top eigenvector. Logged as
    ``curvature/lambda_max`` (+ ``curvature/lambda_max_<layer>``) next to ``curvature/edge_2_over_lr``
    = 2/lr, the gradient-descent stability edge, and appended to ``curvature.csv``.
    """

    def __init__(self, path: str, every_n_steps: int = 25, num_samples: int = 512, per_layer: bool = True,
                 tol: float = 1e-3, seed: int = 0) -> None:
        if every_n_steps < 1 or num_samples < 1:
            raise ValueError(f"every_n_steps and num_samples must be >= 1, got {every_n_steps}, {num_samples}")
        self.path = Path(path)
        self.every_n_steps, self.num_samples, self.per_layer, self.tol, self.seed = every_n_steps, num_samples, per_layer, tol, seed
        self.batch: tuple[Tensor, Tensor] | None = None
        self.top_vector: Tensor | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        inputs, targets = trainer.datamodule.sample_batch(self.num_samples, seed=self.seed)
        self.batch = (inputs.to(pl_module.device), targets.to(pl_module.device))
        self._measure(trainer, pl_module)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        if trainer.global_step % self.every_n_steps == 0:
            self._measure(trainer, pl_module)

    def _measure(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        from torch.nn import functional as F

        from initlab.analysis import hessian_eigenvalues
        from initlab.models import weight_layers

        if not trainer.is_global_zero or self.batch is None:
            return
        model = pl_module.model
        first = self.top_vector is None  # determinism/symmetry are checked once, not at every step
        full = hessian_eigenvalues(model, F.cross_entropy, *self.batch, k=1, tol=self.tol, v0=self.top_vector,
                                   return_eigenvectors=True, check=first)
        self.top_vector = full.top_eigenvectors[:, 0]
        lr = trainer.optimizers[0].param_groups[0]["lr"]
        row = {"step": trainer.global_step, "epoch": trainer.current_epoch, "lr": lr, "edge_2_over_lr": 2.0 / lr,
               "lambda_max": full.lambda_max, "hvps": full.n_products}
        if self.per_layer:
            for name, _ in weight_layers(model):
                row[f"lambda_max_{name}"] = hessian_eigenvalues(model, F.cross_entropy, *self.batch, k=1, tol=self.tol,
                                                                params=name, include_bias=False, check=first).lambda_max
        metrics = {f"curvature/{k}": float(v) for k, v in row.items() if k not in ("step", "epoch")}
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)
        new_file = not self.path.exists() or trainer.global_step == 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("w" if new_file else "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(row))
            if new_file:
                writer.writeheader()
            writer.writerow(row)
