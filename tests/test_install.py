"""A non-editable install works from any folder: configs, shipped data and console scripts travel with it."""

import importlib
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from initlab import locations

CHECKOUT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((CHECKOUT / "pyproject.toml").read_text())
SCRIPTS = PYPROJECT["project"]["scripts"]


def test_every_package_under_src_is_shipped_and_conf_rides_along():
    src = CHECKOUT / "src"
    packages = [init.parent.relative_to(src).as_posix().replace("/", ".") for init in src.rglob("__init__.py")]
    setuptools_cfg = PYPROJECT["tool"]["setuptools"]
    assert sorted(setuptools_cfg["packages"]) == sorted([*packages, "initlab.conf"])
    assert setuptools_cfg["package-dir"]["initlab.conf"] == "conf"


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_console_scripts_point_at_callables(name):
    module, attr = SCRIPTS[name].split(":")
    assert callable(getattr(importlib.import_module(module), attr))


def test_config_dir_prefers_the_working_directory(tmp_path: Path):
    (tmp_path / "conf").mkdir()
    assert locations.find_config_dir(tmp_path) != tmp_path / "conf"  # no train.yaml: not a config dir
    (tmp_path / "conf" / "train.yaml").write_text("defaults: []\n")
    config_dir = locations.find_config_dir(tmp_path)
    assert config_dir == tmp_path / "conf"


def test_without_local_conf_the_package_configs_are_used(tmp_path: Path):
    config_dir = locations.find_config_dir(tmp_path)
    assert (config_dir / "train.yaml").is_file() and config_dir.parent != tmp_path


def copy_sources(target: Path) -> Path:
    """What a wheel is built from, without this checkout's build leftovers."""
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(CHECKOUT / name, target / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for name in ("src", "conf"):
        shutil.copytree(CHECKOUT / name, target / name, ignore=ignore)
    return target


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """``pip install .`` (not editable, offline) into a fresh target folder; returns the target."""
    sources = copy_sources(tmp_path_factory.mktemp("sources"))
    target = tmp_path_factory.mktemp("site")
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
               "--target", str(target), str(sources)]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    return target


def run_installed(target: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(target), "WANDB_SILENT": "true", "OMP_NUM_THREADS": "1"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_installed_package_runs_from_any_folder(installed: Path, tmp_path: Path):
    where = run_installed(installed, tmp_path, sys.executable, "-c", "import initlab; print(initlab.__file__)")
    assert where.stdout.startswith(str(installed)), where.stdout + where.stderr  # not this checkout
    help_run = run_installed(installed, tmp_path, sys.executable, "-m", "initlab.train", "--help")
    assert help_run.returncode == 0 and "data: cifar10, digits" in help_run.stdout, help_run.stderr[-2000:]
    run = run_installed(installed, tmp_path, sys.executable, "-m", "initlab.train", "debug=fast", "logger=none",
                        "data=mnist_t10k")
    assert run.returncode == 0, run.stderr[-3000:]
    (metrics,) = tmp_path.glob("logs/train/runs/*/metrics.json")
    assert json.loads(metrics.read_text())["status"] == "done"
    assert list(tmp_path.glob("data/processed/mnist_t10k-*.pt"))  # data written beside the run, not in site-packages
    assert not list(installed.glob("logs")) and not list(installed.glob("data"))


@pytest.mark.slow
def test_installed_console_scripts_and_config_dir(installed: Path, tmp_path: Path):
    bin_dir = installed / "bin"
    for name in SCRIPTS:
        result = run_installed(installed, tmp_path, sys.executable, str(bin_dir / name), "--help")
        assert result.returncode == 0, f"{name}: {result.stderr[-2000:]}"
    extra = tmp_path / "my_conf" / "data"
    extra.mkdir(parents=True)
    shutil.copy(installed / "initlab" / "conf" / "data" / "digits.yaml", extra / "mine.yaml")
    result = run_installed(installed, tmp_path, sys.executable, str(bin_dir / "initlab-train"),
                           "--config-dir", str(tmp_path / "my_conf"), "data=mine", "--cfg", "job")
    assert result.returncode == 0 and "DigitsDataModule" in result.stdout, result.stderr[-2000:]
