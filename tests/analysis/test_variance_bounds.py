"""Variance flow, dead ReLUs and the paper's Theorem 2 bounds vs exact oracles."""

import numpy as np
import pytest
import torch
from torch import nn

from initlab.analysis import (
    CurvatureProblem,
    dead_relu_fraction,
    top_eigenvalue,
    layer_segments,
    output_hessian_norms,
    segment_inputs,
    theorem2_bounds,
    variance_flow,
    weight_input_norms,
)
from initlab.models import cnn, deep_linear
from tests.analysis.curvature_oracles import classification_batch, dense_hessian, tiny_mlp

CE = nn.CrossEntropyLoss()


def test_deep_linear_variances_grow_by_the_square_of_the_gain() -> None:
    # W = 1.5 I: z^(k+1) = 1.5 z^(k) and dL/dz^(k) = 1.5 dL/dz^(k+1) exactly (METHODS §6)
    model = deep_linear([2], 2, depth=6, width=2).double()
    with torch.no_grad():
        for layer in model:
            if isinstance(layer, nn.Linear):
                layer.weight.copy_(1.5 * torch.eye(2))
    x = torch.randn(64, 2, dtype=torch.float64)
    flow = variance_flow(model, nn.MSELoss(), x, torch.zeros(64, 2, dtype=torch.float64))
    forward = np.array([f["activation_variance"] for f in flow])
    backward = np.array([f["gradient_variance"] for f in flow])
    np.testing.assert_allclose(forward[1:] / forward[:-1], 2.25, rtol=1e-10)
    np.testing.assert_allclose(backward[:-1] / backward[1:], 2.25, rtol=1e-10)
    np.testing.assert_allclose(flow[0]["input_variance"], x.var(unbiased=False).item(), rtol=1e-12)


def test_variance_flow_matches_manual_forward_and_backward() -> None:
    model = tiny_mlp("tanh", seed=40)
    x, y = classification_batch(seed=41)
    flow = variance_flow(model, CE, x, y)
    hidden = x.clone().requires_grad_(True)
    h1 = model[1](hidden)
    a1 = model[2](h1)
    loss = CE(model[5](model[4](model[3](a1))), y)
    grad_x, grad_h1 = torch.autograd.grad(loss, [hidden, h1])
    np.testing.assert_allclose(flow[0]["preactivation_variance"], h1.var(unbiased=False).item(), rtol=1e-12)
    np.testing.assert_allclose(flow[0]["activation_variance"], a1.var(unbiased=False).item(), rtol=1e-12)
    np.testing.assert_allclose(flow[0]["gradient_variance"], grad_x.var(unbiased=False).item(), rtol=1e-10)
    np.testing.assert_allclose(flow[0]["preactivation_gradient_variance"], grad_h1.var(unbiased=False).item(),
                               rtol=1e-10)
    assert flow[-1]["activation_variance"] == flow[-1]["preactivation_variance"]  # no activation after logits


def test_dead_relu_fraction_counts_units_never_active() -> None:
    model = tiny_mlp("relu", seed=42)
    with torch.no_grad():  # first hidden layer: 4 of 16 units can never fire
        model[1].weight[:4] = 0.0
        model[1].bias[:4] = -1.0
    x, _ = classification_batch(seed=43)
    model.train()
    fractions = dead_relu_fraction(model, x)
    assert set(fractions) == {"act1", "act2"}
    alive = (model[2](model[1](x)) > 0).any(dim=0)
    np.testing.assert_allclose(fractions["act1"], 1 - alive.double().mean().item())
    assert fractions["act1"] >= 0.25
    assert model.training


def test_output_hessian_norms_match_softmax_blocks() -> None:
    logits = torch.randn(12, 5, dtype=torch.float64)
    targets = torch.randint(0, 5, (12,))
    p = torch.softmax(logits, dim=1)
    blocks = (torch.diag_embed(p) - p[:, :, None] * p[:, None, :]) / 12
    exact = torch.linalg.eigvalsh(blocks).abs().amax(dim=1)
    torch.testing.assert_close(output_hessian_norms(CE, logits, targets), exact, rtol=1e-12, atol=1e-15)
    mse = output_hessian_norms(nn.MSELoss(reduction="sum"), logits, torch.zeros_like(logits))
    torch.testing.assert_close(mse, torch.full((12,), 2.0, dtype=torch.float64))


