"""Dataset-level curvature: products summed over uneven chunks equal the dense Hessian / Gauss-Newton
matrix of the MEAN loss over all N samples (torch.func oracles on the concatenated data)."""

import numpy as np
import pytest
import torch
from torch import nn

from initlab.analysis import CurvatureProblem, DatasetOperator, curvature_record, top_eigenvalue
from tests.analysis.curvature_oracles import classification_batch, dense, dense_gauss_newton, dense_hessian, tiny_mlp

CE = nn.CrossEntropyLoss()
N = 37  # 37 = 10 + 10 + 10 + 7 with batch_size 10: the split does not divide N


def uneven_batches(x: torch.Tensor, y: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The data as a list of batches of 13, 9 and 15 samples."""
    return [(x[a:b], y[a:b]) for a, b in [(0, 13), (13, 22), (22, N)]]


@pytest.mark.parametrize("activation, source", [("tanh", "chunked_batch"), ("relu", "chunked_batch"),
                                                ("tanh", "list_of_batches"), ("tanh", "list_chunked")])
def test_top3_and_trace_match_the_dense_mean_loss_hessian(activation: str, source: str) -> None:
    model = tiny_mlp(activation, seed=60, widths=(8, 6))
    x, y = classification_batch(n=N, seed=61)
    exact = dense_hessian(model, CE, x, y)
    data, batch_size = {"chunked_batch": ((x, y), 10), "list_of_batches": (uneven_batches(x, y), None),
                        "list_chunked": (uneven_batches(x, y), 4)}[source]
    problem = CurvatureProblem(model, CE, data, batch_size=batch_size)
    operator = DatasetOperator(problem)
    assert operator.num_samples == N and operator.settings["num_samples"] == N
    matrix = dense(operator)
    torch.testing.assert_close(matrix, exact, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(torch.trace(matrix).item(), torch.trace(exact).item(), rtol=1e-6)
    eigenvalues = torch.linalg.eigvalsh(exact)
    record = curvature_record(problem, k=3, which="both", tol=1e-10, trace_probes=60)
    np.testing.assert_allclose(record.top, eigenvalues[-3:].flip(0).numpy(), rtol=1e-6)
    np.testing.assert_allclose(record.bottom, eigenvalues[:3].numpy(), rtol=1e-6)
    # an MLP: the exact trace by Hessian backpropagation (SE 0, rounding only), summed over uneven chunks
    assert record.trace == pytest.approx(torch.trace(exact).item(), rel=1e-10)
    assert record.trace_method == "hessian_backprop_exact" and record.trace_se == 0
    reference = CE(model(x), y).item()
    np.testing.assert_allclose(operator.loss, reference, rtol=1e-12)


def test_chunked_gradient_is_the_mean_loss_gradient() -> None:
    model = tiny_mlp("tanh", seed=62, widths=(8, 6))
    x, y = classification_batch(n=N, seed=63)
    operator = DatasetOperator(CurvatureProblem(model, CE, (x, y), batch_size=10))
    grads = torch.autograd.grad(CE(model(x), y), list(model.parameters()))
    torch.testing.assert_close(operator.gradient, torch.cat([g.reshape(-1) for g in grads]), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("layer, names", [("hidden1", ["hidden1.weight", "hidden1.bias"]), ("output", ["output.weight", "output.bias"])])
def test_block_operators_over_chunks(layer: str, names: list[str]) -> None:
    model = tiny_mlp("tanh", seed=64, widths=(8, 6))
    x, y = classification_batch(n=N, seed=65)
    problem = CurvatureProblem(model, CE, uneven_batches(x, y), batch_size=10, block=layer)
    exact = dense_hessian(model, CE, x, y, names)
    torch.testing.assert_close(dense(DatasetOperator(problem)), exact, rtol=1e-6, atol=1e-12)
    top = curvature_record(problem, k=3, tol=1e-10).top
    np.testing.assert_allclose(top, torch.linalg.eigvalsh(exact)[-3:].flip(0).numpy(), rtol=1e-6)


@pytest.mark.parametrize("block, names", [(None, None), (1, ["hidden2.weight", "hidden2.bias"])])
def test_gauss_newton_over_chunks(block: int | None, names: list[str] | None) -> None:
    model = tiny_mlp("tanh", seed=66, scale=2.0, widths=(8, 6))
    x, y = classification_batch(n=N, seed=67)
    problem = CurvatureProblem(model, CE, (x, y), batch_size=10, kind="gauss_newton", block=block)
    exact = dense_gauss_newton(model, CE, x, y, names)
    torch.testing.assert_close(dense(DatasetOperator(problem)), exact, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(top_eigenvalue(problem, tol=1e-10), torch.linalg.eigvalsh(exact)[-1].item(), rtol=1e-6)


def test_sum_loss_chunks_add_up() -> None:
    model = tiny_mlp("relu", seed=68, widths=(8, 6))
    x, y = classification_batch(n=N, seed=69)
    total = nn.CrossEntropyLoss(reduction="sum")
    chunked = dense(DatasetOperator(CurvatureProblem(model, total, (x, y), batch_size=10)))
    torch.testing.assert_close(chunked, dense_hessian(model, total, x, y), rtol=1e-6, atol=1e-12)


def test_a_dataloader_is_a_data_source() -> None:
    model = tiny_mlp("tanh", seed=70, widths=(8, 6))
    x, y = classification_batch(n=N, seed=71)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    lam = top_eigenvalue(CurvatureProblem(model, CE, loader, batch_size=None), tol=1e-10)
    np.testing.assert_allclose(lam, torch.linalg.eigvalsh(dense_hessian(model, CE, x, y))[-1].item(), rtol=1e-6)
