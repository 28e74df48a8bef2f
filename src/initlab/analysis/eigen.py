"""Extreme eigenvalues of curvature operators: Lanczos (own, or ARPACK) and the power baseline.

The paper's step-size rule gamma* = 1/||H|| (and the edge of stability 2/lambda_max for
gradient descent on the quadratic model) needs lambda_max of the Hessian. Lanczos on the
matrix-free operator reaches it in a few dozen Hessian-vector products where PyHessian's power
iteration needs 3-7x more when the top eigenvalues cluster (``benchmarks/curvature.py``).
"""

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh
from threadpoolctl import threadpool_limits
from torch import Tensor, nn

from initlab.analysis._modes import Mode
from initlab.analysis.lanczos import lanczos_extreme_eigenpairs
from initlab.analysis.operators import CurvatureOperator, GaussNewtonOperator, HessianOperator, LossFn, ParamSpec

Which = Literal["LA", "SA", "both"]


@dataclass
class EigenResult:
    """Extreme eigenvalues with their certificates and the settings that change the answer.

    ``top`` is descending, ``bottom`` ascending; ``*_residuals`` are ||M v - lambda v|| divided by
    max(|lambda|, largest |eigenvalue| found) per eigenpair, recomputed with fresh products (for
    a dominant top eigenvalue: ||M v - lambda v|| / |lambda|; near-zero bottom eigenvalues are
    measured on the spectral scale); ``n_products`` counts the solver's products
    (Hessian- or GGN-vector), ``n_products_total`` adds the residual checks; eigenvectors are
    columns [dim, k] when requested. ``history``: the running lambda_max estimate after each
    product (power iterates, or the top Ritz value of the default Lanczos; empty for ARPACK).
    """

    top: list[float]
    bottom: list[float]
    top_residuals: list[float]
    bottom_residuals: list[float]
    n_products: int
    n_products_total: int
    converged: bool
    settings: dict[str, object]
    top_eigenvectors: Tensor | None = None
    bottom_eigenvectors: Tensor | None = None
    history: list[float] = field(default_factory=list)

    @property
    def lambda_max(self) -> float:
        return self.top[0]

    @property
    def lambda_min(self) -> float:
        return self.bottom[0]

    def to_dict(self) -> dict[str, object]:
        """JSON-serializable record (no eigenvectors, no history)."""
        return {
            "top": self.top,
            "bottom": self.bottom,
            "top_residuals": self.top_residuals,
            "bottom_residuals": self.bottom_residuals,
            "n_products": self.n_products,
            "n_products_total": self.n_products_total,
            "converged": self.converged,
            "settings": self.settings,
        }


def _start_vector(operator: CurvatureOperator, v0: Tensor | np.ndarray | None, seed: int) -> np.ndarray:
    if v0 is not None:
        start = torch.as_tensor(v0).detach().reshape(-1).double().cpu().numpy()
        if start.shape[0] != operator.dim:
            raise ValueError(f"v0 has length {start.shape[0]}, operator dimension is {operator.dim}")
        return start
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(operator.dim, generator=generator, dtype=torch.float64).numpy()


def _residuals(operator: CurvatureOperator, values: np.ndarray, vectors: np.ndarray, scale: float) -> list[float]:
    """||M v - lambda v|| / max(|lambda|, scale) per pair, from fresh products."""
    if len(values) == 0:
        return []
    basis = torch.as_tensor(vectors, device=operator.device)
    product = operator.matmat(basis.to(operator.dtype)).double()
    lam = torch.as_tensor(values, device=operator.device)
    residual = torch.linalg.vector_norm(product - basis * lam, dim=0) / lam.abs().clamp_min(max(scale, 1e-300))
    return residual.cpu().tolist()


