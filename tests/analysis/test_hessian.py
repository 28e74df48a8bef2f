"""Hessian / Gauss-Newton operators and the Lanczos record vs exact dense oracles (torch.func.hessian, closed forms)."""

import numpy as np
import pytest
import torch
from torch import nn

from initlab.analysis import (
    CurvatureCheckError,
    CurvatureProblem,
    DatasetOperator,
    StochasticModelError,
    curvature_record,
    top_eigenvalue,
)
from tests.analysis.curvature_oracles import classification_batch, dense, dense_hessian, tiny_mlp

CE = nn.CrossEntropyLoss()


def record(model, loss_fn, x, y, **options):
    """curvature_record of one batch; problem options and solver options split by name."""
    problem_keys = {"params", "block", "kind", "dtype", "include_bias", "mode", "allow_stochastic", "batch_size",
                    "check"}
    problem = CurvatureProblem(model, loss_fn, (x, y), **{k: v for k, v in options.items() if k in problem_keys})
    return curvature_record(problem, **{k: v for k, v in options.items() if k not in problem_keys})


def regression_batch(n: int = 40, d: int = 5, seed: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64) * torch.linspace(0.5, 2.0, d, dtype=torch.float64)
    return x, torch.randn(n, 1, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_full_hessian_extreme_eigenvalues_match_dense(activation: str) -> None:
    model = tiny_mlp(activation)
    x, y = classification_batch()
    exact = torch.linalg.eigvalsh(dense_hessian(model, CE, x, y))
    result = record(model, CE, x, y, k=3, which="both", tol=1e-10)
    np.testing.assert_allclose(result.top, exact[-3:].flip(0).numpy(), rtol=1e-6)
    np.testing.assert_allclose(result.bottom, exact[:3].numpy(), rtol=1e-6)
    assert max(result.residuals["top"] + result.residuals["bottom"]) < 1e-6
    assert result.converged and result.n_products > 0
    np.testing.assert_allclose(result.ratio, exact[0].item() / exact[-1].item(), rtol=1e-6)
    settings = result.settings
    assert settings["num_samples"] == 32 and settings["loss_reduction"] == "mean"
    assert settings["dtype"] == "float64" and settings["mode"] == "eval" and settings["kind"] == "hessian"


def test_residual_certificates_are_true_residuals() -> None:
    # the bound beta_m |s_mi| read off the tridiagonal equals ||H y - theta y|| from a fresh product
    model = tiny_mlp("tanh", seed=1)
    x, y = classification_batch(seed=2)
    hessian = dense_hessian(model, CE, x, y)
    result = record(model, CE, x, y, k=2, which="both", tol=1e-3)
    scale = max(abs(v) for v in result.top + result.bottom)
    for values, vectors, residuals in [(result.top, result.top_vectors, result.residuals["top"]),
                                       (result.bottom, result.bottom_vectors, result.residuals["bottom"])]:
        values = torch.tensor(values, dtype=torch.float64)
        true = torch.linalg.vector_norm(hessian @ vectors - vectors * values, dim=0) / scale
        np.testing.assert_allclose(residuals, true.numpy(), rtol=1e-5, atol=1e-14)
        assert max(residuals) <= 1e-3


def test_one_sided_requests_on_a_block_with_zero_bottom() -> None:
    # last-layer block under softmax: a null space (shift all logits), so lambda_min = 0 exactly
    model = tiny_mlp("relu", seed=3)
    x, y = classification_batch(seed=4)
    exact = torch.linalg.eigvalsh(dense_hessian(model, CE, x, y, ["output.weight", "output.bias"]))
    top = record(model, CE, x, y, params="output", k=2, which="top", tol=1e-10)
    np.testing.assert_allclose(top.top, exact[-2:].flip(0).numpy(), rtol=1e-6)
    bottom = record(model, CE, x, y, block="output", k=1, which="bottom", tol=1e-10)
    np.testing.assert_allclose(bottom.bottom, [0.0], atol=1e-9 * exact[-1].item())
    assert top.bottom == [] and bottom.top == [] and top.converged and bottom.converged
    assert top.lambda_min is None and top.ratio is None


def test_a_block_of_start_vectors_reports_a_repeated_eigenvalue_with_its_multiplicity() -> None:
    # a single start vector spans one direction of an eigenspace; the block of two sees two of them
    model = tiny_mlp("relu", seed=3)
    x, y = classification_batch(seed=4)
    exact = torch.linalg.eigvalsh(dense_hessian(model, CE, x, y, ["output.weight", "output.bias"]))
    scale = exact[-1].item()
    assert (exact.abs() < 1e-9 * scale).sum() > 2  # the null space has dimension > 2
    block = record(model, CE, x, y, params="output", k=2, which="bottom", tol=1e-10, block_size=2)
    np.testing.assert_allclose(block.bottom, exact[:2].numpy(), atol=1e-9 * scale)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("include_bias", [True, False])
def test_layer_block_eigenvalues_match_dense_block(activation: str, include_bias: bool) -> None:
    model = tiny_mlp(activation, seed=5)
    x, y = classification_batch(seed=6)
    for layer in ["hidden1", "hidden2", "output"]:
        names = [f"{layer}.weight"] + ([f"{layer}.bias"] if include_bias else [])
        exact = torch.linalg.eigvalsh(dense_hessian(model, CE, x, y, names))
        result = record(model, CE, x, y, k=1, which="both", params=layer, include_bias=include_bias, tol=1e-10)
        np.testing.assert_allclose(result.lambda_max, exact[-1].item(), rtol=1e-6)
        # a layer block's bottom eigenvalue is often exactly 0 (softmax shift invariance): compare on the block's scale
        np.testing.assert_allclose(result.lambda_min, exact[0].item(), rtol=1e-6, atol=1e-8 * exact[-1].item())
        assert max(result.residuals["top"] + result.residuals["bottom"]) < 1e-6 and result.converged
        assert result.settings["include_bias"] is include_bias and result.settings["layer"] == layer
        assert set(result.layer_share) == {layer} and abs(result.layer_share[layer] - 1) < 1e-12


def test_linear_regression_hessian_is_twice_the_gram_matrix() -> None:
    # L = (1/n) sum_i (w.x_i + b - y_i)^2  =>  H = (2/n) X~^T X~ with X~ = [X, 1] (weight then bias)
    x, y = regression_batch()
    model = nn.Sequential(nn.Linear(5, 1)).double()
    gram = torch.cat([x, torch.ones(40, 1, dtype=torch.float64)], dim=1)
    exact = 2.0 / 40 * gram.T @ gram
    operator = DatasetOperator(CurvatureProblem(model, nn.MSELoss(), (x, y)))
    torch.testing.assert_close(dense(operator), exact, rtol=1e-12, atol=1e-12)
    result = record(model, nn.MSELoss(), x, y, k=2, which="both", tol=1e-12)
    eigs = torch.linalg.eigvalsh(exact)
    np.testing.assert_allclose(result.top, eigs[-2:].flip(0).numpy(), rtol=1e-8)
    np.testing.assert_allclose(result.bottom, eigs[:2].numpy(), rtol=1e-8)


def test_softmax_regression_matches_closed_form() -> None:
    # H = (1/n) sum_i (diag(p_i) - p_i p_i^T) kron x_i x_i^T, W [C, d] flattened row-major
    x, y = classification_batch(n=50, d=6, classes=3)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 3, bias=False)).double()
    p = torch.softmax(model(x), dim=1).detach()
    exact = sum(torch.kron(torch.diag(pi) - torch.outer(pi, pi), torch.outer(xi, xi)) for pi, xi in zip(p, x)) / 50
    operator = DatasetOperator(CurvatureProblem(model, CE, (x, y)))
    torch.testing.assert_close(dense(operator), exact, rtol=1e-10, atol=1e-12)
    lam = top_eigenvalue(CurvatureProblem(model, CE, (x, y)), tol=1e-12)
    np.testing.assert_allclose(lam, torch.linalg.eigvalsh(exact)[-1].item(), rtol=1e-8)


