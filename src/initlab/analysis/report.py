"""The curvature record of a model over a data set (``analysis.json``, ``esd.json``): one call.

One Lanczos run on the full Hessian serves the top-k and bottom eigenvalues with certificates,
the first SLQ probe and the first Hutchinson sample; its top eigenvector gives the per-layer
share and warm-starts the layer-block solves; per-sample Jacobian norms use closed-form
activation derivatives (``initlab.analysis.jacobian``).
"""

from dataclasses import asdict, dataclass

import torch
from torch import nn

from initlab.analysis.bounds import theorem2_bounds
from initlab.analysis.operators import DatasetOperator
from initlab.analysis.problem import CurvatureProblem, DataSource, LossFn, eager_view
from initlab.analysis.gauss_newton import piecewise_linear_after
from initlab.analysis.progress import stage
from initlab.analysis.record import EIGEN_STEPS, curvature_record, finite
from initlab.analysis.segments import layer_segments
from initlab.analysis.variance import problem_variances


@dataclass(frozen=True)
class AnalysisSettings:
    """What ``analyze_model`` measures and how precisely (``conf/analyze.yaml`` ``analysis``).

    ``k_top`` top eigenvalues (the bottom one is always reported); ``tol`` Lanczos relative
    residual; ``trace_probes`` Hutchinson probes where the trace is not exact (0: no trace);
    ``slq_probes`` x ``slq_steps`` the spectral density; ``jacobian_tol`` relative accuracy of the
    per-sample ||J^(k)||^2; ``batch_size`` samples per chunk (bounds memory); ``include_bias`` in the
    layer blocks H_w(k);
    ``max_device_bytes`` what an operator keeps on the device between products (chunks, graphs)."""

    k_top: int = 3
    tol: float = 1e-4
    trace_probes: int = 50
    slq_probes: int = 4
    slq_steps: int = 64
    grid: int = 500
    jacobian_tol: float = 1e-3
    batch_size: int | None = 1024
    include_bias: bool = True
    max_device_bytes: int | None = 2**30
    seed: int = 0

    def problem(self, model: nn.Module, loss_fn: LossFn, data: DataSource, dtype: torch.dtype | None = None
                ) -> CurvatureProblem:
        """The full-Hessian problem these settings analyse."""
        return CurvatureProblem(model, loss_fn, data, batch_size=self.batch_size, include_bias=self.include_bias,
                                dtype=dtype, max_device_bytes=self.max_device_bytes)


def _relu_after(segment_modules: nn.Sequential, names: dict[int, str], fractions: dict[str, float]) -> float | None:
    for module in segment_modules:
        if id(module) in names and names[id(module)] in fractions:
            return fractions[names[id(module)]]
    return None


def _layer_rows(problem: CurvatureProblem, bounds: list[dict[str, object]]) -> list[dict[str, object]]:
    """Per weight layer: shapes and weight statistics, the bounds, variances and dead ReLUs."""
    flow, dead = problem_variances(problem)
    model = eager_view(problem.model)
    names = {id(m): n for n, m in model.named_modules()}
    rows = []
    for segment, bound, variances in zip(layer_segments(model), bounds, flow, strict=True):
        weight = segment.layer.weight.detach().double()
        rows.append({
            "name": segment.name,
            "type": type(segment.layer).__name__,
            "fan_in": segment.fan_in,
            "fan_out": segment.fan_out,
            "weight_std": weight.std().item(),
            "weight_spectral_norm": torch.linalg.matrix_norm(weight.reshape(weight.shape[0], -1), ord=2).item(),
            **{key: finite(value) for key, value in bound.items() if key != "layer"},
            **{key: value for key, value in variances.items() if key != "layer"},
            "dead_relu_fraction": _relu_after(segment.after_layer, names, dead),
        })
    return rows


