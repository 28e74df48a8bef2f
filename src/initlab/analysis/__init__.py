"""Curvature analysis (paper §1.2, Theorems 1-2): Hessian spectra, layer Jacobians, bounds.

Pure functions on ``nn.Module`` s and tensors; they never change the model's parameters, mode
or buffers (see :func:`evaluation_mode`).
"""

from initlab.analysis._modes import StochasticModelError, evaluation_mode
from initlab.analysis.jacobian import layer_jacobian_norms, per_sample_spectral_norms
from initlab.analysis.segments import LayerSegment, layer_segments, model_prefix, segment_inputs

__all__ = [
    "LayerSegment",
    "StochasticModelError",
    "evaluation_mode",
    "layer_jacobian_norms",
    "layer_segments",
    "model_prefix",
    "per_sample_spectral_norms",
    "segment_inputs",
]