def test_relu_layer_blocks_equal_gauss_newton_exactly() -> None:
    # Remark 1: z^(n) is piecewise linear in one layer's (W, b) for ReLU nets -> H_w(k) == G_w(k).
    # The full Hessian is not: cross-layer blocks keep D_z L * D^2 z (products of weights).
    model = tiny_mlp("relu", seed=7)
    x, y = classification_batch(seed=8)
    problem = CurvatureProblem(model, CE, (x, y))
    for layer in range(3):
        hessian = dense(DatasetOperator(problem.replace(block=layer)))
        gauss_newton = dense(DatasetOperator(problem.replace(block=layer, kind="gauss_newton")))
        assert (hessian - gauss_newton).abs().max() <= 1e-8 * hessian.abs().max()
    full_gap = dense(DatasetOperator(problem)) - dense(DatasetOperator(problem.replace(kind="gauss_newton")))
    assert full_gap.abs().max() > 1e-3


def test_tanh_with_large_weights_hessian_differs_from_gauss_newton() -> None:
    model = tiny_mlp("tanh", seed=7, scale=3.0)
    x, y = classification_batch(seed=8)
    hessian = record(model, CE, x, y, params=0, which="both", tol=1e-10)
    gauss_newton = record(model, CE, x, y, params=0, kind="gauss_newton", which="both", tol=1e-10)
    assert abs(hessian.lambda_max - gauss_newton.lambda_max) > 0.05 * gauss_newton.lambda_max
    assert hessian.lambda_min < -0.05 * hessian.lambda_max  # H_2 makes H indefinite; G is PSD
    assert gauss_newton.lambda_min > -1e-10 * gauss_newton.lambda_max


