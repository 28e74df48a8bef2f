"""A callback that records when training starts and when its first step begins and ends.

``benchmarks/startup.py`` adds it to a real ``python train.py`` run through the command line
(``+callbacks.first_step_probe._target_=first_step_probe.FirstStepProbe`` with ``benchmarks/``
on ``PYTHONPATH``), so nothing in the project has to change to measure time to first step.
"""

import json
import time
from pathlib import Path

import pytorch_lightning as pl


class FirstStepProbe(pl.Callback):
    """Writes ``{"fit_start": t, "first_step_start": t, "first_step_end": t}`` (``time.time()``) to ``path``."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.times: dict[str, float] = {}

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.times["fit_start"] = time.time()

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:
        self.times.setdefault("first_step_start", time.time())

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx: int) -> None:
        if "first_step_end" not in self.times:
            self.times["first_step_end"] = time.time()
            self.path.write_text(json.dumps(self.times))
