"""Plain ``nn.Sequential`` models (no Lightning).

Every model is a flat ``nn.Sequential`` whose weight layers are ``nn.Linear`` / ``nn.Conv2d``,
so analysis code can cut it into per-layer segments z^(k) -> z^(k+1) (paper notation).
"""

from initlab.models.activations import ACTIVATIONS, make_activation
from initlab.models.build import instantiate_model
from initlab.models.nets import MODELS, cnn, deep_linear, mlp, weight_layers

__all__ = ["ACTIVATIONS", "MODELS", "cnn", "deep_linear", "instantiate_model", "make_activation", "mlp", "weight_layers"]
