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
    residual beta_m |s_m| <= tol * max|Ritz value| (checked every ``check_every`` steps, only on
    rows not yet settled). Rows that break down early continue with zero vectors, which only
    appends zero-weight Ritz values.
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
    settled = torch.zeros(batch, dtype=torch.bool, device=device)
    for step in range(1, max_steps + 1):
        q = basis[:, step - 1]
        w = apply(q)
        alphas[:, step - 1] = (w * q).sum(dim=1).double()
        w = _reorthogonalize_rows(w, basis[:, :step])
        beta = torch.linalg.vector_norm(w, dim=1).double()
        scale = alphas[:, :step].abs().amax(dim=1) + betas[:, :step].abs().amax(dim=1)
        broken = beta <= 10 * eps * step * scale.clamp_min(tiny)
        if step == max_steps or bool(broken.all()):
            return LanczosTridiagonal(alphas[:, :step], betas[:, : step - 1])
        if tol is not None and step % check_every == 0:
            open_rows = (~settled & ~broken).nonzero().squeeze(1)  # eigen-solve only rows still open
            tridiagonal = LanczosTridiagonal(alphas[open_rows, :step], betas[open_rows, : step - 1])
            values, vectors = torch.linalg.eigh(tridiagonal.matrix())
            residual = beta[open_rows] * vectors[:, -1, -1].abs()
            settled[open_rows] = residual <= tol * values.abs().amax(dim=1)
            if bool((settled | broken).all()):
                return LanczosTridiagonal(alphas[:, :step], betas[:, : step - 1])
        betas[:, step - 1] = torch.where(broken, torch.zeros_like(beta), beta)
        if step + 1 > basis.shape[1] - 1:
            grown = torch.empty(batch, min(2 * basis.shape[1], max_steps + 1), dim, dtype=dtype, device=device)
            grown[:, : basis.shape[1]] = basis
            basis = grown
        unit = w / beta.clamp_min(tiny).to(dtype)[:, None]
        basis[:, step] = torch.where(broken[:, None], torch.zeros_like(w), unit)
    raise AssertionError("unreachable")


def _reorthogonalize_rows(w: Tensor, basis: Tensor) -> Tensor:
    """Row-wise :func:`_reorthogonalize`: ``w`` [batch, dim] off ``basis`` [batch, m, dim]; the
    second pass runs (for all rows) when any row fails the DGKS test."""
    norm = torch.linalg.vector_norm(w, dim=1)
    w = w - torch.bmm(torch.bmm(basis, w[:, :, None]).transpose(1, 2), basis)[:, 0]
    if bool((torch.linalg.vector_norm(w, dim=1) < norm / 2**0.5).any()):
        w = w - torch.bmm(torch.bmm(basis, w[:, :, None]).transpose(1, 2), basis)[:, 0]
    return w


def _reorthogonalize(w: Tensor, basis: Tensor) -> Tensor:
    """Project ``w`` off the rows of ``basis``: classical Gram-Schmidt, repeated only when the
    first pass cancelled most of ``w`` (the DGKS criterion ||w'|| < ||w|| / sqrt(2))."""
    norm = torch.linalg.vector_norm(w)
    w = w - (basis @ w) @ basis
    if torch.linalg.vector_norm(w) < norm / 2**0.5:
        w = w - (basis @ w) @ basis
    return w


@dataclass(frozen=True)
class ExtremeEigenpairs:
    """Ritz pairs at both ends of the spectrum from one Lanczos run (vectors are columns)."""

    top_values: Tensor
    top_vectors: Tensor
    bottom_values: Tensor
    bottom_vectors: Tensor
    steps: int
    converged: bool
    top_history: list[float]


def lanczos_extreme_eigenpairs(
    apply: Callable[[Tensor], Tensor],
    start: Tensor,
    n_top: int,
    n_bottom: int,
    tol: float,
    max_steps: int = 300,
    seed: int = 0,
) -> ExtremeEigenpairs:
    """The ``n_top`` largest and ``n_bottom`` smallest eigenpairs of the symmetric map ``apply``
    (flat vectors) by Lanczos with full reorthogonalization, checked after every product.

    Stops as soon as every wanted Ritz pair has residual beta_m |s_m| <= tol * max|theta| (the
    spectral scale: near-zero bottom eigenvalues get a meaningful criterion, and for a dominant
    top eigenvalue it is ARPACK's ||r|| <= tol |theta|). Without restarts no product is wasted;
    the price is ``max_steps`` stored basis vectors. An invariant subspace (beta ~ 0, e.g. a start
    vector that is an eigenvector) is exact; if more pairs are wanted the run continues from a
    random vector orthogonal to the basis. A single start vector sees each distinct eigenvalue
    once, so exact multiplicities (the zero eigenspace of a softmax layer block) are reported
    once; ARPACK's restarts do recover them. ``top_history`` is the top Ritz value per step.
    """
    dim, dtype, device = start.shape[0], start.dtype, start.device
    max_steps = min(max_steps, dim)
    eps = torch.finfo(dtype).eps
    generator = torch.Generator().manual_seed(seed)
    basis = torch.empty(min(max_steps, 32), dim, dtype=dtype, device=device)
    basis[0] = start / torch.linalg.vector_norm(start)
    alphas: list[float] = []
    betas: list[float] = []
    history: list[float] = []
    for step in range(1, max_steps + 1):
        q = basis[step - 1]
        w = apply(q)
        alphas.append(torch.dot(w, q).item())
        krylov = basis[:step]
        w = _reorthogonalize(w, krylov)
        beta = torch.linalg.vector_norm(w).item()
        tridiagonal = torch.diag(torch.tensor(alphas, dtype=torch.float64))
        if betas:
            off = torch.diag(torch.tensor(betas, dtype=torch.float64), 1)
            tridiagonal = tridiagonal + off + off.T
        values, vectors = torch.linalg.eigh(tridiagonal)
        history.append(values[-1].item())
        scale = values.abs().max().item()
        invariant = beta <= 10 * eps * step * max(scale, torch.finfo(dtype).tiny)
        wanted = list(range(min(n_bottom, step))) + list(range(max(step - n_top, n_bottom), step))
        enough = step >= n_top + n_bottom
        converged = enough and all(beta * abs(vectors[-1, i].item()) <= tol * scale or invariant for i in wanted)
        if converged or step == max_steps:
            ritz = basis[:step].T @ vectors.to(dtype)
            top = list(range(step - 1, step - 1 - min(n_top, step), -1))
            bottom = list(range(min(n_bottom, step)))
            return ExtremeEigenpairs(
                values[top], ritz[:, top], values[bottom], ritz[:, bottom], step, converged, history
            )
        if step == basis.shape[0]:
            basis = torch.cat([basis, torch.empty(min(step, max_steps - step), dim, dtype=dtype, device=device)])
        if invariant:  # exact so far; continue in the orthogonal complement (T becomes block diagonal)
            w = _reorthogonalize(torch.randn(dim, generator=generator, dtype=torch.float64).to(device, dtype), krylov)
            betas.append(0.0)
            basis[step] = w / torch.linalg.vector_norm(w)
        else:
            betas.append(beta)
            basis[step] = w / beta
    raise AssertionError("unreachable")
