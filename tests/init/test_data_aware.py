"""Data-aware schemes checked with independent measurements: dense Jacobians, hooks, an own gradient quotient."""

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from initlab.init import DATA_AWARE_INITS, Initializer, gradient_quotient
from initlab.models import cnn, mlp

WEIGHT_TYPES = (nn.Linear, nn.Conv2d)


def _dense_mean_jacobian_norms(model: nn.Sequential, x: Tensor) -> list[float]:
    """Mean over samples of ||J^(k)||_2 from dense per-sample Jacobians (jacrev), segment by segment."""
    starts = [i for i, module in enumerate(model) if isinstance(module, WEIGHT_TYPES)]
    z = model[: starts[0]](x).detach()
    means = []
    for start, stop in zip(starts, starts[1:] + [len(model)], strict=True):
        segment = model[start:stop]
        norms = [
            torch.linalg.matrix_norm(torch.func.jacrev(lambda v: segment(v[None])[0])(sample).reshape(-1, sample.numel()), ord=2)
            for sample in z
        ]
        means.append(torch.stack(norms).mean().item())
        z = segment(z).detach()
    return means


def _batch(shape: tuple[int, ...], classes: int = 5, size: int = 32) -> tuple[Tensor, Tensor]:
    return torch.randn(size, *shape, dtype=torch.float64), torch.randint(0, classes, (size,))


@pytest.mark.parametrize(
    ("model", "shape", "bias"),
    [
        (mlp((20,), 5, (32, 32), "tanh"), (20,), "zeros"),
        (mlp((20,), 5, (32, 32), "tanh"), (20,), "small_random"),
        (mlp((20,), 5, (32, 32), "relu"), (20,), "zeros"),
        (mlp((20,), 5, (32, 32), "relu"), (20,), "relu_0.1"),
        (cnn((1, 8, 8), 5, (4,), 16, 3, "tanh"), (1, 8, 8), "small_random"),
    ],
    ids=["tanh", "tanh-bias", "relu", "relu-bias", "cnn-tanh-bias"],
)
def test_jacobian_calibrated_gives_unit_mean_layer_jacobian_norms(
    model: nn.Sequential, shape: tuple[int, ...], bias: str
) -> None:
    model = model.double()
    x, y = _batch(shape)
    Initializer("jacobian_calibrated", bias={"scheme": bias, **({"std": 0.2} if bias == "small_random" else {})})(model, (x, y))
    norms = _dense_mean_jacobian_norms(model, x)
    assert norms == pytest.approx([1.0] * len(norms), rel=0.02)


def _layer_output_variances(model: nn.Module, x: Tensor) -> list[float]:
    variances: list[float] = []
    layers = [m for m in model.modules() if isinstance(m, WEIGHT_TYPES)]
    hooks = [m.register_forward_hook(lambda m, i, out: variances.append(out.var().item())) for m in layers]
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    return variances


@pytest.mark.parametrize(
    ("model", "shape"),
    [(mlp((20,), 5, (32, 32, 32), "tanh"), (20,)), (mlp((20,), 5, (32, 32, 32), "relu"), (20,)), (cnn((1, 8, 8), 5), (1, 8, 8))],
    ids=["tanh", "relu", "cnn"],
)
@pytest.mark.parametrize("tol", [0.1, 0.01])
def test_lsuv_gives_unit_output_variance(model: nn.Module, shape: tuple[int, ...], tol: float) -> None:
    model = model.double()
    x, y = _batch(shape)
    Initializer("lsuv", tol=tol)(model, (x, y))
    variances = _layer_output_variances(model, x)
    assert len(variances) == len([m for m in model.modules() if isinstance(m, WEIGHT_TYPES)])
    assert all(abs(v - 1) <= tol for v in variances), variances


def _gradient_quotient(model: nn.Module, x: Tensor, y: Tensor, eps: float = 1e-5) -> float:
    """Dauphin & Schoenholz's GQ = mean |(g - Hg)/(g + eps sign g) - 1| over all parameters, Hg by autograd."""
    params = list(model.parameters())
    grads = torch.autograd.grad(F.cross_entropy(model(x), y), params, create_graph=True)
    hvps = torch.autograd.grad(grads, params, grad_outputs=[g.detach() for g in grads])
    total = 0.0
    for g, hg in zip(grads, hvps, strict=True):
        g = g.detach()
        total += ((g - hg) / (g + eps * (2 * (g >= 0).double() - 1)) - 1).abs().sum().item()
    return total / sum(p.numel() for p in params)


def test_gradient_quotient_matches_independent_computation() -> None:
    model = mlp((20,), 5, (32,), "tanh").double()
    x, y = _batch((20,))
    Initializer("normal", std=0.3)(model)
    ours = gradient_quotient(F.cross_entropy(model(x), y), list(model.parameters())).item()
    assert ours == pytest.approx(_gradient_quotient(model, x, y), rel=1e-6)


@pytest.mark.parametrize(("activation", "std"), [("relu", 1.0), ("tanh", 1.0)])
def test_metainit_lowers_the_gradient_quotient(activation: str, std: float) -> None:
    model = mlp((20,), 5, (32, 32), activation).double()
    x, y = _batch((20,))
    torch.manual_seed(1)
    Initializer("normal", std=std)(model)
    base = [p.detach().clone() for p in model.parameters()]
    before = _gradient_quotient(model, x, y)
    torch.manual_seed(1)  # the same base draw
    Initializer("metainit", base="normal", std=std)(model, (x, y))
    after = _gradient_quotient(model, x, y)
    assert after < 0.7 * before
    for start, p in zip(base, model.parameters(), strict=True):
        if p.dim() > 1:  # a weight: multiplied by one common factor
            ratio = p.detach() / start
            torch.testing.assert_close(ratio, torch.full_like(ratio, ratio.flatten()[0].item()))
        else:  # a bias: untouched
            assert torch.equal(p.detach(), start)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("scheme", sorted(DATA_AWARE_INITS))
def test_data_aware_inits_keep_the_train_eval_mode(scheme: str, training: bool) -> None:
    model = mlp((20,), 5, (16,), "tanh").double().train(training)
    init = Initializer(scheme, **({"steps": 2} if scheme == "metainit" else {}))
    init(model, _batch((20,)))
    assert all(module.training == training for module in model.modules())


def test_lsuv_raises_when_the_tolerance_is_not_reached() -> None:
    """A per-unit bias makes Var(c W z + b) non-quadratic in c: one rescaling cannot hit 1 to 1e-9."""
    model = mlp((20,), 5, (32,), "tanh").double()
    with pytest.raises(RuntimeError, match=r"layer 'hidden1': output_variance .* after 1 rescalings, wanted 1 \+- 1e-09"):
        Initializer("lsuv", bias={"scheme": "small_random", "std": 0.5}, tol=1e-9, max_rescales=1)(model, _batch((20,)))


def test_calibration_refuses_a_dead_layer() -> None:
    model = mlp((20,), 5, (32,), "relu").double()
    with pytest.raises(RuntimeError, match=r"cannot rescale layer 'hidden1': its mean_jacobian_norm is 0"):
        Initializer("jacobian_calibrated", bias={"scheme": "constant", "value": -100.0})(model, _batch((20,)))


@pytest.mark.parametrize("scheme", sorted(DATA_AWARE_INITS))
def test_data_aware_inits_need_a_batch(scheme: str) -> None:
    with pytest.raises(ValueError, match="is data-aware: pass batch"):
        Initializer(scheme)(mlp((20,), 5, (16,)))
