"""CIFAR-10 through torchvision, from ``{root}/cifar-10-batches-py/`` (the extracted python pickles)."""

import pickle
from functools import cache
from pathlib import Path
from typing import Any

import torch

from initlab.data.errors import CorruptDatasetError
from initlab.data.splits import TensorSplit
from initlab.data.torchvision_base import TorchvisionDataModule

FOLDER = "cifar-10-batches-py"
FILES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta")


@cache
def unverified_cifar10() -> type:
    """torchvision's CIFAR10 with its per-file md5 checks off, so any files in the right format
    load (the downloaded archive is still md5-checked); content is checked by ``setup``'s
    shape/class checks instead."""
    from torchvision.datasets import CIFAR10

    return type(
        "UnverifiedCIFAR10",
        (CIFAR10,),
        {
            "train_list": [[name, None] for name, _ in CIFAR10.train_list],
            "test_list": [[name, None] for name, _ in CIFAR10.test_list],
            "meta": {**CIFAR10.meta, "md5": None},
        },
    )


class CIFAR10DataModule(TorchvisionDataModule):
    """CIFAR-10: 50,000 train (minus ``val_size`` for val, default 5,000), 10,000 test, [3, 32, 32]."""

    name = "cifar10"

    @property
    def folder(self) -> Path:
        return self.root / FOLDER

    def missing_files(self) -> list[str]:
        return [name for name in FILES if not (self.folder / name).is_file()]

    def dataset_class(self) -> type:
        return unverified_cifar10()

    def load_split(self, train: bool) -> TensorSplit:
        try:
            return super().load_split(train)
        except (pickle.UnpicklingError, EOFError, KeyError, ValueError) as err:
            message = f"{self.name}: unreadable CIFAR-10 batch files in {self.folder} ({err!r})"
            raise CorruptDatasetError(message) from err

    def to_split(self, dataset: Any) -> TensorSplit:
        x = torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous().float() / 255.0
        return TensorSplit(x, torch.as_tensor(dataset.targets, dtype=torch.int64))
