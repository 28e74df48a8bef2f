"""Hessian operator and eigenvalues vs exact dense oracles (torch.func.hessian, closed forms)."""

import numpy as np
import pytest
import torch
from torch import nn

from initlab.analysis import (
    CurvatureCheckError,
    CurvatureOperator,
    GaussNewtonOperator,
    HessianOperator,
    StochasticModelError,
    gauss_newton_eigenvalues,
    hessian_eigenvalues,
    lanczos_eigenvalues,
    power_iteration_top_eigenvalue,
)
from tests.analysis.curvature_oracles import classification_batch, dense_hessian, tiny_mlp

CE = nn.CrossEntropyLoss()


def dense(operator: CurvatureOperator) -> torch.Tensor:
    """All columns of the operator (tiny dims only)."""
    return operator.matmat(torch.eye(operator.dim, dtype=operator.dtype))


def regression_batch(n: int = 40, d: int = 5, seed: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64) * torch.linspace(0.5, 2.0, d, dtype=torch.float64)
    return x, torch.randn(n, 1, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("method", ["lanczos", "arpack"])
def test_full_hessian_extreme_eigenvalues_match_dense(activation: str, method: str) -> None:
    model = tiny_mlp(activation)
    x, y = classification_batch()
    exact = torch.linalg.eigvalsh(dense_hessian(model, CE, x, y))
    result = lanczos_eigenvalues(HessianOperator(model, CE, x, y), k=3, which="both", tol=1e-10, method=method)
    np.testing.assert_allclose(result.top, exact[-3:].flip(0).numpy(), rtol=1e-6)
    np.testing.assert_allclose(result.bottom[0], exact[0].item(), rtol=1e-6)
    assert max(result.top_residuals + result.bottom_residuals) < 1e-6
    assert result.converged and result.n_products > 0
    assert result.settings["batch_size"] == 32 and result.settings["loss_reduction"] == "mean"
    assert result.settings["dtype"] == "float64" and result.settings["mode"] == "eval"
    assert result.settings["method"] == method


@pytest.mark.parametrize("method", ["lanczos", "arpack"])
def test_one_sided_requests_on_a_block_with_zero_bottom(method: str) -> None:
    # last-layer block under softmax: a null space (shift all logits), so lambda_min = 0 exactly
    model = tiny_mlp("relu", seed=3)
    x, y = classification_batch(seed=4)
    exact = torch.linalg.eigvalsh(dense_hessian(model, CE, x, y, ["5.weight", "5.bias"]))
    operator = HessianOperator(model, CE, x, y, params="5")
    top = lanczos_eigenvalues(operator, k=2, which="LA", tol=1e-10, method=method)
    np.testing.assert_allclose(top.top, exact[-2:].flip(0).numpy(), rtol=1e-6)
    bottom = lanczos_eigenvalues(operator, k=1, which="SA", tol=1e-10, method=method)
    np.testing.assert_allclose(bottom.bottom, [0.0], atol=1e-9 * exact[-1].item())
    assert top.bottom == [] and bottom.top == [] and top.converged and bottom.converged


def test_repeated_eigenvalues_single_vector_lanczos_vs_arpack() -> None:
    model = tiny_mlp("relu", seed=3)
    x, y = classification_batch(seed=4)
    operator = HessianOperator(model, CE, x, y, params="5")
    scale = lanczos_eigenvalues(operator, tol=1e-10).lambda_max
    arpack = lanczos_eigenvalues(operator, k=2, which="SA", tol=1e-10, method="arpack")
    np.testing.assert_allclose(arpack.bottom, [0.0, 0.0], atol=1e-9 * scale)  # null space has dim > 1
    single = lanczos_eigenvalues(operator, k=2, which="SA", tol=1e-10)
    assert abs(single.bottom[0]) < 1e-9 * scale < single.bottom[1]  # the zero eigenspace is seen once


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("include_bias", [True, False])
def test_layer_block_eigenvalues_match_dense_block(activation: str, include_bias: bool) -> None:
    model = tiny_mlp(activation, seed=5)
    x, y = classification_batch(seed=6)
    for layer in ["1", "3", "5"]:
        names = [f"{layer}.weight"] + ([f"{layer}.bias"] if include_bias else [])
        exact = torch.linalg.eigvalsh(dense_hessian(model, CE, x, y, names))
        result = hessian_eigenvalues(model, CE, x, y, k=1, which="both", params=layer, include_bias=include_bias,
                                     tol=1e-10)
        np.testing.assert_allclose(result.lambda_max, exact[-1].item(), rtol=1e-6)
        # a layer block's bottom eigenvalue is often exactly 0 (softmax shift invariance): compare on the block's scale
        np.testing.assert_allclose(result.lambda_min, exact[0].item(), rtol=1e-6, atol=1e-8 * exact[-1].item())
        assert max(result.top_residuals + result.bottom_residuals) < 1e-6 and result.converged
        assert result.settings["include_bias"] is include_bias and result.settings["layer"] == layer


def test_linear_regression_hessian_is_twice_the_gram_matrix() -> None:
    # L = (1/n) sum_i (w.x_i + b - y_i)^2  =>  H = (2/n) X~^T X~ with X~ = [X, 1] (weight then bias)
    x, y = regression_batch()
    model = nn.Sequential(nn.Linear(5, 1)).double()
    gram = torch.cat([x, torch.ones(40, 1, dtype=torch.float64)], dim=1)
    exact = 2.0 / 40 * gram.T @ gram
    operator = HessianOperator(model, nn.MSELoss(), x, y)
    torch.testing.assert_close(dense(operator), exact, rtol=1e-12, atol=1e-12)
    result = hessian_eigenvalues(model, nn.MSELoss(), x, y, k=2, which="both", tol=1e-12)
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
    torch.testing.assert_close(dense(HessianOperator(model, CE, x, y)), exact, rtol=1e-10, atol=1e-12)
    result = hessian_eigenvalues(model, CE, x, y, tol=1e-12)
    np.testing.assert_allclose(result.lambda_max, torch.linalg.eigvalsh(exact)[-1].item(), rtol=1e-8)


def test_relu_layer_blocks_equal_gauss_newton_exactly() -> None:
    # Remark 1: z^(n) is piecewise linear in one layer's (W, b) for ReLU nets -> H_w(k) == G_w(k).
    # The full Hessian is not: cross-layer blocks keep D_z L * D^2 z (products of weights).
    model = tiny_mlp("relu", seed=7)
    x, y = classification_batch(seed=8)
    for layer in range(3):
        hessian = dense(HessianOperator(model, CE, x, y, params=layer))
        gauss_newton = dense(GaussNewtonOperator(model, CE, x, y, params=layer))
        assert (hessian - gauss_newton).abs().max() <= 1e-8 * hessian.abs().max()
        hessian_top = hessian_eigenvalues(model, CE, x, y, params=layer, tol=1e-10).lambda_max
        gn_top = gauss_newton_eigenvalues(model, CE, x, y, params=layer, tol=1e-10).lambda_max
        assert abs(hessian_top - gn_top) <= 1e-8 * abs(hessian_top)
    full_gap = dense(HessianOperator(model, CE, x, y)) - dense(GaussNewtonOperator(model, CE, x, y))
    assert full_gap.abs().max() > 1e-3


def test_tanh_with_large_weights_hessian_differs_from_gauss_newton() -> None:
    model = tiny_mlp("tanh", seed=7, scale=3.0)
    x, y = classification_batch(seed=8)
    hessian = hessian_eigenvalues(model, CE, x, y, params=0, which="both", tol=1e-10)
    gauss_newton = gauss_newton_eigenvalues(model, CE, x, y, params=0, which="both", tol=1e-10)
    assert abs(hessian.lambda_max - gauss_newton.lambda_max) > 0.05 * gauss_newton.lambda_max
    assert hessian.lambda_min < -0.05 * hessian.lambda_max  # H_2 makes H indefinite; G is PSD
    assert gauss_newton.lambda_min > -1e-10 * gauss_newton.lambda_max


def test_gauss_newton_is_psd_and_equals_hessian_for_linear_model() -> None:
    model = tiny_mlp("tanh", seed=9)
    x, y = classification_batch(seed=10)
    assert torch.linalg.eigvalsh(dense(GaussNewtonOperator(model, CE, x, y)))[0] > -1e-12
    torch.manual_seed(1)
    linear = nn.Sequential(nn.Linear(8, 4)).double()
    torch.testing.assert_close(
        dense(GaussNewtonOperator(linear, CE, x, y)), dense(HessianOperator(linear, CE, x, y)), rtol=1e-10, atol=1e-13
    )


def test_block_eigenvalues_interlace_full_spectrum() -> None:
    model = tiny_mlp("tanh", seed=11)
    x, y = classification_batch(seed=12)
    full = hessian_eigenvalues(model, CE, x, y, which="both", tol=1e-10)
    for layer in range(3):
        block = hessian_eigenvalues(model, CE, x, y, params=layer, which="both", tol=1e-10)
        assert full.lambda_min - 1e-10 <= block.lambda_min <= block.lambda_max <= full.lambda_max + 1e-10


def test_sum_reduction_scales_eigenvalues_by_batch_size() -> None:
    model = tiny_mlp("relu", seed=13)
    x, y = classification_batch(seed=14)
    mean = hessian_eigenvalues(model, CE, x, y, tol=1e-10)
    total = hessian_eigenvalues(model, nn.CrossEntropyLoss(reduction="sum"), x, y, tol=1e-10)
    np.testing.assert_allclose(total.lambda_max, 32 * mean.lambda_max, rtol=1e-8)
    assert total.settings["loss_reduction"] == "sum"
    functional = hessian_eigenvalues(model, nn.functional.cross_entropy, x, y, tol=1e-10)
    np.testing.assert_allclose(functional.lambda_max, mean.lambda_max, rtol=1e-10)
    assert functional.settings["loss_reduction"] == "mean"
    custom = hessian_eigenvalues(model, lambda out, t: CE(out, t), x, y, tol=1e-10)
    assert custom.settings["loss_reduction"] == "unknown"


def test_gradient_descent_is_stable_exactly_below_two_over_lambda_max() -> None:
    x, y = regression_batch(n=50, d=3, seed=15)
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(3, 1)).double()
    lam = hessian_eigenvalues(model, nn.MSELoss(), x, y, tol=1e-12).lambda_max

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
    first = hessian_eigenvalues(model, CE, x, y, tol=1e-8, return_eigenvectors=True)
    with torch.no_grad():  # a small training step moves the eigenvector a little
        loss = CE(model(x), y)
    grads = torch.autograd.grad(CE(model(x), y), list(model.parameters()))
    with torch.no_grad():
        for p, g in zip(model.parameters(), grads, strict=True):
            p -= 0.1 * g
    cold = hessian_eigenvalues(model, CE, x, y, tol=1e-8)
    warm = hessian_eigenvalues(model, CE, x, y, tol=1e-8, v0=first.top_eigenvectors[:, 0], return_eigenvectors=True)
    assert loss.item() > 0
    np.testing.assert_allclose(warm.lambda_max, cold.lambda_max, rtol=1e-7)
    assert warm.n_products < cold.n_products
    assert warm.settings["warm_start"] and not cold.settings["warm_start"]
    exact_start = hessian_eigenvalues(model, CE, x, y, tol=1e-8, v0=warm.top_eigenvectors, return_eigenvectors=True)
    assert exact_start.n_products <= 3  # an eigenvector spans an invariant subspace at once
    arpack = lanczos_eigenvalues(HessianOperator(model, CE, x, y), tol=1e-8, method="arpack")
    assert warm.n_products < arpack.n_products


