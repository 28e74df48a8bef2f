"""Trace and spectral density of the Hessian from random probes (the "full spectrum" view).

Hutchinson: tr(H) = E[z^T H z] for Rademacher z. Stochastic Lanczos quadrature (SLQ): for a
unit probe q, m Lanczos steps give Ritz values theta_j and weights tau_j (squared first
components of T's eigenvectors) with sum_j tau_j f(theta_j) ~ q^T f(H) q, the Gauss quadrature
of q's spectral measure; averaging over probes and broadening each node by a Gaussian gives the
eigenvalue density (1/dim) sum_i delta(t - lambda_i), which integrates to 1.
"""

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from initlab.analysis._modes import Mode
from initlab.analysis.lanczos import batched_lanczos
from initlab.analysis.operators import CurvatureOperator, HessianOperator, LossFn, ParamSpec


class TraceEstimate(NamedTuple):
    """Hutchinson estimate of tr(H) and its standard error (std of z^T H z / sqrt(n_probes))."""

    estimate: float
    standard_error: float


def rademacher_probes(dim: int, n_probes: int, seed: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """[dim, n_probes] matrix of independent +-1 entries from a seeded generator."""
    generator = torch.Generator().manual_seed(seed)
    signs = torch.randint(0, 2, (dim, n_probes), generator=generator).to(dtype) * 2 - 1
    return signs.to(device)


def hutchinson_trace(
    operator: CurvatureOperator, n_probes: int = 100, seed: int = 0, probe_batch: int = 10
) -> TraceEstimate:
    """tr(M) by Hutchinson's estimator with Rademacher probes, ``probe_batch`` products at a time."""
    if n_probes < 2:
        raise ValueError("need at least 2 probes for a standard error")
    probes = rademacher_probes(operator.dim, n_probes, seed, operator.dtype, operator.device)
    samples = torch.cat(
        [(chunk * operator.matmat(chunk)).sum(dim=0) for chunk in probes.split(probe_batch, dim=1)]
    ).double()
    return TraceEstimate(samples.mean().item(), (samples.std() / n_probes**0.5).item())


def hessian_trace(
    model: nn.Module,
    loss_fn: LossFn,
    inputs: Tensor,
    targets: Tensor,
    n_probes: int = 100,
    params: ParamSpec = None,
    seed: int = 0,
    probe_batch: int = 10,
    dtype: torch.dtype | None = None,
    include_bias: bool = True,
    mode: Mode = "eval",
    allow_stochastic: bool = False,
) -> TraceEstimate:
    """tr(H) of the loss Hessian on one batch (or a layer block, see :class:`HessianOperator`) as
    (estimate, standard error), Hutchinson with Rademacher probes, ``probe_batch`` at a time."""
    operator = HessianOperator(model, loss_fn, inputs, targets, params, dtype, include_bias, mode, allow_stochastic)
    return hutchinson_trace(operator, n_probes, seed, probe_batch)


def stochastic_lanczos_quadrature(
    operator: CurvatureOperator, n_probes: int = 4, lanczos_steps: int = 64, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """Ritz values and quadrature weights [n_probes, steps] of normalized Rademacher probes
    (all probes' Lanczos runs batched, full reorthogonalization: no ghost eigenvalues)."""
    probes = rademacher_probes(operator.dim, n_probes, seed, operator.dtype, operator.device)
    tridiagonal = batched_lanczos(lambda rows: operator.matmat(rows.T).T, probes.T.contiguous(), lanczos_steps)
    return tridiagonal.ritz()


def gaussian_density(
    nodes: Tensor, weights: Tensor, grid: Tensor, sigma: float
) -> Tensor:
    """Average over probes of sum_j w_j N(t; theta_j, sigma^2) on the grid (integrates to 1)."""
    nodes, weights, grid = nodes.double(), weights.double(), grid.double()
    kernel = torch.exp(-0.5 * ((grid[:, None, None] - nodes[None]) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))
    return (kernel * weights[None]).sum(dim=2).mean(dim=1)


def spectral_density(
    operator: CurvatureOperator,
    n_probes: int = 4,
    lanczos_steps: int = 64,
    grid: int | Tensor | np.ndarray = 1000,
    sigma: float | None = None,
    seed: int = 0,
    zero_tol: float = 1e-3,
) -> dict[str, object]:
    """Eigenvalue density of ``operator`` by stochastic Lanczos quadrature, Gaussian-broadened.

    ``grid``: number of points (spanning the Ritz values +- 5 sigma) or the points themselves;
    ``sigma`` defaults to 1% of the Ritz range. Returns plain lists: ``grid``, ``density``
    (integrates to ~1), ``ritz_values`` / ``ritz_weights`` [n_probes][steps] (each probe's
    weights sum to 1; sum(w * theta) per probe = q^T H q, so their mean times dim is a
    Hutchinson trace estimate, ``trace_estimate``), ``negative_share`` (quadrature mass below
    -zero_tol * max|theta|: the share of eigenvalues that are clearly negative; the Ritz node
    of the large near-zero cluster of an overparameterized Hessian can land slightly below 0),
    ``negative_share_any`` (mass below 0), ``sigma``, ``n_products`` and ``settings``.
    """
    before = operator.n_products
    values, weights = stochastic_lanczos_quadrature(operator, n_probes, lanczos_steps, seed)
    low, high = values.min().item(), values.max().item()
    width = max(high - low, abs(high), abs(low), 1e-12)
    sigma = 0.01 * width if sigma is None else sigma
    points = (
        torch.linspace(low - 5 * sigma, high + 5 * sigma, grid, dtype=torch.float64)
        if isinstance(grid, int)
        else torch.as_tensor(grid, dtype=torch.float64)
    )
    scale = values.abs().max().item()
    return {
        "grid": points.tolist(),
        "density": gaussian_density(values, weights, points, sigma).tolist(),
        "ritz_values": values.tolist(),
        "ritz_weights": weights.tolist(),
        "sigma": sigma,
        "trace_estimate": operator.dim * (values * weights).sum(dim=1).mean().item(),
        "negative_share": weights[values < -zero_tol * scale].sum().item() / n_probes,
        "negative_share_any": weights[values < 0].sum().item() / n_probes,
        "n_products": operator.n_products - before,
        "settings": {**operator.settings, "n_probes": n_probes, "lanczos_steps": values.shape[1], "seed": seed,
                     "zero_tol": zero_tol},
    }


def hessian_spectral_density(
    model: nn.Module,
    loss_fn: LossFn,
    inputs: Tensor,
    targets: Tensor,
    n_probes: int = 4,
    lanczos_steps: int = 64,
    grid: int | Tensor | np.ndarray = 1000,
    sigma: float | None = None,
    params: ParamSpec = None,
    seed: int = 0,
    dtype: torch.dtype | None = None,
    include_bias: bool = True,
    mode: Mode = "eval",
    allow_stochastic: bool = False,
    zero_tol: float = 1e-3,
) -> dict[str, object]:
    """The Hessian's eigenvalue density on one batch (SLQ with full reorthogonalization, Gaussian
    broadening); see :func:`spectral_density` for the record and :class:`HessianOperator` for
    ``params`` / ``dtype`` / ``mode``."""
    operator = HessianOperator(model, loss_fn, inputs, targets, params, dtype, include_bias, mode, allow_stochastic)
    return spectral_density(operator, n_probes, lanczos_steps, grid, sigma, seed, zero_tol)
