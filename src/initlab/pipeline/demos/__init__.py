"""DVC stage ``demos``: small in-process experiments, one module and one output folder per demo.

    python -m initlab.pipeline.demos rmt     # settings: params.yaml demos.rmt -> results/demos/rmt/

Each module has ``run(settings, context) -> None``; ``settings`` is its ``params.yaml`` section,
``context`` says where to write and which prepared data file to read (:class:`DemoContext`).
"""

from dataclasses import dataclass
from pathlib import Path

import torch

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


@dataclass(frozen=True)
class DemoContext:
    """Output folder of the demo, the dataset name, the prepared data file it may read and the device its models and
    tensors live on (``params.yaml`` ``device``; rmt, elbow and canyon are NumPy / 2-D computations kept on the CPU)."""

    out: Path
    data: str
    data_file: Path
    device: torch.device = torch.device("cpu")
