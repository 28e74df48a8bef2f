"""DigitsDataModule: the bundled sklearn digits, and the TensorDataModule behaviour shown on it."""

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from initlab.data import DigitsDataModule
from initlab.data.splits import holdout_split


def make_digits(tmp_path: Path, **kwargs) -> DigitsDataModule:
    dm = DigitsDataModule(**{"root": str(tmp_path), "input_shape": [1, 8, 8], "num_classes": 10, **kwargs})
    dm.setup()
    return dm


def test_shapes_and_dtypes(tmp_path: Path):
    dm = make_digits(tmp_path)
    for split in (dm.train_data, dm.val_data, dm.test_data):
        assert split.x.dtype == torch.float32 and split.y.dtype == torch.int64
        assert split.x.shape[1:] == (1, 8, 8) and split.y.shape == (len(split),)
    assert dm.data_device == torch.device("cpu")


def test_split_sizes(tmp_path: Path):
    dm = make_digits(tmp_path)
    assert (len(dm.train_data), len(dm.val_data), len(dm.test_data)) == (1257, 270, 270)


def test_holdout_split_is_disjoint_and_covers():
    train, val, test = holdout_split(1797, (270, 270), seed=3)
    assert (len(train), len(val), len(test)) == (1257, 270, 270)
    assert sorted(torch.cat([train, val, test]).tolist()) == list(range(1797))


def test_holdout_split_needs_training_samples():
    with pytest.raises(ValueError, match="no training samples"):
        holdout_split(10, (5, 5), seed=0)


def test_train_split_is_normalized_per_channel(tmp_path: Path):
    dm = make_digits(tmp_path)
    assert dm.train_data.x.mean(dim=(0, 2, 3)).item() == pytest.approx(0.0, abs=1e-5)
    assert dm.train_data.x.std(dim=(0, 2, 3)).item() == pytest.approx(1.0, abs=1e-5)
    raw = dm.train_data.x * dm.std.view(1, -1, 1, 1) + dm.mean.view(1, -1, 1, 1)
    assert raw.min().item() == pytest.approx(0.0, abs=1e-5) and raw.max().item() == pytest.approx(1.0, abs=1e-5)


def test_same_seed_same_split_other_seed_other_split(tmp_path: Path):
    a, b, c = make_digits(tmp_path, seed=4), make_digits(tmp_path, seed=4), make_digits(tmp_path, seed=5)
    assert torch.equal(a.val_data.x, b.val_data.x) and torch.equal(a.train_data.y, b.train_data.y)
    assert not torch.equal(a.val_data.y, c.val_data.y)


def test_class_frequencies(tmp_path: Path):
    dm = make_digits(tmp_path)
    freqs = dm.class_frequencies()
    assert freqs.shape == (10,) and freqs.sum().item() == pytest.approx(1.0)
    assert torch.allclose(freqs * len(dm.train_data), torch.bincount(dm.train_data.y).float())


def test_sample_batch_is_fixed_by_its_seed(tmp_path: Path):
    dm = make_digits(tmp_path)
    x, y = dm.sample_batch(64, seed=1)
    assert x.shape == (64, 1, 8, 8) and y.shape == (64,)
    assert torch.equal(x, dm.sample_batch(64, seed=1)[0])
    assert not torch.equal(y, dm.sample_batch(64, seed=2)[1])
    with pytest.raises(ValueError, match="n must be"):
        dm.sample_batch(len(dm.train_data) + 1)


def test_limit_train_keeps_the_first_samples(tmp_path: Path):
    full, limited = make_digits(tmp_path), make_digits(tmp_path, limit_train=100)
    assert torch.equal(limited.train_data.x, full.train_data.x[:100])
    assert torch.equal(limited.val_data.x, full.val_data.x)
    assert len(limited.train_dataloader()) == 1


@pytest.mark.parametrize(
    ("kwargs", "match"), [({"input_shape": [1, 28, 28]}, "input_shape"), ({"num_classes": 12}, "num_classes")]
)
def test_declared_facts_must_match_the_data(tmp_path: Path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_digits(tmp_path, **kwargs)


def test_data_is_unusable_before_setup(tmp_path: Path):
    dm = DigitsDataModule(root=str(tmp_path), input_shape=[1, 8, 8], num_classes=10)
    with pytest.raises(RuntimeError, match="setup"):
        dm.train_dataloader()


def test_loaders_use_the_configured_batch_sizes(tmp_path: Path):
    dm = make_digits(tmp_path, batch_size=100, eval_batch_size=50)
    assert len(dm.train_dataloader()) == 13 and len(dm.val_dataloader()) == 6 and len(dm.test_dataloader()) == 6
    assert [len(y) for _, y in dm.val_dataloader()] == [50] * 5 + [20]


def test_train_loader_shards_by_the_attached_trainers_rank(tmp_path: Path):
    dm = make_digits(tmp_path)
    dm.trainer = SimpleNamespace(global_rank=1, world_size=2)
    sampler = dm.train_dataloader().sampler
    assert (sampler.rank, sampler.world_size, len(sampler)) == (1, 2, 1257 // 2)
    assert len(dm.val_dataloader().sampler) == 270  # evaluation stays whole on every rank


def test_unknown_device_fails_at_construction(tmp_path: Path):
    with pytest.raises(ValueError, match="unknown data device"):
        DigitsDataModule(root=str(tmp_path), input_shape=[1, 8, 8], num_classes=10, device="tpu")


def test_auto_device_without_a_cuda_trainer_stays_on_cpu(tmp_path: Path):
    dm = make_digits(tmp_path, device="auto")
    dm.trainer = SimpleNamespace(strategy=SimpleNamespace(root_device=torch.device("cpu")))
    dm.setup("fit")
    assert dm.data_device == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_cuda_device_without_cuda_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ValueError, match="CUDA is not available"):
        make_digits(tmp_path, device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_device_holds_every_split_on_the_gpu(tmp_path: Path):
    dm = make_digits(tmp_path, device="cuda")
    xb, yb = next(iter(dm.train_dataloader()))
    assert dm.train_data.x.is_cuda and dm.test_data.y.is_cuda and xb.is_cuda and yb.is_cuda
    assert dm.sample_batch(8)[0].is_cuda
