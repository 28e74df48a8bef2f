"""DVC stage ``demos``: small in-process experiments, one module and one output folder per demo.

    python -m initlab.pipeline.demos rmt     # settings: params.yaml demos.rmt -> results/demos/rmt/

Each module has ``run(settings, context) -> None``; ``settings`` is its ``params.yaml`` section,
``context`` says where to write and which prepared data file to read (:class:`DemoContext`).
"""

import dataclasses
import importlib
from dataclasses import dataclass
from pathlib import Path

import torch

from initlab.pipeline.common import data_path

DEMOS = (
    "rmt",
    "deep_linear",
    "symmetry",
    "elbow",
    "variance_flow",
    "curvature",
    "lr_stability",
    "edge_of_stability",
    "canyon",
)


# Seconds of one run (one seed of a per_seed demo), one thread, measured 2026-12-06 on the 2-core machine: the stage
# starts the longest runs first, so it does not end on a long one while the other worker idles. Order only, not output.
RUN_SECONDS = {"canyon": 45.0, "curvature": 21.0, "edge_of_stability": 19.0, "lr_stability": 13.0, "rmt": 12.0, "symmetry": 8.0,
               "variance_flow": 7.0, "deep_linear": 1.4, "elbow": 1.0}


@dataclass(frozen=True)
class DemoContext:
    """Output folder of the demo, the dataset name, the prepared data file it may read and the device its models and
    tensors live on (``params.yaml`` ``device``; rmt, elbow and canyon are NumPy / 2-D computations kept on the CPU)."""

    out: Path
    data: str
    data_file: Path
    device: torch.device = torch.device("cpu")


def demo_runs(name: str, params: dict, results: Path, device=None) -> list[tuple[str, dict, DemoContext]]:
    """One demo's runs: (name, settings, context) once, or once per pipeline seed when its settings say ``per_seed``."""
    context = DemoContext(out=results / "demos" / name, data=params["data"], data_file=data_path(results, params["data"]),
                          **({"device": device} if device is not None else {}))
    settings = (params.get("demos", {}) | params.get("data_demos", {}))[name]
    if not settings.get("per_seed"):
        return [(name, settings, context)]
    return [(name, settings | {"seed": seed}, dataclasses.replace(context, out=context.out / f"seed-{seed}"))
            for seed in params["seeds"]]


def run_one(run: tuple[str, dict, DemoContext]) -> None:
    """One run of a demo into its own folder (here, not in ``__main__``: a spawned worker imports it by name)."""
    name, settings, context = run
    context.out.mkdir(parents=True, exist_ok=True)
    importlib.import_module(f"initlab.pipeline.demos.{name}").run(settings, context)
    print(f"demo {name} (seed {settings['seed']}) -> {context.out}", flush=True)


def run_demo(name: str, params: dict, results: Path, device=None) -> None:
    """One demo in this process: once, or once per pipeline seed when its settings say ``per_seed``."""
    for run in demo_runs(name, params, results, device):
        run_one(run)
