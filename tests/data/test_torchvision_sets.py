"""MNIST, Fashion-MNIST and CIFAR-10 through torchvision's real loading code, on files written here."""

import gzip
import socket
import urllib.request
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch

from initlab.data import (
    CIFAR10DataModule,
    CorruptDatasetError,
    DatasetNotFoundError,
    FashionMNISTDataModule,
    MNISTDataModule,
)
from initlab.data import torchvision_base
from initlab.data.splits import holdout_split
from tests.data.conftest import N_TEST, N_TRAIN, VAL_SIZE, write_cifar10, write_mnist_raw

MNIST_LIKE = [(MNISTDataModule, "MNIST"), (FashionMNISTDataModule, "FashionMNIST")]
MNIST_FILES = [f"{split}-{kind}-ubyte.gz" for split in ("train", "t10k") for kind in ("images-idx3", "labels-idx1")]
CIFAR_FILES = [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"]


def as_uint8(dm, x: torch.Tensor) -> np.ndarray:
    """Undo the normalization and the /255 scaling."""
    shape = (1, -1, 1, 1)
    return (x * dm.std.view(shape) + dm.mean.view(shape)).mul(255).round().to(torch.uint8).numpy()


def assert_splits_match(dm, train_x, train_y, test_x, test_y) -> None:
    """train + val are the seeded hold-out split of the written train set; test is the written test set."""
    train_idx, val_idx = holdout_split(N_TRAIN, (VAL_SIZE,), dm.seed)
    image_shape = dm.input_shape
    for split, idx in ((dm.train_data, train_idx), (dm.val_data, val_idx)):
        np.testing.assert_array_equal(as_uint8(dm, split.x), train_x[idx.numpy()].reshape(-1, *image_shape))
        np.testing.assert_array_equal(split.y.numpy(), train_y[idx.numpy()])
    np.testing.assert_array_equal(as_uint8(dm, dm.test_data.x), test_x.reshape(-1, *image_shape))
    np.testing.assert_array_equal(dm.test_data.y.numpy(), test_y)
    assert dm.train_data.x.dtype == torch.float32 and dm.train_data.y.dtype == torch.int64


@pytest.mark.parametrize("compress", [True, False], ids=["gz", "extracted"])
@pytest.mark.parametrize(("cls", "folder"), MNIST_LIKE, ids=["mnist", "fashion_mnist"])
def test_mnist_like_loads_what_was_written(tmp_path: Path, common_kwargs, cls, folder, compress):
    arrays = write_mnist_raw(tmp_path / folder / "raw", compress=compress)
    dm = cls(input_shape=[1, 28, 28], **common_kwargs)
    dm.setup()
    assert (len(dm.train_data), len(dm.val_data), len(dm.test_data)) == (N_TRAIN - VAL_SIZE, VAL_SIZE, N_TEST)
    assert_splits_match(
        dm,
        arrays["train-images-idx3-ubyte"],
        arrays["train-labels-idx1-ubyte"],
        arrays["t10k-images-idx3-ubyte"],
        arrays["t10k-labels-idx1-ubyte"],
    )


def test_cifar10_loads_what_was_written(tmp_path: Path, common_kwargs):
    arrays = write_cifar10(tmp_path)
    dm = CIFAR10DataModule(input_shape=[3, 32, 32], **common_kwargs)
    dm.setup()
    assert dm.train_data.x.shape == (N_TRAIN - VAL_SIZE, 3, 32, 32)
    assert_splits_match(dm, arrays["train_x"], arrays["train_y"], arrays["test_x"], arrays["test_y"])


def test_train_statistics_normalize_each_channel(tmp_path: Path, common_kwargs):
    write_cifar10(tmp_path)
    dm = CIFAR10DataModule(input_shape=[3, 32, 32], **common_kwargs)
    dm.setup()
    pool = torch.cat([dm.train_data.x, dm.val_data.x])
    assert dm.train_data.x.mean(dim=(0, 2, 3)) == pytest.approx([0.0] * 3, abs=1e-5)
    assert dm.train_data.x.std(dim=(0, 2, 3)) == pytest.approx([1.0] * 3, abs=1e-5)
    assert not torch.allclose(pool.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)  # val is not in the stats


LAYOUTS = [
    (MNISTDataModule, "MNIST/raw", MNIST_FILES, [1, 28, 28]),
    (CIFAR10DataModule, "cifar-10-batches-py", CIFAR_FILES, [3, 32, 32]),
]


@pytest.mark.parametrize(("cls", "folder", "files", "shape"), LAYOUTS, ids=["mnist", "cifar10"])
def test_missing_files_raise_one_clear_error(tmp_path: Path, common_kwargs, cls, folder, files, shape):
    dm = cls(input_shape=shape, **common_kwargs)
    with pytest.raises(DatasetNotFoundError) as info:
        dm.prepare_data()
    message = str(info.value)
    assert str(tmp_path / folder) in message and dm.name in message
    assert all(name in message for name in files)
    assert "or run with network access once" in message and "http" not in message


def test_partly_missing_files_are_listed(tmp_path: Path, common_kwargs):
    write_mnist_raw(tmp_path / "MNIST" / "raw")
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"these files there: t10k-labels-idx1-ubyte\.gz;"):
        MNISTDataModule(input_shape=[1, 28, 28], **common_kwargs).setup()


