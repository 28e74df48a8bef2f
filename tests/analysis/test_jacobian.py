import pytest
import torch
from torch import nn

from initlab.analysis.jacobian import layer_jacobian_norms, per_sample_spectral_norms
from initlab.analysis.segments import layer_segments, model_prefix, segment_inputs
from initlab.models import cnn, mlp, weight_layers
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


def test_reductions() -> None:
    model = tiny_mlp("tanh", seed=4)
    x = torch.randn(10, 8, dtype=torch.float64)
    exact = dense_layer_norms(model, x)
    torch.testing.assert_close(layer_jacobian_norms(model, x), exact.mean(dim=1), rtol=1e-4, atol=0)
    torch.testing.assert_close(layer_jacobian_norms(model, x, reduction="max"), exact.amax(dim=1), rtol=1e-4, atol=0)


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid", "gelu", "leaky_relu", "identity"])
def test_closed_form_derivative_path_matches_jvp_lanczos_and_dense(activation: str) -> None:
    # the Gram path (closed-form f') and the generic JVP/VJP path are two independent routes
    torch.manual_seed(5)
    model = mlp([12], 3, (20, 7), activation).double()
    x = torch.randn(9, 12, dtype=torch.float64)
    exact = dense_layer_norms(model, x)
    fast = layer_jacobian_norms(model, x, reduction="none", tol=1e-10)
    zs = segment_inputs(model, x)
    generic = torch.stack([per_sample_spectral_norms(s.module, z, 100, 1e-10)[0]
                           for s, z in zip(layer_segments(model), zs, strict=False)])
    torch.testing.assert_close(fast, exact, rtol=1e-6, atol=0)
    torch.testing.assert_close(generic, exact, rtol=1e-6, atol=0)


def test_tolerance_bounds_the_relative_error_of_the_squared_norm() -> None:
    torch.manual_seed(6)
    model = mlp([64], 10, (128,), "tanh").double()
    x = torch.randn(50, 64, dtype=torch.float64)
    exact = dense_layer_norms(model, x)
    for tol in (1e-2, 1e-3):
        ours = layer_jacobian_norms(model, x, reduction="none", tol=tol)
        assert ((exact**2 - ours**2) / exact**2).max() <= tol and (ours <= exact * (1 + 1e-12)).all()


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