def planned_products(problem: CurvatureProblem, settings: AnalysisSettings) -> tuple[int, int]:
    """Upper bounds on the products of the full-Hessian solve and of the layer-block solves (for the progress
    display): each eigen run stops by ``EIGEN_STEPS``; the trace probes are spent only where no exact trace applies."""
    check = 3 if problem.check else 0
    full = check + EIGEN_STEPS + max(0, settings.slq_probes - 2) * settings.slq_steps + settings.trace_probes
    model = eager_view(problem.model)
    blocks = check + sum(EIGEN_STEPS * (1 if piecewise_linear_after(model, s.name) else 2) for s in layer_segments(model))
    return full, blocks


def analyze_model(problem: CurvatureProblem, settings: AnalysisSettings | None = None) -> dict[str, dict[str, object]]:
    """The full curvature record of ``problem`` (its Hessian over all its samples), JSON-ready.

    Returns ``{"analysis": {"layers": [...], "global": {...}, "settings": {...}}, "esd": {...}}``.
    Per layer (forward order): name, type, fan_in, fan_out, weight std and spectral norm,
    per-sample Jacobian norm ||J^(k)|| (mean, max), block lambda_max (+ bias flag, residual) and
    Gauss-Newton block lambda_max, Theorem 2 bounds as written / corrected with ratios
    lambda_max / bound, forward and backward variances, dead-ReLU fraction (None without ReLU).
    Global: top-k eigenvalues with residuals, bottom eigenvalue, lambda_min / lambda_max, SLQ
    negative-eigenvalue share, trace +- SE and ``trace_method`` (exact, SE 0, for MLPs and ReLU conv nets),
    the top eigenvector's share per layer,
    lr_gamma_star = 1/lambda_max (paper: largest step that guarantees decrease on the quadratic
    model) and lr_edge = 2/lambda_max (gradient descent stability edge), loss, gradient norm,
    products used. ``esd``: SLQ grid, density and Ritz nodes/weights.
    """
    settings = settings or AnalysisSettings()
    full, blocks = planned_products(problem, settings)
    with stage("full Hessian: eigenvalues, density, trace", full):
        operator = DatasetOperator(problem)
        record = curvature_record(operator, k=settings.k_top, which="both", tol=settings.tol,
                                  trace_probes=settings.trace_probes, density_probes=settings.slq_probes,
                                  density_steps=settings.slq_steps, grid=settings.grid, seed=settings.seed)
    start = operator.split(record.top_vectors[:, 0]) if record.top_vectors is not None else None
    with stage("layer blocks: lambda_max, Jacobian norms, Theorem 2 bounds", blocks):
        bounds = theorem2_bounds(problem, settings.tol, jacobian_tol=settings.jacobian_tol, seed=settings.seed,
                                 start=start)
    lambda_max = record.lambda_max
    esd = record.density
    with stage("per layer: weight statistics, variances, dead ReLUs"):
        layers = _layer_rows(problem, bounds)
    analysis = {
        "layers": layers,
        "global": {
            "loss": operator.loss,
            "gradient_norm": torch.linalg.vector_norm(operator.gradient).item(),
            "dim": operator.dim,
            "lambda_max": lambda_max,
            "top_eigenvalues": record.top,
            "top_residuals": record.residuals["top"],
            "lambda_min": record.lambda_min,
            "bottom_residual": record.residuals["bottom"][0],
            "ratio_min_max": finite(record.ratio),
            "eigen_converged": record.converged,
            "negative_share": esd["negative_share"],
            "negative_share_any": esd["negative_share_any"],
            "trace": record.trace,
            "trace_se": record.trace_se,
            "trace_method": record.trace_method,
            "top_eigenvector_layer_share": record.layer_share,
            "lr_gamma_star": finite(1.0 / lambda_max) if lambda_max > 0 else None,
            "lr_edge": finite(2.0 / lambda_max) if lambda_max > 0 else None,
            "n_products_full_hessian": record.n_products,
            "n_products_layer_blocks": sum(int(b["n_products"]) for b in bounds),
        },
        "settings": {**operator.settings, **asdict(settings), "slq_steps": max(esd["steps"])},
    }
    esd["settings"] = analysis["settings"]
    return {"analysis": analysis, "esd": esd}