@pytest.mark.parametrize(("cls", "folder", "files", "shape"), LAYOUTS, ids=["mnist", "cifar10"])
def test_offline_download_fails_once_and_fast(tmp_path: Path, common_kwargs, monkeypatch, cls, folder, files, shape):
    """No network: torchvision's real download code runs, every request fails at once, one error."""
    calls = []

    def offline(*args, **kwargs):
        calls.append(args)
        raise URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.setattr(torchvision_base, "unreachable", lambda urls: None)  # the probe passes: torchvision's own code runs
    dm = cls(input_shape=shape, **{**common_kwargs, "download": True})
    with pytest.raises(DatasetNotFoundError, match="or run with network access once") as info:
        dm.prepare_data()
    message = str(info.value)
    assert str(tmp_path / folder) in message and "download failed" in message
    assert all(name in message for name in files)
    assert 1 <= len(calls) <= len(getattr(dm.dataset_class(), "mirrors", [None]))  # one try per mirror, no retries
    assert socket.getdefaulttimeout() is None


def test_present_files_are_not_downloaded(tmp_path: Path, common_kwargs, monkeypatch):
    write_mnist_raw(tmp_path / "MNIST" / "raw")
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("tried to download"))
    MNISTDataModule(input_shape=[1, 28, 28], **{**common_kwargs, "download": True}).setup()


def _truncate_gz(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-40])


def _truncate_payload(path: Path) -> None:
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-5]))


def _wrong_magic(path: Path) -> None:
    data = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + data[4:]))


@pytest.mark.parametrize(
    ("corrupt", "detail"),
    [(_truncate_gz, "gzip"), (_truncate_payload, "header promises"), (_wrong_magic, "magic number")],
    ids=["truncated-gz", "truncated-idx", "wrong-magic"],
)
def test_corrupt_idx_names_the_file(tmp_path: Path, common_kwargs, corrupt, detail):
    raw = tmp_path / "MNIST" / "raw"
    write_mnist_raw(raw)
    bad = raw / "train-images-idx3-ubyte.gz"
    corrupt(bad)
    with pytest.raises(CorruptDatasetError, match=detail) as info:
        MNISTDataModule(input_shape=[1, 28, 28], **common_kwargs).setup()
    assert str(bad) in str(info.value)
    assert not (raw / "train-images-idx3-ubyte").exists()  # nothing half-extracted left behind


def test_corrupt_extracted_idx_names_the_file(tmp_path: Path, common_kwargs):
    raw = tmp_path / "FashionMNIST" / "raw"
    write_mnist_raw(raw, compress=False)
    bad = raw / "t10k-labels-idx1-ubyte"
    bad.write_bytes(bad.read_bytes()[:-1])
    with pytest.raises(CorruptDatasetError, match="header promises") as info:
        FashionMNISTDataModule(input_shape=[1, 28, 28], **common_kwargs).setup()
    assert str(bad) in str(info.value)


def test_unreadable_cifar_batch_is_a_clear_error(tmp_path: Path, common_kwargs):
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(CorruptDatasetError, match="cifar-10-batches-py"):
        CIFAR10DataModule(input_shape=[3, 32, 32], **common_kwargs).setup()


def test_cache_key_includes_the_split_arguments(tmp_path: Path, common_kwargs):
    paths = {
        MNISTDataModule(input_shape=[1, 28, 28], **{**common_kwargs, **change}).cache_path
        for change in ({}, {"seed": 1}, {"val_size": 5})
    }
    assert len(paths) == 3 and all(p.parent == tmp_path / "processed" for p in paths)
