"""The seeds' demonstration (docs/methods.md): zero / constant init never breaks the symmetry of hidden units."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from initlab.init import Initializer
from initlab.models import mlp


def _train(model: nn.Sequential, steps: int = 50) -> None:
    """Full-batch SGD on a learnable task (labels = argmax of a random linear map of the inputs)."""
    x = torch.randn(128, 10)
    y = (x @ torch.randn(10, 3)).argmax(dim=1)
    optimizer = torch.optim.SGD(model.parameters(), lr=2.0)
    for _ in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()


def _hidden_weights(model: nn.Sequential) -> list[torch.Tensor]:
    return [model[1].weight.detach(), model[3].weight.detach()]


@pytest.mark.parametrize(("scheme", "params"), [("zeros", {}), ("constant", {"value": 0.1})])
def test_zero_and_constant_init_keep_hidden_units_identical(scheme: str, params: dict) -> None:
    """Sigmoid hidden units, so that the gradients are not all zero: the weights move, but every row stays the same."""
    model = mlp((10,), 3, widths=(16, 16), activation="sigmoid")
    Initializer(scheme, **params)(model)
    start = [w.clone() for w in _hidden_weights(model)]
    _train(model)
    for before, weight in zip(start, _hidden_weights(model), strict=True):
        assert (weight - before).abs().max() > 1e-2  # training moved the hidden weights
        torch.testing.assert_close(weight, weight[:1].expand_as(weight), rtol=1e-5, atol=1e-7)
        assert torch.linalg.matrix_rank(weight).item() == 1


def test_spectral_init_breaks_the_symmetry() -> None:
    model = mlp((10,), 3, widths=(16, 16), activation="sigmoid")
    Initializer("spectral")(model)
    _train(model)
    for weight in _hidden_weights(model):
        assert (weight - weight[:1]).abs().amax(dim=1)[1:].min() > 1e-2  # every unit differs from the first
        assert torch.linalg.matrix_rank(weight).item() == min(weight.shape)
