"""Per-sample spectral norms of the layer Jacobians J^(k) = D_{z^(k)} z^(k+1) (paper Theorem 2).

Corollary 1 asks for ||J^(k)|| ~ 1 and notes it can be "estimated by random simulations". A
segment "Linear -> elementwise activations" has J_n = diag(d_n) W with d_n the activation's
derivative in closed form (:data:`DERIVATIVES`): its norm comes from Lanczos on the small Gram
map v -> d (W W^T (d v)) (or W^T (d^2 (W v)), whichever side is smaller), batched over samples,
and is ||W|| itself when d is the same for every sample (identity, the last layer). Any other
segment (convolutions, pooling) iterates on J^T J with one JVP and one VJP per step
(``torch.func``), never forming a dense Jacobian. Lanczos certifies its answer through the Ritz
residual: ``tol`` bounds the relative error of ||J||^2.
"""

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor, nn

from initlab.analysis._modes import Mode, evaluation_mode
from initlab.analysis.lanczos import lanczos
from initlab.analysis.segments import LayerSegment, layer_segments, segment_inputs

Reduction = Literal["mean", "max", "none"]


def _ones(module: nn.Module, u: Tensor) -> Tensor:
    return torch.ones_like(u)


def _sigmoid(module: nn.Module, u: Tensor) -> Tensor:
    s = torch.sigmoid(u)
    return s * (1 - s)


def _gelu(module: nn.Module, u: Tensor) -> Tensor | None:
    if module.approximate != "none":
        return None
    return torch.special.ndtr(u) + u * torch.exp(-0.5 * u**2) / (2 * torch.pi) ** 0.5


# f'(u) of elementwise modules in closed form (None: no formula in this configuration)
DERIVATIVES: dict[type[nn.Module], Callable[[nn.Module, Tensor], Tensor | None]] = {
    nn.Identity: _ones,
    nn.Flatten: _ones,
    nn.Dropout: lambda m, u: None if m.training else torch.ones_like(u),
    nn.Tanh: lambda m, u: 1 - torch.tanh(u) ** 2,
    nn.ReLU: lambda m, u: (u > 0).to(u.dtype),
    nn.LeakyReLU: lambda m, u: torch.where(u > 0, 1.0, m.negative_slope).to(u.dtype),
    nn.Sigmoid: _sigmoid,
    nn.GELU: _gelu,
    nn.SiLU: lambda m, u: torch.sigmoid(u) * (1 + u * (1 - torch.sigmoid(u))),
}


def elementwise_derivative(modules: nn.Sequential, u: Tensor) -> Tensor | None:
    """The diagonal of D_u modules(u) per sample when every module is elementwise with a known
    derivative (chain rule), else None. Flatten only passes on [batch, features] inputs."""
    d = torch.ones_like(u)
    for module in modules:
        formula = DERIVATIVES.get(type(module))
        factor = formula(module, u) if formula is not None and u.dim() == 2 else None
        if factor is None:
            return None
        d = d * factor
        u = module(u)
    return d


def per_sample_spectral_norms(
    fn: Callable[[Tensor], Tensor], z: Tensor, iters: int = 100, tol: float = 1e-5, seed: int = 0
) -> tuple[Tensor, int]:
    """sigma_max of D fn(z_b) for every sample b, matrix-free by Lanczos on J_b^T J_b (one JVP + VJP per step).

    ``fn`` must treat the samples (first axis) independently, so its Jacobian on the batch is
    block diagonal and one batched JVP + VJP applies every J_b^T J_b at once. Stops when every
    sample's top Ritz residual is below ``tol`` times its Ritz value. Returns (norms [batch], steps).
    """
    generator = torch.Generator(device=z.device).manual_seed(seed)
    start = torch.randn(z.shape, generator=generator, dtype=z.dtype, device=z.device)
    _, vjp_fn = torch.func.vjp(fn, z)

    def gram(v: Tensor) -> Tensor:
        _, jv = torch.func.jvp(fn, (z,), (v.reshape(z.shape),))
        return vjp_fn(jv)[0].detach().flatten(1)

    return _top_singular_values(gram, start.flatten(1), iters, tol)


