"""Issue 27: what Hydra composes is checked before anything of it is used (tests/cli/attacks.py holds the attacks).

In process (default suite): every attack is refused with one ConfigError line by the checks the apps run
(command line, then the composed config), every valid input passes them. As subprocesses (``-m slow``):
every attack exits 2 with one line, no traceback and no marker file; every valid input runs.
"""

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hydra._internal.hydra import Hydra
from hydra.core.global_hydra import GlobalHydra
from hydra._internal.utils import create_automatic_config_search_path, get_args_parser
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from initlab import schema
from initlab.config import CONFIG_DIR, ConfigError, check_composed, check_overrides, hydra_error
from tests.cli.attacks import ATTACKS, MARKER, VALID
from tests.cli.test_fuzz import GOOD
from tests.conftest import run_cli


def refusal(args: list[str]) -> str | None:
    """The one line the app's checks give ``args`` (command line, then the composed config), None when they pass."""
    GlobalHydra.instance().clear()
    try:
        check_overrides(args)
        known, _ = get_args_parser().parse_known_args(args)
        dirs = [CONFIG_DIR, *([Path(known.config_dir)] if known.config_dir else [])]
        search = create_automatic_config_search_path(None, None, str(CONFIG_DIR))
        if known.config_dir:
            search.prepend("command-line", f"file://{Path(known.config_dir).resolve()}")
        mode = RunMode.MULTIRUN if known.multirun else RunMode.RUN
        cfg = Hydra.create_main_hydra2("train", search).compose_config("train", known.overrides, run_mode=mode)
        check_composed(cfg, dirs)
    except ConfigError as err:
        return str(err)
    except (HydraException, OmegaConfBaseException) as err:
        return str(hydra_error(err))
    except yaml.YAMLError as err:
        return f"config file: {' '.join(str(err).split())}"
    finally:
        GlobalHydra.instance().clear()
    return None


# One attack per class in the default suite (composing costs ~0.4 s); all of them with -m slow.
ONE_PER_CLASS = ("override_target", "oc_decode", "module_walk", "hydra_callbacks_walk", "experiment_dotdot",
                 "searchpath_override", "experimental_rerun", "log_file_yaml", "log_factory", "output_subdir_dotdot",
                 "env_pythonpath_yaml", "logger_twice", "colleague_plain", "log_file_inside")


def _cases(cases):
    return [pytest.param(c, id=c.name, marks=() if c.name in ONE_PER_CLASS else pytest.mark.slow) for c in cases]


@pytest.mark.parametrize("attack", _cases(ATTACKS))
def test_every_attack_is_refused_in_one_line(attack, tmp_path):
    line = refusal(attack.prepare(tmp_path) + [f"paths.log_dir={tmp_path}/logs"])
    if attack.name in ("lr_auto_scale_tiny", "gradient_clip_tiny"):  # values: the schema's rules (validate_config)
        line = line or "; ".join(schema.value_problems({"lr_auto_scale": 1e-300, "trainer": {"gradient_clip_val": 1e-300}}))
    assert line and "\n" not in line, attack.name
    assert not (tmp_path / MARKER).exists()


@pytest.mark.parametrize("valid", _cases(VALID))
def test_valid_inputs_pass_the_composed_check(valid, tmp_path):
    assert refusal(valid.prepare(tmp_path) + [f"paths.log_dir={tmp_path}/logs"]) is None


def test_a_checkpoint_runs_config_goes_through_the_same_check(tmp_path):
    """A run folder is data: its resolved config.yaml with a hostile node is refused before anything is built."""
    run = OmegaConf.create({"model": {"_target_": "initlab.models.mlp", "extra": {
        "_target_": "torch.nn.modules.module.torch.serialization.os.system", "_args_": [f"touch {tmp_path / MARKER}"]}}})
    with pytest.raises(ConfigError, match="model.extra._target_"):
        check_composed(run)


