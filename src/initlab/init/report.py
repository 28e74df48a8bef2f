"""``init_report``: per-layer statistics of an initialized model with a legend, written to ``init.json``."""

import math
from typing import Any

import torch
from torch import nn

from initlab.init.weights import fans
from initlab.models import weight_layers

FIELDS: dict[str, str] = {
    "name": "the layer's name in the model (hidden1, hidden2, ..., output: model.named_modules())",
    "type": "the layer's class (Linear, Conv2d)",
    "fan_in": "inputs per output unit: in_features, or in_channels * kernel area (torch's convention)",
    "fan_out": "out_features, or out_channels * kernel area (torch's convention)",
    "weight_std": "population std of the weight entries (no Bessel correction)",
    "weight_spectral_norm": "||W||_2, the largest singular value of the weight as an [out, in*kh*kw] matrix",
    "predicted_norm": "(sqrt(fan_in) + sqrt(fan_out)) * weight_std: the paper's eq. (7) prediction of ||W||_2 "
    "for iid zero-mean entries (about 1 under the spectral init)",
    "bias_mean": "mean of the bias entries; null for a layer without bias",
    "bias_std": "population std of the bias entries; null for a layer without bias",
}


@torch.no_grad()
def init_report(model: nn.Module) -> dict[str, Any]:
    """``{"fields": FIELDS, "layers": [one row per weight layer]}``: the rows hold the ``FIELDS`` keys in order.

    For a convolution the kernel area enters fan_out although the weight matrix has only
    out_channels rows, so ``predicted_norm`` follows the fans the inits use, not the matrix shape.
    """
    rows = []
    for name, layer in weight_layers(model):
        weight = layer.weight.detach()
        fan_in, fan_out = fans(weight)
        weight_std = weight.std(correction=0).item()
        bias = layer.bias
        rows.append(
            {
                "name": name,
                "type": type(layer).__name__,
                "fan_in": fan_in,
                "fan_out": fan_out,
                "weight_std": weight_std,
                "weight_spectral_norm": torch.linalg.matrix_norm(weight.reshape(weight.shape[0], -1), ord=2).item(),
                "predicted_norm": (math.sqrt(fan_in) + math.sqrt(fan_out)) * weight_std,
                "bias_mean": None if bias is None else bias.mean().item(),
                "bias_std": None if bias is None else bias.std(correction=0).item(),
            }
        )
    return {"fields": FIELDS, "layers": rows}
