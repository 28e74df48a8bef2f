"""An Optuna sweep's output: no Alembic plugin lines, no colour codes when it is not printed to a terminal."""

import subprocess
import sys

import pytest

# Hydra's launcher logging (hydra_logging: INFO to stdout), then what a sweep does: import the Optuna sweeper, make a study.
SWEEP_START = """
import logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="[HYDRA] %(message)s")
{quiet}
import hydra_plugins.hydra_optuna_sweeper.optuna_sweeper, optuna
optuna.create_study(study_name="initlab")
"""


def sweep_start_output(quiet: bool) -> str:
    code = SWEEP_START.format(quiet="from initlab.cli.sweep import quiet_sweeper_logging; quiet_sweeper_logging()" if quiet else "")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    return result.stdout + result.stderr


@pytest.mark.parametrize("quiet", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_sweep_start_has_no_alembic_lines_and_no_ansi_codes(quiet):
    output = sweep_start_output(quiet)
    assert "A new study created" in output  # Optuna's own lines stay
    found = ["setup plugin alembic" in output, "\x1b[" in output]
    assert found == [not quiet, not quiet], output  # quiet: neither; without it (the control): both, as the issue saw
