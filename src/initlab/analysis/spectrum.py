"""Trace and spectral density from random probes (the "full spectrum" view).

Hutchinson: tr(M) = E[z^T M z] for Rademacher z. Stochastic Lanczos quadrature (SLQ): for a
unit probe q, m Lanczos steps give Ritz values theta_j and weights tau_j (squared first
components of T's eigenvectors) with sum_j tau_j f(theta_j) ~ q^T f(M) q, the Gauss quadrature
of q's spectral measure; averaging over probes and broadening each node by a Gaussian gives the
eigenvalue density (1/dim) sum_i delta(t - lambda_i), which integrates to 1. The first Lanczos
coefficient of a normalized Rademacher probe is z^T M z / dim: every SLQ probe is also a
Hutchinson sample.
"""

import math
from typing import NamedTuple

import torch
from torch import Tensor

from initlab.analysis.lanczos import Tridiagonal


class TraceEstimate(NamedTuple):
    """Hutchinson estimate of tr(M) and its standard error (std of z^T M z / sqrt(n_probes))."""

    estimate: float
    standard_error: float


def rademacher_probes(n_probes: int, dim: int, seed: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """[n_probes, dim] independent +-1 entries from a seeded generator on ``device``."""
    generator = torch.Generator(device=device).manual_seed(seed)
    return torch.randint(0, 2, (n_probes, dim), generator=generator, device=device).to(dtype) * 2 - 1


def trace_estimate(samples: Tensor) -> TraceEstimate:
    """Mean and standard error of Hutchinson samples z^T M z (at least 2)."""
    if samples.numel() < 2:
        raise ValueError("need at least 2 probes for a standard error")
    samples = samples.double()
    return TraceEstimate(samples.mean().item(), (samples.std() / samples.numel() ** 0.5).item())


def gaussian_density(nodes: list[Tensor], weights: list[Tensor], grid: Tensor, sigma: float) -> Tensor:
    """Average over probes of sum_j w_j N(t; theta_j, sigma^2) on the grid (integrates to 1);
    probes may have different numbers of nodes."""
    total = torch.zeros_like(grid)
    for theta, w in zip(nodes, weights, strict=True):
        kernel = torch.exp(-0.5 * ((grid[:, None] - theta[None]) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
        total += kernel @ w
    return total / len(nodes)


def spectral_density(tridiagonals: list[Tridiagonal], grid: int = 500, sigma: float | None = None,
                     zero_tol: float = 1e-3) -> dict[str, object]:
    """Eigenvalue density from the Lanczos tridiagonals of normalized Rademacher probes (one row each).

    ``grid`` points span the Ritz values +- 5 sigma; ``sigma`` defaults to 1% of the Ritz range.
    Returns plain lists: ``grid``, ``density`` (integrates to ~1), ``ritz_values`` /
    ``ritz_weights`` per probe (weights sum to 1; sum(w * theta) = q^T M q: a few probes' Hutchinson
    samples, too noisy to report as a trace, so none is; the record's trace is exact or carries its SE),
    ``negative_share`` (quadrature mass below
    -zero_tol * max|theta|: clearly negative eigenvalues; the Ritz node of the large near-zero
    cluster of an overparameterized Hessian can land slightly below 0), ``negative_share_any``
    (mass below 0), ``sigma``, ``n_probes`` and ``steps`` per probe.
    """
    nodes, weights = [], []
    for tridiagonal in tridiagonals:
        values, w = tridiagonal.quadrature()
        nodes += list(values)
        weights += list(w)
    everything = torch.cat(nodes)
    low, high = everything.min().item(), everything.max().item()
    scale = everything.abs().max().item()
    sigma = 0.01 * max(high - low, scale, 1e-12) if sigma is None else sigma
    points = torch.linspace(low - 5 * sigma, high + 5 * sigma, grid, dtype=torch.float64, device=everything.device)
    n = len(nodes)
    return {
        "grid": points.tolist(),
        "density": gaussian_density(nodes, weights, points, sigma).tolist(),
        "ritz_values": [v.tolist() for v in nodes],
        "ritz_weights": [w.tolist() for w in weights],
        "sigma": sigma,
        "negative_share": sum(w[v < -zero_tol * scale].sum().item() for v, w in zip(nodes, weights, strict=True)) / n,
        "negative_share_any": sum(w[v < 0].sum().item() for v, w in zip(nodes, weights, strict=True)) / n,
        "n_probes": n,
        "steps": [len(v) for v in nodes],
        "zero_tol": zero_tol,
    }
