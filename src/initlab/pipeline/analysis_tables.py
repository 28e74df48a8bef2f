"""Tidy rows from the ``analysis.json`` / ``esd.json`` that ``python -m initlab.analyze`` writes.

The stages ``init_analysis`` (``results/init_analysis/<init>-<seed>/``) and ``trained_analysis``
(``results/trained_analysis/<init>-<optim>-<seed>/``) each hold one record of
``initlab.analysis.analyze_model``: per-layer rows (``layers``) and global numbers (``global``).
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from initlab.pipeline.common import read_json
from initlab.pipeline.tables import Row, run_key

# The fields of an analyze_model layer row that the figures and claims use.
LAYER_FIELDS = (
    "name", "fan_in", "fan_out", "weight_std", "weight_spectral_norm", "jacobian_norm", "jacobian_norm_max",
    "lambda_max", "gauss_newton_lambda_max", "bound_as_written", "bound_corrected", "ratio_as_written",
    "ratio_corrected", "activation_derivative_norm", "input_norm", "output_hessian_norm_sum",
    "preactivation_variance", "activation_variance", "gradient_variance", "dead_relu_fraction",
)
GLOBAL_FIELDS = ("loss", "lambda_max", "lambda_min", "trace", "trace_se", "negative_share", "lr_gamma_star", "lr_edge")


def analysis_record(run_dir: str | Path) -> dict[str, Any]:
    """The analyze_model record of a run dir (``layers``, ``global``, ``settings``), unwrapped."""
    data = read_json(Path(run_dir) / "analysis.json")
    return data.get("analysis", data)


def layer_rows(record: dict[str, Any], **labels: Any) -> list[Row]:
    """One row per weight layer k with ``labels`` (init, seed, ...) and the fields in LAYER_FIELDS."""
    return [labels | {"layer": k} | {field: layer.get(field) for field in LAYER_FIELDS}
            for k, layer in enumerate(record["layers"])]


def load_layer_rows(root: str | Path, inits: Sequence[str], seeds: Sequence[int]) -> list[Row]:
    """Per-layer rows of every init_analysis run ``<root>/<init>-<seed>``."""
    return [row for init in inits for seed in seeds
            for row in layer_rows(analysis_record(Path(root) / run_key(init, seed)), init=init, seed=seed)]


def load_trained_layer_rows(root: str | Path, inits: Sequence[str], optimizers: Sequence[str], seed: int) -> list[Row]:
    """Per-layer rows of every trained_analysis run ``<root>/<init>-<optim>-<seed>``."""
    return [row for init in inits for optim in optimizers
            for row in layer_rows(analysis_record(Path(root) / run_key(init, optim, seed)), init=init, optim=optim, seed=seed)]


def global_row(record: dict[str, Any], **labels: Any) -> Row:
    return labels | {field: record["global"].get(field) for field in GLOBAL_FIELDS}


def load_global_rows(results: str | Path, inits: Sequence[str], optimizers: Sequence[str], seeds: Sequence[int]) -> list[Row]:
    """Global numbers at init (state ``init``, every seed) and after training (state ``trained``, first seed)."""
    results = Path(results)
    rows = [global_row(analysis_record(results / "init_analysis" / run_key(init, seed)), state="init", init=init, optim=None, seed=seed)
            for init in inits for seed in seeds]
    rows += [global_row(analysis_record(results / "trained_analysis" / run_key(init, optim, seeds[0])),
                        state="trained", init=init, optim=optim, seed=seeds[0])
             for init in inits for optim in optimizers]
    return rows


def density_rows(run_dir: str | Path, floor: float = 1e-8, **labels: Any) -> list[Row]:
    """The SLQ density of ``esd.json`` as (eigenvalue, density) rows, densities floored for log axes."""
    esd = read_json(Path(run_dir) / "esd.json")
    return [labels | {"eigenvalue": x, "density": max(float(d), floor)} for x, d in zip(esd["grid"], esd["density"], strict=True)]


def load_density_rows(results: str | Path, inits: Sequence[str], optimizers: Sequence[str], seeds: Sequence[int]) -> list[Row]:
    """Densities of the first seed: at init per init, after training per init x optimizer."""
    results, seed = Path(results), seeds[0]
    rows = [row for init in inits for row in density_rows(results / "init_analysis" / run_key(init, seed), state="at init", series=init)]
    rows += [row for init in inits for optim in optimizers
             for row in density_rows(results / "trained_analysis" / run_key(init, optim, seed), state="after training",
                                     series=f"{init}/{optim}")]
    return rows
