"""Ill-conditioned quadratics ("canyons") for the momentum-vs-gradient-descent experiments
(docs/methods.md, measurements), run with the real ``torch.optim`` optimizers on a float64 parameter."""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from initlab.optim._checks import check_range

OptimizerFactory = Callable[[Iterable[Tensor]], Optimizer]
SchedulerFactory = Callable[..., LRScheduler]


@dataclass(frozen=True)
class Quadratic:
    """f(x) = 1/2 (x - x*)^T A (x - x*), A symmetric positive definite; Hessian A, minimum 0."""

    A: np.ndarray
    minimizer: np.ndarray

    @property
    def eigenvalues(self) -> np.ndarray:
        """Eigenvalues of A, ascending."""
        return np.linalg.eigvalsh(self.A)

    def loss(self, x: np.ndarray) -> np.ndarray:
        """f at each point of ``x`` with shape [..., dim] (inf where a diverged run overflows)."""
        d = np.asarray(x, dtype=np.float64) - self.minimizer
        with np.errstate(over="ignore", invalid="ignore"):
            return 0.5 * np.einsum("...i,ij,...j->...", d, self.A, d)


def ill_conditioned_quadratic(dim: int = 2, condition: float = 100.0, seed: int = 0) -> Quadratic:
    """Eigenvalues geometrically spaced from 1 to ``condition`` (lambda_max = condition), eigenvectors
    a random rotation and the minimizer standard normal, both drawn from ``seed``."""
    check_range("dim", dim, 2)
    check_range("condition", condition, 1.0)
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    rotation = q * np.sign(np.diag(r))
    a = rotation @ np.diag(np.geomspace(1.0, condition, dim)) @ rotation.T
    return Quadratic(A=(a + a.T) / 2, minimizer=rng.standard_normal(dim))


def canyon_start(quadratic: Quadratic, distance: float = 1.0) -> np.ndarray:
    """A start at ``distance`` from the minimizer with equal components along every eigenvector,
    so gradient descent both oscillates across the canyon and crawls along it."""
    _, vectors = np.linalg.eigh(quadratic.A)
    return quadratic.minimizer + distance * vectors.sum(axis=1) / np.sqrt(len(quadratic.minimizer))


def run_optimizer_on_quadratic(
    make_optimizer: OptimizerFactory,
    quadratic: Quadratic,
    x0: Sequence[float] | np.ndarray,
    steps: int,
    make_scheduler: SchedulerFactory | None = None,
    tol: float | None = None,
) -> dict[str, np.ndarray]:
    """``steps`` steps of ``make_optimizer([x])`` (optionally under ``make_scheduler(opt, total_steps=steps)``)
    on a float64 torch parameter x whose ``.grad`` is set to the exact gradient A (x - x*).

    Returns ``path`` [n+1, dim] (the parameter tensor; for Nesterov variants the look-ahead point)
    and ``loss`` [n+1], where n = ``steps``, or fewer if ``tol`` is given and the loss reaches it.
    """
    x = torch.tensor(np.asarray(x0, dtype=np.float64), requires_grad=True)
    a = torch.from_numpy(quadratic.A)
    minimizer = torch.from_numpy(quadratic.minimizer)
    optimizer = make_optimizer([x])
    scheduler = None if make_scheduler is None else make_scheduler(optimizer, total_steps=steps)
    path, losses = [], []
    for k in range(steps + 1):
        d = x.detach() - minimizer
        grad = a @ d
        path.append(x.detach().clone())
        losses.append(0.5 * d @ grad)
        if k == steps or (tol is not None and losses[-1] <= tol):
            break
        x.grad = grad
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
    return {"path": torch.stack(path).numpy(), "loss": torch.stack(losses).numpy()}


def steps_to_tolerance(loss: np.ndarray, tol: float) -> int | None:
    """The first step k with loss[k] <= tol, or None if the run never gets there."""
    hits = np.flatnonzero(np.asarray(loss) <= tol)
    return int(hits[0]) if hits.size else None


def best_stable_sgd_lr(quadratic: Quadratic) -> float:
    """2 / (lambda_min + lambda_max): the lr with the fastest worst-direction contraction of gradient descent."""
    eigenvalues = quadratic.eigenvalues
    return 2.0 / (eigenvalues[0] + eigenvalues[-1])


def stable_sgd_lrs(quadratic: Quadratic, num: int = 100) -> np.ndarray:
    """``num`` evenly spaced lrs in (0, 2/lambda_max), the range where gradient descent converges."""
    return 2.0 / quadratic.eigenvalues[-1] * np.arange(1, num + 1) / (num + 1)


def fastest_lr(
    make_optimizer: Callable[[float], OptimizerFactory],
    lrs: Iterable[float],
    quadratic: Quadratic,
    x0: Sequence[float] | np.ndarray,
    steps: int,
    tol: float,
) -> tuple[float | None, int | None]:
    """The lr of ``lrs`` whose run ``make_optimizer(lr)`` first reaches loss <= tol, with its step count;
    (None, None) if none does within ``steps``. Tries the largest lr first and cuts each run before the
    best step count so far."""
    best_lr, best_steps = None, None
    for lr in sorted(lrs, reverse=True):
        budget = steps if best_steps is None else best_steps - 1
        run = run_optimizer_on_quadratic(make_optimizer(lr), quadratic, x0, budget, tol=tol)
        reached = steps_to_tolerance(run["loss"], tol)
        if reached is not None:
            best_lr, best_steps = float(lr), reached
    return best_lr, best_steps
