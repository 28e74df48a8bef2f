"""Curvature analysis (paper §1.2, Theorems 1-2): Hessian spectra, layer Jacobians, bounds.

Pure functions on ``nn.Module`` s and tensors; they never change the model's parameters, mode
or buffers (see :func:`evaluation_mode`).
"""

from initlab.analysis._modes import StochasticModelError, evaluation_mode
from initlab.analysis.eigen import (
    EigenResult,
    gauss_newton_eigenvalues,
    hessian_eigenvalues,
    lanczos_eigenvalues,
    power_iteration_eigenvalue,
    power_iteration_top_eigenvalue,
)
from initlab.analysis.jacobian import layer_jacobian_norms, per_sample_spectral_norms
from initlab.analysis.operators import (
    CurvatureCheckError,
    CurvatureOperator,
    GaussNewtonOperator,
    HessianOperator,
    ParameterBlock,
    resolve_parameter_block,
)
from initlab.analysis.segments import LayerSegment, layer_segments, model_prefix, segment_inputs

__all__ = [
    "CurvatureCheckError",
    "CurvatureOperator",
    "EigenResult",
    "GaussNewtonOperator",
    "HessianOperator",
    "ParameterBlock",
    "gauss_newton_eigenvalues",
    "hessian_eigenvalues",
    "lanczos_eigenvalues",
    "power_iteration_eigenvalue",
    "power_iteration_top_eigenvalue",
    "resolve_parameter_block",
    "LayerSegment",
    "StochasticModelError",
    "evaluation_mode",
    "layer_jacobian_norms",
    "layer_segments",
    "model_prefix",
    "per_sample_spectral_norms",
    "segment_inputs",
]