def _top_singular_values(gram: Callable[[Tensor], Tensor], start: Tensor, iters: int, tol: float
                         ) -> tuple[Tensor, int]:
    run = lanczos(gram, start, iters, tol, check_every=4)
    top = torch.linalg.eigvalsh(run.tridiagonal.matrix())[:, -1].clamp_min(0)
    return top.sqrt().to(start.dtype), run.tridiagonal.steps


def diagonal_times_matrix_norms(d: Tensor, weight: Tensor, iters: int = 100, tol: float = 1e-5, seed: int = 0
                                ) -> Tensor:
    """||diag(d_n) W||_2 for every row d_n of ``d`` [batch, out] (W [out, in]): ||W|| scaled once when all
    rows are equal up to sign, else Lanczos on the smaller Gram map, batched over samples."""
    if bool((d.abs() == d[:1].abs()).all()):
        norm = torch.linalg.matrix_norm(d[0].abs()[:, None] * weight, ord=2)
        return norm.expand(d.shape[0]).clone()
    out_features, in_features = weight.shape
    generator = torch.Generator(device=d.device).manual_seed(seed)
    start = torch.randn(d.shape[0], min(out_features, in_features), generator=generator, dtype=d.dtype, device=d.device)
    if out_features <= in_features:
        gram_w = weight @ weight.T

        def gram(v: Tensor) -> Tensor:
            return d * ((d * v) @ gram_w)
    else:
        squared = d * d

        def gram(v: Tensor) -> Tensor:
            return ((v @ weight.T) * squared) @ weight

    return _top_singular_values(gram, start, iters, tol)[0]


def segment_jacobian_norms(segment: LayerSegment, z: Tensor, iters: int = 100, tol: float = 1e-5, seed: int = 0
                           ) -> tuple[Tensor, Tensor]:
    """(||J^(k)||, ||A^(k)||) per sample for segment k at its inputs ``z``: the closed-form path for
    Linear + elementwise activations (A = diag(f'(u)), ||A|| = max |f'(u)|), JVP/VJP Lanczos otherwise."""
    with torch.no_grad():
        u = segment.layer(z)
        d = elementwise_derivative(segment.after_layer, u)
        if d is not None and isinstance(segment.layer, nn.Linear) and z.dim() == 2:
            return diagonal_times_matrix_norms(d, segment.layer.weight.detach(), iters, tol, seed), d.abs().amax(dim=1)
    jacobian = per_sample_spectral_norms(segment.module, z, iters, tol, seed)[0]
    activation = d.abs().flatten(1).amax(dim=1) if d is not None else \
        per_sample_spectral_norms(segment.after_layer, u, iters, tol, seed)[0]
    return jacobian, activation


def layer_jacobian_norms(
    model: nn.Module,
    inputs: Tensor,
    iters: int = 100,
    tol: float = 1e-5,
    reduction: Reduction = "mean",
    mode: Mode = "eval",
    seed: int = 0,
) -> Tensor:
    """||J^(k)||_2 per weight layer k, computed per sample (paper Theorem 2, Corollary 1).

    J^(k) is the Jacobian of the segment from the input of weight layer k to the input of weight
    layer k+1 (the last segment ends at the model output), see :func:`layer_segments`, evaluated
    at every sample's own z^(k) (:func:`segment_jacobian_norms`). ``reduction``: ``"mean"``
    (default) = mean over samples, [n_layers]; ``"max"``, [n_layers]; ``"none"`` = [n_layers, batch].
    Runs in ``eval()`` by default; the model's mode, parameters and buffers are left unchanged.
    """
    if reduction not in ("mean", "max", "none"):
        raise ValueError(f"reduction must be 'mean', 'max' or 'none', got {reduction!r}")
    with evaluation_mode(model, mode):
        zs = segment_inputs(model, inputs)
        norms = torch.stack([segment_jacobian_norms(s, z, iters, tol, seed)[0]
                             for s, z in zip(layer_segments(model), zs, strict=False)])
    if reduction == "mean":
        return norms.mean(dim=1)
    if reduction == "max":
        return norms.amax(dim=1)
    return norms
