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


@pytest.mark.parametrize("damage", ["bit flip", "truncated", "empty", "no hash"])
def test_a_damaged_cache_is_rebuilt_never_used(tmp_path: Path, damage, caplog):
    from initlab.data.cache import CONTENT_KEY, load_prepared

    reference = digits(tmp_path / "reference")
    reference.setup()
    dm = digits(tmp_path)
    dm.prepare_data()
    raw = bytearray(dm.cache_path.read_bytes())
    if damage == "bit flip":
        import zipfile

        with zipfile.ZipFile(dm.cache_path) as archive:  # flip one bit inside the train pixels' bytes, not the zip bookkeeping
            info = max(archive.infolist(), key=lambda i: i.file_size)
        offset = info.header_offset + 30 + len(info.filename) + len(info.extra) + info.file_size // 2
        raw[offset] ^= 0x01
    elif damage == "truncated":
        raw = raw[: len(raw) // 2]
    elif damage == "empty":
        raw = bytearray()
    else:
        state = torch.load(dm.cache_path, weights_only=True)
        del state[CONTENT_KEY]
        torch.save(state, dm.cache_path)
        raw = bytearray(dm.cache_path.read_bytes())
    dm.cache_path.write_bytes(bytes(raw))
    dm.setup()
    assert "rebuilding it from the source data" in caplog.text
    expected = {"bit flip": "does not match its own sha256", "no hash": "lacks ['content_sha256']"}.get(damage, "unreadable")
    assert expected in caplog.text
    for a, b in ((reference.train_data, dm.train_data), (reference.test_data, dm.test_data)):
        assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    load_prepared(dm.cache_path)  # rewritten whole


def test_a_cache_built_from_other_sources_is_rebuilt(tmp_path: Path, monkeypatch, caplog):
    source = tmp_path / "source.bin"
    source.write_bytes(b"first version")
    monkeypatch.setattr(DigitsDataModule, "source_files", lambda self: [source])
    digits(tmp_path).prepare_data()
    source.write_bytes(b"second version")
    rebuilt = []
    original_build = DigitsDataModule.build
    monkeypatch.setattr(DigitsDataModule, "build", lambda self: rebuilt.append(1) or original_build(self))
    digits(tmp_path).setup()
    assert rebuilt == [1] and "other source files" in caplog.text
    caplog.clear()
    digits(tmp_path).setup()  # the rewritten cache matches the sources now
    assert rebuilt == [1] and "rebuilding" not in caplog.text


def test_load_prepared_names_what_is_wrong(tmp_path: Path):
    from initlab.data import CorruptDatasetError
    from initlab.data.cache import load_prepared

    dm = digits(tmp_path)
    dm.prepare_data()
    with pytest.raises(CorruptDatasetError, match="other source files"):
        load_prepared(dm.cache_path, source="not the digest it was built from")
    dm.cache_path.write_bytes(b"")
    with pytest.raises(CorruptDatasetError, match=f"{dm.cache_path}: unreadable prepared-data cache"):
        load_prepared(dm.cache_path)
