"""prepare_data writes the normalized splits once; setup reads them back instead of rebuilding."""

from pathlib import Path

import pytest
import torch

from initlab.data import DigitsDataModule


def digits(tmp_path: Path, **kwargs) -> DigitsDataModule:
    return DigitsDataModule(**{"root": str(tmp_path), "input_shape": [1, 8, 8], "num_classes": 10, **kwargs})


def test_prepare_data_writes_the_cache_path(tmp_path: Path):
    dm = digits(tmp_path, seed=2)
    assert dm.cache_path == tmp_path / "processed" / "digits-seed2.pt"
    dm.prepare_data()
    assert dm.cache_path.is_file()
    assert [p.name for p in dm.cache_path.parent.iterdir()] == ["digits-seed2.pt"]  # no temp file left


def test_setup_reads_the_cache_without_rebuilding(tmp_path: Path, monkeypatch):
    built = digits(tmp_path)
    built.prepare_data()
    built.setup()
    cached = digits(tmp_path)
    monkeypatch.setattr(DigitsDataModule, "load_raw", lambda self: pytest.fail("rebuilt despite the cache"))
    cached.prepare_data()
    cached.setup()
    for a, b in ((built.train_data, cached.train_data), (built.test_data, cached.test_data)):
        assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert torch.equal(built.mean, cached.mean) and torch.equal(built.std, cached.std)


def test_cache_holds_the_full_train_split_whatever_limit_train(tmp_path: Path):
    digits(tmp_path, limit_train=10).prepare_data()
    dm = digits(tmp_path)
    dm.setup()
    assert len(dm.train_data) == 1257


def test_materialize_writes_anywhere(tmp_path: Path):
    dm = digits(tmp_path)
    path = dm.materialize(tmp_path / "elsewhere" / "digits.pt")
    assert path.is_file() and not dm.cache_path.exists()


def test_declared_facts_are_checked_on_cached_data_too(tmp_path: Path):
    digits(tmp_path).prepare_data()
    with pytest.raises(ValueError, match="input_shape"):
        digits(tmp_path, input_shape=[3, 8, 8]).setup()
