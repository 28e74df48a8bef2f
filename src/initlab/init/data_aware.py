"""Data-aware initializers: rescale the weights of an already initialized model on a batch.

Each entry of ``DATA_AWARE_INITS`` names a base weight scheme (applied first, with the bias
scheme, by :class:`initlab.init.Initializer`) and a ``rescale(model, batch, **hyperparameters)``
that changes only the weights' scales. The Initializer hands it the batch on the model's device
and dtype; every tensor it creates follows the model's. All of them evaluate the model in
``eval()`` mode and leave its train/eval flags and buffers as they were
(:func:`initlab.analysis.evaluation_mode`).
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from initlab.analysis import LayerSegment, evaluation_mode, layer_segments, model_prefix, per_sample_spectral_norms
from initlab.models import weight_layers

Batch = tuple[Tensor, Tensor]
Measure = Callable[[LayerSegment, Tensor], float]


def _rescale_layerwise(
    model: nn.Module, inputs: Tensor, measure: Measure, exponent: float, tol: float, max_rescales: int
) -> None:
    """From the input on, multiply each weight layer by measure**(-1/exponent) until |measure - 1| <= tol.

    ``measure(segment, z)`` is evaluated at the segment's input z = z^(k) computed with the
    already calibrated earlier layers; ``exponent`` is the power of the weight scale the
    measure grows with (1 for a Jacobian norm, 2 for a variance), so one step is exact for a
    positively homogeneous segment (no bias, ReLU) and a few steps converge for others.
    """
    with torch.no_grad():
        z = model_prefix(model)(inputs)
    for segment in layer_segments(model):
        value = measure(segment, z)
        for _ in range(max_rescales):
            if abs(value - 1.0) <= tol:
                break
            if not (math.isfinite(value) and value > 0):
                raise RuntimeError(f"cannot rescale layer {segment.name!r}: its {measure.__name__} is {value}")
            with torch.no_grad():
                segment.layer.weight.mul_(value ** (-1.0 / exponent))
            value = measure(segment, z)
        if abs(value - 1.0) > tol:
            raise RuntimeError(
                f"layer {segment.name!r}: {measure.__name__} {value:.4g} after {max_rescales} rescalings, wanted 1 +- {tol}"
            )
        with torch.no_grad():
            z = segment.module(z)


def jacobian_calibrate(
    model: nn.Module, batch: Batch, *, tol: float = 0.01, max_rescales: int = 10, power_iters: int = 100, power_tol: float = 1e-4
) -> None:
    """Rescale every layer so that its mean per-sample ||J^(k)||_2 on the batch is 1 (paper Corollary 1).

    J^(k) is the Jacobian of the segment from the input of weight layer k to the input of
    layer k+1 (the last segment ends at the output), at each sample's own z^(k); its spectral
    norm is estimated matrix-free from JVP/VJP products (:func:`initlab.analysis.per_sample_spectral_norms`,
    ``power_iters`` / ``power_tol``). The MEAN over the samples is calibrated to 1 +- ``tol``,
    layer after layer from the input, up to ``max_rescales`` rescalings per layer (the
    activation makes the norm nonlinear in the scale, as in LSUV).
    """

    def mean_jacobian_norm(segment: LayerSegment, z: Tensor) -> float:
        return per_sample_spectral_norms(segment.module, z, power_iters, power_tol)[0].mean().item()

    with evaluation_mode(model):
        _rescale_layerwise(model, batch[0], mean_jacobian_norm, 1.0, tol, max_rescales)


def lsuv_rescale(model: nn.Module, batch: Batch, *, tol: float = 0.1, max_rescales: int = 10) -> None:
    """LSUV (Mishkin & Matas 2016, Alg. 1): scale each layer until Var(its output) = 1 +- tol on the batch.

    The variance is over all entries of the layer's (pre-activation) output, as in the paper;
    ``tol`` = Tol_var = 0.1 and ``max_rescales`` = T_max = 10 are the paper's values, and an
    unreached tolerance raises instead of passing silently. We do not use the PyPI ``lsuv``
    package (0.3.0): it keeps its state in module globals, always orthogonalizes and zeroes
    every bias (overwriting the configured bias scheme) and reports non-convergence only by
    printing; the loop is a few lines shared with ``jacobian_calibrate``.
    """

    def output_variance(segment: LayerSegment, z: Tensor) -> float:
        with torch.no_grad():
            return segment.layer(z).var().item()

    with evaluation_mode(model):
        _rescale_layerwise(model, batch[0], output_variance, 2.0, tol, max_rescales)


def gradient_quotient(loss: Tensor, params: Sequence[Tensor], eps: float = 1e-5) -> Tensor:
    """GQ = mean over all parameter entries of |(g - Hg) / (g + eps sign(g)) - 1| (Dauphin & Schoenholz 2019).

    g = dL/dparams and Hg = d(||g||^2 / 2)/dparams (double backward); sign(0) counts as +1 so the
    denominator never vanishes. The result stays differentiable (``create_graph``).
    """
    grads = torch.autograd.grad(loss, params, create_graph=True)
    hessian_grads = torch.autograd.grad(sum((g * g).sum() for g in grads) / 2, params, create_graph=True)
    total = sum(
        ((g - hg) / (g + eps * torch.where(g.detach() >= 0, 1.0, -1.0)) - 1).abs().sum()
        for g, hg in zip(grads, hessian_grads, strict=True)
    )
    return total / sum(p.numel() for p in params)


def metainit_rescale(model: nn.Module, batch: Batch, *, steps: int = 40, lr: float = 0.1, eps: float = 1e-5) -> None:
    """MetaInit (Dauphin & Schoenholz 2019): learn one scale per weight tensor that lowers the gradient quotient.

    The loss is the cross-entropy of the model on the batch; every weight tensor W_k is
    replaced by exp(s_k) W_k and the log-scales s run ``steps`` steps of Adam (lr ``lr``) on
    :func:`gradient_quotient` over all parameters (the paper uses signSGD with momentum on the
    norms). The GQ is rough in s and Adam can overshoot, so the scales with the lowest GQ
    seen are applied (never worse than the base init). Biases keep their values.
    """
    inputs, targets = batch
    names = [f"{name}.weight" for name, _ in weight_layers(model)]
    start = {name: param.detach() for name, param in model.named_parameters()}
    log_scales = torch.zeros(len(names), dtype=start[names[0]].dtype, device=start[names[0]].device, requires_grad=True)
    optimizer = torch.optim.Adam([log_scales], lr=lr)
    best_quotient, best_scales = math.inf, log_scales.detach().clone()
    with evaluation_mode(model):
        for _ in range(steps):
            params = {name: value.clone().requires_grad_() for name, value in start.items()}
            params.update({name: start[name] * log_scales[k].exp() for k, name in enumerate(names)})
            loss = F.cross_entropy(torch.func.functional_call(model, params, (inputs,)), targets)
            quotient = gradient_quotient(loss, list(params.values()), eps)
            if quotient.item() < best_quotient:
                best_quotient, best_scales = quotient.item(), log_scales.detach().clone()
            optimizer.zero_grad()
            quotient.backward()
            optimizer.step()
    with torch.no_grad():
        for (_, layer), log_scale in zip(weight_layers(model), best_scales, strict=True):
            layer.weight.mul_(log_scale.exp())


@dataclass(frozen=True)
class DataAwareInit:
    """A data-aware scheme: the default base weight scheme and the rescaling run on the batch."""

    base: str
    rescale: Callable[..., None]


DATA_AWARE_INITS: dict[str, DataAwareInit] = {
    "jacobian_calibrated": DataAwareInit("spectral", jacobian_calibrate),
    "lsuv": DataAwareInit("orthogonal", lsuv_rescale),
    "metainit": DataAwareInit("spectral", metainit_rescale),
}
