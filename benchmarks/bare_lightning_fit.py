"""The baseline of ``benchmarks/startup.py``: the fit of ``python train.py debug=fast logger=none`` as a bare script.

    python benchmarks/bare_lightning_fit.py

What a Lightning user writes without initlab: scikit-learn's 8x8 digits as tensors (standardized,
1,257 train / 270 val / 270 test), a 64-256-256-10 ReLU MLP, Adam at lr 1e-3, one epoch of 5
training batches of 128 with 2 validation batches, then 2 test batches; no logger, checkpoint,
callbacks or bar. The same work as the debug run, none of its records.
"""

import pytorch_lightning as pl
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

SPLIT = (1257, 270, 270)


class Classifier(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Flatten(), nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))

    def step(self, batch, stage: str) -> torch.Tensor:
        inputs, targets = batch
        logits = self.model(inputs)
        loss = F.cross_entropy(logits, targets)
        self.log(f"{stage}/loss", loss)
        self.log(f"{stage}/acc", (logits.argmax(-1) == targets).float().mean())
        return loss

    def training_step(self, batch, batch_idx):
        return self.step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self.step(batch, "val")

    def test_step(self, batch, batch_idx):
        self.step(batch, "test")

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def main() -> None:
    pl.seed_everything(42, verbose=False)
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(digits.target)
    order = torch.randperm(len(y))
    x = (x - x.mean()) / x.std()
    train, val, test = (TensorDataset(x[idx], y[idx]) for idx in torch.split(order, SPLIT))
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_epochs=1, limit_train_batches=5, limit_val_batches=2, limit_test_batches=2,
                         logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    module = Classifier()
    trainer.fit(module, DataLoader(train, batch_size=128, shuffle=True), DataLoader(val, batch_size=1024))
    print(trainer.test(module, DataLoader(test, batch_size=1024), verbose=False)[0])


if __name__ == "__main__":
    main()
