"""The IDX parser on hand-written bytes."""

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from initlab.data import CorruptDatasetError
from initlab.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx, read_idx_pair
from tests.data.conftest import fake_images, fake_labels, idx_bytes


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_round_trip(tmp_path: Path, suffix):
    images = fake_images(4, (5, 3), seed=0)
    path = tmp_path / f"images{suffix}"
    data = idx_bytes(images, IMAGES_MAGIC)
    path.write_bytes(gzip.compress(data) if suffix else data)
    parsed = read_idx(path, IMAGES_MAGIC)
    assert parsed.dtype == torch.uint8 and parsed.shape == (4, 5, 3)
    np.testing.assert_array_equal(parsed.numpy(), images)


def test_header_bytes_are_big_endian(tmp_path: Path):
    path = tmp_path / "labels"
    path.write_bytes(bytes.fromhex("00000801 00000003") + bytes([7, 8, 9]))
    assert read_idx(path, LABELS_MAGIC).tolist() == [7, 8, 9]


@pytest.mark.parametrize(
    ("content", "magic", "detail"),
    [
        (b"\x00\x00", LABELS_MAGIC, "truncated IDX header"),
        (bytes.fromhex("00000803 00000001"), IMAGES_MAGIC, "truncated IDX header"),
        (bytes.fromhex("00000801 00000004") + b"\x00" * 5, LABELS_MAGIC, "header promises"),
        (bytes.fromhex("00000801 00000002") + b"\x00" * 2, IMAGES_MAGIC, "magic number"),
    ],
    ids=["short", "short-sizes", "long-payload", "labels-as-images"],
)
def test_bad_content_names_the_file(tmp_path: Path, content, magic, detail):
    path = tmp_path / "bad-idx"
    path.write_bytes(content)
    with pytest.raises(CorruptDatasetError, match=detail) as info:
        read_idx(path, magic)
    assert str(path) in str(info.value)


def test_not_gzip_names_the_file(tmp_path: Path):
    path = tmp_path / "labels.gz"
    path.write_bytes(idx_bytes(fake_labels(3), LABELS_MAGIC))
    with pytest.raises(CorruptDatasetError, match="gzip") as info:
        read_idx(path, LABELS_MAGIC)
    assert str(path) in str(info.value)


def test_pair_counts_must_agree(tmp_path: Path):
    (tmp_path / "images").write_bytes(idx_bytes(fake_images(3, (2, 2), seed=0), IMAGES_MAGIC))
    (tmp_path / "labels").write_bytes(idx_bytes(fake_labels(4), LABELS_MAGIC))
    with pytest.raises(CorruptDatasetError, match="3 images but .* 4 labels"):
        read_idx_pair(tmp_path / "images", tmp_path / "labels")
