"""The LightningModule that trains any initlab classifier with cross-entropy."""

from collections.abc import Callable

import pytorch_lightning as pl
import torch
import torchmetrics
from torch import Tensor, nn
from torch.nn import functional as F

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]


class ClassifierModule(pl.LightningModule):
    """Cross-entropy training of ``model``; logs loss / accuracy per epoch and the gradient norm.

    Optimizer and scheduler come from the ``optim`` / ``sched`` configs as partials: the
    optimizer is called with the parameters, the scheduler with the optimizer and the total
    number of optimizer steps, and stepped every step.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        self.model = model
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        metric = torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)
        self.accuracy = nn.ModuleDict({stage: metric.clone() for stage in ("train_", "val_", "test_")})

    def forward(self, inputs: Tensor) -> Tensor:
        return self.model(inputs)

    def _step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        inputs, targets = batch
        logits = self.model(inputs)
        loss = F.cross_entropy(logits, targets)
        accuracy = self.accuracy[f"{stage}_"]
        accuracy.update(logits, targets)
        self.log(f"{stage}/loss", loss, on_step=False, on_epoch=True, batch_size=len(targets), sync_dist=stage != "train")
        self.log(f"{stage}/acc", accuracy, on_step=False, on_epoch=True, batch_size=len(targets))
        return loss

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Log the learning rate and the global L2 gradient norm, only on logging steps (a reduction each)."""
        if self.global_step % self.trainer.log_every_n_steps:
            return
        self.log("train/lr", optimizer.param_groups[0]["lr"], on_step=True, on_epoch=False)
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        if grads:
            norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
            self.log("train/grad_norm", norm, on_step=True, on_epoch=False)

    def configure_optimizers(self) -> dict:
        optimizer = self.optimizer_factory(self.model.parameters())
        if self.scheduler_factory is None:
            return {"optimizer": optimizer}
        scheduler = self.scheduler_factory(optimizer, total_steps=int(self.trainer.estimated_stepping_batches))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
