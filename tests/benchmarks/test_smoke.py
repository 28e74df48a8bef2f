"""The benchmark scripts run end to end and print their RATIO line (tiny settings, marked slow)."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED_MNIST = REPO_ROOT / "src" / "initlab" / "data" / "assets" / "mnist_t10k"

needs_mnist = pytest.mark.skipif(not (SHIPPED_MNIST / "t10k-labels-idx1-ubyte.gz").is_file(),
                                 reason=f"the repository's mnist_t10k copy {SHIPPED_MNIST} is absent")


def run_benchmark(*args: str) -> str:
    proc = subprocess.run([sys.executable, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_gpu_smoke_skips_cleanly_without_cuda():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: run benchmarks/gpu_smoke.py itself")
    assert run_benchmark("benchmarks/gpu_smoke.py").strip() == "SKIP gpu_smoke: no CUDA device"


@pytest.mark.slow
def test_analyze_speed_prints_its_ratio_and_agreement():
    out = run_benchmark("benchmarks/analyze_speed.py", "--samples", "128", "--rounds", "1", "--pipeline")
    assert "all agree" in out
    assert "RATIO analyze_speed = " in out.splitlines()[-1]


@pytest.mark.slow
def test_curvature_prints_its_ratio():
    out = run_benchmark("benchmarks/curvature.py", "--batch", "64", "--repeats", "1", "--threads", "1")
    assert "RATIO curvature_hvps = " in out.splitlines()[-1]


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


@pytest.mark.slow
def test_study_loop_prints_its_ratio():
    out = run_benchmark("benchmarks/study_loop.py", "--steps", "3", "--rounds", "1")
    assert "RATIO study_loop_batched_speedup = " in out.splitlines()[-1]
