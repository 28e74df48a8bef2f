"""Model builders: ``mlp``, ``deep_linear`` and a LeNet-like ``cnn``."""

from collections import OrderedDict
from collections.abc import Callable, Sequence
from math import prod

from torch import nn

from initlab.models.activations import make_activation

WEIGHT_LAYER_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The (name, module) pairs of every Linear / Conv layer, in forward order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, WEIGHT_LAYER_TYPES)]


def mlp(
    input_shape: Sequence[int],
    num_classes: int,
    widths: Sequence[int] = (256, 256),
    activation: str = "relu",
    bias: bool = True,
) -> nn.Sequential:
    """Flatten -> [Linear -> activation] per hidden width -> Linear to the classes.

    Modules are named ``hidden1``, ``act1``, ..., ``output`` (the names in init.json, analysis.json
    and checkpoints); integer indexing ``model[1]`` still works.
    """
    layers: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())]
    fan_in = prod(input_shape)
    for i, width in enumerate(widths, start=1):
        layers += [(f"hidden{i}", nn.Linear(fan_in, width, bias=bias)), (f"act{i}", make_activation(activation))]
        fan_in = width
    layers.append(("output", nn.Linear(fan_in, num_classes, bias=bias)))
    return nn.Sequential(OrderedDict(layers))


def deep_linear(
    input_shape: Sequence[int],
    num_classes: int,
    depth: int = 10,
    width: int = 2,
    bias: bool = False,
) -> nn.Sequential:
    """``depth`` Linear layers with identity activations: the seeds' exploding/vanishing demo.

    The first layer maps the flattened input to ``width``, ``depth - 2`` square ``width x width``
    layers follow, and the last maps to the classes.
    """
    if depth < 2:
        raise ValueError(f"model.depth must be >= 2, got {depth}")
    return mlp(input_shape, num_classes, widths=[width] * (depth - 1), activation="identity", bias=bias)


def cnn(
    input_shape: Sequence[int],
    num_classes: int,
    channels: Sequence[int] = (6, 16),
    hidden: int = 120,
    kernel_size: int = 3,
    activation: str = "relu",
    bias: bool = True,
) -> nn.Sequential:
    """LeNet-like: [Conv -> act -> MaxPool(2)] per channel count, then Linear -> act -> Linear
    (modules ``conv1``, ``act1``, ``pool1``, ..., ``flatten``, ``hidden``, ``act``, ``output``).

    Works on 1- and 3-channel inputs of any size >= 2**len(channels); padding keeps the
    spatial size through each convolution.
    """
    in_channels, height, width = input_shape
    layers: list[tuple[str, nn.Module]] = []
    for i, out_channels in enumerate(channels, start=1):
        layers += [
            (f"conv{i}", nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias)),
            (f"act{i}", make_activation(activation)),
            (f"pool{i}", nn.MaxPool2d(2)),
        ]
        in_channels, height, width = out_channels, height // 2, width // 2
    if height < 1 or width < 1:
        raise ValueError(f"input {tuple(input_shape)} is too small for {len(channels)} pooling stages")
    layers += [
        ("flatten", nn.Flatten()),
        ("hidden", nn.Linear(in_channels * height * width, hidden, bias=bias)),
        ("act", make_activation(activation)),
        ("output", nn.Linear(hidden, num_classes, bias=bias)),
    ]
    return nn.Sequential(OrderedDict(layers))


MODELS: dict[str, Callable[..., nn.Sequential]] = {"mlp": mlp, "deep_linear": deep_linear, "cnn": cnn}