def test_gauss_newton_is_psd_and_equals_hessian_for_linear_model() -> None:
    model = tiny_mlp("tanh", seed=9)
    x, y = classification_batch(seed=10)
    ggn = CurvatureProblem(model, CE, (x, y), kind="gauss_newton")
    assert torch.linalg.eigvalsh(dense(DatasetOperator(ggn)))[0] > -1e-12
    torch.manual_seed(1)
    linear = nn.Sequential(nn.Linear(8, 4)).double()
    problem = CurvatureProblem(linear, CE, (x, y))
    torch.testing.assert_close(dense(DatasetOperator(problem.replace(kind="gauss_newton"))),
                               dense(DatasetOperator(problem)), rtol=1e-10, atol=1e-13)


def test_block_eigenvalues_interlace_full_spectrum() -> None:
    model = tiny_mlp("tanh", seed=11)
    x, y = classification_batch(seed=12)
    full = record(model, CE, x, y, which="both", tol=1e-10)
    for layer in range(3):
        block = record(model, CE, x, y, params=layer, which="both", tol=1e-10)
        assert full.lambda_min - 1e-10 <= block.lambda_min <= block.lambda_max <= full.lambda_max + 1e-10


def test_sum_reduction_scales_eigenvalues_by_batch_size() -> None:
    model = tiny_mlp("relu", seed=13)
    x, y = classification_batch(seed=14)
    mean = record(model, CE, x, y, tol=1e-10)
    total = record(model, nn.CrossEntropyLoss(reduction="sum"), x, y, tol=1e-10, batch_size=10)  # 4 chunks
    np.testing.assert_allclose(total.lambda_max, 32 * mean.lambda_max, rtol=1e-8)
    assert total.settings["loss_reduction"] == "sum"
    functional = record(model, nn.functional.cross_entropy, x, y, tol=1e-10)
    np.testing.assert_allclose(functional.lambda_max, mean.lambda_max, rtol=1e-10)
    assert functional.settings["loss_reduction"] == "mean"
    custom = record(model, lambda out, t: CE(out, t), x, y, tol=1e-10)
    assert custom.settings["loss_reduction"] == "unknown"


def test_gradient_descent_is_stable_exactly_below_two_over_lambda_max() -> None:
    x, y = regression_batch(n=50, d=3, seed=15)
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(3, 1)).double()
    lam = top_eigenvalue(CurvatureProblem(model, nn.MSELoss(), (x, y)), tol=1e-12)

    def final_loss(lr: float, steps: int = 400) -> tuple[float, float]:
        trained = nn.Sequential(nn.Linear(3, 1)).double()
        trained.load_state_dict(model.state_dict())
        start = nn.functional.mse_loss(trained(x), y).item()
        for _ in range(steps):
            loss = nn.functional.mse_loss(trained(x), y)
            grads = torch.autograd.grad(loss, list(trained.parameters()))
            with torch.no_grad():
                for p, g in zip(trained.parameters(), grads, strict=True):
                    p -= lr * g
        return start, nn.functional.mse_loss(trained(x), y).item()

    optimum = torch.linalg.lstsq(torch.cat([x, torch.ones(50, 1, dtype=torch.float64)], 1), y).solution
    best = nn.functional.mse_loss(torch.cat([x, torch.ones(50, 1, dtype=torch.float64)], 1) @ optimum, y).item()
    start, stable = final_loss(0.95 * 2 / lam)
    assert stable - best < 1e-6 * start
    start, unstable = final_loss(1.05 * 2 / lam)
    assert unstable > 1e6 * start


