"""Safe loading: published md5s checked before anything parses a file, CIFAR pickles read without running code."""

import gzip
import hashlib
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from initlab.data import CIFAR10DataModule, CorruptDatasetError, DatasetNotFoundError, MNISTDataModule
from initlab.data.cifar import read_batch
from tests.data.conftest import write_cifar10, write_mnist_raw

# torchvision's published md5s (CIFAR10.train_list, MNIST.resources), written out as the oracle.
CIFAR_BATCH_1_MD5 = "c99cafc152244af753f735de768cd75f"
MNIST_TRAIN_IMAGES_MD5 = "f68b3c2dcbeaaa9fbdd348bbdeb94873"


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


class Planted:
    """A pickle payload that runs ``function(argument)`` when unpickled."""

    def __init__(self, function, argument: str) -> None:
        self.function, self.argument = function, argument

    def __reduce__(self):
        return self.function, (self.argument,)


def payloads(marker: Path) -> dict[str, object]:
    touch = f"open({str(marker)!r}, 'w').close()"
    return {
        "os.system": Planted(os.system, f"touch {marker}"),
        "exec": Planted(exec, touch),
        "nested-in-batch": {"data": Planted(eval, touch), "labels": [0]},
    }


@pytest.mark.parametrize("protocol", [0, 2, 5])
@pytest.mark.parametrize("payload", ["os.system", "exec", "nested-in-batch"])
def test_planted_cifar_pickle_does_not_run(tmp_path: Path, common_kwargs, payload, protocol):
    write_cifar10(tmp_path)
    marker = tmp_path / "pwned"
    planted = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    planted.write_bytes(pickle.dumps(payloads(marker)[payload], protocol=protocol))
    dm = CIFAR10DataModule(input_shape=[3, 32, 32], **common_kwargs)  # md5 checks off: reach the unpickler
    with pytest.raises(CorruptDatasetError, match="refused to load global") as info:
        dm.setup()
    assert not marker.exists()
    assert str(planted) in str(info.value) and "\n" not in str(info.value)


def test_planted_cifar_pickle_fails_the_default_md5_check(tmp_path: Path, common_kwargs):
    write_cifar10(tmp_path)
    marker = tmp_path / "pwned"
    planted = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    planted.write_bytes(pickle.dumps(Planted(os.system, f"touch {marker}")))
    dm = CIFAR10DataModule(input_shape=[3, 32, 32], **{**common_kwargs, "verify_md5": True})
    with pytest.raises(CorruptDatasetError, match="md5") as info:
        dm.setup()
    assert not marker.exists()
    message = str(info.value)
    assert str(planted) in message and CIFAR_BATCH_1_MD5 in message and md5(planted) in message


def test_cifar_loads_when_every_md5_matches(tmp_path: Path, common_kwargs, monkeypatch):
    write_cifar10(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    monkeypatch.setattr(CIFAR10DataModule, "expected_md5", lambda self: {p.name: md5(p) for p in folder.iterdir()})
    dm = CIFAR10DataModule(input_shape=[3, 32, 32], **{**common_kwargs, "verify_md5": True})
    dm.setup()
    assert len(dm.test_data) == 10


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_batches_pickled_by_python3_numpy_read_back(tmp_path: Path, protocol):
    data = np.random.default_rng(0).integers(0, 256, size=(4, 3072), dtype=np.uint8)
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps({"data": data, "labels": [1, 2, 3, 4], "batch_label": "x"}, protocol=protocol))
    images, labels = read_batch(path)
    np.testing.assert_array_equal(images, data)
    assert labels == [1, 2, 3, 4]


def test_object_arrays_are_refused(tmp_path: Path):
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps({"data": np.array([[1, "a"]], dtype=object), "labels": [0]}, protocol=2))
    with pytest.raises(CorruptDatasetError, match="not a uint8 array"):
        read_batch(path)


def test_fake_mnist_fails_the_default_md5_check(tmp_path: Path, common_kwargs):
    raw = tmp_path / "MNIST" / "raw"
    write_mnist_raw(raw)
    dm = MNISTDataModule(input_shape=[1, 28, 28], **{**common_kwargs, "verify_md5": True})
    with pytest.raises(CorruptDatasetError, match="md5") as info:
        dm.setup()
    bad = raw / "train-images-idx3-ubyte.gz"
    assert str(bad) in str(info.value) and MNIST_TRAIN_IMAGES_MD5 in str(info.value) and md5(bad) in str(info.value)
    assert "data.verify_md5=false" in str(info.value)


