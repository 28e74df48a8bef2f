"""Hutchinson trace and stochastic Lanczos quadrature (from the one Lanczos) vs exact spectra."""

import numpy as np
import pytest
import torch
from torch import nn

from initlab.analysis import CurvatureProblem, DatasetOperator, curvature_record, lanczos
from initlab.analysis.spectrum import rademacher_probes
from tests.analysis.curvature_oracles import DenseOperator, classification_batch, dense_hessian, tiny_mlp

CE = nn.CrossEntropyLoss()


def test_trace_within_three_standard_errors() -> None:
    # a model the exact traces do not cover (not a Sequential): deflated Hutchinson within 3 SE
    model = Wrapped(tiny_mlp("tanh", seed=30))
    x, y = classification_batch(seed=31)
    exact = torch.trace(dense_hessian(model, CE, x, y)).item()
    problem = CurvatureProblem(model, CE, (x, y))
    record = curvature_record(problem, trace_probes=100)
    assert record.trace_method == "deflated_hutchinson"
    assert 0 < record.trace_se < 0.2 * abs(exact)
    assert abs(record.trace - exact) < 3 * record.trace_se
    block = curvature_record(CurvatureProblem(model.net, CE, (x, y), block=2), trace_probes=100)
    exact_block = torch.trace(dense_hessian(model.net, CE, x, y, ["output.weight", "output.bias"])).item()
    assert block.trace_method == "hessian_backprop_exact" and block.trace_se == 0
    assert block.trace == pytest.approx(exact_block, rel=1e-10)


class Wrapped(nn.Module):
    """A network inside a plain module: no layer order to backpropagate Hessians through."""

    def __init__(self, net: nn.Sequential) -> None:
        super().__init__()
        self.net = net

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.net(inputs)


def test_deflated_trace_is_exact_once_the_krylov_space_is_everything() -> None:
    # 25 block steps of 2 span all 50 dimensions: tr(T) is the trace, the complement probes vanish
    diagonal = torch.linspace(-1.0, 3.0, 50, dtype=torch.float64)
    record = curvature_record(DenseOperator(torch.diag(diagonal)), trace_probes=7, density_probes=2, density_steps=25)
    assert abs(record.trace - diagonal.sum().item()) < 1e-12 and record.trace_se < 1e-12


def test_deflated_trace_is_unbiased_and_its_standard_error_honest() -> None:
    # a spiked spectrum (a few large eigenvalues over a small bulk, like a network's Hessian): over
    # 40 seeds the z-scores (estimate - exact) / SE have mean ~0 and spread ~1, and the SE is far
    # below plain Hutchinson's with as many probes (the spikes' variance is deflated)
    g = torch.Generator().manual_seed(40)
    basis, _ = torch.linalg.qr(torch.randn(400, 400, generator=g, dtype=torch.float64))
    eigenvalues = torch.cat([torch.tensor([50.0, 30.0, 20.0, 10.0], dtype=torch.float64),
                             0.1 * torch.randn(396, generator=g, dtype=torch.float64) + 0.05])
    matrix = basis @ torch.diag(eigenvalues) @ basis.T
    exact = eigenvalues.sum().item()
    z_scores, ses, plain = [], [], []
    for seed in range(40):
        record = curvature_record(DenseOperator(matrix), tol=1e-2, trace_probes=10, seed=seed)
        z_scores.append((record.trace - exact) / record.trace_se)
        ses.append(record.trace_se)
        probes = rademacher_probes(10, 400, 1000 + seed, torch.float64, torch.device("cpu"))
        plain.append(((probes @ matrix) * probes).sum(dim=1).std().item() / 10**0.5)
    z_scores = np.array(z_scores)
    assert abs(z_scores.mean()) < 0.5 and 0.6 < z_scores.std() < 1.6 and np.abs(z_scores).max() < 5
    assert np.median(ses) < 0.1 * np.median(plain)


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
    assert "trace_estimate" not in result  # a few probes' Hutchinson mean is not reported as a trace
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
