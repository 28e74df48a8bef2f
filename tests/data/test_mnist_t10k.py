"""The real MNIST test split from ../shared/data/mnist-t10k, when this checkout has it."""

from pathlib import Path

import pytest
import torch

from initlab.data import DatasetNotFoundError, MNISTT10kDataModule

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mnist-t10k"


def make(path: Path, root: Path) -> MNISTT10kDataModule:
    return MNISTT10kDataModule(path=str(path), root=str(root), input_shape=[1, 28, 28], num_classes=10)


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"real MNIST test split not found at {SHARED}")
def test_real_t10k_split(tmp_path: Path):
    dm = make(SHARED, tmp_path)
    dm.setup()
    assert (len(dm.train_data), len(dm.val_data)) == (8000, 2000)
    assert torch.equal(dm.test_data.x, dm.val_data.x) and torch.equal(dm.test_data.y, dm.val_data.y)
    pixels = dm.train_data.x * dm.std + dm.mean
    assert pixels.min().item() == pytest.approx(0.0, abs=1e-5) and pixels.max().item() == pytest.approx(1.0, abs=1e-5)
    assert 0.1 < dm.mean.item() < 0.15 and 0.28 < dm.std.item() < 0.34  # MNIST's well-known ink statistics
    for split in (dm.train_data, dm.val_data):
        assert torch.equal(split.y.unique(), torch.arange(10))


def test_absent_folder_names_the_expected_path(tmp_path: Path):
    missing = tmp_path / "nowhere" / "mnist-t10k"
    with pytest.raises(DatasetNotFoundError, match="folder does not exist") as info:
        make(missing, tmp_path).setup()
    assert str(missing) in str(info.value) and "t10k-images-idx3-ubyte.gz" in str(info.value)
