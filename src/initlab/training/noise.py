"""Silence known third-party noise (warnings, tips) so what a run prints is ours; initlab's own warnings always show."""

import logging
import os
import warnings

# The packages a run calls into; their deprecation notices are for initlab's developers (pyproject's pytest filters), not users.
THIRD_PARTY = r"(torch|pytorch_lightning|lightning_fabric|lightning_utilities|torchmetrics|torchvision|wandb|hydra|omegaconf|optuna)\b"
# (category, message regex, module regex) of warnings that third-party packages emit on every run.
NOISY_WARNINGS: tuple[tuple[type[Warning], str, str], ...] = (
    (DeprecationWarning, "", THIRD_PARTY),
    (FutureWarning, "", THIRD_PARTY),
    (UserWarning, r".*(does not have many workers|persistent_workers|num_workers)", ""),
    (UserWarning, r"Checkpoint directory .* exists and is not empty", ""),  # every resume into its own run dir
    (UserWarning, r".*smaller than the logging interval", ""),  # epoch metrics are logged once per epoch anyway
)
# Lightning's start-up tips (info lines advertising its cloud products) and accelerator facts (the config says which one runs).
NOISY_LOG_LINES = ("Tip:", "litlogger", "litmodels", "persistent_workers", "GPU available:", "TPU available:", "HPU available:",
                   "LOCAL_RANK:", "to estimate number of stepping batches", "`Trainer.fit` stopped",
                   ".lr_find_", "`weights_only` was not set")  # the LR finder's own temporary checkpoint
LIGHTNING_LOGGERS = ("pytorch_lightning.utilities.rank_zero", "lightning_fabric.utilities.rank_zero",
                     "pytorch_lightning.trainer.connectors.checkpoint_connector")


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(marker in message for marker in NOISY_LOG_LINES)


def quiet_third_party() -> None:
    """Install the filters once per process (idempotent); ``WANDB_SILENT=false`` brings W&B's console lines back,
    ``TQDM_DISABLE=0`` tqdm's bars."""
    for category, message, module in NOISY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
    os.environ.setdefault("WANDB_SILENT", "true")
    os.environ.setdefault("TQDM_DISABLE", "1")  # Lightning's LR finder draws a tqdm bar it offers no switch for; read when tqdm is imported
    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropNoise) for f in logger.filters):
            logger.addFilter(_DropNoise())
