"""One solve, one record: extreme eigenvalues, certificates, trace and density of a curvature problem.

The paper's step-size rule gamma* = 1/||H|| (and the edge of stability 2/lambda_max of gradient
descent on the quadratic model) needs lambda_max of the Hessian, and it must be the largest
eigenvalue, not merely one with a small residual. One block Lanczos run from two Rademacher
probes gives the top-k / bottom-k Ritz pairs with their residual certificates; the same run
(continued to ``density_steps`` block steps when a density is asked for) serves as the first two
SLQ probes; the other SLQ probes run batched. The trace is exact wherever the model allows it: by
Hessian backpropagation for MLPs with elementwise activations (:mod:`initlab.analysis.hessian_diagonal`),
as the Gauss-Newton trace where that is the Hessian's (ReLU conv nets: :mod:`initlab.analysis.gauss_newton`);
otherwise the eigen run's Krylov space is traced exactly and Hutchinson probes estimate the rest with
their standard error (a deflated trace).
``benchmarks/curvature.py`` compares it with PyHessian's power iteration.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from initlab.analysis._modes import evaluation_mode
from initlab.analysis.gauss_newton import gauss_newton_trace, residual_trace_vanishes, samples_independent
from initlab.analysis.hessian_diagonal import hessian_trace_exact
from initlab.analysis.lanczos import BlockLanczosRun, RitzPairs, block_lanczos, lanczos
from initlab.analysis.operators import CurvatureOperator, DatasetOperator
from initlab.analysis.problem import CurvatureProblem
from initlab.analysis.spectrum import TraceEstimate, rademacher_probes, spectral_density, trace_estimate

Which = Literal["top", "bottom", "both"]
EIGEN_STEPS = 300  # products an eigen run may spend by default (``max_steps``)
WANTED: dict[str, tuple[bool, bool]] = {"top": (True, False), "bottom": (False, True), "both": (True, True)}


def finite(x: object) -> object:
    """JSON has no inf/nan: a non-finite float becomes None."""
    return None if isinstance(x, float) and not math.isfinite(x) else x


@dataclass
class CurvatureRecord:
    """Everything one solve measured (init2winit style; ``as_dict()`` is JSON-ready).

    ``top`` descending, ``bottom`` ascending; ``residuals`` = {"top": [...], "bottom": [...]}:
    ||M y - theta y|| / max|theta| per Ritz pair (the spectral scale; for a dominant top
    eigenvalue = ||r|| / |lambda|), read off the tridiagonal and floored at the dtype's eps;
    ``ratio`` = lambda_min / lambda_max
    (negative: how indefinite the curvature is); ``trace`` +- ``trace_se`` (Hutchinson) and
    ``density`` (SLQ) when asked; ``layer_share``: per layer, the squared norm of the top
    eigenvector's entries (sums to 1); ``n_products``: curvature-vector products of this solve.
    ``top_vectors`` / ``bottom_vectors`` (columns, on the operator's device) warm-start later solves.
    """

    top: list[float]
    bottom: list[float]
    residuals: dict[str, list[float]]
    n_products: int
    converged: bool
    steps: int
    settings: dict[str, object]
    trace: float | None = None
    trace_se: float | None = None
    trace_method: str | None = None
    density: dict[str, object] | None = None
    layer_share: dict[str, float] = field(default_factory=dict)
    top_vectors: Tensor | None = field(default=None, repr=False)
    bottom_vectors: Tensor | None = field(default=None, repr=False)

    @property
    def lambda_max(self) -> float | None:
        return self.top[0] if self.top else None

    @property
    def lambda_min(self) -> float | None:
        return self.bottom[0] if self.bottom else None

    @property
    def ratio(self) -> float | None:
        if self.lambda_max is None or self.lambda_min is None or self.lambda_max == 0:
            return None
        return self.lambda_min / self.lambda_max

    def as_dict(self) -> dict[str, object]:
        """Plain types only (no vectors); non-finite floats become None."""
        return {
            "lambda_max": finite(self.lambda_max),
            "lambda_min": finite(self.lambda_min),
            "ratio": finite(self.ratio),
            "top": self.top,
            "bottom": self.bottom,
            "residuals": self.residuals,
            "trace": finite(self.trace),
            "trace_se": finite(self.trace_se),
            "trace_method": self.trace_method,
            "density": self.density,
            "layer_share": self.layer_share,
            "n_products": self.n_products,
            "converged": self.converged,
            "steps": self.steps,
            "settings": self.settings,
        }


def as_operator(problem: CurvatureProblem | CurvatureOperator) -> CurvatureOperator:
    """The problem's operator (an operator is used as it is: its graph is shared by several solves)."""
    return DatasetOperator(problem) if isinstance(problem, CurvatureProblem) else problem


def curvature_record(
    problem: CurvatureProblem | CurvatureOperator,
    k: int = 1,
    which: Which = "top",
    tol: float = 1e-3,
    max_steps: int | None = None,
    trace_probes: int = 0,
    density_probes: int = 0,
    density_steps: int = 64,
    grid: int = 500,
    seed: int = 0,
    v0: Tensor | None = None,
    block_size: int = 2,
) -> CurvatureRecord:
    """Top-k / bottom-k eigenvalues (``which``), trace and spectral density of ``problem`` from one block Lanczos.

    The eigen run is a block Lanczos from ``block_size`` Rademacher probes. A warm start ``v0`` (a
    vector or columns, e.g. the previous record's ``top_vectors`` when tracking lambda_max during
    training) replaces the first probes; at least one random probe stays in the block, so an
    eigenvalue that overtook the previous top is still found. It stops when the
    wanted pairs and their next neighbour have residual <= ``tol`` * spectral scale, after at most
    ``max_steps`` (default ``EIGEN_STEPS``) products; ``converged=False`` otherwise (the current Ritz pairs are
    returned). ``density_probes`` > 0: the run continues to ``density_steps`` block steps and its
    block quadrature serves as the first ``block_size`` SLQ probes; the other probes run
    ``density_steps`` steps, batched. ``trace_probes`` >= 2: the trace and its standard error, from
    exact trace where the problem allows it (:func:`hessian_trace`; then no probe is spent).
    """
    if which not in WANTED:
        raise ValueError(f"which must be one of {list(WANTED)}, got {which!r}")
    operator = as_operator(problem)
    if not 0 < k < operator.dim:
        raise ValueError(f"need 0 < k={k} < dimension {operator.dim}")
    if trace_probes == 1:
        raise ValueError("trace_probes: need at least 2 probes for a standard error (or 0 for no trace)")
    before = operator.n_products
    n_top, n_bottom = (k * wanted for wanted in WANTED[which])
    warm = v0 is not None
    columns = v0.reshape(operator.dim, -1).T.to(operator.device, operator.dtype) if warm else None
    block = max(1, min(max(block_size, len(columns) + 1 if warm else 0), operator.dim // 2))
    max_block_steps = max(-(-(max_steps or EIGEN_STEPS) // block), density_steps if density_probes else 0)
    while block * max_block_steps >= operator.dim and operator.dim % block:
        block -= 1  # a run that may span the whole space needs blocks that tile it (exact Ritz values at the end)
    served = 0 if warm else block  # SLQ probes the eigen run serves (a warm start is not a random probe)
    extra = max(0, density_probes - served) if density_probes else 0
    probes = rademacher_probes(block + extra + trace_probes, operator.dim, seed, operator.dtype, operator.device)
    start = probes[:block].clone()
    if warm:
        start[:len(columns)] = columns[:block]
    min_steps = density_steps if density_probes and not warm else 0
    run = block_lanczos(operator.rows, start, max_block_steps, tol, n_top, n_bottom, min_steps, seed=seed)
    top, bottom = run.pairs(n_top, n_bottom)
    scale = max([abs(v) for v in top.values.tolist() + bottom.values.tolist()] + [1e-300])
    floor = torch.finfo(operator.dtype).eps  # the bound is exact up to rounding: never report less than eps
    record = CurvatureRecord(
        top=top.values.tolist(),
        bottom=bottom.values.tolist(),
        residuals={"top": (top.residuals / scale).clamp_min(floor).tolist(),
                   "bottom": (bottom.residuals / scale).clamp_min(floor).tolist()},
        n_products=0,
        converged=run.converged,
        steps=run.tridiagonal.steps,
        settings={**operator.settings, "k": k, "which": which, "tol": tol, "warm_start": warm, "seed": seed,
                  "block_size": block, "trace_probes": trace_probes, "density_probes": density_probes,
                  "density_steps": density_steps},
        top_vectors=_columns(top),
        bottom_vectors=_columns(bottom),
        layer_share=_layer_share(operator, top),
    )
    if density_probes:
        tridiagonals = [] if warm else [run.tridiagonal]
        if extra:
            tridiagonals.append(lanczos(operator.rows, probes[block:block + extra], density_steps).tridiagonal)
        record.density = spectral_density(tridiagonals, grid)
    if trace_probes:
        (record.trace, record.trace_se), record.trace_method = hessian_trace(operator, run, probes[block + extra:])
    record.n_products = operator.n_products - before
    return record


def _gauss_newton_exact(operator: DatasetOperator) -> float | None:
    """tr(G) from per-sample Jacobians: the trace of a Gauss-Newton problem, and the Hessian's where tr(R) = 0."""
    problem = operator.problem
    if problem.kind != "gauss_newton" and not residual_trace_vanishes(operator.work, operator.block.names):
        return None
    params = dict(zip(operator.block.names, operator.params, strict=True))
    return gauss_newton_trace(operator.work, params, problem.loss_fn, operator.chunks())


def _hessian_backprop_exact(operator: DatasetOperator) -> float | None:
    """tr(H) by Hessian backpropagation through Linear and elementwise layers (None for other models)."""
    problem = operator.problem
    if problem.kind != "hessian":
        return None
    return hessian_trace_exact(operator.work, operator.block.names, problem.loss_fn, operator.chunks())


# Exact traces, tried in order (the first that applies wins); SE 0, no probes, no products
EXACT_TRACES: dict[str, Callable[[DatasetOperator], float | None]] = {
    "hessian_backprop_exact": _hessian_backprop_exact,
    "gauss_newton_exact": _gauss_newton_exact,
}
TRACE_METHODS = {
    "hessian_backprop_exact": "tr(H) exact by backpropagating per-sample Hessians through Linear and elementwise "
                              "layers (Dangel et al. 2020), residual f'' terms included: SE 0",
    "gauss_newton_exact": "tr(G) exact from per-sample Jacobians; tr(R) = 0 (piecewise linear) or M is G: SE 0",
    "deflated_hutchinson": "tr(T) on the eigen run's Krylov space + Hutchinson on its complement: SE of the latter",
}


def hessian_trace(operator: CurvatureOperator, run: BlockLanczosRun, probes: Tensor) -> tuple[TraceEstimate, str]:
    """tr(M) +- SE and the method (a key of ``TRACE_METHODS``): exact (SE 0, no products) where a method of
    :data:`EXACT_TRACES` applies to a data set's operator whose samples enter independently (MLPs with
    elementwise activations; ReLU conv nets; Gauss-Newton problems), otherwise :func:`deflated_trace` on the
    eigen run with ``probes`` (conv nets with smooth activations, samples that interact, other modules)."""
    if isinstance(operator, DatasetOperator):
        problem = operator.problem
        with evaluation_mode(operator.work, problem.mode, problem.allow_stochastic):
            if samples_independent(operator.work):
                for method, exact in EXACT_TRACES.items():
                    trace = exact(operator)
                    if trace is not None:
                        return TraceEstimate(trace, 0.0), method
    return deflated_trace(operator.rows, run, probes), "deflated_hutchinson"


def deflated_trace(apply: Callable[[Tensor], Tensor], run: BlockLanczosRun, probes: Tensor) -> TraceEstimate:
    """tr(M) = tr(U^T M U) + tr((I - P) M (I - P)) for the run's orthonormal basis U (P = U U^T): the first
    term exactly from the block tridiagonal, the second by Hutchinson with ``probes`` projected off U
    (one product each). The standard error is that of the second term alone."""
    basis = run.basis
    residual = probes - (probes @ basis.T) @ basis
    residual = residual - (residual @ basis.T) @ basis
    samples = (residual * apply(residual)).sum(dim=1)
    estimate = trace_estimate(samples)
    return TraceEstimate(estimate.estimate + run.tridiagonal.trace().item(), estimate.standard_error)


def _columns(pairs: RitzPairs) -> Tensor | None:
    return pairs.vectors if pairs.vectors.shape[1] else None


def _layer_share(operator: CurvatureOperator, top: RitzPairs) -> dict[str, float]:
    """Per layer (module name), the share of the top eigenvector's squared norm."""
    if not isinstance(operator, DatasetOperator) or not top.vectors.shape[1]:
        return {}
    shares: dict[str, float] = {}
    for name, part in operator.split(top.vectors[:, 0]).items():
        layer = name.rpartition(".")[0]
        shares[layer] = shares.get(layer, 0.0) + part.double().pow(2).sum().item()
    return shares


def top_eigenvalue(problem: CurvatureProblem, tol: float = 1e-3, seed: int = 0) -> float:
    """lambda_max of the problem's curvature (what ``optim.lr=auto`` and the curvature callback need)."""
    return curvature_record(problem, k=1, which="top", tol=tol, seed=seed).lambda_max
