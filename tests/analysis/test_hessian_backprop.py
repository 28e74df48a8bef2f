"""The exact Hessian trace by Hessian backpropagation (issue 28 item 2) against dense torch.func Hessians."""

import pytest
import torch
from torch import nn

from initlab.analysis import CurvatureProblem, curvature_record
from initlab.analysis.hessian_diagonal import hessian_trace_exact, supports_exact_trace
from initlab.models.nets import mlp
from tests.analysis.curvature_oracles import classification_batch, conv_net, dense_hessian, tiny_mlp

CE = nn.CrossEntropyLoss()
N = 23  # chunks of 10, 10, 3: the mean loss's weights n_c / N


def scaled_mlp(activation: str, widths: tuple[int, ...], bias: bool, seed: int) -> nn.Sequential:
    """Weights x1.5 so smooth activations leave their linear range (large f'' residual terms); ``elu_inplace``:
    an in-place ELU (it overwrites its input, where f' and f'' are read)."""
    torch.manual_seed(seed)
    model = mlp([8], 4, list(widths), "tanh" if activation == "elu_inplace" else activation, bias=bias).double()
    for name, module in list(model.named_children()):
        if activation == "elu_inplace" and isinstance(module, nn.Tanh):
            setattr(model, name, nn.ELU(inplace=True))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.5)
    return model


def backprop_trace(model: nn.Module, x: torch.Tensor, y: torch.Tensor, names: list[str], loss=CE) -> float:
    problem = CurvatureProblem(model, loss, (x, y), batch_size=10)
    return hessian_trace_exact(model, names, loss, problem.weighted_chunks(x.device, x.dtype))


@pytest.mark.parametrize(("activation", "widths", "bias"), [
    ("tanh", (6,), True), ("tanh", (5, 6, 5, 4), True), ("relu", (7, 5), True), ("relu", (6, 5, 4), False),
    ("sigmoid", (7, 5), False), ("sigmoid", (5, 6, 5, 4), True), ("gelu", (6,), True), ("gelu", (6, 5, 4), True),
    ("leaky_relu", (7, 5), True), ("elu_inplace", (5, 6, 5, 4), True)])
def test_trace_equals_the_dense_hessians(activation: str, widths: tuple[int, ...], bias: bool) -> None:
    # 1-4 hidden layers: the diagonal-only path (<= 2 hidden) and the dense-residual path (3+ hidden)
    model = scaled_mlp(activation, widths, bias, seed=len(widths))
    x, y = classification_batch(n=N, seed=90 + len(widths))
    names = [n for n, _ in model.named_parameters()]
    exact = torch.trace(dense_hessian(model, CE, x, y)).item()
    assert backprop_trace(model, x, y, names) == pytest.approx(exact, rel=1e-10, abs=1e-13)


def test_block_traces_and_a_summed_loss() -> None:
    # a layer block (weight alone, weight + bias) and a sum-reduced loss: each its own dense oracle
    model = scaled_mlp("tanh", (7, 5), True, seed=91)
    x, y = classification_batch(n=N, seed=92)
    for names in (["hidden2.weight"], ["hidden1.weight", "hidden1.bias"], ["output.bias", "hidden1.bias"]):
        exact = torch.trace(dense_hessian(model, CE, x, y, names)).item()
        assert backprop_trace(model, x, y, names) == pytest.approx(exact, rel=1e-10)
    summed = nn.CrossEntropyLoss(reduction="sum")
    names = [n for n, _ in model.named_parameters()]
    exact = torch.trace(dense_hessian(model, summed, x, y)).item()
    assert backprop_trace(model, x, y, names, summed) == pytest.approx(exact, rel=1e-10)


def test_record_uses_it_and_the_residual_matters() -> None:
    # tanh at a large scale: tr(H) is far from tr(G), the record's trace is tr(H) with SE 0 and no products
    model = tiny_mlp("tanh", seed=93, scale=2.0)
    x, y = classification_batch(n=N, seed=94)
    problem = CurvatureProblem(model, CE, (x, y), batch_size=10)
    record = curvature_record(problem, k=1, trace_probes=20)
    exact = torch.trace(dense_hessian(model, CE, x, y)).item()
    assert record.trace_method == "hessian_backprop_exact" and record.trace_se == 0
    assert record.trace == pytest.approx(exact, rel=1e-10)
    assert record.n_products == curvature_record(problem, k=1).n_products
    gauss_newton = curvature_record(problem.replace(kind="gauss_newton"), k=1, trace_probes=20)
    assert gauss_newton.trace_method == "gauss_newton_exact" and abs(gauss_newton.trace - exact) > 0.05 * abs(exact)


def test_models_it_does_not_cover_are_refused() -> None:
    # convolutions, batch norm, a dropout that is active: None (the record falls back to Hutchinson)
    cnn = conv_net("tanh", seed=95)
    x, y = classification_batch(n=N, d=9, seed=96)
    names = [n for n, _ in cnn.named_parameters()]
    assert not supports_exact_trace(cnn, names) and backprop_trace(cnn, x, y, names) is None
    record = curvature_record(CurvatureProblem(cnn, CE, (x, y)), k=1, trace_probes=30)
    assert record.trace_method == "deflated_hutchinson" and record.trace_se > 0
    sequence = nn.Sequential(nn.Linear(8, 6), nn.Tanh(), nn.Flatten(), nn.Linear(18, 4)).double()
    assert backprop_trace(sequence, x[:, :8].reshape(N, 1, 8).expand(N, 3, 8), y, ["0.weight"]) is None
    normed = nn.Sequential(nn.Linear(8, 6), nn.BatchNorm1d(6), nn.Tanh(), nn.Linear(6, 4))
    dropped = nn.Sequential(nn.Linear(8, 6), nn.Dropout(0.5), nn.Tanh(), nn.Linear(6, 4))
    assert not supports_exact_trace(normed, ["0.weight"])
    assert supports_exact_trace(dropped.eval(), ["0.weight"]) and not supports_exact_trace(dropped.train(), ["0.weight"])