def test_warm_start_needs_fewer_products() -> None:
    model = tiny_mlp("tanh", seed=16)
    x, y = classification_batch(seed=17)
    first = record(model, CE, x, y, k=2, tol=1e-8)
    grads = torch.autograd.grad(CE(model(x), y), list(model.parameters()))
    with torch.no_grad():  # a small training step moves the eigenvector a little
        for p, g in zip(model.parameters(), grads, strict=True):
            p -= 0.1 * g
    cold = record(model, CE, x, y, tol=1e-3)
    warm = record(model, CE, x, y, tol=1e-3, v0=first.top_vectors, check=False)  # the top 2: k + 1 are certified
    np.testing.assert_allclose(warm.lambda_max, cold.lambda_max, rtol=1e-6)
    assert warm.n_products < cold.n_products
    assert warm.settings["warm_start"] and not cold.settings["warm_start"]
    exact = torch.linalg.eigh(dense_hessian(model, CE, x, y)).eigenvectors[:, -2:]
    exact_start = record(model, CE, x, y, tol=1e-8, v0=exact, check=False)
    assert exact_start.n_products == 3  # eigenvectors span an invariant subspace: done at the first check (each block step on the CPU)


def test_float64_option_works_on_a_copy() -> None:
    model = tiny_mlp("tanh", seed=20).float()
    x, y = classification_batch(seed=21)
    before = [p.detach().clone() for p in model.parameters()]
    result64 = record(model, CE, x.float(), y, dtype=torch.float64, tol=1e-10)
    result32 = record(model, CE, x.float(), y)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    exact = torch.linalg.eigvalsh(dense_hessian(model.double(), CE, x, y))[-1].item()
    np.testing.assert_allclose(result64.lambda_max, exact, rtol=1e-6)
    np.testing.assert_allclose(result32.lambda_max, exact, rtol=1e-3)
    assert result64.settings["dtype"] == "float64" and result32.settings["dtype"] == "float32"


def batchnorm_model() -> nn.Sequential:
    torch.manual_seed(22)
    return nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 4)).double()


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_batchnorm_state_and_mode_are_untouched(mode: str) -> None:
    model = batchnorm_model()
    x, y = classification_batch(seed=23)
    model.train()
    model(x)  # non-trivial running statistics
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    params = {n: p.detach().clone() for n, p in model.named_parameters()}
    result = record(model, CE, x, y, mode=mode, which="both")
    assert result.settings["mode"] == mode
    assert all(m.training for m in model.modules())
    assert all(torch.equal(buffers[n], b) for n, b in model.named_buffers())
    assert all(torch.equal(params[n], p) for n, p in model.named_parameters())
    model.eval()
    if mode == "eval":
        manual = torch.linalg.eigvalsh(dense_hessian(model, CE, x, y))[-1].item()
        np.testing.assert_allclose(result.lambda_max, manual, rtol=1e-6)
    assert not model.training


def test_dropout_in_train_mode_is_refused_unless_allowed() -> None:
    torch.manual_seed(24)
    model = nn.Sequential(nn.Linear(8, 16), nn.Dropout(0.5), nn.ReLU(), nn.Linear(16, 4)).double().train()
    x, y = classification_batch(seed=25)
    with pytest.raises(StochasticModelError, match="Dropout|1"):
        record(model, CE, x, y, mode="train")
    assert record(model, CE, x, y).settings["mode"] == "eval"  # default: deterministic eval
    allowed = record(model, CE, x, y, mode="train", allow_stochastic=True)
    assert allowed.settings["mode"] == "train" and model.training


def test_hidden_randomness_fails_the_determinism_check() -> None:
    class Noise(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + 0.1 * torch.randn_like(x)

    model = nn.Sequential(nn.Linear(8, 4), Noise()).double()
    x, y = classification_batch(seed=26)
    with pytest.raises(CurvatureCheckError, match="stochastic"):
        DatasetOperator(CurvatureProblem(model, CE, (x, y)))


def test_record_as_dict_is_plain() -> None:
    model = tiny_mlp("relu", seed=27)
    x, y = classification_batch(seed=28)
    result = record(model, CE, x, y, k=2, which="both", trace_probes=5, density_probes=2, density_steps=10)
    plain = result.as_dict()
    assert {"lambda_max", "lambda_min", "ratio", "top", "bottom", "residuals", "trace", "trace_se", "density",
            "layer_share", "n_products", "settings"} <= set(plain)
    import json

    assert json.loads(json.dumps(plain)) == plain
    np.testing.assert_allclose(sum(plain["layer_share"].values()), 1.0, rtol=1e-12)


def test_bad_arguments_are_refused() -> None:
    model = tiny_mlp("relu")
    x, y = classification_batch()
    problem = CurvatureProblem(model, CE, (x, y))
    with pytest.raises(ValueError, match="which"):
        curvature_record(problem, which="LA")
    with pytest.raises(ValueError, match="one-shot"):
        CurvatureProblem(model, CE, iter([(x, y)]))
    with pytest.raises(ValueError, match="batch_size"):
        CurvatureProblem(model, CE, (x, y), batch_size=0)
    with pytest.raises(KeyError, match="no weight layer"):
        DatasetOperator(problem.replace(block="nope"))
