"""The real MNIST test split shipped in the package: md5-checked, split 7,000 / 1,000 / 2,000 by a fixed seed."""

import gzip
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from initlab.data import CorruptDatasetError, DatasetNotFoundError, MNISTT10kDataModule
from initlab.data.mnist_t10k import SHIPPED_DIR

IMAGES, LABELS = "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"
# Published md5s (the MNIST mirrors, torchvision's MNIST.resources), not read from the code under test.
PUBLISHED_MD5 = {IMAGES: "9fb629c4189551a2d022fa330f9573f3", LABELS: "ec29112dd5afa0611ce80d1b7f02629c"}


def make(root: Path, **kwargs) -> MNISTT10kDataModule:
    return MNISTT10kDataModule(root=str(root), input_shape=[1, 28, 28], num_classes=10, **kwargs)


def raw_mnist() -> tuple[np.ndarray, np.ndarray]:
    """The shipped files parsed with gzip + numpy alone (the IDX headers are 16 and 8 bytes)."""
    images = np.frombuffer(gzip.decompress((SHIPPED_DIR / IMAGES).read_bytes()), np.uint8, offset=16)
    labels = np.frombuffer(gzip.decompress((SHIPPED_DIR / LABELS).read_bytes()), np.uint8, offset=8)
    return images.reshape(-1, 784), labels


def raw_indices(dm: MNISTT10kDataModule, split) -> np.ndarray:
    """Index in the raw file of every sample of ``split`` (the 10,000 raw images are all distinct)."""
    images, labels = raw_mnist()
    where = {row.tobytes(): i for i, row in enumerate(images)}
    pixels = (split.x * dm.std + dm.mean).mul(255).round().to(torch.uint8).reshape(len(split), -1).numpy()
    idx = np.array([where[row.tobytes()] for row in pixels])
    np.testing.assert_array_equal(labels[idx], split.y.numpy())
    return idx


def test_shipped_files_are_mnist_t10k():
    assert {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in SHIPPED_DIR.glob("*.gz")} == PUBLISHED_MD5
    assert "LeCun" in (SHIPPED_DIR / "README.md").read_text()


def test_splits_are_disjoint_and_cover_the_10000_images(tmp_path: Path):
    dm = make(tmp_path)
    dm.setup()
    parts = [raw_indices(dm, split) for split in (dm.train_data, dm.val_data, dm.test_data)]
    assert [len(p) for p in parts] == [7000, 1000, 2000]
    assert sorted(np.concatenate(parts).tolist()) == list(range(10_000))
    for split in (dm.train_data, dm.val_data, dm.test_data):
        assert torch.equal(split.y.unique(), torch.arange(10))
    assert 0.1 < dm.mean.item() < 0.15 and 0.28 < dm.std.item() < 0.34  # MNIST's well-known ink statistics


def test_split_is_fixed_by_split_seed_not_the_run_seed(tmp_path: Path):
    modules = {(seed, split_seed): make(tmp_path / f"{seed}-{split_seed}", seed=seed, split_seed=split_seed)
               for seed, split_seed in ((1, 0), (2, 0), (1, 5))}
    for dm in modules.values():
        dm.setup()
    a, b, other = modules[(1, 0)], modules[(2, 0)], modules[(1, 5)]
    for name in ("train_data", "val_data", "test_data"):
        assert torch.equal(getattr(a, name).x, getattr(b, name).x)
        assert torch.equal(getattr(a, name).y, getattr(b, name).y)
    assert set(raw_indices(a, a.test_data)) != set(raw_indices(other, other.test_data))
    assert a.cache_path.name == b.cache_path.name != other.cache_path.name


def test_corrupt_file_names_the_file_and_both_md5s(tmp_path: Path):
    folder = tmp_path / "copy"
    shutil.copytree(SHIPPED_DIR, folder)
    bad = folder / LABELS
    data = bytearray(bad.read_bytes())
    data[100] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(CorruptDatasetError) as info:
        make(tmp_path, path=str(folder)).setup()
    message = str(info.value)
    assert str(bad) in message and PUBLISHED_MD5[LABELS] in message
    assert hashlib.md5(bytes(data)).hexdigest() in message


def test_another_folder_is_read_even_when_the_shipped_split_is_cached(tmp_path: Path):
    make(tmp_path).prepare_data()
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetNotFoundError):
        make(tmp_path, path=str(missing)).setup()


def test_absent_folder_names_the_expected_path(tmp_path: Path):
    missing = tmp_path / "nowhere" / "mnist-t10k"
    with pytest.raises(DatasetNotFoundError, match="folder does not exist") as info:
        make(tmp_path, path=str(missing)).setup()
    assert str(missing) in str(info.value) and IMAGES in str(info.value)
