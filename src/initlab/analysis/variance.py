"""Glorot's variance flow (paper §1.1, eqs. (1)-(2)) and dead ReLU units, per layer on a batch."""

import torch
from torch import Tensor, nn

from initlab.analysis._modes import Mode, evaluation_mode
from initlab.analysis.operators import LossFn
from initlab.analysis.segments import flat_children, layer_segments, model_prefix


def variance_flow(
    model: nn.Module, loss_fn: LossFn, inputs: Tensor, targets: Tensor, mode: Mode = "eval"
) -> list[dict[str, object]]:
    """Per weight layer k: forward variances of z^(k) (layer input), u^(k) (pre-activation) and
    z^(k+1) (segment output = the layer's output after its activation) and backward variances of
    dL/dz^(k) and dL/du^(k) for the loss as given (a mean-reduced loss scales the gradients by
    1/batch). Variances are over all samples and units (population variance). Variance flow is
    "flat" when these stay of the same order across layers (Glorot and Bengio, eq. (3))."""
    with evaluation_mode(model, mode):
        z = model_prefix(model)(inputs).detach().requires_grad_(True)
        layer_inputs, preactivations, outputs = [], [], []
        for segment in layer_segments(model):
            layer_inputs.append(z)
            u = segment.layer(z)
            preactivations.append(u)
            z = segment.after_layer(u)
            outputs.append(z)
        loss = loss_fn(z, targets)
        grads = torch.autograd.grad(loss, layer_inputs + preactivations)
    n = len(layer_inputs)
    return [
        {
            "layer": segment.name,
            "input_variance": layer_inputs[k].detach().var(unbiased=False).item(),
            "preactivation_variance": preactivations[k].detach().var(unbiased=False).item(),
            "activation_variance": outputs[k].detach().var(unbiased=False).item(),
            "gradient_variance": grads[k].var(unbiased=False).item(),
            "preactivation_gradient_variance": grads[n + k].var(unbiased=False).item(),
        }
        for k, segment in enumerate(layer_segments(model))
    ]


def dead_relu_fraction(model: nn.Module, inputs: Tensor, mode: Mode = "eval") -> dict[str, float]:
    """Per ``nn.ReLU`` module (by name): the fraction of its units (output coordinates; for a
    convolution every channel x position) whose output is 0 for every sample of the batch."""
    fractions: dict[str, float] = {}
    with evaluation_mode(model, mode), torch.no_grad():
        z = inputs
        for name, child in flat_children(model):
            z = child(z)
            if isinstance(child, nn.ReLU):
                fractions[name] = (z <= 0).all(dim=0).double().mean().item()
    return fractions
