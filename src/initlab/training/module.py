"""The LightningModule that trains any initlab classifier with cross-entropy."""

from collections.abc import Callable

import pytorch_lightning as pl
import torch
import torchmetrics
from torch import Tensor, nn
from torch.nn import functional as F

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]


class EpochMean(torchmetrics.Metric):
    """Weighted mean of per-batch values over an epoch, ``sum(total_b) / sum(weight_b)``.

    The epoch value ``self.log(x, on_epoch=True, batch_size=n)`` computes, as a Metric, so the
    training step can hand it to ``self.log`` once per epoch: each ``self.log`` call costs
    Lightning a few hundred microseconds of bookkeeping, a sizeable share of a small MLP's step
    (benchmarks/train_throughput.py). The update is two in-place adds on the value's device (no
    host sync, and no NaN filtering, unlike ``torchmetrics.MeanMetric``: a diverging loss must
    show as NaN).
    """

    full_state_update = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("total", torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("weight", torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, total: Tensor, weight: int) -> None:
        self.total += total
        self.weight += weight

    def compute(self) -> Tensor:
        return self.total / self.weight


class ClassifierModule(pl.LightningModule):
    """Cross-entropy training of ``model``; logs loss / accuracy per epoch and the gradient norm.

    Optimizer and scheduler come from the ``optim`` / ``sched`` configs as partials: the
    optimizer is called with the parameters, the scheduler with the optimizer and the total
    number of optimizer steps, and stepped every step.

    Training metrics are accumulated in :class:`EpochMean` metrics that are logged once per
    epoch (the hot loop makes no ``self.log`` call); ``train/loss`` and ``train/acc`` are the
    batch-size-weighted means over the epoch, as Lightning's per-step epoch logging gives them
    (``train/loss`` is this rank's, ``train/acc`` is reduced over ranks). Validation and test
    run few, large batches and log every step.

    With ``compile=True`` the steps call ``torch.compile(model)``, kept outside the module tree:
    ``self.model`` stays the eager module (checkpoints keep plain parameter names, curvature
    analysis differentiates the eager graph).
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        num_classes: int = 10,
        compile: bool = False,
    ) -> None:
        super().__init__()
        self.model = model
        self.__dict__["network"] = torch.compile(model) if compile else model  # not a submodule: no second copy of the weights
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.train_loss = EpochMean(sync_on_compute=False)
        self.train_acc = EpochMean()
        metric = torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)
        self.accuracy = nn.ModuleDict({stage: metric.clone() for stage in ("val_", "test_")})
        self._train_metrics_logged = False

    def forward(self, inputs: Tensor) -> Tensor:
        return self.network(inputs)

    def running_loss(self) -> float | None:
        """This epoch's mean training loss so far (one host sync), None before the first step."""
        total, weight = torch.stack([self.train_loss.total, self.train_loss.weight]).tolist()
        return total / weight if weight else None

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        inputs, targets = batch
        logits = self.network(inputs)
        loss = F.cross_entropy(logits, targets)
        n = targets.shape[0]
        self.train_loss.update(loss.detach() * n, n)
        self.train_acc.update((logits.argmax(dim=-1) == targets).sum(), n)
        if not self._train_metrics_logged:
            self.log("train/loss", self.train_loss, on_step=False, on_epoch=True)
            self.log("train/acc", self.train_acc, on_step=False, on_epoch=True)
            self._train_metrics_logged = True
        return loss

    def on_train_epoch_start(self) -> None:
        """Lightning computes and resets logged metrics at every epoch end: register them anew."""
        self._train_metrics_logged = False

    def _eval_step(self, batch: tuple[Tensor, Tensor], stage: str) -> None:
        inputs, targets = batch
        logits = self.network(inputs)
        loss = F.cross_entropy(logits, targets)
        accuracy = self.accuracy[f"{stage}_"]
        accuracy.update(logits, targets)
        self.log(f"{stage}/loss", loss, on_step=False, on_epoch=True, batch_size=len(targets), sync_dist=True)
        self.log(f"{stage}/acc", accuracy, on_step=False, on_epoch=True, batch_size=len(targets))

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test")

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