def _top_eigenpairs(
    operator: LinearOperator, k: int, tol: float, v0: np.ndarray, ncv: int | None, maxiter: int | None
) -> tuple[np.ndarray, np.ndarray, bool]:
    """ARPACK's k largest-algebraic pairs, descending; partial pairs and a warning on non-convergence."""
    try:
        # ARPACK's vector updates are BLAS-1/2 on a few long vectors: threads only add sync cost
        # (on a busy 2-core machine a threaded OpenBLAS made them 10x slower)
        with threadpool_limits(limits=1, user_api="blas"):
            values, vectors = eigsh(operator, k=k, which="LA", tol=tol, v0=v0, ncv=ncv, maxiter=maxiter)
        converged = True
    except ArpackNoConvergence as error:
        warnings.warn(f"Lanczos did not converge: {error}", RuntimeWarning, stacklevel=3)
        values, vectors, converged = error.eigenvalues, error.eigenvectors, False
    order = np.argsort(values)[::-1]
    return values[order], vectors[:, order], converged


def lanczos_eigenvalues(
    operator: CurvatureOperator,
    k: int = 1,
    which: Which = "LA",
    tol: float = 1e-4,
    v0: Tensor | np.ndarray | None = None,
    return_eigenvectors: bool = False,
    seed: int = 0,
    method: Literal["lanczos", "arpack"] = "lanczos",
    max_steps: int = 300,
    ncv: int | None = None,
    maxiter: int | None = None,
) -> EigenResult:
    """Top-k ("LA"), bottom-k ("SA") or both ("both") eigenvalues of a symmetric operator.

    ``method="lanczos"`` (default): one Lanczos run with full reorthogonalization that checks
    convergence after every product and stops when every wanted pair has residual
    <= ``tol`` * spectral scale (:func:`lanczos_extreme_eigenpairs`); at most ``max_steps``
    products (and stored vectors). ``method="arpack"``: implicitly restarted Lanczos
    (``scipy`` ``eigsh``; bounded memory ``ncv`` vectors, but at least ``ncv`` ~ 20 products per
    convergence check); its bottom end is computed as the top of lambda_max I - M, because
    ARPACK measures accuracy relative to the eigenvalue itself and never converges on the
    (near-)zero bottom eigenvalues of overparameterized Hessians and their layer blocks.
    ``v0`` warm-starts from a previous eigenvector (tracking lambda_max during training: a few
    products instead of a few dozen); without it the start vector is Gaussian from ``seed``
    (reproducible). Single-vector Lanczos reports an exactly repeated eigenvalue once (use
    "arpack" to resolve multiplicities). Non-converged runs return the current Ritz pairs with
    ``converged=False`` and a warning. Residuals are recomputed with fresh products, relative
    to the largest |eigenvalue| found (= |lambda| for a dominant top eigenvalue).
    """
    if which not in ("LA", "SA", "both"):
        raise ValueError(f"which must be 'LA', 'SA' or 'both', got {which!r}")
    if method not in ("lanczos", "arpack"):
        raise ValueError(f"method must be 'lanczos' or 'arpack', got {method!r}")
    if not 0 < k < operator.dim:
        raise ValueError(f"need 0 < k={k} < dimension {operator.dim}")
    start = _start_vector(operator, v0, seed)
    before = operator.n_products
    history: list[float] = []
    n_top = k if which in ("LA", "both") else 0
    n_bottom = k if which in ("SA", "both") else 0
    if method == "lanczos":
        pairs = lanczos_extreme_eigenpairs(
            operator.matvec, torch.as_tensor(start).to(operator.device, operator.dtype), n_top, n_bottom, tol,
            max_steps, seed,
        )
        if not pairs.converged:
            warnings.warn(f"Lanczos did not converge in {pairs.steps} steps", RuntimeWarning, stacklevel=2)
        top_values, top_vectors = pairs.top_values.numpy(), pairs.top_vectors.double().cpu().numpy()
        bottom_values, bottom_vectors = pairs.bottom_values.numpy(), pairs.bottom_vectors.double().cpu().numpy()
        converged, history = pairs.converged, pairs.top_history
    else:
        top_values, top_vectors, bottom_values, bottom_vectors, converged = _arpack_extreme_eigenpairs(
            operator, n_top, n_bottom, tol, start, seed, ncv, maxiter
        )
    n_products = operator.n_products - before
    scale = float(np.abs(np.concatenate([top_values, bottom_values])).max())
    top_residuals = _residuals(operator, top_values, top_vectors, scale)
    bottom_residuals = _residuals(operator, bottom_values, bottom_vectors, scale)

    def columns(vectors: np.ndarray) -> Tensor | None:
        if not return_eigenvectors or vectors.shape[1] == 0:
            return None
        return torch.as_tensor(vectors, device=operator.device).to(operator.dtype)

    return EigenResult(
        top=[float(v) for v in top_values],
        bottom=[float(v) for v in bottom_values],
        top_residuals=top_residuals,
        bottom_residuals=bottom_residuals,
        n_products=n_products,
        n_products_total=operator.n_products - before,
        converged=converged,
        settings={**operator.settings, "k": k, "which": which, "tol": tol, "method": method,
                  "warm_start": v0 is not None},
        top_eigenvectors=columns(top_vectors),
        bottom_eigenvectors=columns(bottom_vectors),
        history=history,
    )


