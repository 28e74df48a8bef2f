"""The Lanczos solvers of initlab: full reorthogonalization, no host sync between convergence checks.

:func:`lanczos` runs one Krylov space per row of its start (batched over rows): SLQ probes
(Gauss quadrature nodes and weights for the spectral density) and per-sample Jacobian norms (one
row per sample). :func:`block_lanczos` runs one Krylov space from a small block of start
vectors: the certified extremes of the Hessian (a single start vector nearly orthogonal to the
top eigenvector can converge to the second eigenvalue with a small residual; a block misses it
only if every start vector does), whose basis also deflates the trace and whose block Gauss
quadrature serves as SLQ probes. Full reorthogonalization keeps the bases orthogonal in finite
precision, so converged Ritz values never reappear as "ghost" copies and the residual bounds
read off the (block) tridiagonal are the true residuals ||M y_i - theta_i y_i||.
Every tensor lives on the device of the start vectors (coefficients in float64).
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Tridiagonal:
    """Lanczos coefficients of every Krylov space: T_b = tridiag(betas_b, alphas_b, betas_b)."""

    alphas: Tensor
    betas: Tensor

    @property
    def steps(self) -> int:
        return self.alphas.shape[1]

    def matrix(self) -> Tensor:
        """The tridiagonal matrices T, shape [batch, steps, steps] (float64, on the run's device)."""
        off = torch.diag_embed(self.betas, offset=1)
        return torch.diag_embed(self.alphas) + off + off.transpose(1, 2)

    def quadrature(self) -> tuple[Tensor, Tensor]:
        """Ritz values [batch, steps] (ascending) and Gauss quadrature weights: squared first
        components of T's eigenvectors, summing to 1 per row (Golub-Welsch: the spectral measure
        of the start vector)."""
        values, vectors = torch.linalg.eigh(self.matrix())
        return values, vectors[:, 0, :] ** 2


@dataclass(frozen=True)
class RitzPairs:
    """Ritz values, vectors (columns) and residual bounds ||M y - theta y|| of one row."""

    values: Tensor
    vectors: Tensor
    residuals: Tensor


@dataclass(frozen=True)
class LanczosRun:
    """A finished run: the tridiagonals of every row (in the order of its start) and whether every row met ``tol``."""

    tridiagonal: Tridiagonal
    converged: bool


def lanczos(apply: Callable[[Tensor], Tensor], start: Tensor, max_steps: int, tol: float | None = None,
            n_top: int = 1, check_every: int = 4) -> LanczosRun:
    """Lanczos on the symmetric map ``apply`` (acting row-wise on [batch, dim]) from every row of ``start``.

    Without ``tol`` every row runs ``max_steps`` steps (SLQ). With ``tol`` the run stops once every
    row's ``n_top`` largest Ritz pairs have had residual beta_m |s_mi| <= tol * max|theta|
    (for a dominant top eigenvalue ARPACK's ||r|| <= tol |theta|; the per-sample Jacobian norms
    use it), checked every ``check_every`` steps: the only host syncs of the loop. A row that has
    settled is not checked again and runs on to the end without reorthogonalization: its extremes
    only sharpen (finite-precision Lanczos adds copies of converged Ritz values, never values outside
    the spectrum), and reorthogonalizing every row to the last step was ~60% of a run on 1,024
    per-sample Jacobians, where a quarter of the rows still ran at step 24 of 44. Rows run until the
    slowest settles: a row's own criterion is no guarantee against a top eigenvector its start
    barely sees (stopping each row at its own check gave 4% relative error at tol 1e-3).
    A row whose Krylov space becomes invariant (beta ~ 0: its Ritz values are exact)
    stops growing: its next vectors are zero, so its tridiagonal gains a decoupled zero block
    (quadrature nodes at 0 with weight 0, zero residuals); the switch is a ``torch.where``, not a
    host decision. (Extremes of indefinite operators come from :func:`block_lanczos`, which never
    adds such nodes.)
    A single start vector sees each distinct eigenvalue once: exact multiplicities are reported
    once, and a start nearly orthogonal to the top eigenvector can miss it (use :func:`block_lanczos`
    for certified extremes).
    """
    batch, dim = start.shape
    dtype, device = start.dtype, start.device
    tiny, eps = torch.finfo(dtype).tiny, torch.finfo(dtype).eps
    max_steps = min(max_steps, dim)
    basis = torch.empty(batch, min(max_steps, 16) + 1, dim, dtype=dtype, device=device)
    basis[:, 0] = start / torch.linalg.vector_norm(start, dim=1, keepdim=True)
    alphas = torch.zeros(batch, max_steps, dtype=torch.float64, device=device)
    betas = torch.zeros(batch, max_steps, dtype=torch.float64, device=device)
    order = torch.arange(batch, device=device)  # row order[k] of start sits at position k: the unsettled rows first
    unsettled = batch
    for step in range(1, max_steps + 1):
        q = basis[:, step - 1]
        w = apply(q) if unsettled == batch else apply(q[torch.argsort(order)])[order]
        alpha = (w * q).sum(dim=1)
        alphas[:, step - 1] = alpha.double()
        w = w - alpha[:, None] * q  # the three-term recurrence first: reorthogonalization then removes rounding
        if step > 1:
            w = w - betas[:, step - 2, None].to(dtype) * basis[:, step - 2]
        w[:unsettled] = _reorthogonalize(w[:unsettled], basis[:unsettled, :step])
        beta = torch.linalg.vector_norm(w, dim=1).double()
        scale = alphas[:, :step].abs().amax(dim=1) + betas[:, :step].abs().amax(dim=1)
        broken = beta <= 10 * eps * step * scale.clamp_min(tiny)
        beta = torch.where(broken, torch.zeros_like(beta), beta)
        if tol is not None and (step % check_every == 0 or step == max_steps):
            tridiagonal = Tridiagonal(alphas[:unsettled, :step], betas[:unsettled, : step - 1])
            settled = _settled(tridiagonal, beta[:unsettled], tol, n_top).tolist()  # the check's one host sync
            if all(settled):
                return _finished(alphas, betas, order, step, True)
            if any(settled):  # the rows still unsettled move to the front
                moved = torch.tensor(sorted(range(unsettled), key=settled.__getitem__), device=device)
                for table in (basis, alphas, betas, w, beta, broken, order):
                    table[:unsettled] = table[moved]
                unsettled = settled.count(False)
        if step == max_steps:
            return _finished(alphas, betas, order, step, tol is None)
        if step + 1 > basis.shape[1] - 1:
            basis = _grown(basis, 1, min(2 * basis.shape[1], max_steps + 1))
        w = torch.where(broken[:, None], torch.zeros_like(w), w)
        betas[:, step - 1] = beta
        basis[:, step] = w / torch.linalg.vector_norm(w, dim=1).clamp_min(tiny)[:, None]
    raise AssertionError("unreachable")


def _finished(alphas: Tensor, betas: Tensor, order: Tensor, steps: int, converged: bool) -> LanczosRun:
    """The run's tridiagonals in the order of the start rows."""
    rows = torch.argsort(order)
    return LanczosRun(Tridiagonal(alphas[rows, :steps], betas[rows, : steps - 1]), converged)


def _settled(tridiagonal: Tridiagonal, beta: Tensor, tol: float, n_top: int) -> Tensor:
    """Per row: whether the ``n_top`` largest Ritz pairs are within ``tol`` of the spectral scale."""
    steps = tridiagonal.steps
    if steps < n_top:
        return torch.zeros(beta.shape, dtype=torch.bool, device=beta.device)
    values, vectors = torch.linalg.eigh(tridiagonal.matrix())
    residual = beta[:, None] * vectors[:, -1, steps - n_top:].abs()
    return (residual <= tol * values.abs().amax(dim=1, keepdim=True)).all(dim=1)


def _grown(basis: Tensor, axis: int, size: int) -> Tensor:
    """``basis`` copied into a larger buffer along ``axis`` (the Krylov basis grows by doubling)."""
    shape = list(basis.shape)
    shape[axis] = size
    grown = basis.new_empty(shape)
    grown.narrow(axis, 0, basis.shape[axis]).copy_(basis)
    return grown


def _reorthogonalize(w: Tensor, basis: Tensor) -> Tensor:
    """``w`` [batch, dim] projected off the rows of ``basis`` [batch, m, dim]: classical Gram-Schmidt
    twice ("twice is enough", Giraud et al. 2005), always: a data-dependent second pass would need a
    host sync per step; its cost is small next to a curvature product."""
    w = w - _project(w, basis)
    return w - _project(w, basis)


def _project(w: Tensor, basis: Tensor) -> Tensor:
    """Each row of ``w`` projected on the span of its basis rows. A few long rows: one matrix-vector
    product per row (batched bmm of [b, m, dim] x [b, dim, 1] measured 4x slower at b = 3, dim 2.7e5)."""
    if w.shape[0] <= 8:
        return torch.stack([(b @ v) @ b for b, v in zip(basis, w, strict=True)])
    return torch.bmm(torch.bmm(basis, w[:, :, None]).transpose(1, 2), basis)[:, 0]


@dataclass(frozen=True)
class BlockTridiagonal:
    """Block Lanczos coefficients: T = blocktridiag(B^T, A, B) of size steps x b, with ``start`` = R of
    the start block (start rows = R^T Q_1). ``quadrature`` has the interface of :class:`Tridiagonal`:
    one row per start vector (block Gauss quadrature of each start vector's spectral measure)."""

    diagonal: Tensor
    lower: Tensor
    start: Tensor

    @property
    def steps(self) -> int:
        """The dimension of the block Krylov space (block steps x block size)."""
        return self.diagonal.shape[0] * self.diagonal.shape[1]

    def matrix(self) -> Tensor:
        """T as one symmetric [steps, steps] matrix (float64, on the run's device)."""
        m, b = self.diagonal.shape[:2]
        t = self.diagonal.new_zeros(m, b, m, b)
        index = torch.arange(m, device=t.device)
        t[index, :, index, :] = self.diagonal
        t[index[1:], :, index[:-1], :] = self.lower
        t[index[:-1], :, index[1:], :] = self.lower.transpose(1, 2)
        return t.reshape(m * b, m * b)

    def trace(self) -> Tensor:
        """tr(T) = tr(U^T M U) for the orthonormal Krylov basis U: the exact trace on that space."""
        return torch.diagonal(self.diagonal, dim1=1, dim2=2).sum()

    def quadrature(self) -> tuple[Tensor, Tensor]:
        """Ritz values [b, steps] (ascending, the same for every start vector) and each start vector's
        Gauss weights (z^T f(M) z / ||z||^2 ~ sum_j w_j f(theta_j); every row sums to 1)."""
        values, vectors = torch.linalg.eigh(self.matrix())
        b = self.start.shape[0]
        coefficients = (self.start.T @ vectors[:b]) ** 2
        weights = coefficients / coefficients.sum(dim=1, keepdim=True)
        return values.expand(b, -1), weights


@dataclass(frozen=True)
class BlockLanczosRun:
    """A finished block run: its coefficients, the orthonormal basis [steps, dim] (rows), the next
    block's B (the residual of every Ritz pair is ||B_next s_last||) and whether the wanted pairs met ``tol``."""

    tridiagonal: BlockTridiagonal
    basis: Tensor
    next_lower: Tensor
    converged: bool

    def pairs(self, n_top: int, n_bottom: int) -> tuple[RitzPairs, RitzPairs]:
        """The ``n_top`` largest (descending) and ``n_bottom`` smallest (ascending) Ritz pairs."""
        values, vectors = torch.linalg.eigh(self.tridiagonal.matrix())
        steps = values.shape[0]
        top = torch.arange(steps - 1, steps - 1 - min(n_top, steps), -1, device=values.device)
        bottom = torch.arange(min(n_bottom, steps), device=values.device)
        return self._select(values, vectors, top), self._select(values, vectors, bottom)

    def _select(self, values: Tensor, vectors: Tensor, index: Tensor) -> RitzPairs:
        chosen = vectors[:, index]
        b = self.next_lower.shape[0]
        residuals = torch.linalg.vector_norm(self.next_lower @ chosen[-b:], dim=0)
        return RitzPairs(values[index], self.basis.T @ chosen.to(self.basis.dtype), residuals)


def block_lanczos(
    apply: Callable[[Tensor], Tensor],
    start: Tensor,
    max_steps: int,
    tol: float | None = None,
    n_top: int = 1,
    n_bottom: int = 0,
    min_steps: int = 0,
    check_every: int | None = None,
    seed: int = 0,
) -> BlockLanczosRun:
    """Block Lanczos (Golub-Underwood) from the b rows of ``start`` [b, dim], full reorthogonalization.

    One Krylov space from b start vectors: the top (bottom) eigenvector is missed only if *every*
    start vector is nearly orthogonal to it, and products come in blocks (``apply`` maps [b, dim]
    rows, one graph pass per block). With ``tol`` the run stops after at least ``min_steps`` block
    steps once the n_top + 1 largest and n_bottom + 1 smallest Ritz pairs (the extra one: an
    eigenvalue above the reported ones would show as an unconverged neighbour) have residual
    ||B_next s_last|| <= tol * max|theta|, checked every ``check_every`` block steps: the loop's only host
    syncs. By default every block step on the CPU, where a host read costs nothing and stopping up to 3 block steps
    sooner saves the costliest steps (the reorthogonalization grows with the basis: a depth-16 lambda_max took 25%
    less CPU time), every 4 block steps on an accelerator. Rank-deficient blocks continue from random vectors
    orthogonal to the basis. At most min(max_steps, dim // b) block steps.
    """
    b, dim = start.shape
    dtype, device = start.dtype, start.device
    eps = torch.finfo(dtype).eps
    max_steps = max(1, min(max_steps, dim // b))
    check_every = check_every or (1 if device.type == "cpu" else 4)
    basis = torch.empty((min(max_steps, 16) + 1) * b, dim, dtype=dtype, device=device)
    random_rows = torch.randn(start.shape, generator=torch.Generator(device=device).manual_seed(seed), dtype=dtype, device=device)
    first, r0 = _orthonormal_rows(start, random_rows, 10 * eps * torch.linalg.vector_norm(start, dim=1).amax())
    basis[:b] = first
    diagonal = torch.zeros(max_steps, b, b, dtype=torch.float64, device=device)
    lower = torch.zeros(max_steps, b, b, dtype=torch.float64, device=device)
    for step in range(1, max_steps + 1):
        end = step * b
        q = basis[end - b:end]
        w = apply(q)
        a = q @ w.T
        a = (a + a.T) / 2
        diagonal[step - 1] = a.double()
        w = w - a @ q
        if step > 1:
            w = w - lower[step - 2].to(dtype) @ basis[end - 2 * b:end - b]
        # full reorthogonalization, twice for w ("twice is enough"); the random rows that replace a
        # rank-deficient block ride along in the first pass (one read of the basis for both). They are the
        # start's random rows shifted by the step: a new direction each step for the cost of a copy (a fresh
        # draw each step was 17% of a small model's curvature record on the CPU)
        both = torch.cat([w, torch.roll(random_rows, step, dims=1)])
        both = both - (both @ basis[:end].T) @ basis[:end]
        w, fresh = both[:b], both[b:]
        w = w - (w @ basis[:end].T) @ basis[:end]
        scale = diagonal[:step].abs().amax() + lower[:step].abs().amax()
        following, r = _orthonormal_rows(w, fresh, 10 * eps * end * scale)
        lower[step - 1] = r.double()
        tridiagonal = BlockTridiagonal(diagonal[:step], lower[: step - 1], r0.double())
        checked = tol is not None and step >= min_steps and (step % check_every == 0 or step == max_steps)
        converged = checked and _block_settled(tridiagonal, lower[step - 1], tol, n_top, n_bottom, dim)
        if converged or step == max_steps:
            return BlockLanczosRun(tridiagonal, basis[:end], lower[step - 1], converged or tol is None)
        if end + b > basis.shape[0]:
            basis = _grown(basis, 0, min(2 * basis.shape[0], (max_steps + 1) * b))
        basis[end:end + b] = following
    raise AssertionError("unreachable")


def _block_settled(tridiagonal: BlockTridiagonal, next_lower: Tensor, tol: float, n_top: int, n_bottom: int,
                   dim: int) -> bool:
    """The n_top + 1 largest and n_bottom + 1 smallest Ritz pairs (fewer when the space is the whole
    space) have residual <= tol * max|theta| (one host sync)."""
    steps = tridiagonal.steps
    top, bottom = (min(n + 1, steps) if n else 0 for n in (n_top, n_bottom))
    if steps < dim and steps < top + bottom:
        return False
    values, vectors = torch.linalg.eigh(tridiagonal.matrix())
    wanted = list(range(bottom)) + list(range(steps - top, steps))
    b = next_lower.shape[0]
    residual = torch.linalg.vector_norm(next_lower @ vectors[-b:, wanted], dim=0)
    return bool((residual <= tol * values.abs().amax()).all())


def _orthonormal_rows(w: Tensor, fresh: Tensor, threshold: Tensor) -> tuple[Tensor, Tensor]:
    """Q, R with w = R^T Q (rows; R upper triangular) and Q orthonormal, for rows ``w`` and random rows
    ``fresh`` already orthogonal to the basis. Gram-Schmidt twice; a row whose remainder is below
    ``threshold`` (rank deficiency, an invariant subspace) gets R_ii = 0 and the matching random row
    made orthogonal, chosen by ``torch.where`` so the host never waits."""
    b = w.shape[0]
    tiny = torch.finfo(w.dtype).tiny
    r = w.new_zeros(b, b)
    rows: list[Tensor] = []
    for i in range(b):
        v, f = w[i], fresh[i]
        for _ in range(2):
            if rows:
                done = torch.stack(rows)
                c = done @ v
                v = v - c @ done
                r[:i, i] += c
                f = f - (done @ f) @ done
        norm = torch.linalg.vector_norm(v)
        broken = norm <= threshold
        rows.append(torch.where(broken, f / torch.linalg.vector_norm(f).clamp_min(tiny), v / norm.clamp_min(tiny)))
        r[i, i] = torch.where(broken, torch.zeros_like(norm), norm)
    return torch.stack(rows), r
