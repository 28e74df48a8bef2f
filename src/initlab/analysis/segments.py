"""Cut a flat ``nn.Sequential`` into the paper's layer segments z^(k) -> z^(k+1).

Segment k starts at weight layer k (Linear / Conv) and runs up to, not including, weight layer
k+1; the last segment ends at the model output. Modules before the first weight layer (e.g.
``Flatten``) form the prefix that maps the data x to z^(0). So z^(k) is the input of weight
layer k and J^(k) = D_{z^(k)} z^(k+1) is the segment's Jacobian (paper Theorem 1, eq. (5)).
"""

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from initlab.models.nets import WEIGHT_LAYER_TYPES


@dataclass(frozen=True)
class LayerSegment:
    """Weight layer k and the modules that follow it up to the next weight layer."""

    index: int
    name: str
    layer: nn.Module
    module: nn.Sequential
    after_layer: nn.Sequential

    @property
    def fan_in(self) -> int:
        """d_in: in_features, or in_channels * kernel area for convolutions."""
        weight = self.layer.weight
        return int(weight.shape[1] * weight[0, 0].numel())

    @property
    def fan_out(self) -> int:
        """d_out: out_features, or out_channels * kernel area for convolutions (torch's convention)."""
        weight = self.layer.weight
        return int(weight.shape[0] * weight[0, 0].numel())


def _leaf_modules(module: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    """Leaf modules of nested ``Sequential`` containers, with their qualified names."""
    children: list[tuple[str, nn.Module]] = []
    for name, child in module.named_children():
        qualified = f"{prefix}{name}"
        if isinstance(child, nn.Sequential):
            children += _leaf_modules(child, qualified + ".")
        else:
            children.append((qualified, child))
    return children


def flat_children(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The model's modules in forward order (nested Sequentials flattened), checked to be cuttable."""
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"layer segments need a (nested) nn.Sequential, got {type(model).__name__}")
    children = _leaf_modules(model)
    for name, child in children:
        if not isinstance(child, WEIGHT_LAYER_TYPES) and any(
            isinstance(m, WEIGHT_LAYER_TYPES) for m in child.modules()
        ):
            raise TypeError(f"weight layer hidden inside non-Sequential module {name!r}; cannot cut segments")
    return children


def model_prefix(model: nn.Module) -> nn.Sequential:
    """Modules before the first weight layer (maps the data x to z^(0))."""
    children = flat_children(model)
    prefix: list[nn.Module] = []
    for _, child in children:
        if isinstance(child, WEIGHT_LAYER_TYPES):
            break
        prefix.append(child)
    return nn.Sequential(*prefix)


def layer_segments(model: nn.Module) -> list[LayerSegment]:
    """Segments z^(k) -> z^(k+1), one per weight layer in forward order (shares the model's modules)."""
    children = flat_children(model)
    starts = [i for i, (_, child) in enumerate(children) if isinstance(child, WEIGHT_LAYER_TYPES)]
    if not starts:
        raise ValueError("model has no Linear/Conv weight layer")
    stops = starts[1:] + [len(children)]
    segments = []
    for k, (start, stop) in enumerate(zip(starts, stops, strict=True)):
        name, layer = children[start]
        modules = [child for _, child in children[start:stop]]
        segments.append(LayerSegment(k, name, layer, nn.Sequential(*modules), nn.Sequential(*modules[1:])))
    return segments


def segment_inputs(model: nn.Module, inputs: Tensor) -> list[Tensor]:
    """[z^(0), ..., z^(n-1), output]: the input of every weight layer, then the model output (no grad)."""
    with torch.no_grad():
        z = model_prefix(model)(inputs)
        values = [z]
        for segment in layer_segments(model):
            z = segment.module(z)
            values.append(z)
    return values