def _arpack_extreme_eigenpairs(
    operator: CurvatureOperator, n_top: int, n_bottom: int, tol: float, start: np.ndarray, seed: int,
    ncv: int | None, maxiter: int | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool]:
    linear = operator.as_linear_operator()
    top_values, top_vectors, converged = np.empty(0), np.empty((operator.dim, 0)), True
    if n_top:
        top_values, top_vectors, converged = _top_eigenpairs(linear, n_top, tol, start, ncv, maxiter)
        shift = float(top_values[0]) if len(top_values) else 0.0
    else:
        shift = float(_top_eigenpairs(linear, 1, 1e-2, start, ncv, maxiter)[0][0])
    bottom_values, bottom_vectors = np.empty(0), np.empty((operator.dim, 0))
    if n_bottom:
        shifted = LinearOperator(
            linear.shape, matvec=lambda x: shift * x.reshape(-1) - linear.matvec(x),
            matmat=lambda x: shift * x - linear.matmat(x), dtype=np.float64,
        )
        bottom_start = start if not n_top else _start_vector(operator, None, seed + 1)
        flipped, bottom_vectors, bottom_converged = _top_eigenpairs(shifted, n_bottom, tol, bottom_start, ncv, maxiter)
        bottom_values, converged = shift - flipped, converged and bottom_converged
    return top_values, top_vectors, bottom_values, bottom_vectors, converged


def power_iteration_eigenvalue(
    operator: CurvatureOperator,
    max_iter: int = 100,
    tol: float = 1e-3,
    v0: Tensor | None = None,
    seed: int = 0,
    stop_when: Callable[[float], bool] | None = None,
) -> EigenResult:
    """PyHessian's power iteration (baseline only): v <- Hv/||Hv||, estimate v^T H v; stop when
    two consecutive estimates differ by less than ``tol`` relative (PyHessian's rule, defaults
    100 iterations and 1e-3), or when ``stop_when(estimate)`` (e.g. a benchmark's oracle).
    Finds the eigenvalue of largest magnitude."""
    generator = torch.Generator().manual_seed(seed)
    v = torch.randn(operator.dim, generator=generator, dtype=torch.float64) if v0 is None else v0.detach().double()
    v = (v / torch.linalg.vector_norm(v)).to(operator.device, operator.dtype)
    before = operator.n_products
    estimate: float | None = None
    history: list[float] = []
    converged = False
    for _ in range(max_iter):
        hv = operator.matvec(v)
        new_estimate = torch.dot(hv, v).item()
        history.append(new_estimate)
        v = hv / torch.linalg.vector_norm(hv)
        if stop_when is not None and stop_when(new_estimate):
            converged = True
            estimate = new_estimate
            break
        if estimate is not None and abs(estimate - new_estimate) / (abs(estimate) + 1e-6) < tol:
            converged = True
            break
        estimate = new_estimate
    n_products = operator.n_products - before
    assert estimate is not None
    residuals = _residuals(operator, np.array([estimate]), v.double().cpu().numpy()[:, None], abs(estimate))
    return EigenResult(
        top=[estimate],
        bottom=[],
        top_residuals=residuals,
        bottom_residuals=[],
        n_products=n_products,
        n_products_total=operator.n_products - before,
        converged=converged,
        settings={**operator.settings, "k": 1, "which": "LM", "tol": tol, "method": "power iteration (PyHessian)",
                  "warm_start": v0 is not None},
        top_eigenvectors=v[:, None],
        history=history,
    )


