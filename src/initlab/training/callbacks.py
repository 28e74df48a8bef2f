"""Callbacks of a run: progress bar, verified checkpoints, divergence stop, history and curvature files."""

import csv
import io
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint, RichProgressBar
from torch import Tensor

from initlab.files import atomic_write, read_regular
from initlab.training.checkpoints import commit_checkpoint, part_path
from initlab.training.signals import deferred, signal_of

log = logging.getLogger(__name__)
# Console width of the progress bar when stdout is not a terminal: the bar, counts, times and metrics on one line.
LOG_WIDTH = 160
CSV_MAX_BYTES = 1 << 28  # history.csv / curvature.csv: a row per epoch or check, far below this


def append_csv_row(path: str | Path, row: dict[str, Any], key: str) -> None:
    """Add ``row`` to a small CSV file, dropping the rows at or after ``row[key]`` first.

    A resumed run repeats the epochs (steps) after its checkpoint: their old rows are replaced,
    never duplicated. The file is rewritten atomically (a kill never leaves half a row) and new
    columns widen the header.
    """
    path = Path(path)
    rows = []
    if path.exists():
        text = read_regular(path, CSV_MAX_BYTES).decode()
        rows = [r for r in csv.DictReader(io.StringIO(text, newline="")) if int(r[key]) < int(row[key])]
    rows.append(row)
    fields = list(dict.fromkeys(k for r in rows for k in r))
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, table.getvalue())


class LossProgressBar(RichProgressBar):
    """The Rich bar with this epoch's running training loss and the lr instead of ``v_num``.

    Lightning asks for the bar's metrics after every batch; they are gathered (reading the loss
    syncs the host) at most every ``metrics_every_s`` seconds and at each epoch end, so showing
    them adds nothing to what the Rich bar itself costs (benchmarks/train_throughput.py, bar vs no bar).
    """

    def __init__(self, metrics_every_s: float = 0.5, **kwargs: Any) -> None:
        if not sys.stdout.isatty():  # Rich gives a log file 80 columns: the bar's last metric would wrap onto a second line
            kwargs["console_kwargs"] = {"width": LOG_WIDTH, **(kwargs.get("console_kwargs") or {})}
        super().__init__(**kwargs)
        self.metrics_every_s = metrics_every_s
        self._shown: dict[str, Any] = {}
        self._read_at = self._drawn_at = -math.inf

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Move the bar only as often as Rich draws it (``refresh_rate`` per second) and on the epoch's last batch."""
        now = time.monotonic()
        if now - self._drawn_at >= 1 / max(self.refresh_rate, 1) or batch_idx + 1 == self.total_train_batches:
            self._drawn_at = now
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        now = time.monotonic()
        if now - self._read_at < self.metrics_every_s:
            return self._shown
        self._read_at = now
        self._shown = {k: v for k, v in super().get_metrics(trainer, pl_module).items() if k != "v_num"}
        loss = pl_module.running_loss() if trainer.training else None
        if loss is not None:
            self._shown |= {"loss": loss, "lr": f"{trainer.optimizers[0].param_groups[0]['lr']:.3g}"}
        return self._shown

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._read_at = -math.inf  # the epoch's final running loss, whatever the clock
        super().on_train_epoch_end(trainer, pl_module)

    def _get_train_description(self, current_epoch: int) -> str:
        """``Epoch 10/10`` on the last of ten epochs, counted from 1 as the user set ``max_epochs`` (Lightning: ``9/9``)."""
        description = f"Epoch {current_epoch + 1}"
        if self.trainer.max_epochs not in (None, -1):  # -1: no limit
            description += f"/{self.trainer.max_epochs}"
        return f"{description:{len(self.validation_description)}}"  # as wide as the validation bar's: no flicker


class VerifiedCheckpoint(ModelCheckpoint):
    """A ModelCheckpoint that proves every file it writes is whole before it replaces the last one, sha256 beside it."""

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        with deferred():  # SIGINT/SIGTERM mid-save is raised once the file is sealed, not inside fsspec's finalizer
            super()._save_checkpoint(trainer, str(part_path(filepath)))
            if trainer.is_global_zero:
                commit_checkpoint(filepath)
            self._last_checkpoint_saved = filepath


class InterruptCheckpoint(pl.Callback):
    """On SIGINT/SIGTERM, save ``interrupted.ckpt`` (mid-epoch state, verified and hashed) before the process exits.

    ``ckpt_path=last`` resumes from ``last.ckpt``, written at every epoch end, which gives the
    same final metrics as an uninterrupted run; ``interrupted.ckpt`` keeps the partial epoch.
    """

    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if signal_of(exception) is not None:
            path = self.dirpath / "interrupted.ckpt"
            trainer.save_checkpoint(part_path(path))
            if trainer.is_global_zero:
                commit_checkpoint(path)


