"""Curvature analysis (paper §1.2, Theorems 1-2): Hessian spectra, layer Jacobians, bounds.

Pure functions on ``nn.Module`` s and tensors; they never change the model's parameters, mode
or buffers (see :func:`evaluation_mode`).
"""

from initlab.analysis._modes import StochasticModelError, evaluation_mode
from initlab.analysis.bounds import output_hessian_norms, theorem2_bounds, weight_input_norms
from initlab.analysis.eigen import (
    EigenResult,
    gauss_newton_eigenvalues,
    hessian_eigenvalues,
    lanczos_eigenvalues,
    power_iteration_eigenvalue,
    power_iteration_top_eigenvalue,
)
from initlab.analysis.jacobian import layer_jacobian_norms, per_sample_spectral_norms
from initlab.analysis.lanczos import LanczosTridiagonal, batched_lanczos
from initlab.analysis.operators import (
    CurvatureCheckError,
    CurvatureOperator,
    GaussNewtonOperator,
    HessianOperator,
    ParameterBlock,
    resolve_parameter_block,
)
from initlab.analysis.report import analyze_model
from initlab.analysis.segments import LayerSegment, layer_segments, model_prefix, segment_inputs
from initlab.analysis.spectrum import (
    TraceEstimate,
    hessian_spectral_density,
    hessian_trace,
    hutchinson_trace,
    spectral_density,
    stochastic_lanczos_quadrature,
)
from initlab.analysis.variance import dead_relu_fraction, variance_flow

__all__ = [
    "CurvatureCheckError",
    "CurvatureOperator",
    "EigenResult",
    "GaussNewtonOperator",
    "HessianOperator",
    "LanczosTridiagonal",
    "LayerSegment",
    "ParameterBlock",
    "StochasticModelError",
    "TraceEstimate",
    "analyze_model",
    "batched_lanczos",
    "dead_relu_fraction",
    "evaluation_mode",
    "gauss_newton_eigenvalues",
    "hessian_eigenvalues",
    "hessian_spectral_density",
    "hessian_trace",
    "hutchinson_trace",
    "lanczos_eigenvalues",
    "layer_jacobian_norms",
    "layer_segments",
    "model_prefix",
    "output_hessian_norms",
    "per_sample_spectral_norms",
    "power_iteration_eigenvalue",
    "power_iteration_top_eigenvalue",
    "resolve_parameter_block",
    "segment_inputs",
    "spectral_density",
    "stochastic_lanczos_quadrature",
    "theorem2_bounds",
    "variance_flow",
    "weight_input_norms",
]
