"""The prepared dataset (normalized splits + the train statistics), saved once and reloaded by every run."""

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from initlab.data.splits import TensorSplit

SPLIT_NAMES = ("train", "val", "test")


@dataclass(frozen=True)
class PreparedData:
    """Normalized train/val/test splits and the per-channel train ``mean``/``std`` used (shape [C])."""

    train: TensorSplit
    val: TensorSplit
    test: TensorSplit
    mean: Tensor
    std: Tensor

    def splits(self) -> dict[str, TensorSplit]:
        """The three splits by name."""
        return {name: getattr(self, name) for name in SPLIT_NAMES}


def save_prepared(data: PreparedData, path: Path) -> None:
    """Write ``data`` to ``path`` atomically, so a killed run never leaves a half-written cache."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"mean": data.mean, "std": data.std}
    for name, split in data.splits().items():
        state[f"{name}_x"], state[f"{name}_y"] = split.x, split.y
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_prepared(path: Path) -> PreparedData:
    """Read what :func:`save_prepared` wrote (tensors only, loaded with ``weights_only``)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    splits = {name: TensorSplit(state[f"{name}_x"], state[f"{name}_y"]) for name in SPLIT_NAMES}
    return PreparedData(**splits, mean=state["mean"], std=state["std"])
