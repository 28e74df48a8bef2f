"""analyze_model: a JSON-ready record whose numbers agree with the individual functions."""

import json
import time

import numpy as np
import pytest
import torch
from torch import nn

from initlab.analysis import AnalysisSettings, analyze_model, layer_jacobian_norms
from initlab.models import mlp
from tests.analysis.curvature_oracles import classification_batch, dense_hessian, tiny_mlp

CE = nn.CrossEntropyLoss()


def test_record_is_json_ready_and_consistent() -> None:
    model = tiny_mlp("relu", seed=50)
    x, y = classification_batch(seed=51)
    model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    settings = AnalysisSettings(k_top=2, tol=1e-8, trace_probes=20, slq_steps=30, grid=200, jacobian_tol=1e-8)
    record = analyze_model(settings.problem(model, CE, (x, y)), settings)
    assert json.loads(json.dumps(record)) == record
    assert model.training and all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    analysis, esd = record["analysis"], record["esd"]
    exact = torch.linalg.eigvalsh(dense_hessian(model, CE, x, y))
    overall = analysis["global"]
    np.testing.assert_allclose(overall["top_eigenvalues"], exact[-2:].flip(0).numpy(), rtol=1e-6)
    np.testing.assert_allclose(overall["lambda_min"], exact[0].item(), rtol=1e-6)
    np.testing.assert_allclose(overall["lr_gamma_star"], 1 / exact[-1].item(), rtol=1e-6)
    np.testing.assert_allclose(overall["lr_edge"], 2 / exact[-1].item(), rtol=1e-6)
    assert overall["trace_method"] == "hessian_backprop_exact" and overall["trace_se"] == 0  # an MLP: exact
    assert overall["trace"] == pytest.approx(exact.sum().item(), rel=1e-10)
    assert 0 <= overall["negative_share"] <= overall["negative_share_any"] <= 1
    layers = analysis["layers"]
    assert [layer["name"] for layer in layers] == ["hidden1", "hidden2", "output"]
    assert [(layer["fan_in"], layer["fan_out"]) for layer in layers] == [(8, 16), (16, 16), (16, 4)]
    norms = layer_jacobian_norms(model, x)
    for layer, norm in zip(layers, norms, strict=True):
        np.testing.assert_allclose(layer["jacobian_norm"], norm.item(), rtol=1e-5)
        assert layer["lambda_max"] <= overall["lambda_max"] * (1 + 1e-8)
        assert layer["lambda_max"] <= layer["bound_corrected"] and layer["include_bias"] is True
    np.testing.assert_allclose(layers[0]["weight_std"], model[1].weight.std().item())
    assert layers[0]["dead_relu_fraction"] is not None and layers[-1]["dead_relu_fraction"] is None
    assert np.isclose(np.trapezoid(esd["density"], esd["grid"]), 1.0, rtol=1e-3)
    assert analysis["settings"]["num_samples"] == 32 and analysis["settings"]["loss_reduction"] == "mean"
    np.testing.assert_allclose(sum(overall["top_eigenvector_layer_share"].values()), 1.0, rtol=1e-12)


def test_record_over_chunks_equals_the_one_batch_record() -> None:
    model = tiny_mlp("tanh", seed=52)
    x, y = classification_batch(n=37, seed=53)
    whole = analyze_model(AnalysisSettings(tol=1e-9, jacobian_tol=1e-9, trace_probes=4, slq_steps=8).problem(
        model, CE, (x, y)), AnalysisSettings(tol=1e-9, jacobian_tol=1e-9, trace_probes=4, slq_steps=8))["analysis"]
    settings = AnalysisSettings(tol=1e-9, jacobian_tol=1e-9, trace_probes=4, slq_steps=8, batch_size=10)
    chunked = analyze_model(settings.problem(model, CE, (x, y)), settings)["analysis"]
    for key in ("loss", "gradient_norm", "lambda_max", "lambda_min"):
        np.testing.assert_allclose(chunked["global"][key], whole["global"][key], rtol=1e-6)
    for a, b in zip(chunked["layers"], whole["layers"], strict=True):
        for key in ("lambda_max", "gauss_newton_lambda_max", "bound_as_written", "bound_corrected", "jacobian_norm",
                    "jacobian_norm_max", "input_norm", "output_hessian_norm_sum", "preactivation_variance",
                    "activation_variance", "gradient_variance", "preactivation_gradient_variance"):
            np.testing.assert_allclose(a[key], b[key], rtol=1e-6, err_msg=key)


@pytest.mark.slow
def test_mlp_64_256_256_10_on_512_samples_runs_in_under_a_minute() -> None:
    torch.manual_seed(0)
    model = mlp([64], 10, (256, 256), "tanh")
    x, y = torch.randn(512, 64), torch.randint(0, 10, (512,))
    start = time.perf_counter()
    record = analyze_model(AnalysisSettings().problem(model, CE, (x, y)))
    assert time.perf_counter() - start < 60
    assert record["analysis"]["global"]["eigen_converged"]
    assert max(record["analysis"]["global"]["top_residuals"]) < 1e-3