class DivergenceMonitor(pl.Callback):
    """Stop training when the loss is NaN/inf or blows up past ``max_loss_ratio`` x the first loss.

    Checked every ``check_every_n_steps`` steps only (reading the loss syncs the host), and the
    decision is reduced over DDP ranks so all of them stop together (one diverging rank stops
    all). The step is kept in ``diverged_step`` so the run is recorded as ``status: diverged``.
    """

    def __init__(self, max_loss_ratio: float | None = 100.0, check_every_n_steps: int = 10) -> None:
        if max_loss_ratio is not None and max_loss_ratio <= 1:
            raise ValueError(f"callbacks.divergence.max_loss_ratio must be > 1 or null, got {max_loss_ratio}")
        if check_every_n_steps < 1:
            raise ValueError(f"callbacks.divergence.check_every_n_steps must be >= 1, got {check_every_n_steps}")
        self.max_loss_ratio = max_loss_ratio
        self.check_every_n_steps = check_every_n_steps
        self.initial_loss: Tensor | float | None = None
        self.diverged_step: int | None = None
        self.reason: str | None = None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        if self.initial_loss is None:
            self.initial_loss = loss.detach().clone()  # kept on the device: no sync
        if trainer.global_step % self.check_every_n_steps == 0:
            self.check(trainer, float(loss))

    def check(self, trainer: pl.Trainer, loss: float) -> None:
        """Decide on ``loss`` together with the other ranks; stop them all if any diverged."""
        local = self.reason_for(loss)
        if trainer.strategy.reduce_boolean_decision(local is not None, all=False):
            self.diverged_step = trainer.global_step
            self.reason = local or "diverged on another rank"
            trainer.should_stop = True

    def reason_for(self, loss: float) -> str | None:
        """Why ``loss`` counts as diverged (non-finite, or above ``max_loss_ratio`` x the first loss), None if it does not."""
        if isinstance(self.initial_loss, Tensor):  # read from the device once, at the first check
            self.initial_loss = float(self.initial_loss)
        initial = self.initial_loss
        if not math.isfinite(loss):
            return f"non-finite loss {loss}"
        if self.max_loss_ratio is not None and loss > self.max_loss_ratio * max(initial, 1e-12):
            return f"loss {loss:.4g} > {self.max_loss_ratio} x initial loss {initial:.4g}"
        return None

    def state_dict(self) -> dict[str, Any]:
        return {"initial_loss": None if self.initial_loss is None else float(self.initial_loss)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.initial_loss = state_dict.get("initial_loss")


class EpochHistory(pl.Callback):
    """One row per epoch in ``history.csv``: epoch, step, train/val loss and accuracy, the lr at the epoch end."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        row = {"epoch": trainer.current_epoch, "step": trainer.global_step}
        row |= {k: float(v) for k, v in sorted(trainer.callback_metrics.items()) if v.numel() == 1}
        row["train/lr"] = trainer.optimizers[0].param_groups[0]["lr"]
        append_csv_row(self.path, row, key="epoch")


class CurvatureTracker(pl.Callback):
    """Track lambda_max of the loss Hessian (full and per weight layer) every ``every_n_steps`` steps.

    Measured on a fixed sample of ``num_samples`` training points (mini-batch lambda_max is biased
    upward) on the model's device, by Lanczos warm-started from the previous top eigenvector; with
    ``model.compile=true`` the eager module is analysed. Logged as ``curvature/lambda_max``
    (+ ``curvature/lambda_max_<layer>``) next to ``curvature/eos_ratio`` = lambda_max x lr / 2, the
    edge-of-stability ratio of gradient descent (1 = the threshold 2/lr; a zero lr gives 0), and
    appended to ``curvature.csv`` (``path``; None: logged only).
    """

    prefix = "curvature"

    def __init__(self, path: str | None, every_n_steps: int = 25, num_samples: int = 512, per_layer: bool = True,
                 tol: float = 1e-3, seed: int = 0) -> None:
        if every_n_steps < 1 or num_samples < 1:
            raise ValueError(f"every_n_steps and num_samples must be >= 1, got {every_n_steps}, {num_samples}")
        self.path = None if path is None else Path(path)
        self.every_n_steps, self.num_samples, self.per_layer, self.tol, self.seed = every_n_steps, num_samples, per_layer, tol, seed
        self.batch: tuple[Tensor, Tensor] | None = None
        self.top_vector: Tensor | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._load_batch(trainer, pl_module)
        self._measure(trainer, pl_module)

    def _load_batch(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        inputs, targets = trainer.datamodule.sample_batch(self.num_samples, seed=self.seed)
        self.batch = (inputs.to(pl_module.device), targets.to(pl_module.device))

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        if trainer.global_step % self.every_n_steps == 0:
            self._measure(trainer, pl_module)

    def _measure(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> float | None:
        """Measure, log and record on global rank zero; returns lambda_max there (None on the other ranks)."""
        from torch.nn import functional as F

        from initlab.analysis import CurvatureProblem, curvature_record, top_eigenvalue
        from initlab.models import weight_layers

        if not trainer.is_global_zero or self.batch is None:
            return None
        first = self.top_vector is None  # determinism/symmetry are checked once, not at every step
        problem = CurvatureProblem(pl_module.model, F.cross_entropy, self.batch, check=first)
        full = curvature_record(problem, k=1, tol=self.tol, v0=self.top_vector)
        self.top_vector = full.top_vectors[:, 0]
        lr = trainer.optimizers[0].param_groups[0]["lr"]
        row = {"step": trainer.global_step, "epoch": trainer.current_epoch, "lr": lr, "eos_ratio": full.lambda_max * lr / 2,
               "lambda_max": full.lambda_max, "hvps": full.n_products}
        if self.per_layer:
            for name, _ in weight_layers(pl_module.model):
                row[f"lambda_max_{name}"] = top_eigenvalue(problem.replace(block=name, include_bias=False), tol=self.tol)
        metrics = {f"{self.prefix}/{k}": float(v) for k, v in row.items() if k not in ("step", "epoch")}
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)
        if self.path is not None:
            append_csv_row(self.path, row, key="step")
        return full.lambda_max


def scale_lr(trainer: pl.Trainer, ratio: float) -> None:
    """Multiply the lr of every step to come by ``ratio``: the optimizer's groups and the schedules' base lrs
    (a schedule's lr is base lr x its factor, so its shape is kept)."""
    for config in trainer.lr_scheduler_configs:
        config.scheduler.base_lrs = [lr * ratio for lr in config.scheduler.base_lrs]
    for optimizer in trainer.optimizers:
        for group in optimizer.param_groups:
            group["lr"] *= ratio
            if "initial_lr" in group:
                group["initial_lr"] *= ratio


class LrAutoGuard(CurvatureTracker):
    """``optim.lr=auto`` during training: watch the rule lr = scale / lambda_max that was applied at init.

    lambda_max usually grows as training sharpens, and gradient descent is unstable once it passes
    2/lr. Every ``check_every_n_steps`` optimizer steps lambda_max is measured again on the samples the
    lr was set on (``init_batch_size`` of them, same seed) and the run warns, once, when lambda_max x lr
    > 2. With ``refresh_every_n_steps`` (``optim.lr_refresh``) it is measured every that many steps
    instead and the lr is set to scale / lambda_max again each time (our extension, not the paper's
    rule: docs/methods.md); the schedule's shape is kept. The decision is rank zero's, broadcast, so
    DDP ranks keep one lr. ``summary`` goes into metrics.json under ``lr_auto``.
    """

    prefix = "lr_auto"

    def __init__(self, lambda_max: float, refresh_every_n_steps: int | None = None, check_every_n_steps: int = 25,
                 num_samples: int = 512, tol: float = 1e-3, seed: int = 0) -> None:
        if refresh_every_n_steps is not None and refresh_every_n_steps < 1:
            raise ValueError(f"optim.lr_refresh must be >= 1 or null, got {refresh_every_n_steps}")
        super().__init__(None, refresh_every_n_steps or check_every_n_steps, num_samples, per_layer=False, tol=tol, seed=seed)
        self.refresh = refresh_every_n_steps is not None
        self.lambda_of_lr = lambda_max  # the lambda_max the current lr is scale / of
        self.summary: dict[str, Any] = {"checks": 0, "refreshes": 0, "max_eos_ratio": None, "edge_step": None}

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._load_batch(trainer, pl_module)  # step 0 is where the lr was set; a resumed run checks on the same steps

    def _measure(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> float | None:
        lambda_max = trainer.strategy.broadcast(super()._measure(trainer, pl_module), src=0)
        lr = trainer.optimizers[0].param_groups[0]["lr"]
        eos_ratio = lambda_max * lr / 2
        summary = self.summary
        summary["checks"] += 1
        summary["max_eos_ratio"] = max(eos_ratio, summary["max_eos_ratio"] or -math.inf)
        if eos_ratio > 1 and summary["edge_step"] is None:
            summary["edge_step"] = trainer.global_step
            advice = "the next refresh resets it" if self.refresh else "optim.lr_refresh=N re-estimates it every N steps"
            log.warning("optim.lr=auto: at step %d lambda_max = %.4g passed 2/lr = %.4g (the lr was set from lambda_max = %.4g): "
                        "gradient descent is past its stability edge; %s", trainer.global_step, lambda_max, 2 / lr, self.lambda_of_lr, advice)
        if self.refresh and lambda_max > 0:
            scale_lr(trainer, self.lambda_of_lr / lambda_max)
            self.lambda_of_lr = lambda_max
            summary["refreshes"] += 1
        summary["lambda_max_last"], summary["lr_last"] = lambda_max, trainer.optimizers[0].param_groups[0]["lr"]
        return lambda_max
