"""Curvature analysis (paper §1.2, Theorems 1-2): Hessian spectra, layer Jacobians, bounds.

One problem (:class:`CurvatureProblem`: model, loss, one batch or an iterable of batches), two
solvers (:func:`block_lanczos` for certified extremes, :func:`lanczos` batched over rows for SLQ
probes and per-sample norms), one record (:func:`curvature_record`). Pure functions on
``nn.Module`` s and tensors on the model's device; they never change the model's parameters,
mode or buffers (see :func:`evaluation_mode`).

    problem = CurvatureProblem(model, F.cross_entropy, (inputs, targets), batch_size=1024)
    rec = curvature_record(problem, k=3, which="both", trace_probes=20)
    rec.lambda_max, rec.residuals, rec.as_dict()
"""

from initlab.analysis._modes import StochasticModelError, evaluation_mode
from initlab.analysis.bounds import output_hessian_norms, theorem2_bounds, weight_input_norms
from initlab.analysis.gauss_newton import gauss_newton_trace
from initlab.analysis.hessian_diagonal import hessian_trace_exact
from initlab.analysis.jacobian import layer_jacobian_norms, per_sample_spectral_norms
from initlab.analysis.lanczos import BlockLanczosRun, BlockTridiagonal, LanczosRun, Tridiagonal, block_lanczos, lanczos
from initlab.analysis.operators import (
    CurvatureCheckError,
    CurvatureOperator,
    DatasetOperator,
    ParameterBlock,
    resolve_parameter_block,
)
from initlab.analysis.problem import CurvatureProblem, eager_view
from initlab.analysis.record import CurvatureRecord, curvature_record, top_eigenvalue
from initlab.analysis.report import AnalysisSettings, analyze_model
from initlab.analysis.segments import LayerSegment, layer_segments, model_prefix, segment_inputs
from initlab.analysis.spectrum import TraceEstimate, spectral_density
from initlab.analysis.variance import dead_relu_fraction, variance_flow

__all__ = [
    "AnalysisSettings",
    "BlockLanczosRun",
    "BlockTridiagonal",
    "CurvatureCheckError",
    "CurvatureOperator",
    "CurvatureProblem",
    "CurvatureRecord",
    "DatasetOperator",
    "LanczosRun",
    "LayerSegment",
    "ParameterBlock",
    "StochasticModelError",
    "TraceEstimate",
    "Tridiagonal",
    "analyze_model",
    "block_lanczos",
    "curvature_record",
    "dead_relu_fraction",
    "eager_view",
    "evaluation_mode",
    "gauss_newton_trace",
    "hessian_trace_exact",
    "lanczos",
    "layer_jacobian_norms",
    "layer_segments",
    "model_prefix",
    "output_hessian_norms",
    "per_sample_spectral_norms",
    "resolve_parameter_block",
    "segment_inputs",
    "spectral_density",
    "theorem2_bounds",
    "top_eigenvalue",
    "variance_flow",
    "weight_input_norms",
]