def test_verified_mnist_needs_the_gz_files(tmp_path: Path, common_kwargs):
    write_mnist_raw(tmp_path / "MNIST" / "raw", compress=False)
    dm = MNISTDataModule(input_shape=[1, 28, 28], **{**common_kwargs, "verify_md5": True})
    with pytest.raises(DatasetNotFoundError, match="train-images-idx3-ubyte.gz"):
        dm.setup()


def test_verified_mnist_reads_the_verified_bytes_not_a_tampered_extraction(tmp_path: Path, common_kwargs, monkeypatch):
    raw = tmp_path / "MNIST" / "raw"
    arrays = write_mnist_raw(raw)
    monkeypatch.setattr(MNISTDataModule, "expected_md5", lambda self: {p.name: md5(p) for p in raw.glob("*.gz")})
    tampered = raw / "t10k-labels-idx1-ubyte"
    tampered.write_bytes(gzip.decompress((raw / "t10k-labels-idx1-ubyte.gz").read_bytes())[:8] + bytes(10))
    dm = MNISTDataModule(input_shape=[1, 28, 28], **{**common_kwargs, "verify_md5": True})
    dm.setup()
    np.testing.assert_array_equal(dm.test_data.y.numpy(), arrays["t10k-labels-idx1-ubyte"])


def test_numpy1_module_names_of_the_real_cifar_files_read_back(tmp_path: Path):
    """The published batches (numpy 1 era) name ``numpy.core.multiarray._reconstruct``."""
    data = np.arange(3072, dtype=np.int64).astype(np.uint8).reshape(1, 3072)
    pickled = pickle.dumps({"data": data, "labels": [7]}, protocol=2)
    path = tmp_path / "batch"
    path.write_bytes(pickled.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    assert b"numpy.core.multiarray" in path.read_bytes()
    images, labels = read_batch(path)
    np.testing.assert_array_equal(images, data)
    assert labels == [7]


class Allocates:
    """A pickle payload calling an allowed numpy global with a huge shape: memory, not code."""

    def __init__(self, function, *args) -> None:
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


@pytest.mark.parametrize("call", ["ndarray", "_reconstruct"])
def test_a_cifar_pickle_cannot_allocate_without_bound(tmp_path: Path, call):
    """With verify_md5=false the allowed numpy globals still run: a 100 GB shape is refused before it is allocated."""
    from numpy.core.multiarray import _reconstruct

    huge = (10**11,)
    payload = Allocates(np.ndarray, huge, np.dtype("u1")) if call == "ndarray" else Allocates(_reconstruct, np.ndarray, huge, b"b")
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({"data": payload, "labels": [0]}, protocol=2))
    with pytest.raises(CorruptDatasetError, match=r"shape \[100000000000\] .* larger than a CIFAR-10 batch holds"):
        read_batch(path)


def test_an_oversized_cifar_file_is_refused_unread(tmp_path: Path, monkeypatch):
    import initlab.data.cifar as cifar

    monkeypatch.setattr(cifar, "MAX_BATCH_BYTES", 1000)
    path = tmp_path / "data_batch_1"
    path.write_bytes(b"\x80" * 2000)
    with pytest.raises(CorruptDatasetError, match="more than a CIFAR-10 batch file holds"):
        read_batch(path)


def test_an_idx_gzip_promising_too_much_fails_before_inflating(tmp_path: Path):
    """A 4 kB gzip whose header promises 10^10 bytes (a decompression bomb) fails on the header alone."""
    from initlab.data.idx import IMAGES_MAGIC, read_idx

    header = IMAGES_MAGIC.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in (100_000, 10_000, 10))
    path = tmp_path / "bomb-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(header + bytes(4096)))
    with pytest.raises(CorruptDatasetError, match="promises 10,000,000,000 bytes"):
        read_idx(path, IMAGES_MAGIC)


def test_an_idx_file_longer_than_its_header_is_refused(tmp_path: Path):
    from initlab.data.idx import LABELS_MAGIC, read_idx

    path = tmp_path / "labels-idx1-ubyte"
    path.write_bytes(LABELS_MAGIC.to_bytes(4, "big") + (3).to_bytes(4, "big") + bytes(10))
    with pytest.raises(CorruptDatasetError, match="promises shape \\[3\\] = 3 bytes, file holds 4"):
        read_idx(path, LABELS_MAGIC)
