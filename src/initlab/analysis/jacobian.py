"""Per-sample spectral norms of the layer Jacobians J^(k) = D_{z^(k)} z^(k+1) (paper Theorem 2).

Corollary 1 asks for ||J^(k)|| ~ 1 and notes it can be "estimated by random simulations": we
iterate on J^T J with one JVP and one VJP per step (``torch.func``), batched over the samples,
never forming a dense Jacobian. Lanczos (default) certifies its answer through the Ritz residual;
plain power iteration is kept as an option: on a 784-256-256-10 tanh MLP at init its
stopping rule (relative change < 1e-3) stopped 2-3% below the true norm, where Lanczos was
within 1e-6 in fewer steps (the top singular values of a random square layer cluster).
"""

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor, nn

from initlab.analysis._modes import Mode, evaluation_mode
from initlab.analysis.lanczos import batched_lanczos
from initlab.analysis.segments import layer_segments, segment_inputs

Reduction = Literal["mean", "max", "none"]
Method = Literal["lanczos", "power"]


def _per_sample_norm(x: Tensor) -> Tensor:
    return torch.linalg.vector_norm(x.flatten(1), dim=1)


def _per_sample_scale(x: Tensor, scale: Tensor) -> Tensor:
    return x * scale.reshape((-1,) + (1,) * (x.dim() - 1))


def per_sample_spectral_norms(
    fn: Callable[[Tensor], Tensor],
    z: Tensor,
    iters: int = 100,
    tol: float = 1e-5,
    seed: int = 0,
    method: Method = "lanczos",
) -> tuple[Tensor, int]:
    """sigma_max of D fn(z_b) for every sample b, matrix-free from products with J^T J.

    ``fn`` must treat the samples (first axis) independently, so its Jacobian on the batch is
    block diagonal and one batched JVP + VJP applies every sample's J_b^T J_b at once.
    ``method="power"``: power iteration; the estimate sqrt(||J^T J v||) (v unit) increases to
    sigma_max and iteration stops when every sample's estimate moves by less than ``tol``
    (relative) -- a rule that stops early when the top singular values cluster.
    ``method="lanczos"`` (default): per-sample Lanczos with full reorthogonalization; stops when
    every sample's top Ritz residual is below ``tol`` times its Ritz value, which bounds the
    error of sigma_max^2. Returns (norms [batch], steps = JVP/VJP pairs).
    """
    if method not in ("lanczos", "power"):
        raise ValueError(f"method must be 'lanczos' or 'power', got {method!r}")
    generator = torch.Generator().manual_seed(seed)
    start = torch.randn(z.shape, generator=generator, dtype=z.dtype).to(z.device)
    _, vjp_fn = torch.func.vjp(fn, z)

    def gram(v: Tensor) -> Tensor:
        _, jv = torch.func.jvp(fn, (z,), (v,))
        return vjp_fn(jv)[0].detach()

    if method == "power":
        return _power_top_eigenvalue_sqrt(gram, start, iters, tol)
    tridiagonal = batched_lanczos(lambda q: gram(q.reshape(z.shape)).flatten(1), start.flatten(1), iters, tol)
    top = torch.linalg.eigvalsh(tridiagonal.matrix())[:, -1].clamp_min(0)
    return top.sqrt().to(z.dtype), tridiagonal.steps


def _power_top_eigenvalue_sqrt(
    gram: Callable[[Tensor], Tensor], v: Tensor, iters: int, tol: float
) -> tuple[Tensor, int]:
    tiny = torch.finfo(v.dtype).tiny
    v = _per_sample_scale(v, 1.0 / _per_sample_norm(v))
    estimate = torch.zeros(v.shape[0], dtype=v.dtype, device=v.device)
    for step in range(1, iters + 1):
        w = gram(v)
        squared = _per_sample_norm(w)
        new_estimate = squared.sqrt()
        v = _per_sample_scale(w, 1.0 / squared.clamp_min(tiny))
        change = (new_estimate - estimate).abs() / new_estimate.clamp_min(tiny)
        estimate = new_estimate
        if step > 1 and bool((change <= tol).all()):
            return estimate, step
    return estimate, iters


def layer_jacobian_norms(
    model: nn.Module,
    inputs: Tensor,
    iters: int = 100,
    tol: float = 1e-5,
    reduction: Reduction = "mean",
    mode: Mode = "eval",
    seed: int = 0,
    method: Method = "lanczos",
) -> Tensor:
    """||J^(k)||_2 per weight layer k, computed per sample (paper Theorem 2, Corollary 1).

    J^(k) is the Jacobian of the segment from the input of weight layer k to the input of weight
    layer k+1 (the last segment ends at the model output), see :func:`layer_segments`; it is
    evaluated at every sample's own z^(k) by batched matrix-free iterations on J^T J with
    JVP/VJP (:func:`per_sample_spectral_norms`; ``method="power"`` is the plain power iteration,
    the default ``"lanczos"`` reaches a certified ``tol`` in far fewer steps).
    ``reduction``: ``"mean"`` (default) = mean over samples of the per-sample norms, shape
    [n_layers]; ``"max"`` = max over samples, [n_layers]; ``"none"`` = all norms, [n_layers, batch].
    Layers follow ``weight_layers(model)`` order. Runs in ``eval()`` by default; the model's
    mode, parameters and buffers are left unchanged.
    """
    if reduction not in ("mean", "max", "none"):
        raise ValueError(f"reduction must be 'mean', 'max' or 'none', got {reduction!r}")
    with evaluation_mode(model, mode):
        segments = layer_segments(model)
        zs = segment_inputs(model, inputs)
        norms = torch.stack(
            [
                per_sample_spectral_norms(segment.module, z, iters, tol, seed, method)[0]
                for segment, z in zip(segments, zs, strict=False)
            ]
        )
    if reduction == "mean":
        return norms.mean(dim=1)
    if reduction == "max":
        return norms.amax(dim=1)
    return norms