@pytest.mark.parametrize("bias", [True, False])
def test_weight_input_norms_match_dense_jacobian_of_the_weight_map(bias: bool) -> None:
    torch.manual_seed(44)
    conv = nn.Conv2d(2, 3, 3, padding=1, bias=bias).double()
    z = torch.randn(4, 2, 5, 5, dtype=torch.float64)
    ours = weight_input_norms(conv, z, include_bias=True)
    for n in range(4):
        params = (conv.weight, conv.bias) if bias else (conv.weight,)

        def output(*p: torch.Tensor, n: int = n) -> torch.Tensor:
            weights = dict(zip(["weight", "bias"], p, strict=False))
            return torch.func.functional_call(conv, weights, (z[n : n + 1],))

        jac = torch.func.jacrev(output, argnums=tuple(range(len(params))))(*params)
        dense = torch.cat([j.reshape(3 * 25, -1) for j in jac], dim=1)
        np.testing.assert_allclose(ours[n].item(), torch.linalg.matrix_norm(dense, ord=2).item(), rtol=1e-10)
    linear = nn.Linear(5, 3).double()
    v = torch.randn(4, 5, dtype=torch.float64)
    torch.testing.assert_close(weight_input_norms(linear, v, True), (v.pow(2).sum(1) + 1).sqrt())
    torch.testing.assert_close(weight_input_norms(linear, v, False), v.norm(dim=1))


def test_corrected_bound_equals_trace_for_linear_regression() -> None:
    # one layer, one output, MSE: H = (2/N) sum x~ x~^T and the bound is sum_n (2/N) ||x~_n||^2 = tr(H)
    x = torch.randn(30, 4, dtype=torch.float64)
    y = torch.randn(30, 1, dtype=torch.float64)
    model = nn.Sequential(nn.Linear(4, 1)).double()
    (record,) = theorem2_bounds(CurvatureProblem(model, nn.MSELoss(), (x, y)), tol=1e-10, gauss_newton=False)
    hessian = dense_hessian(model, nn.MSELoss(), x, y)
    np.testing.assert_allclose(record["bound_corrected"], torch.trace(hessian).item(), rtol=1e-10)
    np.testing.assert_allclose(record["lambda_max"], torch.linalg.eigvalsh(hessian)[-1].item(), rtol=1e-8)
    np.testing.assert_allclose(record["bound_as_written"], 1.0)  # no other layers, identity activation


def test_bound_as_written_is_the_product_of_per_sample_norms() -> None:
    model = tiny_mlp("tanh", seed=45)
    x, y = classification_batch(seed=46)
    records = theorem2_bounds(CurvatureProblem(model, CE, (x, y)), gauss_newton=False)
    segments = layer_segments(model)
    zs = segment_inputs(model.eval(), x)

    def dense_norms(fn: nn.Module, z: torch.Tensor) -> torch.Tensor:
        jac = torch.func.vmap(torch.func.jacrev(lambda s: fn(s[None])[0]))(z)
        return torch.linalg.matrix_norm(jac, ord=2).detach()

    jac = torch.stack([dense_norms(s.module, z) for s, z in zip(segments, zs, strict=False)])
    for k, (segment, record) in enumerate(zip(segments, records, strict=True)):
        u = segment.layer(zs[k]).detach()
        act = dense_norms(segment.after_layer, u) if len(segment.after_layer) else torch.ones(32, dtype=torch.float64)
        others = torch.cat([jac[:k], jac[k + 1 :]]).prod(dim=0)
        np.testing.assert_allclose(record["bound_as_written"], (others * act).mean().item(), rtol=1e-6)
        np.testing.assert_allclose(record["jacobian_norm"], jac[k].mean().item(), rtol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_corrected_bound_holds_for_relu_nets_at_init(seed: int) -> None:
    torch.manual_seed(seed)
    models = [tiny_mlp("relu", seed=seed), cnn([1, 8, 8], 4, channels=(2, 3), hidden=10).double()]
    inputs = [classification_batch(seed=seed)[0], torch.randn(32, 1, 8, 8, dtype=torch.float64)]
    y = classification_batch(seed=seed)[1]
    for model, x in zip(models, inputs, strict=True):
        for record in theorem2_bounds(CurvatureProblem(model, CE, (x, y)), tol=1e-8):
            assert record["lambda_max"] <= record["bound_corrected"] * (1 + 1e-6)
            # Remark 1: ReLU layer blocks equal their Gauss-Newton blocks
            assert record["gauss_newton_equals_hessian"]
            assert record["gauss_newton_lambda_max"] == record["lambda_max"]


def test_corrected_bound_holds_for_the_gauss_newton_block_of_tanh_nets() -> None:
    model = tiny_mlp("tanh", seed=47, scale=2.0)
    x, y = classification_batch(seed=48)
    problem = CurvatureProblem(model, CE, (x, y))
    for record, k in zip(theorem2_bounds(problem, tol=1e-8), range(3), strict=True):
        assert record["gauss_newton_lambda_max"] <= record["bound_corrected"] * (1 + 1e-6)
        assert record["gauss_newton_equals_hessian"] == (k == 2)  # only the last layer is linear in its block
        gauss_newton = top_eigenvalue(problem.replace(block=k, kind="gauss_newton"), tol=1e-8)
        np.testing.assert_allclose(record["gauss_newton_lambda_max"], gauss_newton, rtol=1e-6)
        block = top_eigenvalue(problem.replace(block=k), tol=1e-8)
        np.testing.assert_allclose(record["lambda_max"], block, rtol=1e-6)
