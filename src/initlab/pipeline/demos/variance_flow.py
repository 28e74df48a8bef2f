"""Glorot's variance flow, layer Jacobian norms and dead ReLUs at init in a deep MLP (paper §1.1, Cor. 1).

The pipeline's MLP made deeper (``depth`` hidden layers of ``width`` units) for every activation
and init: per weight layer k the variance of the pre-activations u^(k), of the layer outputs and
of the backpropagated gradients dL/dz^(k) (``initlab.analysis.variance_flow``), and the mean
per-sample ||J^(k)|| (``layer_jacobian_norms``). On square layers with ReLU, Glorot's sigma^2 =
1/n halves Var(u) per layer and He's 2/n keeps it; the spectral sigma = 1/(2 sqrt n) keeps
||J|| ~ 1 for tanh but multiplies Var(u) by n sigma^2 = 1/4. For every init with zero and with 0.1
hidden biases, per ReLU layer: the *inactive* fraction of (unit, sample) pairs whose output is 0 (the
book's "saturating the ReLU", per sample) and the *dead* fraction of units that output 0 on every
sample (a stricter reading).

Writes ``layers.csv`` and ``dead_relu.csv``.
"""

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from initlab.analysis import dead_relu_fraction, layer_jacobian_norms, variance_flow
from initlab.analysis.segments import flat_children
from initlab.models import weight_layers
from initlab.pipeline.common import build_model, load_train_batch, make_initializer, write_csv
from initlab.pipeline.demos import DemoContext


def deep_model(data: str, settings: dict, activation: str):
    widths = ",".join([str(settings["width"])] * settings["depth"])
    return build_model(data, [f"model.widths=[{widths}]", f"model.activation={activation}"])


def layer_rows(model, inputs, targets, jacobian_samples: int) -> list[dict]:
    """Per weight layer: fans, forward / backward variances and the mean per-sample ||J^(k)||."""
    flow = variance_flow(model, F.cross_entropy, inputs, targets)
    jacobians = layer_jacobian_norms(model, inputs[:jacobian_samples])
    rows = []
    for k, ((name, layer), variances, jacobian) in enumerate(zip(weight_layers(model), flow, jacobians.tolist(), strict=True)):
        rows.append({
            "layer": k, "name": name, "fan_in": layer.weight.shape[1], "fan_out": layer.weight.shape[0],
            "preactivation_var": variances["preactivation_variance"], "activation_var": variances["activation_variance"],
            "gradient_var": variances["gradient_variance"], "jacobian_norm": jacobian,
        })
    return rows


def inactive_relu_fraction(model: nn.Module, inputs: Tensor) -> dict[str, float]:
    """Per ``nn.ReLU`` module (by name): the fraction of (unit, sample) pairs whose output is 0 (eval mode)."""
    fractions, z = {}, inputs
    model.eval()
    with torch.no_grad():
        for name, child in flat_children(model):
            z = child(z)
            if isinstance(child, nn.ReLU):
                fractions[name] = (z <= 0).double().mean().item()
    return fractions


def run(settings: dict, context: DemoContext) -> None:
    inputs, targets = load_train_batch(context.data_file, settings["num_samples"], settings["seed"], context.device)
    rows, dead = [], []
    for activation in settings["activations"]:
        for init in settings["inits"]:
            torch.manual_seed(settings["seed"])
            with torch.device(context.device):
                model = make_initializer(init)(deep_model(context.data, settings, activation))
            rows += [{"activation": activation, "init": init, **row}
                     for row in layer_rows(model, inputs, targets, settings["jacobian_samples"])]
    for init in settings["inits"]:
        for bias in settings["relu_biases"]:
            torch.manual_seed(settings["seed"])
            with torch.device(context.device):
                model = make_initializer(init, bias=bias)(deep_model(context.data, settings, "relu"))
            fractions, inactive = dead_relu_fraction(model, inputs), inactive_relu_fraction(model, inputs)
            dead += [{"init": init, "bias": bias, "layer": k, "name": name, "dead_fraction": fraction, "inactive_fraction": inactive[name]}
                     for k, (name, fraction) in enumerate(fractions.items())]
    write_csv(context.out / "layers.csv", rows)
    write_csv(context.out / "dead_relu.csv", dead)
