"""Inits run where the model lives: every tensor they create is on the model's device, the batch is moved there.

A CPU-only machine has one real device, so the check makes every *implicit* placement visible:
inside ``torch.device("meta")`` any tensor created without an explicit device lands on ``meta``,
and a recording TorchFunctionMode asserts that no result of any torch call does.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from initlab.init import BIAS_INITS, DATA_AWARE_INITS, WEIGHT_INITS, Initializer
from initlab.models import cnn, mlp

FREQS = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.0]) + 0.2
QUICK = {"metainit": {"steps": 2}}


class DeviceRecorder(TorchFunctionMode):
    """Records the device of every tensor any torch function returns."""

    def __init__(self) -> None:
        super().__init__()
        self.devices: set[torch.device] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        result = func(*args, **(kwargs or {}))
        self.devices |= {leaf.device for leaf in tree_flatten(result)[0] if isinstance(leaf, Tensor)}
        return result


@contextmanager
def implicit_placement_on_meta() -> Iterator[DeviceRecorder]:
    with torch.device("meta"), DeviceRecorder() as recorder:
        yield recorder


def _batch(shape: tuple[int, ...], dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(3)
    return torch.randn(16, *shape, generator=generator, dtype=dtype), torch.arange(16) % 5


def _models() -> list[tuple[nn.Module, tuple[int, ...]]]:
    return [(mlp((12,), 5, (16, 16), "tanh").double(), (12,)), (cnn((1, 8, 8), 5, (4,), 16, 3, "relu").double(), (1, 8, 8))]


def test_the_check_catches_an_implicit_placement() -> None:
    with implicit_placement_on_meta() as recorder:
        torch.zeros(3)
    assert torch.device("meta") in recorder.devices


@pytest.mark.parametrize("scheme", sorted(WEIGHT_INITS) + sorted(DATA_AWARE_INITS))
def test_every_scheme_creates_its_tensors_on_the_model_device(scheme: str) -> None:
    init = Initializer(scheme, **QUICK.get(scheme, {}))
    for model, shape in _models():
        batch = _batch(shape)
        with implicit_placement_on_meta() as recorder:
            init(model, batch=batch, class_freqs=FREQS)
        assert recorder.devices <= {torch.device("cpu")}, f"{scheme}: tensors on {recorder.devices}"


@pytest.mark.parametrize("bias", sorted(BIAS_INITS))
def test_every_bias_scheme_creates_its_tensors_on_the_model_device(bias: str) -> None:
    model, _ = _models()[0]
    with implicit_placement_on_meta() as recorder:
        Initializer("sparse", bias=bias)(model, class_freqs=FREQS)
    assert recorder.devices <= {torch.device("cpu")}, f"{bias}: tensors on {recorder.devices}"


@pytest.mark.parametrize("scheme", sorted(DATA_AWARE_INITS))
def test_data_aware_inits_move_the_batch_to_the_model_dtype(scheme: str) -> None:
    """A float32 batch (as a datamodule delivers it) on a float64 model gives the float64 batch's result."""
    results = []
    for dtype in (torch.float64, torch.float32):
        model, shape = _models()[0]
        torch.manual_seed(0)
        inputs, targets = _batch(shape)
        Initializer(scheme, **QUICK.get(scheme, {}))(model, batch=(inputs.to(dtype), targets))
        results.append([p.detach().clone() for p in model.parameters()])
    for ours, reference in zip(*results, strict=True):
        torch.testing.assert_close(ours, reference, rtol=1e-6, atol=1e-7)
