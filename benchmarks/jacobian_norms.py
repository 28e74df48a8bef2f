"""Per-sample Jacobian norms (paper Theorem 2's factors): the package's Lanczos vs its pre-2026-12-07 loop.

    python benchmarks/jacobian_norms.py              # the pipeline MLP 784-256-256-10, tanh, 1,024 samples, ~1 min
    python benchmarks/jacobian_norms.py --activation relu --tol 1e-2

Both arms compute ||diag(f'(u_n)) W^(k)|| for every sample n and hidden layer k (``diagonal_times_matrix_norms``:
the study's Theorem 2 rows, ~half of an lr-study at-init task) from the same start vectors, stopping when every
sample's top Ritz pair has residual <= ``--tol``. "old" is a frozen copy of the loop before 2026-12-07, which
reorthogonalized and checked every row until the slowest settled; "new" is ``initlab.analysis.lanczos``, where a
settled row is no longer checked or reorthogonalized (it runs on until the slowest settles). Ratio: old / new CPU s
(one torch thread, median of per-round ratios); the script also checks that both agree to ``--tol``.
"""

import argparse

import torch
from torch import Tensor

from common import interleaved, machine_line, mnist_t10k_path, paired_ratio, ratio_line, read_idx_images, timed
from initlab.analysis.jacobian import diagonal_times_matrix_norms, elementwise_derivative
from initlab.analysis.lanczos import Tridiagonal
from initlab.analysis.segments import layer_segments, segment_inputs
from initlab.models import mlp


def old_lanczos(apply, start: Tensor, max_steps: int, tol: float, check_every: int = 4) -> Tridiagonal:
    """The loop of ``initlab.analysis.lanczos.lanczos`` before 2026-12-07 (tol mode, n_top 1): every row
    reorthogonalized (classical Gram-Schmidt twice) and checked by one batched eigh until all rows settle."""
    batch, dim = start.shape
    tiny, eps = torch.finfo(start.dtype).tiny, torch.finfo(start.dtype).eps
    basis = torch.empty(batch, max_steps + 1, dim, dtype=start.dtype)
    basis[:, 0] = start / torch.linalg.vector_norm(start, dim=1, keepdim=True)
    alphas, betas = torch.zeros(batch, max_steps, dtype=torch.float64), torch.zeros(batch, max_steps, dtype=torch.float64)
    for step in range(1, max_steps + 1):
        q = basis[:, step - 1]
        w = apply(q)
        alpha = (w * q).sum(dim=1)
        alphas[:, step - 1] = alpha.double()
        w = w - alpha[:, None] * q
        if step > 1:
            w = w - betas[:, step - 2, None].to(w.dtype) * basis[:, step - 2]
        for _ in range(2):
            w = w - torch.bmm(torch.bmm(basis[:, :step], w[:, :, None]).transpose(1, 2), basis[:, :step])[:, 0]
        beta = torch.linalg.vector_norm(w, dim=1).double()
        scale = alphas[:, :step].abs().amax(dim=1) + betas[:, :step].abs().amax(dim=1)
        broken = beta <= 10 * eps * step * scale.clamp_min(tiny)
        tridiagonal = Tridiagonal(alphas[:, :step], betas[:, : step - 1])
        if step % check_every == 0 or step == max_steps:
            values, vectors = torch.linalg.eigh(tridiagonal.matrix())
            residual = torch.where(broken, torch.zeros_like(beta), beta) * vectors[:, -1, -1].abs()
            if bool((residual <= tol * values.abs().amax(dim=1)).all()) or step == max_steps:
                return tridiagonal
        w = torch.where(broken[:, None], torch.zeros_like(w), w)
        betas[:, step - 1] = torch.where(broken, torch.zeros_like(beta), beta)
        basis[:, step] = w / torch.linalg.vector_norm(w, dim=1).clamp_min(tiny)[:, None]
    raise AssertionError("unreachable")


def old_norms(d: Tensor, weight: Tensor, iters: int, tol: float) -> Tensor:
    """``diagonal_times_matrix_norms`` with the old loop (the same Gram map and start vectors)."""
    generator = torch.Generator().manual_seed(0)
    start = torch.randn(d.shape[0], min(weight.shape), generator=generator, dtype=d.dtype)
    gram_w = weight @ weight.T

    def gram(v: Tensor) -> Tensor:
        return d * ((d * v) @ gram_w)

    top = torch.linalg.eigvalsh(old_lanczos(gram, start, iters, tol).matrix())[:, -1].clamp_min(0)
    return top.sqrt().to(d.dtype)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=1024, help="samples (the study's Theorem 2 chunk: 1,024)")
    parser.add_argument("--activation", default="tanh")
    parser.add_argument("--tol", type=float, default=1e-3, help="the lr study's tol")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    x = read_idx_images(mnist_t10k_path())[0][: args.samples]
    torch.manual_seed(0)
    model = mlp((1, 28, 28), 10, widths=[256, 256], activation=args.activation).eval()
    with torch.no_grad():
        cases = []
        for segment, z in zip(layer_segments(model)[:-1], segment_inputs(model, x), strict=False):
            d = elementwise_derivative(segment.after_layer, segment.layer(z))
            cases.append((d, segment.layer.weight.detach()))
    print(machine_line())
    old = torch.stack([old_norms(d, w, 100, args.tol) for d, w in cases])
    new = torch.stack([diagonal_times_matrix_norms(d, w, 100, args.tol) for d, w in cases])
    gap = float(((old**2 - new**2).abs() / old**2).max())
    runs = interleaved({"old": lambda: timed(lambda: [old_norms(d, w, 100, args.tol) for d, w in cases]).cpu,
                        "new": lambda: timed(lambda: [diagonal_times_matrix_norms(d, w, 100, args.tol) for d, w in cases]).cpu},
                       args.rounds)
    print(f"{args.activation}, {args.samples} samples, {len(cases)} hidden layers: old {min(runs['old']):.2f} s, "
          f"new {min(runs['new']):.2f} s CPU; largest relative gap of ||J||^2 between them {gap:.1e}"
          f" ({'within' if gap <= args.tol else 'NOT within'} tol {args.tol:g})")
    ratio = paired_ratio(runs["old"], runs["new"])
    print(ratio_line("jacobian_norms_speedup", ratio, goal=1.5))


if __name__ == "__main__":
    main()
