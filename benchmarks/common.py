"""Helpers shared by the benchmark scripts: data, quiet Lightning, interleaved timing, the RATIO line.

The machine these run on is shared, so every script times its arms round-robin in one process
(``interleaved``) and reports medians; a ratio of two arms timed side by side is much steadier
than either absolute number.
"""

import logging
import os
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
MNIST_T10K_CANDIDATES = (Path("/work/shared/data/mnist-t10k"), REPO_ROOT.parent / "shared" / "data" / "mnist-t10k")

# (input shape, MLP widths) of the benchmarked datasets: 64-256-256-10 and 784-256-256-10.
DATASETS = {"digits": (1, 8, 8), "mnist_t10k": (1, 28, 28)}


def mnist_t10k_path() -> Path:
    """The shared MNIST test split; fails with the folders tried when it is absent."""
    for path in MNIST_T10K_CANDIDATES:
        if (path / "t10k-images-idx3-ubyte.gz").is_file():
            return path
    raise SystemExit(f"mnist_t10k not found in {[str(p) for p in MNIST_T10K_CANDIDATES]}")


def datamodule(name: str, root: str | Path, batch_size: int = 128, seed: int = 0):
    """An initlab datamodule (digits or mnist_t10k) loaded into memory, cache under ``root``."""
    from initlab.data import DigitsDataModule, MNISTT10kDataModule

    common = {"root": str(root), "input_shape": DATASETS[name], "num_classes": 10, "batch_size": batch_size, "seed": seed}
    dm = MNISTT10kDataModule(path=str(mnist_t10k_path()), **common) if name == "mnist_t10k" else DigitsDataModule(**common)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def quiet_lightning() -> None:
    """Silence Lightning's banner lines and warnings so the benchmark output stays readable."""
    warnings.filterwarnings("ignore")
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)


def interleaved(arms: dict[str, Callable[[], float]], rounds: int, warmup: bool = True) -> dict[str, list[float]]:
    """Run every arm once per round, in turn (one untimed warm-up round first); each arm returns a value."""
    if warmup:
        for arm in arms.values():
            arm()
    results: dict[str, list[float]] = {name: [] for name in arms}
    for _ in range(rounds):
        for name, arm in arms.items():
            results[name].append(arm())
    return results


def paired_ratio(numerators: list[float], denominators: list[float]) -> float:
    """Median over rounds of numerator/denominator taken within the same round (drift cancels)."""
    return statistics.median(n / d for n, d in zip(numerators, denominators, strict=True))


def timed(fn: Callable[[], object]) -> float:
    """Seconds ``fn()`` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def machine_line() -> str:
    """CPU count, torch threads and load average: the context a reader needs to judge a number."""
    import torch

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return f"machine: {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"


def ratio_line(name: str, value: float, goal: float, higher_is_better: bool = True) -> str:
    """The final ``RATIO <name> = <x> (goal <g>)`` line every script prints."""
    met = value >= goal if higher_is_better else value <= goal
    sign = ">=" if higher_is_better else "<="
    return f"RATIO {name} = {value:.3f} (goal {sign} {goal:g}: {'met' if met else 'NOT met'})"
