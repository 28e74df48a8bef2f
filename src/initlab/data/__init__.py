"""In-memory datamodules: each dataset normalized once and batched by index.

torchvision and scikit-learn are imported inside the loading functions, never here.
"""

from initlab.data.base import TensorDataModule
from initlab.data.cifar import CIFAR10DataModule
from initlab.data.digits import DigitsDataModule
from initlab.data.errors import CorruptDatasetError, DatasetNotFoundError
from initlab.data.loader import EpochSampler, InMemoryLoader
from initlab.data.mnist import FashionMNISTDataModule, MNISTDataModule
from initlab.data.mnist_t10k import MNISTT10kDataModule
from initlab.data.registry import DATAMODULES, datamodule_class
from initlab.data.splits import TensorSplit

__all__ = [
    "DATAMODULES",
    "CIFAR10DataModule",
    "CorruptDatasetError",
    "DatasetNotFoundError",
    "DigitsDataModule",
    "EpochSampler",
    "FashionMNISTDataModule",
    "InMemoryLoader",
    "MNISTDataModule",
    "MNISTT10kDataModule",
    "TensorDataModule",
    "TensorSplit",
    "datamodule_class",
]
