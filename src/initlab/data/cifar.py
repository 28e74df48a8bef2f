"""CIFAR-10 from ``{root}/cifar-10-batches-py/`` (the extracted python pickles), read without trusting them.

The batches are pickles, and unpickling runs whatever code a pickle names. So the files are
md5-checked first (``verify_md5``, on by default) and then read through :class:`BatchUnpickler`,
which builds numpy arrays, lists and strings and refuses every other global: a planted file fails
with a clean error instead of running.
"""

import math
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from initlab.data.errors import CorruptDatasetError
from initlab.data.sources import SOURCES
from initlab.data.splits import TensorSplit
from initlab.data.torchvision_base import TorchvisionDataModule

FOLDER = SOURCES["cifar10"].folder
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILES = ("test_batch",)
FILES = SOURCES["cifar10"].files  # the train and test batches and batches.meta
IMAGE_SHAPE = (3, 32, 32)

# The only globals a CIFAR-10 batch names: numpy's array reconstruction under numpy 1 and 2
# module names, and ``_codecs.encode`` (how protocol-2 pickles written by Python 3 store bytes).
ALLOWED_GLOBALS = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),
    }
)
UNREADABLE = (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError, AttributeError, IndexError, OverflowError,
              MemoryError)
# The most bytes one batch file, or any array it builds, may take: a batch holds 10,000 x 3,072 = 31 MB of pixels, so
# twice that bounds what a planted file can make the reader allocate (an array's shape is checked before allocation).
MAX_BATCH_BYTES = 64 * 2**20


def _check_size(shape: Any, dtype: Any) -> None:
    """Refuse an array a batch asks for before it is allocated, if it would exceed :data:`MAX_BATCH_BYTES`."""
    dims = (shape,) if isinstance(shape, int) else tuple(shape)
    size = math.prod(int(d) for d in dims) * np.dtype(dtype).itemsize
    if size > MAX_BATCH_BYTES or any(int(d) < 0 for d in dims):
        raise pickle.UnpicklingError(f"an array of shape {list(dims)} ({size:,} bytes) is larger than a CIFAR-10 batch holds")


class BoundedArray(np.ndarray):
    """``numpy.ndarray`` as a batch may call it: ``ndarray(shape, dtype)`` allocates, so the size is checked first."""

    def __new__(cls, shape: Any, dtype: Any = float, *args: Any, **kwargs: Any) -> "BoundedArray":
        _check_size(shape, dtype)
        return super().__new__(cls, shape, dtype, *args, **kwargs)


def _bounded_reconstruct(reconstruct: Any) -> Any:
    """numpy's ``_reconstruct(subtype, shape, dtype_char)``, which allocates ``shape`` in C, with the size checked first."""

    def call(subtype: Any, shape: Any, dtype: Any, *args: Any) -> Any:
        _check_size(shape, np.uint8)
        return reconstruct(subtype, shape, dtype, *args)

    return call


class BatchUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :data:`ALLOWED_GLOBALS` (array sizes bounded); any other global is refused unrun."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refused to load global {module}.{name} (a CIFAR-10 batch holds only arrays)")
        if name == "ndarray":
            return BoundedArray
        found = super().find_class(module, name)
        return _bounded_reconstruct(found) if name == "_reconstruct" else found


def read_batch(path: Path) -> tuple[np.ndarray, list[int]]:
    """The uint8 images [N, 3072] and labels of one batch file, or a :class:`CorruptDatasetError` naming it."""
    if path.stat().st_size > MAX_BATCH_BYTES:
        raise CorruptDatasetError(f"cifar10: {path} is {path.stat().st_size:,} bytes, more than a CIFAR-10 batch file holds")
    try:
        with path.open("rb") as f:
            batch = BatchUnpickler(f, encoding="latin1").load()
        data, labels = batch["data"], [int(v) for v in batch["labels"]]
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.shape != (len(labels), 3072):
            raise ValueError(f"'data' is not a uint8 array of shape [{len(labels)}, 3072]")
    except UNREADABLE as err:
        raise CorruptDatasetError(f"cifar10: unreadable CIFAR-10 batch file {path} ({err})") from err
    return np.asarray(data), labels


class CIFAR10DataModule(TorchvisionDataModule):
    """CIFAR-10: 50,000 train (minus ``val_size`` for val, default 5,000), 10,000 test, [3, 32, 32]."""

    name = "cifar10"

    @property
    def folder(self) -> Path:
        return self.root / FOLDER

    def source_files(self) -> list[Path]:
        return [self.folder / name for name in FILES]

    def dataset_class(self) -> type:
        from torchvision.datasets import CIFAR10

        return CIFAR10

    def expected_md5(self) -> dict[str, str]:
        cls = self.dataset_class()
        return {**dict(cls.train_list), **dict(cls.test_list), cls.meta["filename"]: cls.meta["md5"]}

    def download_files(self) -> None:
        """The archive only (md5-checked by torchvision), without torchvision's own unpickling."""
        from torchvision.datasets.utils import download_and_extract_archive

        cls = self.dataset_class()
        download_and_extract_archive(cls.url, str(self.root), filename=cls.filename, md5=cls.tgz_md5)

    def load_split(self, train: bool) -> TensorSplit:
        return self.to_split([read_batch(self.folder / name) for name in (TRAIN_FILES if train else TEST_FILES)])

    def to_split(self, dataset: Any) -> TensorSplit:
        """``dataset``: the (images, labels) of each batch file, in order."""
        x = np.concatenate([data for data, _ in dataset]).reshape(-1, *IMAGE_SHAPE)
        y = [label for _, labels in dataset for label in labels]
        return TensorSplit(torch.from_numpy(x).float() / 255.0, torch.as_tensor(y, dtype=torch.int64))
