"""Helpers shared by the benchmark scripts: data, quiet Lightning, interleaved timing, the RATIO line.

The machine these run on is shared, so every script times its arms round-robin in one process
(``interleaved``), keeps wall and CPU time (``timed``) and reports medians of per-round ratios
(``paired_ratio``): a ratio of two arms timed side by side is much steadier than either number.
"""

import logging
import os
import resource
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple, TypeVar

REPO_ROOT = Path(__file__).resolve().parents[1]
# Inside the repository only: the files shipped with the package, or a copy under data/
MNIST_T10K_CANDIDATES = (REPO_ROOT / "src" / "initlab" / "data" / "assets" / "mnist_t10k",
                         REPO_ROOT / "data" / "mnist-t10k")
MNIST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")

T = TypeVar("T")

# Input shape of each benchmarked dataset (flattened: the MLPs' 64 and 784 inputs).
DATASETS = {"digits": (1, 8, 8), "mnist_t10k": (1, 28, 28)}


def mnist_t10k_path(required: bool = True) -> Path | None:
    """The repository's MNIST test split (both IDX files); without it: exit naming the folders tried,
    or None when not ``required``."""
    for path in MNIST_T10K_CANDIDATES:
        if all((path / name).is_file() for name in MNIST_FILES):
            return path
    if not required:
        return None
    raise SystemExit(f"mnist_t10k not found in {[str(p.relative_to(REPO_ROOT)) for p in MNIST_T10K_CANDIDATES]}")


def read_idx_images(path: Path):
    """All images of an MNIST IDX pair as standardized float32 [n, 1, 28, 28] and int64 labels."""
    import gzip

    import numpy as np
    import torch

    with gzip.open(path / MNIST_FILES[0]) as f:
        pixels = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(path / MNIST_FILES[1]) as f:
        labels = np.frombuffer(f.read(), dtype=np.uint8, offset=8)
    x = (torch.from_numpy(pixels.astype(np.float32)) / 255 - 0.1307) / 0.3081
    return x, torch.from_numpy(labels.astype(np.int64))


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


def interleaved(arms: dict[str, Callable[[], T]], rounds: int, warmup: bool = True) -> dict[str, list[T]]:
    """Run every arm once per round, in turn (one untimed warm-up round first); each arm returns a value."""
    if warmup:
        for arm in arms.values():
            arm()
    results: dict[str, list[T]] = {name: [] for name in arms}
    for _ in range(rounds):
        for name, arm in arms.items():
            results[name].append(arm())
    return results


def paired_ratio(numerators: list[float], denominators: list[float]) -> float:
    """Median over rounds of numerator/denominator taken within the same round (drift cancels)."""
    return statistics.median(n / d for n, d in zip(numerators, denominators, strict=True))


class Timing(NamedTuple):
    """Wall seconds and this process's CPU seconds (all its threads) of one timed call."""

    wall: float
    cpu: float


def timed(fn: Callable[[], object]) -> Timing:
    """Wall and CPU seconds ``fn()`` takes.

    On a shared machine the wall time also counts the time other jobs held the cores; the CPU
    time counts only our own work, so with one torch thread it is the steadier measure.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return Timing(time.perf_counter() - wall, time.process_time() - cpu)


def run_timed(cmd: list[str], env: dict[str, str] | None = None, check: bool = True) -> tuple[Timing, str]:
    """Run ``cmd`` from the repository root; its wall and CPU seconds (user + system) and its output.

    The CPU time comes from the rusage of waited-for children, so the command runs alone.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timing(wall, cpu), proc.stdout + proc.stderr


def machine_line() -> str:
    """CPU count, torch threads (when torch is loaded here) and load average: a number's context."""
    torch = sys.modules.get("torch")
    threads = f", torch threads {torch.get_num_threads()}" if torch is not None else ""
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"machine: {os.cpu_count()} CPUs{threads}, load average {load}"


def ratio_line(name: str, value: float, goal: float | None, higher_is_better: bool = True) -> str:
    """The final ``RATIO <name> = <x> (goal <g>)`` line every script prints (``goal=None``: none set)."""
    if goal is None:
        return f"RATIO {name} = {value:.3f} (no goal set; {'higher' if higher_is_better else 'lower'} is better)"
    met = value >= goal if higher_is_better else value <= goal
    sign = ">=" if higher_is_better else "<="
    return f"RATIO {name} = {value:.3f} (goal {sign} {goal:g}: {'met' if met else 'NOT met'})"
