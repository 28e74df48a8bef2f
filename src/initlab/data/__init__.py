"""In-memory datamodules: each dataset normalized once and batched by index.

Names are imported on first use (PEP 562): ``initlab.data.sources`` and the config checks load
without torch or Lightning; torchvision and scikit-learn load only inside the loading functions.
"""

import importlib
from typing import Any

# Public name -> the submodule that defines it.
_EXPORTS = {
    "TensorDataModule": "base",
    "CIFAR10DataModule": "cifar",
    "DigitsDataModule": "digits",
    "CorruptDatasetError": "errors",
    "DatasetNotFoundError": "errors",
    "EpochSampler": "loader",
    "InMemoryLoader": "loader",
    "FashionMNISTDataModule": "mnist",
    "MNISTDataModule": "mnist",
    "MNISTT10kDataModule": "mnist_t10k",
    "DATAMODULES": "registry",
    "datamodule_class": "registry",
    "TensorSplit": "splits",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
