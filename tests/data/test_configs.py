"""conf/data/*.yaml: one per registered dataset, each instantiating its class with facts that hold."""

from pathlib import Path

import pytest
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from initlab.data import DATAMODULES, datamodule_class
from tests.data.conftest import VAL_SIZE, write_cifar10, write_mnist_raw

CONF_DIR = Path(__file__).resolve().parents[2] / "conf" / "data"
NAMES = sorted(DATAMODULES)


def data_cfg(name: str, tmp_path: Path, **overrides) -> DictConfig:
    """The YAML under a minimal root config (the real root defines ``paths`` and ``seed`` the same way)."""
    root = {"paths": {"data_dir": str(tmp_path)}, "seed": 7}
    cfg = OmegaConf.merge(root, {"data": OmegaConf.load(CONF_DIR / f"{name}.yaml")}, {"data": overrides})
    return cfg.data


def test_one_config_per_registered_dataset():
    assert sorted(p.stem for p in CONF_DIR.glob("*.yaml")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_config_instantiates_its_class(tmp_path: Path, name):
    assert (CONF_DIR / f"{name}.yaml").read_text().startswith("# ")
    dm = instantiate(data_cfg(name, tmp_path))
    assert type(dm) is DATAMODULES[name] and dm.name == name
    assert dm.root == tmp_path and dm.seed == 7 and dm.num_classes == 10 and dm.batch_size == 128
    assert dm.cache_path.parent == tmp_path / "processed"


WRITERS = {
    "mnist": lambda root: write_mnist_raw(root / "MNIST" / "raw"),
    "fashion_mnist": lambda root: write_mnist_raw(root / "FashionMNIST" / "raw"),
    "cifar10": write_cifar10,
}


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_declared_shapes_hold_for_torchvision_files(tmp_path: Path, name):
    WRITERS[name](tmp_path)
    dm = instantiate(data_cfg(name, tmp_path, val_size=VAL_SIZE, download=False, verify_md5=False))
    dm.setup()
    assert tuple(dm.train_data.x.shape[1:]) == dm.input_shape


def test_declared_shapes_hold_for_digits(tmp_path: Path):
    dm = instantiate(data_cfg("digits", tmp_path))
    dm.setup()
    assert len(dm.train_data) == 1257


def test_unknown_dataset_lists_the_valid_names():
    with pytest.raises(ValueError, match="cifar10"):
        datamodule_class("imagenet")