def hessian_eigenvalues(
    model: nn.Module,
    loss_fn: LossFn,
    inputs: Tensor,
    targets: Tensor,
    k: int = 1,
    which: Which = "LA",
    params: ParamSpec = None,
    tol: float = 1e-4,
    return_eigenvectors: bool = False,
    v0: Tensor | None = None,
    dtype: torch.dtype | None = None,
    include_bias: bool = True,
    mode: Mode = "eval",
    allow_stochastic: bool = False,
    seed: int = 0,
    method: Literal["lanczos", "arpack"] = "lanczos",
    check: bool = True,
) -> EigenResult:
    """Extreme eigenvalues of the loss Hessian on one batch (full, or a layer block H_w(k) of
    paper Theorem 1 via ``params``), matrix-free by Lanczos; lambda_max gives the paper's
    gamma* = 1/||H||. See :class:`HessianOperator` for ``params``/``dtype``/``mode``/``check``
    and :func:`lanczos_eigenvalues` for ``k``/``which``/``tol``/``v0``/``method``."""
    operator = HessianOperator(
        model, loss_fn, inputs, targets, params, dtype, include_bias, mode, allow_stochastic, check=check
    )
    return lanczos_eigenvalues(operator, k, which, tol, v0, return_eigenvectors, seed, method)


def gauss_newton_eigenvalues(
    model: nn.Module,
    loss_fn: LossFn,
    inputs: Tensor,
    targets: Tensor,
    k: int = 1,
    which: Which = "LA",
    params: ParamSpec = None,
    tol: float = 1e-4,
    return_eigenvectors: bool = False,
    v0: Tensor | None = None,
    dtype: torch.dtype | None = None,
    include_bias: bool = True,
    mode: Mode = "eval",
    allow_stochastic: bool = False,
    seed: int = 0,
    method: Literal["lanczos", "arpack"] = "lanczos",
    check: bool = True,
) -> EigenResult:
    """As :func:`hessian_eigenvalues` for the Gauss-Newton matrix J^T H_z J (the H_1 term of paper
    eq. (10)); equal to the Hessian's for a ReLU layer block (Remark 1) or a linear model."""
    operator = GaussNewtonOperator(
        model, loss_fn, inputs, targets, params, dtype, include_bias, mode, allow_stochastic, check=check
    )
    return lanczos_eigenvalues(operator, k, which, tol, v0, return_eigenvectors, seed, method)


def power_iteration_top_eigenvalue(
    model: nn.Module,
    loss_fn: LossFn,
    inputs: Tensor,
    targets: Tensor,
    params: ParamSpec = None,
    max_iter: int = 100,
    tol: float = 1e-3,
    dtype: torch.dtype | None = None,
    seed: int = 0,
) -> EigenResult:
    """Baseline for the benchmark: PyHessian's power iteration on the Hessian (not the default)."""
    operator = HessianOperator(model, loss_fn, inputs, targets, params, dtype)
    return power_iteration_eigenvalue(operator, max_iter, tol, seed=seed)

