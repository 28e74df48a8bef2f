"""One call that produces the curvature record of a model on a batch (``analysis.json``, ``esd.json``)."""

import math

import torch
from torch import Tensor, nn

from initlab.analysis._modes import Mode
from initlab.analysis.bounds import theorem2_bounds
from initlab.analysis.eigen import lanczos_eigenvalues
from initlab.analysis.operators import HessianOperator, LossFn
from initlab.analysis.segments import layer_segments
from initlab.analysis.spectrum import hutchinson_trace, spectral_density
from initlab.analysis.variance import dead_relu_fraction, variance_flow


def _finite(x: object) -> object:
    """JSON has no inf/nan: a non-finite float (e.g. a ratio over a zero bound) becomes None."""
    return None if isinstance(x, float) and not math.isfinite(x) else x


def _relu_after(segment_modules: nn.Sequential, names: dict[int, str], fractions: dict[str, float]) -> float | None:
    for module in segment_modules:
        if id(module) in names and names[id(module)] in fractions:
            return fractions[names[id(module)]]
    return None


def analyze_model(
    model: nn.Module,
    loss_fn: LossFn,
    inputs: Tensor,
    targets: Tensor,
    k_top: int = 3,
    tol: float = 1e-4,
    trace_probes: int = 50,
    slq_probes: int = 4,
    slq_steps: int = 64,
    grid: int = 500,
    include_bias: bool = True,
    mode: Mode = "eval",
    dtype: torch.dtype | None = None,
    seed: int = 0,
) -> dict[str, dict[str, object]]:
    """The full curvature record of ``model`` on one batch, as JSON-ready plain types.

    Returns ``{"analysis": {"layers": [...], "global": {...}, "settings": {...}}, "esd": {...}}``.
    Per layer (forward order): name, type, fan_in, fan_out, weight std and spectral norm,
    per-sample Jacobian norm ||J^(k)|| (mean, max), block lambda_max (+ bias flag, residual) and
    Gauss-Newton block lambda_max, Theorem 2 bounds as written / corrected with ratios
    lambda_max / bound, forward and backward variances, dead-ReLU fraction (None without ReLU).
    Global: top-k eigenvalues with residuals, bottom eigenvalue, SLQ negative-eigenvalue share,
    Hutchinson trace +- SE, lr_gamma_star = 1/lambda_max (paper: largest step that guarantees
    decrease on the quadratic model) and lr_edge = 2/lambda_max (gradient descent stability
    edge), loss, gradient norm, Hessian-vector products used. ``esd``: SLQ grid, density and
    Ritz nodes/weights. The full Hessian's graph is built once and shared by the eigenvalue,
    trace and density estimates.
    """
    operator = HessianOperator(model, loss_fn, inputs, targets, dtype=dtype, mode=mode)
    eigen = lanczos_eigenvalues(operator, k=k_top, which="both", tol=tol, seed=seed)
    trace = hutchinson_trace(operator, trace_probes, seed)
    esd = spectral_density(operator, slq_probes, slq_steps, grid, seed=seed)
    lambda_max = eigen.lambda_max

    bounds = theorem2_bounds(model, loss_fn, inputs, targets, include_bias, tol, mode=mode, dtype=dtype, seed=seed)
    flow = variance_flow(model, loss_fn, inputs, targets, mode=mode)
    dead = dead_relu_fraction(model, inputs, mode=mode)
    names = {id(m): n for n, m in model.named_modules()}
    layers = []
    for segment, bound, variances in zip(layer_segments(model), bounds, flow, strict=True):
        weight = segment.layer.weight.detach().double()
        layers.append(
            {
                "name": segment.name,
                "type": type(segment.layer).__name__,
                "fan_in": segment.fan_in,
                "fan_out": segment.fan_out,
                "weight_std": weight.std().item(),
                "weight_spectral_norm": torch.linalg.matrix_norm(weight.reshape(weight.shape[0], -1), ord=2).item(),
                **{key: _finite(value) for key, value in bound.items() if key != "layer"},
                **{key: value for key, value in variances.items() if key != "layer"},
                "dead_relu_fraction": _relu_after(segment.after_layer, names, dead),
            }
        )
    analysis = {
        "layers": layers,
        "global": {
            "loss": operator.loss,
            "gradient_norm": torch.linalg.vector_norm(operator.gradient).item(),
            "dim": operator.dim,
            "lambda_max": lambda_max,
            "top_eigenvalues": eigen.top,
            "top_residuals": eigen.top_residuals,
            "lambda_min": eigen.lambda_min,
            "bottom_residual": eigen.bottom_residuals[0],
            "eigen_converged": eigen.converged,
            "negative_share": esd["negative_share"],
            "negative_share_any": esd["negative_share_any"],
            "trace": trace.estimate,
            "trace_se": trace.standard_error,
            "lr_gamma_star": _finite(1.0 / lambda_max) if lambda_max > 0 else None,
            "lr_edge": _finite(2.0 / lambda_max) if lambda_max > 0 else None,
            "n_products_full_hessian": operator.n_products,
            "trace_estimate_slq": esd["trace_estimate"],
            "n_products_layer_blocks": sum(int(b["n_products"]) for b in bounds),
        },
        "settings": {
            **operator.settings,
            "k_top": k_top,
            "tol": tol,
            "trace_probes": trace_probes,
            "slq_probes": slq_probes,
            "slq_steps": esd["settings"]["lanczos_steps"],
            "include_bias_in_blocks": include_bias,
            "seed": seed,
        },
    }
    esd["settings"] = analysis["settings"]
    return {"analysis": analysis, "esd": esd}
