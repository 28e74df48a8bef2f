"""Bias initializers (docs/methods.md): ``BIAS_INITS`` maps a config name to a rule on the whole model.

A rule sees every weight layer at once (``BiasContext``) because two of them depend on the
layer's position: ``relu_0.1`` treats hidden and output layers differently and
``output_marginals`` sets the output layer from the class frequencies.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from initlab.init.weights import WeightInit, fans


@dataclass(frozen=True)
class BiasContext:
    """What a bias rule may use: the weight layers in forward order, the bound weight rule, the class frequencies."""

    layers: list[nn.Module]
    weight_init: WeightInit
    class_freqs: Tensor | None = None

    def biases(self, layers: list[nn.Module] | None = None) -> Iterator[Tensor]:
        """The biases of ``layers`` (default: all weight layers), skipping layers without one."""
        return (layer.bias for layer in (self.layers if layers is None else layers) if layer.bias is not None)


BiasInit = Callable[..., None]


def zeros(ctx: BiasContext) -> None:
    """b = 0 (the default)."""
    for bias in ctx.biases():
        nn.init.zeros_(bias)


def constant(ctx: BiasContext, *, value: float = 0.01) -> None:
    """b = ``value`` everywhere (lecture notes: 0.01)."""
    for bias in ctx.biases():
        nn.init.constant_(bias, value)


def relu_hidden(ctx: BiasContext) -> None:
    """b = 0.1 for the hidden layers, 0 for the output layer: keeps ReLU units alive at init (lecture notes).

    Every hidden weight layer is treated as followed by a ReLU (all our models put the same
    activation after each hidden layer), so use it with ReLU networks.
    """
    zeros(ctx)
    for bias in ctx.biases(ctx.layers[:-1]):
        nn.init.constant_(bias, 0.1)


def small_random(ctx: BiasContext, *, std: float = 0.01) -> None:
    """b ~ N(0, std^2) (lecture notes)."""
    for bias in ctx.biases():
        nn.init.normal_(bias, 0.0, std)


def fanin_plus_one(ctx: BiasContext) -> None:
    """The bias as one more input weight (lecture notes, "fan-in d+1").

    For every layer the weight rule draws a [rows, fan_in + 1] matrix with fans
    (fan_in + 1, fan_out) -- rows = out_features / out_channels, fan_out by torch's
    convention -- and the bias is its last column. So N(0, s^2)-type rules give std s(fan_in + 1),
    ``orthogonal`` a column of a random orthogonal matrix, ``sparse`` a nonzero entry with
    probability k / (fan_in + 1), ``zeros`` / ``constant`` the constant.
    """
    for layer in ctx.layers:
        if layer.bias is not None:
            fan_in, fan_out = fans(layer.weight)
            augmented = layer.weight.new_empty(layer.weight.shape[0], fan_in + 1)
            ctx.weight_init(augmented, fan_in + 1, fan_out)
            with torch.no_grad():
                layer.bias.copy_(augmented[:, -1])


def output_marginals(ctx: BiasContext) -> None:
    """Output bias b = log c - mean(log c), so softmax(b) = c / sum(c) (lecture notes); other biases 0.

    ``c`` = the training-set class frequencies (counts work too). Raises ValueError when they
    are missing or non-positive, or the output layer has no bias of matching size.
    """
    output = ctx.layers[-1]
    if ctx.class_freqs is None:
        raise ValueError("bias=output_marginals needs class_freqs (the training-set class frequencies)")
    if output.bias is None:
        raise ValueError("bias=output_marginals needs an output layer with a bias (model.bias=true)")
    freqs = torch.as_tensor(ctx.class_freqs, dtype=output.bias.dtype, device=output.bias.device)
    if freqs.shape != output.bias.shape:
        raise ValueError(
            f"bias=output_marginals: {freqs.numel()} class frequencies for an output layer of size {output.bias.numel()}"
        )
    if not bool((freqs > 0).all()):
        raise ValueError(f"bias=output_marginals: class frequencies must be positive, got {freqs.tolist()}")
    zeros(ctx)
    log_freqs = freqs.log()
    with torch.no_grad():
        output.bias.copy_(log_freqs - log_freqs.mean())


BIAS_INITS: dict[str, BiasInit] = {
    "zeros": zeros,
    "constant": constant,
    "relu_0.1": relu_hidden,
    "small_random": small_random,
    "fanin_plus_one": fanin_plus_one,
    "output_marginals": output_marginals,
}
