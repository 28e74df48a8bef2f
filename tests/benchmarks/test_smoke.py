"""The benchmark scripts run end to end and print their RATIO line (tiny settings, marked slow)."""

import subprocess
import sys

import pytest

from initlab.config import PROJECT_ROOT
from tests.conftest import SHARED_MNIST

needs_mnist = pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason=f"the shared MNIST t10k folder {SHARED_MNIST} is absent")


def run_benchmark(*args: str) -> str:
    proc = subprocess.run([sys.executable, *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow
def test_train_throughput_prints_its_ratio():
    out = run_benchmark("benchmarks/train_throughput.py", "--data", "digits", "--rounds", "1", "--epochs", "1")
    assert "RATIO train_throughput = " in out.splitlines()[-1]


@pytest.mark.slow
@needs_mnist
def test_data_path_prints_its_ratio():
    out = run_benchmark("benchmarks/data_path.py", "--rounds", "1", "--workers", "0")
    assert "RATIO data_path = " in out.splitlines()[-1]


@pytest.mark.slow
def test_startup_prints_its_ratio_and_help_imports_nothing_heavy():
    out = run_benchmark("benchmarks/startup.py", "--repeats", "1")
    assert "heavy packages imported by --help: none" in out
    assert "RATIO startup = " in out.splitlines()[-1]
