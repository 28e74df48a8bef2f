"""Batched Lanczos with full reorthogonalization: one Krylov space per row of a [batch, dim] start.

Used for per-sample Jacobian norms (the top eigenvalue of every J_b^T J_b at once) and for
stochastic Lanczos quadrature (one Krylov space per probe). Full reorthogonalization keeps the
basis orthogonal in finite precision; without it converged Ritz values reappear as spurious
"ghost" copies, which would put false mass into a spectral density.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class LanczosTridiagonal:
    """Lanczos coefficients of every Krylov space: T_b = tridiag(betas_b, alphas_b, betas_b)."""

    alphas: Tensor
    betas: Tensor

    @property
    def steps(self) -> int:
        return self.alphas.shape[1]

    def matrix(self) -> Tensor:
        """The tridiagonal matrices T, shape [batch, steps, steps] (float64)."""
        off = torch.diag_embed(self.betas, offset=1)
        return torch.diag_embed(self.alphas) + off + off.transpose(1, 2)

    def ritz(self) -> tuple[Tensor, Tensor]:
        """Ritz values [batch, steps] (ascending) and quadrature weights: squared first components of
        T's eigenvectors, which sum to 1 per row (Golub-Welsch: Gauss quadrature of the spectral
        measure of the start vector)."""
        values, vectors = torch.linalg.eigh(self.matrix())
        return values, vectors[:, 0, :] ** 2


def batched_lanczos(
    apply: Callable[[Tensor], Tensor],
    start: Tensor,
    max_steps: int,
    tol: float | None = None,
    check_every: int = 4,
) -> LanczosTridiagonal:
    """Run Lanczos on ``apply`` (a symmetric map acting row-wise on [batch, dim]) from each row of ``start``.

    Stops after ``max_steps``, when the Krylov spaces become invariant (beta ~ 0 in every row:
    the Ritz values are then exact), or -- with ``tol`` -- when every row's top Ritz pair has
    residual beta_m |s_m| <= tol * max|Ritz value| (checked every ``check_every`` steps). Rows
    that break down early continue with zero vectors, which only appends zero-weight Ritz values.
    The basis is stored in ``start.dtype``; the coefficients are float64.
    """
    batch, dim = start.shape
    dtype, device = start.dtype, start.device
    tiny, eps = torch.finfo(dtype).tiny, torch.finfo(dtype).eps
    max_steps = min(max_steps, dim)
    basis = torch.empty(batch, min(max_steps, 16) + 1, dim, dtype=dtype, device=device)
    basis[:, 0] = start / torch.linalg.vector_norm(start, dim=1, keepdim=True)
    alphas = torch.zeros(batch, max_steps, dtype=torch.float64, device=device)
    betas = torch.zeros(batch, max_steps, dtype=torch.float64, device=device)
    for step in range(1, max_steps + 1):
        q = basis[:, step - 1]
        w = apply(q)
        alphas[:, step - 1] = (w * q).sum(dim=1).double()
        krylov = basis[:, :step]
        for _ in range(2):  # full reorthogonalization (classical Gram-Schmidt, "twice is enough")
            w = w - torch.bmm(torch.bmm(krylov, w[:, :, None]).transpose(1, 2), krylov)[:, 0]
        beta = torch.linalg.vector_norm(w, dim=1).double()
        scale = alphas[:, :step].abs().amax(dim=1) + betas[:, :step].abs().amax(dim=1)
        broken = beta <= 10 * eps * step * scale.clamp_min(tiny)
        if step == max_steps or bool(broken.all()):
            return LanczosTridiagonal(alphas[:, :step], betas[:, : step - 1])
        if tol is not None and step % check_every == 0:
            tridiagonal = LanczosTridiagonal(alphas[:, :step], betas[:, : step - 1])
            values, vectors = torch.linalg.eigh(tridiagonal.matrix())
            residual = beta * vectors[:, -1, -1].abs()
            if bool(((residual <= tol * values.abs().amax(dim=1)) | broken).all()):
                return tridiagonal
        betas[:, step - 1] = torch.where(broken, torch.zeros_like(beta), beta)
        if step + 1 > basis.shape[1] - 1:
            grown = torch.empty(batch, min(2 * basis.shape[1], max_steps + 1), dim, dtype=dtype, device=device)
            grown[:, : basis.shape[1]] = basis
            basis = grown
        unit = w / beta.clamp_min(tiny).to(dtype)[:, None]
        basis[:, step] = torch.where(broken[:, None], torch.zeros_like(w), unit)
    raise AssertionError("unreachable")
