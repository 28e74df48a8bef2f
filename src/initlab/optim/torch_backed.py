"""Factories mapping the book's hyperparameter names onto ``torch.optim`` optimizers that
compute the book's update exactly, also under a per-step lr schedule (the equality is
proven in ``tests/optim/test_optim_exact.py``).

In each of these, eps_k multiplies the step but never enters the optimizer's state, so
torch reading the current ``group["lr"]`` at every step is exact.
"""

from collections.abc import Iterable

import torch
from torch import Tensor

from initlab.optim._checks import check_fraction, check_positive, check_range


def sgd(params: Iterable[Tensor], lr: float = 0.1) -> torch.optim.SGD:
    """Plain SGD, book alg. 8.1: theta <- theta - eps g."""
    return torch.optim.SGD(params, lr=check_range("lr", lr))


def momentum_lowpass(params: Iterable[Tensor], lr: float = 0.5, beta: float = 0.1) -> torch.optim.SGD:
    """Momentum as a low-pass filter (lectures 6.7): a <- (1-beta) a + beta (-g); theta <- theta + eta a,
    with ``lr`` = eta.

    From a = 0, a_k = -beta sum_j (1-beta)^(k-j) g_j, i.e. torch's buffer b <- (1-beta) b + g
    (``dampening=0``; its first step sets b = g) times -beta, so the update is
    ``torch.optim.SGD(lr=eta * beta, momentum=1 - beta)``. Hence ``group["lr"]`` holds eta*beta;
    multiplicative schedules (all of ours) scale eta exactly. torch's ``dampening=1-beta`` is
    not this update: its first step skips the dampening (b_1 = g, not beta g).
    """
    beta = check_range("beta", beta, 0.0, 1.0, low_open=True, high_open=False)
    return torch.optim.SGD(params, lr=check_range("lr", lr) * beta, momentum=1.0 - beta, dampening=0.0)


def adagrad(params: Iterable[Tensor], lr: float = 0.01, delta: float = 1e-7) -> torch.optim.Adagrad:
    """AdaGrad, book alg. 8.4: r <- r + g*g; theta <- theta - eps g / (delta + sqrt(r)).

    torch's eps sits outside the root like the book's delta; the accumulator must start at 0
    and torch's own lr decay must be off.
    """
    return torch.optim.Adagrad(
        params,
        lr=check_range("lr", lr),
        eps=check_positive("delta", delta),
        lr_decay=0.0,
        initial_accumulator_value=0.0,
    )


def adam(
    params: Iterable[Tensor], lr: float = 1e-3, rho1: float = 0.9, rho2: float = 0.999, delta: float = 1e-8
) -> torch.optim.Adam:
    """Adam, book alg. 8.7: s <- rho1 s + (1-rho1) g; r <- rho2 r + (1-rho2) g*g;
    theta <- theta - eps s^ / (sqrt(r^) + delta) with s^ = s/(1-rho1^t), r^ = r/(1-rho2^t).

    torch divides by sqrt(r)/sqrt(1-rho2^t) + eps, i.e. delta outside the root and after the
    bias correction, as in the book.
    """
    return torch.optim.Adam(
        params,
        lr=check_range("lr", lr),
        betas=(check_fraction("rho1", rho1), check_fraction("rho2", rho2)),
        eps=check_positive("delta", delta),
        amsgrad=False,
    )