def test_power_iteration_baseline_is_close_but_costlier() -> None:
    model = tiny_mlp("tanh", seed=18)
    x, y = classification_batch(seed=19)
    exact = torch.linalg.eigvalsh(dense_hessian(model, CE, x, y))[-1].item()
    power = power_iteration_top_eigenvalue(model, CE, x, y, max_iter=1000, tol=1e-6)
    assert abs(power.lambda_max - exact) < 1e-3 * exact
    assert len(power.history) == power.n_products


def test_float64_option_works_on_a_copy() -> None:
    model = tiny_mlp("tanh", seed=20).float()
    x, y = classification_batch(seed=21)
    before = [p.detach().clone() for p in model.parameters()]
    result64 = hessian_eigenvalues(model, CE, x.float(), y, dtype=torch.float64, tol=1e-10)
    result32 = hessian_eigenvalues(model, CE, x.float(), y)
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
    result = hessian_eigenvalues(model, CE, x, y, mode=mode, which="both")
    assert result.settings["mode"] == mode
    assert all(m.training for m in model.modules())
    assert all(torch.equal(buffers[n], b) for n, b in model.named_buffers())
    assert all(torch.equal(params[n], p) for n, p in model.named_parameters())
    model.eval()
    manual = torch.linalg.eigvalsh(dense_hessian(model, CE, x, y))[-1].item() if mode == "eval" else None
    if manual is not None:
        np.testing.assert_allclose(result.lambda_max, manual, rtol=1e-6)
    assert not model.training


