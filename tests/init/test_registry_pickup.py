"""A new initializer is one function + one registry entry (its module) + one YAML: nothing else is touched.

The fixture writes both into ``tmp_path`` (a module on ``PYTHONPATH`` and ``conf/init/fancy.yaml``,
whose ``_target_`` names the module, so Hydra imports it and the entry is registered); then
``train.py --config-dir`` runs with ``init=fancy`` and the registry tests, parameterized over every
registry key and every ``conf/init`` YAML, run against it.
"""

import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import hydra
import pytest
from hydra import compose, initialize_config_dir

from initlab.init import WEIGHT_INITS, Initializer
from initlab.locations import CONFIG_DIR
from initlab.models import mlp
from tests.conftest import run_cli

PROJECT_ROOT = Path(__file__).resolve().parents[2]

MODULE = '''"""A weight init added from outside initlab."""
import math

from torch import nn

from initlab.init import WEIGHT_INITS, Initializer  # Initializer: the YAML's _target_ reaches it through this module


def fancy_(weight, fan_in, fan_out, *, gain=0.5):
    """N(0, gain^2 / fan_in)."""
    nn.init.normal_(weight, 0.0, gain / math.sqrt(fan_in))


WEIGHT_INITS["fancy"] = fancy_
'''

YAML = """# N(0, gain^2/fan_in): an init from a module outside initlab.
defaults: [bias: zeros, _self_]
_target_: fancy_inits.Initializer
scheme: fancy
gain: 0.5
"""


@pytest.fixture
def fancy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``tmp_path`` with ``pkg/fancy_inits.py`` and ``conf/init/fancy.yaml``; ``pkg`` importable here and in subprocesses."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "fancy_inits.py").write_text(MODULE)
    (tmp_path / "conf" / "init").mkdir(parents=True)
    (tmp_path / "conf" / "init" / "fancy.yaml").write_text(YAML)
    monkeypatch.syspath_prepend(str(tmp_path / "pkg"))
    yield tmp_path
    WEIGHT_INITS.pop("fancy", None)
    sys.modules.pop("fancy_inits", None)


def _env(root: Path) -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join([str(root / "pkg"), str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")])}


def test_the_yaml_target_imports_the_module_that_registers_the_scheme(fancy: Path) -> None:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(overrides=["hydra.searchpath=[file://" + str(fancy / "conf") + "]", "+init=fancy"])
    init = hydra.utils.instantiate(cfg.init)
    assert isinstance(init, Initializer) and init.params == {"gain": 0.5} and init.bias == "zeros"
    model = init(mlp((400,), 3, widths=(300,)))
    assert model[1].weight.std().item() == pytest.approx(0.5 / math.sqrt(400), rel=0.02)


@pytest.mark.slow
def test_train_runs_the_new_init(fancy: Path) -> None:
    run_dir = fancy / "run"
    result = run_cli(
        ["train.py", "--config-dir", str(fancy / "conf"), "init=fancy", "debug=fast", "logger=none", f"hydra.run.dir={run_dir}"],
        cwd=fancy, env=_env(fancy),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "done"
    first = json.loads((run_dir / "init.json").read_text())["layers"][0]
    assert first["weight_std"] == pytest.approx(0.5 / math.sqrt(first["fan_in"]), rel=0.05)


@pytest.mark.slow
def test_registry_tests_pick_up_the_new_init(fancy: Path) -> None:
    """The parameterized registry tests gain ``fancy`` cases and pass; those needing a formula ask for its expectation."""
    shutil.copytree(CONFIG_DIR, fancy / "conf", dirs_exist_ok=True)  # the working directory's conf/ (initlab.locations)
    tests = [str(PROJECT_ROOT / "tests" / "init" / name) for name in ("test_config.py", "test_device.py", "test_weights.py")]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "fancy_inits", "-rA", "-q", "-p", "no:cacheprovider", *tests,
         "-k", "fancy or every_scheme_has or expected_formula"],
        cwd=fancy, env=os.environ | _env(fancy), capture_output=True, text=True, timeout=600,
    )
    passed = {line.split("::", 1)[1] for line in result.stdout.splitlines() if line.startswith("PASSED")}
    failed = {line.split("::", 1)[1].split(" ")[0] for line in result.stdout.splitlines() if line.startswith("FAILED")}
    assert {
        "test_every_scheme_has_a_yaml_and_every_yaml_a_scheme",
        "test_yaml_lists_every_key_with_the_library_default[fancy]",
        "test_yaml_instantiates_and_initializes_an_mlp_and_a_cnn[fancy]",
        "test_every_scheme_creates_its_tensors_on_the_model_device[fancy]",
    } <= passed, result.stdout[-3000:]
    assert "test_every_weight_scheme_has_an_expected_formula" in failed, result.stdout[-3000:]
    assert all("expected_formula" in test or "[fancy-" in test for test in failed), failed
