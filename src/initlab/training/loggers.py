"""Experiment loggers, quiet: Lightning's W&B logger without the argument W&B warns about on every run."""

from typing import Any

from pytorch_lightning.loggers import WandbLogger as LightningWandbLogger


class WandbLogger(LightningWandbLogger):
    """Lightning's ``WandbLogger`` minus ``anonymous`` (always passed, deprecated and warned about since W&B 0.19).

    Takes the same keys; any key Lightning does not name goes to ``wandb.init`` (``group``, ``tags``, ``mode``, ...).
    """

    def __init__(self, **kwargs: Any) -> None:
        LightningWandbLogger.__init__(self, **kwargs)
        self._wandb_init.pop("anonymous", None)