def test_dropout_in_train_mode_is_refused_unless_allowed() -> None:
    torch.manual_seed(24)
    model = nn.Sequential(nn.Linear(8, 16), nn.Dropout(0.5), nn.ReLU(), nn.Linear(16, 4)).double().train()
    x, y = classification_batch(seed=25)
    with pytest.raises(StochasticModelError, match="Dropout|1"):
        hessian_eigenvalues(model, CE, x, y, mode="train")
    assert hessian_eigenvalues(model, CE, x, y).settings["mode"] == "eval"  # default: deterministic eval
    allowed = hessian_eigenvalues(model, CE, x, y, mode="train", allow_stochastic=True)
    assert allowed.settings["mode"] == "train" and model.training


def test_hidden_randomness_fails_the_determinism_check() -> None:
    class Noise(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + 0.1 * torch.randn_like(x)

    model = nn.Sequential(nn.Linear(8, 4), Noise()).double()
    x, y = classification_batch(seed=26)
    with pytest.raises(CurvatureCheckError, match="stochastic"):
        HessianOperator(model, CE, x, y)


def test_asymmetric_operator_fails_the_symmetry_check() -> None:
    class Skewed(CurvatureOperator):
        def __init__(self) -> None:
            self.dim, self.dtype, self.device = 6, torch.float64, torch.device("cpu")
            self.n_products, self.settings = 0, {}
            self.matrix = torch.eye(6, dtype=torch.float64) + torch.triu(torch.ones(6, 6, dtype=torch.float64), 1)

        def _products(self, vectors: torch.Tensor) -> torch.Tensor:
            return vectors @ self.matrix.T

    with pytest.raises(CurvatureCheckError, match="symmetric"):
        Skewed().check()


def test_scipy_linear_operator_view_and_product_count() -> None:
    model = tiny_mlp("relu", seed=27)
    x, y = classification_batch(seed=28)
    operator = HessianOperator(model, CE, x, y)
    assert operator.n_products == 0
    v = np.random.default_rng(0).standard_normal((operator.dim, 3))
    np.testing.assert_allclose(
        operator.as_linear_operator() @ v, dense_hessian(model, CE, x, y).numpy() @ v, rtol=1e-10, atol=1e-12
    )
    assert operator.n_products == 3
    batched = HessianOperator(model, CE, x, y, batched=True)
    torch.testing.assert_close(batched.matmat(torch.as_tensor(v)), operator.matmat(torch.as_tensor(v)))
    batched_gn = GaussNewtonOperator(model, CE, x, y, batched=True)
    looped_gn = GaussNewtonOperator(model, CE, x, y)
    torch.testing.assert_close(batched_gn.matmat(torch.as_tensor(v)), looped_gn.matmat(torch.as_tensor(v)))
