"""The exact Gauss-Newton trace (issue 21 item 2) against dense torch.func oracles: tr(H) = tr(G) for
piecewise-linear nets (tr(R) = 0), tr(G) of a Gauss-Newton problem, Linear fast path and general path."""

import pytest
import torch
from torch import nn

from initlab.analysis import CurvatureProblem, curvature_record
from initlab.analysis.gauss_newton import gauss_newton_trace, jacobian_grams, residual_trace_vanishes
from initlab.analysis.operators import DatasetOperator
from tests.analysis.curvature_oracles import classification_batch, conv_net, dense_gauss_newton, dense_hessian, tiny_mlp

CE = nn.CrossEntropyLoss()
N = 37  # chunks of 10, 10, 10, 7: the mean loss's weights n_c / N


@pytest.mark.parametrize("net", ["relu_mlp", "relu_conv"])
def test_relu_hessian_trace_is_exact_with_no_products(net: str) -> None:
    # a ReLU net's Hessian is not its Gauss-Newton matrix (cross-layer blocks), but their traces agree
    model = tiny_mlp("relu", seed=70, widths=(8, 6)) if net == "relu_mlp" else conv_net("relu", seed=70)  # the per-sample Jacobian path
    x, y = classification_batch(n=N, d=8 if net == "relu_mlp" else 9, seed=71)
    hessian = dense_hessian(model, CE, x, y)
    assert not torch.allclose(hessian, dense_gauss_newton(model, CE, x, y), atol=1e-6)
    problem = CurvatureProblem(model, CE, (x, y), batch_size=10)
    record = curvature_record(problem, k=1, trace_probes=20)
    assert record.trace_method == ("hessian_backprop_exact" if net == "relu_mlp" else "gauss_newton_exact")
    assert record.trace_se == 0 and record.trace == pytest.approx(torch.trace(hessian).item(), rel=1e-10)
    assert record.n_products == curvature_record(problem, k=1).n_products  # the trace costs no products


def test_gauss_newton_problem_trace_is_exact_for_tanh() -> None:
    # tanh at a large scale: H != G and tr(H) != tr(G); the Gauss-Newton problem's trace is tr(G) exactly
    model = tiny_mlp("tanh", seed=72, scale=2.0)
    x, y = classification_batch(n=N, seed=73)
    exact = torch.trace(dense_gauss_newton(model, CE, x, y)).item()
    assert abs(exact - torch.trace(dense_hessian(model, CE, x, y)).item()) > 0.1 * abs(exact)
    record = curvature_record(CurvatureProblem(model, CE, (x, y), batch_size=10, kind="gauss_newton"), trace_probes=4)
    assert record.trace_method == "gauss_newton_exact"
    assert record.trace == pytest.approx(exact, rel=1e-10)
    assert not residual_trace_vanishes(model, ["hidden1.weight"]) and residual_trace_vanishes(model, ["output.bias"])


def test_linear_shortcut_and_per_sample_jacobians_agree() -> None:
    model = tiny_mlp("tanh", seed=74)
    x, y = classification_batch(n=N, seed=75)
    operator = DatasetOperator(CurvatureProblem(model, CE, (x, y), batch_size=10, kind="gauss_newton"))
    params = dict(zip(operator.block.names, operator.params, strict=True))
    fast = gauss_newton_trace(operator.work, params, CE, operator.chunks())
    total = 0.0
    for inputs, targets, weight in operator.chunks():
        out = model(inputs).detach()
        blocks = torch.func.vmap(torch.func.hessian(lambda z, t: CE(z[None], t[None])))(out, targets) / len(inputs)
        grams = jacobian_grams(model, params, inputs, max_bytes=3 * 4 * 8 * operator.dim)  # groups of 3 samples
        total += weight * (blocks * grams).sum().item()
    assert fast == pytest.approx(total, rel=1e-10)
    assert fast == pytest.approx(torch.trace(dense_gauss_newton(model, CE, x, y)).item(), rel=1e-10)


def test_samples_that_interact_keep_the_hutchinson_trace() -> None:
    # batch norm in training mode mixes samples (per-sample Jacobians would be wrong): deflated Hutchinson;
    # a model that is not a Sequential has no layer order to prove tr(R) = 0 with
    torch.manual_seed(76)
    model = nn.Sequential(nn.Linear(8, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 4)).double()
    x, y = classification_batch(n=N, seed=77)
    problem = CurvatureProblem(model, CE, (x, y), kind="gauss_newton", mode="train")
    record = curvature_record(problem, trace_probes=4)
    assert record.trace_method == "deflated_hutchinson" and record.trace_se > 0
    exact = curvature_record(problem.replace(mode="eval"), trace_probes=4)
    assert exact.trace_method == "gauss_newton_exact"
    assert exact.trace == pytest.approx(torch.trace(dense_gauss_newton(model.eval(), CE, x, y)).item(), rel=1e-10)

    class Wrapped(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = tiny_mlp("relu", seed=78)

        def forward(self, inputs: torch.Tensor) -> torch.Tensor:
            return self.net(inputs)

    assert not residual_trace_vanishes(Wrapped(), ["net.hidden1.weight"])
