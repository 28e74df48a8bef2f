"""Bias schemes (docs/methods.md): statistics of every registry entry, fan-in + 1, class marginals."""

import math
from collections.abc import Callable

import pytest
import torch
from torch import nn

from initlab.init import BIAS_INITS, WEIGHT_INITS, Initializer
from initlab.models import mlp
from tests.init.test_weights import EXPECTED, PARAMS

FREQS = torch.tensor([0.1, 0.2, 0.3, 0.4])


def _model() -> nn.Sequential:
    return mlp((64,), 4, widths=(512, 512), activation="relu")


def _check_zeros(model: nn.Sequential) -> None:
    assert all(torch.all(layer.bias == 0) for layer in (model[1], model[3], model[5]))


def _check_constant(model: nn.Sequential) -> None:
    assert all(torch.all(layer.bias == 0.2) for layer in (model[1], model[3], model[5]))


def _check_relu(model: nn.Sequential) -> None:
    assert torch.all(model[1].bias == 0.1) and torch.all(model[3].bias == 0.1)
    assert torch.all(model[5].bias == 0)


def _check_small_random(model: nn.Sequential) -> None:
    hidden = torch.cat([model[1].bias, model[3].bias]).detach()
    assert hidden.std().item() == pytest.approx(0.05, rel=0.1)  # 1024 entries: sampling error ~2%
    assert abs(hidden.mean().item()) < 0.05 * 0.1


def _check_fanin_plus_one(model: nn.Sequential) -> None:
    # spectral weight rule: the bias of a [512, 64] layer has std 1/(sqrt(65) + sqrt(512))
    assert model[1].bias.std().item() == pytest.approx(1 / (math.sqrt(65) + math.sqrt(512)), rel=0.1)


def _check_output_marginals(model: nn.Sequential) -> None:
    torch.testing.assert_close(torch.softmax(model[5].bias.double(), dim=0), FREQS.double(), rtol=0, atol=1e-6)
    assert torch.all(model[1].bias == 0) and torch.all(model[3].bias == 0)


BIAS_CHECKS: dict[str, Callable[[nn.Sequential], None]] = {
    "zeros": _check_zeros,
    "constant": _check_constant,
    "relu_0.1": _check_relu,
    "small_random": _check_small_random,
    "fanin_plus_one": _check_fanin_plus_one,
    "output_marginals": _check_output_marginals,
}


BIAS_SETTINGS = {"constant": {"value": 0.2}, "small_random": {"std": 0.05}}


def test_every_bias_scheme_is_checked() -> None:
    assert set(BIAS_CHECKS) == set(BIAS_INITS)


@pytest.mark.parametrize("bias", sorted(BIAS_INITS))
def test_bias_scheme(bias: str) -> None:
    model = _model()
    for layer in (model[1], model[3], model[5]):
        nn.init.constant_(layer.bias, 7.0)  # anything the scheme must overwrite
    Initializer("spectral", bias={"scheme": bias, **BIAS_SETTINGS.get(bias, {})})(model, class_freqs=FREQS)
    BIAS_CHECKS[bias](model)


def test_small_random_std_is_bias_std() -> None:
    layer = nn.Linear(8, 100_000)
    Initializer("spectral", bias={"scheme": "small_random", "std": 0.05})(nn.Sequential(layer))
    assert layer.bias.std().item() == pytest.approx(0.05, rel=0.03)


# fans by torch's convention; fan_in >= the sparse k of PARAMS (5), so the weights are truly sparse
PLUS_ONE_LAYERS = {
    "linear5x1024": (lambda: nn.Linear(5, 1024), 5, 1024),
    "conv1to256k3": (lambda: nn.Conv2d(1, 256, 3), 9, 2304),
}


@pytest.mark.parametrize("layer_id", sorted(PLUS_ONE_LAYERS))
@pytest.mark.parametrize("name", sorted(WEIGHT_INITS))
def test_fanin_plus_one_follows_the_weight_rule_with_one_more_input(name: str, layer_id: str) -> None:
    """The bias is distributed like one more input weight: the weight rule at fan_in + 1, same fan_out."""
    factory, fan_in, fan_out = PLUS_ONE_LAYERS[layer_id]
    layer = factory()
    rows = layer.weight.shape[0]
    mean, std, bound = EXPECTED[name](fan_in + 1, fan_out, rows, fan_in + 1)
    init = Initializer(name, bias="fanin_plus_one", **PARAMS.get(name, {}))
    model = nn.Sequential(layer)
    biases = torch.stack([init(model)[0].bias.detach().clone() for _ in range(math.ceil(100_000 / rows))])
    if std == 0.0:
        assert torch.all(biases == mean)
        return
    assert biases.std().item() == pytest.approx(std, rel=0.03)
    assert abs(biases.mean().item() - mean) < 0.03 * std
    if bound is not None:
        assert 0.99 * bound <= biases.abs().max().item() <= bound


def test_fanin_plus_one_differs_from_fanin() -> None:
    """With fan_in = 4 the lecun bias std is 1/sqrt(5), 11% below the weights' 1/sqrt(4)."""
    layer = nn.Linear(4, 100_000)
    Initializer("lecun", bias="fanin_plus_one")(nn.Sequential(layer))
    assert layer.bias.std().item() == pytest.approx(1 / math.sqrt(5), rel=0.03)
    assert layer.weight.std().item() == pytest.approx(1 / math.sqrt(4), rel=0.03)


def test_output_marginals_accept_counts() -> None:
    model = _model()
    Initializer("spectral", bias="output_marginals")(model, class_freqs=torch.tensor([10, 20, 30, 40]))
    torch.testing.assert_close(torch.softmax(model[5].bias.double(), dim=0), FREQS.double(), rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("model", "freqs", "message"),
    [
        (mlp((8,), 4, (16,)), None, "needs class_freqs"),
        (mlp((8,), 4, (16,), bias=False), FREQS, "output layer with a bias"),
        (mlp((8,), 3, (16,)), FREQS, "4 class frequencies for an output layer of size 3"),
        (mlp((8,), 4, (16,)), torch.tensor([0.5, 0.5, 0.0, 0.0]), "must be positive"),
    ],
)
def test_output_marginals_errors(model: nn.Sequential, freqs: torch.Tensor | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Initializer("spectral", bias="output_marginals")(model, class_freqs=freqs)


@pytest.mark.parametrize("scheme", ["spectral", "lsuv"])
def test_base_checks_the_bias_scheme_without_data(scheme: str) -> None:
    """``Initializer.base``: weights and biases only, so a config check catches a bad bias before any data exists."""
    with pytest.raises(ValueError, match="needs an output layer with a bias"):
        Initializer(scheme, bias="output_marginals").base(mlp((8,), 4, (16,), bias=False), class_freqs=FREQS)
    model = Initializer(scheme, bias={"scheme": "constant", "value": 0.3}).base(mlp((8,), 4, (16,)))
    assert all(torch.all(layer.bias == 0.3) for layer in (model[1], model[3]))
