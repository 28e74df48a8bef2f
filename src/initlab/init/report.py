"""``init_report``: per-layer statistics of an initialized model, written to ``init.json``."""

import math
from typing import Any

import torch
from torch import nn

from initlab.init.weights import fans
from initlab.models import weight_layers


@torch.no_grad()
def init_report(model: nn.Module) -> list[dict[str, Any]]:
    """One row per weight layer: fans, weight std, ||W||_2 and the paper's prediction of it, bias mean/std.

    ``weight_spectral_norm`` is the spectral norm of the weight as a [out, in*kh*kw] matrix;
    ``predicted_norm`` = (sqrt(fan_in) + sqrt(fan_out)) * weight_std (paper eq. (7), fans by
    torch's convention, so for a convolution the kernel area enters fan_out although the
    matrix has only out_channels rows). Stds are population stds (no Bessel correction), so a
    one-element bias gives 0, not NaN; ``bias_mean`` / ``bias_std`` are None without a bias.
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
                "fan_in": fan_in,
                "fan_out": fan_out,
                "weight_std": weight_std,
                "weight_spectral_norm": torch.linalg.matrix_norm(weight.reshape(weight.shape[0], -1), ord=2).item(),
                "predicted_norm": (math.sqrt(fan_in) + math.sqrt(fan_out)) * weight_std,
                "bias_mean": None if bias is None else bias.mean().item(),
                "bias_std": None if bias is None else bias.std(correction=0).item(),
            }
        )
    return rows
