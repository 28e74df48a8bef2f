"""Hutchinson trace and stochastic Lanczos quadrature (from the one Lanczos) vs exact spectra."""

import numpy as np
import torch
from torch import nn

from initlab.analysis import CurvatureOperator, CurvatureProblem, DatasetOperator, curvature_record, lanczos
from initlab.analysis.spectrum import rademacher_probes
from tests.analysis.curvature_oracles import classification_batch, dense_hessian, tiny_mlp

CE = nn.CrossEntropyLoss()


class DenseOperator(CurvatureOperator):
    """A known symmetric matrix as an operator (exact oracle for the quadrature)."""

    def __init__(self, matrix: torch.Tensor) -> None:
        self.matrix, self.dim, self.dtype = matrix, matrix.shape[0], matrix.dtype
        self.device, self.settings = matrix.device, {}

    def _product(self, v: torch.Tensor) -> torch.Tensor:
        return self.matrix @ v


def test_trace_within_three_standard_errors() -> None:
    model = tiny_mlp("tanh", seed=30)
    x, y = classification_batch(seed=31)
    exact = torch.trace(dense_hessian(model, CE, x, y)).item()
    problem = CurvatureProblem(model, CE, (x, y))
    record = curvature_record(problem, trace_probes=100)
    assert 0 < record.trace_se < 0.2 * abs(exact)
    assert abs(record.trace - exact) < 3 * record.trace_se
    block = curvature_record(problem.replace(block=2), trace_probes=100)
    exact_block = torch.trace(dense_hessian(model, CE, x, y, ["output.weight", "output.bias"])).item()
    assert abs(block.trace - exact_block) < 3 * block.trace_se


def test_hutchinson_is_exact_for_diagonal_matrices() -> None:
    # z^T D z = sum_i d_i z_i^2 = tr(D) for Rademacher z: zero variance (SLQ probes' alpha_1 included)
    diagonal = torch.linspace(-1.0, 3.0, 50, dtype=torch.float64)
    record = curvature_record(DenseOperator(torch.diag(diagonal)), trace_probes=7, density_probes=3, density_steps=5)
    assert abs(record.trace - diagonal.sum().item()) < 1e-12 and record.trace_se < 1e-12


def test_full_lanczos_recovers_the_exact_spectral_measure() -> None:
    # steps = dim: Ritz values are the eigenvalues and the weights are (q . u_i)^2, no ghost copies
    g = torch.Generator().manual_seed(32)
    basis, _ = torch.linalg.qr(torch.randn(30, 30, generator=g, dtype=torch.float64))
    eigenvalues = torch.linspace(-2.0, 5.0, 30, dtype=torch.float64)
    operator = DenseOperator(basis @ torch.diag(eigenvalues) @ basis.T)
    probes = rademacher_probes(3, 30, 1, torch.float64, torch.device("cpu"))
    values, weights = lanczos(operator.rows, probes, 30).tridiagonal.quadrature()
    torch.testing.assert_close(values, eigenvalues.expand(3, 30), rtol=0, atol=1e-10)
    torch.testing.assert_close(weights, (probes / 30**0.5 @ basis) ** 2, rtol=0, atol=1e-12)


def test_density_moments_match_the_hessian() -> None:
    model = tiny_mlp("tanh", seed=34)
    x, y = classification_batch(seed=35)
    hessian = dense_hessian(model, CE, x, y)
    dim = hessian.shape[0]
    problem = CurvatureProblem(model, CE, (x, y))
    result = curvature_record(problem, density_probes=20, density_steps=40, grid=4000).density
    grid, density = np.array(result["grid"]), np.array(result["density"])
    values = [np.array(v) for v in result["ritz_values"]]
    weights = [np.array(w) for w in result["ritz_weights"]]
    np.testing.assert_allclose([w.sum() for w in weights], 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.trapezoid(density, grid), 1.0, rtol=1e-4)
    per_probe = np.array([(v * w).sum() for v, w in zip(values, weights, strict=True)])
    np.testing.assert_allclose(np.trapezoid(density * grid, grid), per_probe.mean(), rtol=1e-3, atol=1e-6)
    # per probe sum(w theta) = q^T H q exactly; its mean estimates tr(H)/dim
    assert abs(per_probe.mean() - torch.trace(hessian).item() / dim) < 3 * per_probe.std() / np.sqrt(20)
    np.testing.assert_allclose(result["trace_estimate"], dim * per_probe.mean(), rtol=1e-12)
    exact = torch.linalg.eigvalsh(hessian)
    everything = np.concatenate(values)
    assert everything.min() >= exact[0].item() - 1e-9 and everything.max() <= exact[-1].item() + 1e-9
    assert 0 < result["negative_share"] <= result["negative_share_any"] < 1
    assert result["n_probes"] == 20 and min(result["steps"]) == 40


def test_probe_quadrature_first_moment_is_the_rayleigh_quotient() -> None:
    model = tiny_mlp("relu", seed=36)
    x, y = classification_batch(seed=37)
    operator = DatasetOperator(CurvatureProblem(model, CE, (x, y)))
    record = curvature_record(operator, density_probes=3, density_steps=10, seed=5)
    probes = rademacher_probes(3, operator.dim, 5, operator.dtype, operator.device) / operator.dim**0.5
    rayleigh = (probes * operator.rows(probes)).sum(dim=1)
    moments = [np.dot(v, w) for v, w in zip(record.density["ritz_values"], record.density["ritz_weights"], strict=True)]
    np.testing.assert_allclose(moments, rayleigh.numpy(), rtol=1e-10, atol=1e-14)