@pytest.mark.parametrize(("target", "walks"), [
    ("torch.nn.modules.module.torch.cuda.set_device", True), ("torch.nn.functional.torch", True),
    ("initlab.data.digits.torch", True), ("torch.nn.Linear", False), ("torch.optim.SGD", False),
    ("pytorch_lightning.Trainer", False), ("initlab.models.mlp", False),
    ("hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper", False),
])
def test_exact_module_path_without_import(target, walks):
    assert schema.target_allowed(target)
    assert (schema.exact_path_problem(target) is not None) == walks


def test_imported_object_must_be_defined_in_an_allowlisted_module():
    assert schema.defined_where_named("torch.nn.modules.module.torch") is not None  # a module
    assert schema.defined_where_named("torch.optim.SGD") is None  # re-exported from torch.optim.sgd: allowlisted
    assert schema.defined_where_named("initlab.cli.sweep.SweepSummary") is None


@pytest.mark.parametrize(("key", "value"), [
    ("lr_auto_scale", 1e-7), ("trainer.gradient_clip_val", 1e-300), ("analysis.grid", 10**6), ("analysis.slq_steps", 10**5),
    ("analysis.slq_probes", 10**4), ("analysis.k_top", 10**4), ("analysis.trace_probes", 10**6), ("analysis.tol", 2.0),
])
def test_scale_floors_and_analysis_bounds(key, value):
    assert not all(check(value) for check, _ in schema.rules_for(key))


def test_validation_imports_training_not_the_reverse():
    """initlab.training raises ConfigError from the bottom module initlab.errors: importing it loads no validation."""
    code = "import sys, initlab.training.checkpoints; print('initlab.config' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_a_mistyped_key_names_the_closest_key_of_the_chosen_option():
    error = OmegaConfBaseException("Could not override 'model.widht'.\nTo append to your config use +model.widht=3")
    assert "did you mean 'model.widths'?" in str(hydra_error(error))


@pytest.mark.slow
def test_attacks_as_subprocesses_run_nothing(tmp_path):
    """0 payloads run, 0 tracebacks, 0 silent acceptances (exit 0 on an attack), 0 valid inputs refused."""
    counts = {"payloads_run": [], "tracebacks": [], "silent_acceptances": [], "valid_refused": []}
    for case, bad in [*((a, True) for a in ATTACKS), *((v, False) for v in VALID)]:
        folder = tmp_path / case.name
        folder.mkdir()
        fast = [] if bad else ["debug=fast", "logger=none", "data.limit_train=64"]
        result = run_cli(["-m", "initlab.cli.train", *case.prepare(folder), *fast, f"paths.log_dir={folder}/logs"], cwd=folder)
        lines = result.stderr.strip().splitlines()
        if (folder / MARKER).exists() or any(folder.glob(f"{MARKER}*")):
            counts["payloads_run"].append(case.name)
        if "Traceback" in result.stderr:
            counts["tracebacks"].append(case.name)
        if bad and (result.returncode != 2 or len(lines) != 1):
            counts["silent_acceptances"].append(case.name)
        if not bad and result.returncode != 0:
            counts["valid_refused"].append(case.name)
    print({key: len(names) for key, names in counts.items()}, f"over {len(ATTACKS)} attacks and {len(VALID)} valid inputs")
    assert counts == {key: [] for key in counts}


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), phases=[Phase.generate])
@given(attack=st.sampled_from(ATTACKS), good=st.lists(st.sampled_from(GOOD), max_size=3, unique=True))
def test_fuzz_an_attack_among_valid_overrides_is_still_refused(attack, good):
    """An attack hidden among valid overrides (in either order) is refused in one line and runs nothing."""
    with tempfile.TemporaryDirectory() as folder:
        args = attack.prepare(Path(folder))
        flags = [a for a in args if a.startswith("-")]
        line = refusal([*good, *args] if not flags else [*args, *good])
        if attack.name in ("lr_auto_scale_tiny", "gradient_clip_tiny") and line is None:  # decided by validate_config
            return
        assert line and "\n" not in line
        assert not (Path(folder) / MARKER).exists()
