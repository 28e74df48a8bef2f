"""The loader inside a real Lightning fit: set_epoch reaches it each epoch and after a resume."""

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn import functional as F

from initlab.data import DigitsDataModule


class FirstBatchRecorder(pl.LightningModule):
    """Logistic regression that records the labels of each epoch's first training batch."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(64, 10)
        self.first_labels: dict[int, torch.Tensor] = {}

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        if batch_idx == 0:
            self.first_labels[self.current_epoch] = y.clone()
        return F.cross_entropy(self.linear(x.flatten(1)), y)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", F.cross_entropy(self.linear(x.flatten(1)), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit(tmp_path: Path, max_epochs: int, ckpt_path: Path | None = None) -> tuple[pl.Trainer, FirstBatchRecorder]:
    dm = DigitsDataModule(root=str(tmp_path), input_shape=[1, 8, 8], num_classes=10, seed=3, batch_size=32)
    model = FirstBatchRecorder()
    trainer = pl.Trainer(
        max_epochs=max_epochs,
        limit_train_batches=3,
        limit_val_batches=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=dm, ckpt_path=ckpt_path)
    return trainer, model


def expected_first_labels(tmp_path: Path, epoch: int) -> torch.Tensor:
    dm = DigitsDataModule(root=str(tmp_path), input_shape=[1, 8, 8], num_classes=10, seed=3, batch_size=32)
    dm.setup()
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(epoch)
    return next(iter(loader))[1]


def test_fit_sets_the_epoch_and_resume_replays_it(tmp_path: Path):
    trainer, full = fit(tmp_path, max_epochs=3)
    assert set(full.first_labels) == {0, 1, 2}
    for epoch, labels in full.first_labels.items():
        assert torch.equal(labels, expected_first_labels(tmp_path, epoch))
    assert not torch.equal(full.first_labels[1], full.first_labels[2])

    first, _ = fit(tmp_path, max_epochs=2)
    first.save_checkpoint(tmp_path / "epoch2.ckpt")
    _, resumed = fit(tmp_path, max_epochs=3, ckpt_path=tmp_path / "epoch2.ckpt")
    assert set(resumed.first_labels) == {2}
    assert torch.equal(resumed.first_labels[2], full.first_labels[2])


class ShardRecorder(FirstBatchRecorder):
    """Saves the indices its rank's train loader visits in epoch 0 (spawned ranks return nothing)."""

    def __init__(self, out: Path) -> None:
        super().__init__()
        self.out = out

    def on_train_epoch_start(self) -> None:
        sampler = self.trainer.train_dataloader.sampler
        torch.save((sampler.rank, sampler.world_size, sampler.indices()), self.out / f"rank{self.global_rank}.pt")


@pytest.mark.slow
def test_ddp_ranks_take_disjoint_shards(tmp_path: Path):
    dm = DigitsDataModule(root=str(tmp_path), input_shape=[1, 8, 8], num_classes=10, batch_size=64)
    trainer = pl.Trainer(
        strategy="ddp_spawn",
        accelerator="cpu",
        devices=2,
        max_epochs=1,
        limit_train_batches=1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(ShardRecorder(tmp_path), datamodule=dm)
    shards = [torch.load(tmp_path / f"rank{rank}.pt") for rank in (0, 1)]
    assert [(rank, world) for rank, world, _ in shards] == [(0, 2), (1, 2)]
    first, second = (set(indices.tolist()) for _, _, indices in shards)
    assert len(first) == len(second) == 1257 // 2 and not first & second
