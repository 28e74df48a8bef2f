"""Hutchinson trace and stochastic Lanczos quadrature vs exact spectra."""

import numpy as np
import torch
from torch import nn

from initlab.analysis import (
    CurvatureOperator,
    HessianOperator,
    batched_lanczos,
    hessian_spectral_density,
    hessian_trace,
    hutchinson_trace,
    stochastic_lanczos_quadrature,
)
from tests.analysis.curvature_oracles import classification_batch, dense_hessian, tiny_mlp

CE = nn.CrossEntropyLoss()


class DenseOperator(CurvatureOperator):
    """A known symmetric matrix as an operator (exact oracle for the quadrature)."""

    def __init__(self, matrix: torch.Tensor) -> None:
        self.matrix, self.dim, self.dtype = matrix, matrix.shape[0], matrix.dtype
        self.device, self.n_products, self.settings = matrix.device, 0, {}

    def _products(self, vectors: torch.Tensor) -> torch.Tensor:
        return vectors @ self.matrix


def test_trace_within_three_standard_errors() -> None:
    model = tiny_mlp("tanh", seed=30)
    x, y = classification_batch(seed=31)
    exact = torch.trace(dense_hessian(model, CE, x, y)).item()
    estimate, standard_error = hessian_trace(model, CE, x, y, n_probes=100)
    assert 0 < standard_error < 0.2 * abs(exact)
    assert abs(estimate - exact) < 3 * standard_error
    block = hessian_trace(model, CE, x, y, n_probes=100, params=2)
    exact_block = torch.trace(dense_hessian(model, CE, x, y, ["5.weight", "5.bias"])).item()
    assert abs(block.estimate - exact_block) < 3 * block.standard_error


def test_hutchinson_is_exact_for_diagonal_matrices() -> None:
    # z^T D z = sum_i d_i z_i^2 = tr(D) for Rademacher z: zero variance
    diagonal = torch.linspace(-1.0, 3.0, 50, dtype=torch.float64)
    estimate, standard_error = hutchinson_trace(DenseOperator(torch.diag(diagonal)), n_probes=7)
    assert abs(estimate - diagonal.sum().item()) < 1e-12 and standard_error < 1e-12


def test_full_lanczos_recovers_the_exact_spectral_measure() -> None:
    # steps = dim: Ritz values are the eigenvalues and the weights are (q . u_i)^2, no ghost copies
    g = torch.Generator().manual_seed(32)
    basis, _ = torch.linalg.qr(torch.randn(30, 30, generator=g, dtype=torch.float64))
    eigenvalues = torch.linspace(-2.0, 5.0, 30, dtype=torch.float64)
    matrix = basis @ torch.diag(eigenvalues) @ basis.T
    operator = DenseOperator(matrix)
    values, weights = stochastic_lanczos_quadrature(operator, n_probes=3, lanczos_steps=30, seed=1)
    torch.testing.assert_close(values, eigenvalues.expand(3, 30), rtol=0, atol=1e-10)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(3, dtype=torch.float64))


def test_quadrature_weights_are_projections_on_eigenvectors() -> None:
    g = torch.Generator().manual_seed(33)
    basis, _ = torch.linalg.qr(torch.randn(20, 20, generator=g, dtype=torch.float64))
    eigenvalues = torch.arange(20, dtype=torch.float64)
    operator = DenseOperator(basis @ torch.diag(eigenvalues) @ basis.T)
    start = torch.randn(1, 20, generator=g, dtype=torch.float64)
    values, weights = batched_lanczos(lambda rows: operator.matmat(rows.T).T, start, 40).ritz()
    unit = start[0] / start[0].norm()
    torch.testing.assert_close(values[0], eigenvalues, rtol=0, atol=1e-10)
    torch.testing.assert_close(weights[0], (basis.T @ unit) ** 2, rtol=0, atol=1e-12)


def test_density_moments_match_the_hessian() -> None:
    model = tiny_mlp("tanh", seed=34)
    x, y = classification_batch(seed=35)
    hessian = dense_hessian(model, CE, x, y)
    dim = hessian.shape[0]
    result = hessian_spectral_density(model, CE, x, y, n_probes=20, lanczos_steps=40, grid=4000)
    grid, density = np.array(result["grid"]), np.array(result["density"])
    values, weights = np.array(result["ritz_values"]), np.array(result["ritz_weights"])
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.trapezoid(density, grid), 1.0, rtol=1e-4)
    ritz_mean = (values * weights).sum(axis=1).mean()
    np.testing.assert_allclose(np.trapezoid(density * grid, grid), ritz_mean, rtol=1e-3, atol=1e-6)
    # per probe sum(w theta) = q^T H q exactly; its mean estimates tr(H)/dim
    exact_mean = torch.trace(hessian).item() / dim
    spread = (values * weights).sum(axis=1).std() / np.sqrt(20)
    assert abs(ritz_mean - exact_mean) < 3 * spread
    np.testing.assert_allclose(result["trace_estimate"], dim * ritz_mean, rtol=1e-12)
    exact = torch.linalg.eigvalsh(hessian)
    assert values.min() >= exact[0].item() - 1e-9 and values.max() <= exact[-1].item() + 1e-9
    assert 0 < result["negative_share"] <= result["negative_share_any"] < 1


def test_ritz_quadrature_first_moment_is_rayleigh_quotient_of_the_probe() -> None:
    model = tiny_mlp("relu", seed=36)
    x, y = classification_batch(seed=37)
    operator = HessianOperator(model, CE, x, y)
    values, weights = stochastic_lanczos_quadrature(operator, n_probes=3, lanczos_steps=10, seed=5)
    generator = torch.Generator().manual_seed(5)
    probes = (torch.randint(0, 2, (operator.dim, 3), generator=generator).double() * 2 - 1) / operator.dim**0.5
    rayleigh = (probes * operator.matmat(probes)).sum(dim=0)
    torch.testing.assert_close((values * weights).sum(dim=1), rayleigh, rtol=1e-10, atol=1e-14)
