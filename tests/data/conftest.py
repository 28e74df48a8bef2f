"""Writers of small dataset files in the exact on-disk formats torchvision reads."""

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801
N_TRAIN, N_TEST, VAL_SIZE = 30, 10, 10
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    """An IDX file: big-endian magic, one big-endian uint32 size per dim, then the uint8 payload."""
    return struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()


def fake_images(n: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)


def fake_labels(n: int, offset: int = 0) -> np.ndarray:
    """Every class 0-9 appears, so the declared num_classes=10 holds."""
    return ((np.arange(n) + offset) % 10).astype(np.uint8)


def write_mnist_raw(raw: Path, compress: bool = True) -> dict[str, np.ndarray]:
    """``{root}/<Class>/raw/`` as torchvision downloads it (``.gz``) or extracts it (``compress=False``)."""
    raw.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": fake_images(N_TRAIN, (28, 28), seed=1),
        "train-labels-idx1-ubyte": fake_labels(N_TRAIN),
        "t10k-images-idx3-ubyte": fake_images(N_TEST, (28, 28), seed=2),
        "t10k-labels-idx1-ubyte": fake_labels(N_TEST, offset=3),
    }
    for stem, array in arrays.items():
        data = idx_bytes(array, IMAGES_MAGIC if array.ndim == 3 else LABELS_MAGIC)
        if compress:
            (raw / f"{stem}.gz").write_bytes(gzip.compress(data))
        else:
            (raw / stem).write_bytes(data)
    return arrays


class Py2Str(bytes):
    """A Python 2 ``str``, as CIFAR's pickles hold: it unpickles as ``b"data"`` with
    ``encoding="bytes"`` and as ``"data"`` with ``encoding="latin1"`` (torchvision's choice)."""


class Py2Pickler(pickle._Pickler):
    """Protocol-2 pickler writing :class:`Py2Str` with Python 2's SHORT_BINSTRING opcode."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2str(self, obj: Py2Str) -> None:
        self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + bytes(obj))

    dispatch[Py2Str] = save_py2str


def write_py2_pickle(path: Path, obj: dict) -> None:
    with path.open("wb") as f:
        Py2Pickler(f, protocol=2).dump(obj)


def write_cifar10(root: Path, per_batch: int = N_TRAIN // 5) -> dict[str, np.ndarray]:
    """``{root}/cifar-10-batches-py/``: five train batches, ``test_batch`` and ``batches.meta``."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {
        f"data_batch_{i}": (fake_images(per_batch, (3072,), seed=i), fake_labels(per_batch, i)) for i in range(1, 6)
    }
    batches["test_batch"] = (fake_images(N_TEST, (3072,), seed=9), fake_labels(N_TEST))
    for name, (data, labels) in batches.items():
        write_py2_pickle(folder / name, {Py2Str(b"data"): data, Py2Str(b"labels"): [int(v) for v in labels]})
    names = [Py2Str(name.encode()) for name in CIFAR10_CLASSES]
    meta = {Py2Str(b"label_names"): names, Py2Str(b"num_cases_per_batch"): per_batch}
    write_py2_pickle(folder / "batches.meta", meta)
    train = [batches[f"data_batch_{i}"] for i in range(1, 6)]
    return {
        "train_x": np.concatenate([d for d, _ in train]),
        "train_y": np.concatenate([y for _, y in train]),
        "test_x": batches["test_batch"][0],
        "test_y": batches["test_batch"][1],
    }


@pytest.fixture
def common_kwargs(tmp_path: Path) -> dict:
    """Constructor kwargs shared by the torchvision-backed datamodules in tests (on files written
    here, which cannot carry the published md5s)."""
    return {"root": str(tmp_path), "num_classes": 10, "seed": 0, "val_size": VAL_SIZE, "download": False,
            "verify_md5": False}
