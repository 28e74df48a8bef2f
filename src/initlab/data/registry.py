"""Dataset name (as in ``conf/data/<name>.yaml``) -> datamodule class."""

from initlab.data.base import TensorDataModule
from initlab.data.cifar import CIFAR10DataModule
from initlab.data.digits import DigitsDataModule
from initlab.data.mnist import FashionMNISTDataModule, MNISTDataModule
from initlab.data.mnist_t10k import MNISTT10kDataModule

DATAMODULES: dict[str, type[TensorDataModule]] = {
    cls.name: cls
    for cls in (DigitsDataModule, MNISTT10kDataModule, MNISTDataModule, FashionMNISTDataModule, CIFAR10DataModule)
}


def datamodule_class(name: str) -> type[TensorDataModule]:
    """The datamodule class registered as ``name``; unknown names list the valid ones."""
    if name not in DATAMODULES:
        raise ValueError(f"unknown dataset {name!r}; valid: {sorted(DATAMODULES)}")
    return DATAMODULES[name]
