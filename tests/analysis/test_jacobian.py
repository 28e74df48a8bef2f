import pytest
import torch
from torch import nn

from initlab.analysis.jacobian import layer_jacobian_norms, per_sample_spectral_norms
from initlab.analysis.segments import layer_segments, model_prefix, segment_inputs
from initlab.models import cnn, weight_layers
from tests.analysis.curvature_oracles import tiny_mlp



def dense_layer_norms(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """Oracle: per-sample dense Jacobian of every segment (jacrev) and its exact spectral norm."""
    model.eval()
    zs = segment_inputs(model, inputs)
    norms = []
    for segment, z in zip(layer_segments(model), zs, strict=False):
        jac = torch.func.vmap(torch.func.jacrev(lambda s, seg=segment.module: seg(s[None])[0]))(z)
        jac = jac.reshape(z.shape[0], -1, z[0].numel())
        norms.append(torch.linalg.matrix_norm(jac, ord=2))
    return torch.stack(norms).detach()


def tiny_cnn() -> nn.Sequential:
    torch.manual_seed(3)
    return cnn([1, 8, 8], 4, channels=(3, 4), hidden=12).double()


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_mlp_norms_match_dense_jacobian(activation: str) -> None:
    model = tiny_mlp(activation)
    x = torch.randn(20, 8, dtype=torch.float64)
    ours = layer_jacobian_norms(model, x, reduction="none")
    exact = dense_layer_norms(model, x)
    assert ours.shape == (3, 20)
    torch.testing.assert_close(ours, exact, rtol=1e-4, atol=0)


def test_cnn_norms_match_dense_jacobian() -> None:
    model = tiny_cnn()
    x = torch.randn(6, 1, 8, 8, dtype=torch.float64)
    ours = layer_jacobian_norms(model, x, reduction="none")
    exact = dense_layer_norms(model, x)
    assert ours.shape == (len(weight_layers(model)), 6)
    torch.testing.assert_close(ours, exact, rtol=1e-4, atol=0)


def test_reductions_and_power_method() -> None:
    model = tiny_mlp("tanh", seed=4)
    x = torch.randn(10, 8, dtype=torch.float64)
    exact = dense_layer_norms(model, x)
    torch.testing.assert_close(layer_jacobian_norms(model, x), exact.mean(dim=1), rtol=1e-4, atol=0)
    torch.testing.assert_close(layer_jacobian_norms(model, x, reduction="max"), exact.amax(dim=1), rtol=1e-4, atol=0)
    power = layer_jacobian_norms(model, x, reduction="none", method="power", iters=5000, tol=1e-12)
    torch.testing.assert_close(power, exact, rtol=1e-4, atol=0)


def test_lanczos_needs_fewer_steps_than_power_for_same_accuracy() -> None:
    torch.manual_seed(0)
    layer = nn.Linear(64, 64).double()
    z = torch.randn(4, 64, dtype=torch.float64)
    exact = torch.linalg.matrix_norm(layer.weight.detach(), ord=2)
    lanczos, lanczos_steps = per_sample_spectral_norms(layer, z, iters=200, tol=1e-8)
    power, power_steps = per_sample_spectral_norms(layer, z, iters=200, tol=1e-8, method="power")
    assert torch.allclose(lanczos, exact.expand(4), rtol=1e-7)
    assert lanczos_steps < power_steps


def test_segments_cover_model_and_mode_is_restored() -> None:
    model = tiny_mlp("relu")
    model.train()
    x = torch.randn(5, 8, dtype=torch.float64)
    segments = layer_segments(model)
    assert [s.name for s in segments] == [n for n, _ in weight_layers(model)]
    z = model_prefix(model)(x)
    for segment in segments:
        z = segment.module(z)
    torch.testing.assert_close(z, model(x))
    layer_jacobian_norms(model, x)
    assert all(m.training for m in model.modules())


def test_non_sequential_model_is_refused() -> None:
    class Wrapper(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Linear(3, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x)

    with pytest.raises(TypeError):
        layer_segments(Wrapper())
    with pytest.raises(TypeError):
        layer_segments(nn.Sequential(Wrapper()))
