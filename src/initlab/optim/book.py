"""Our own ``torch.optim.Optimizer`` subclasses, for the book's algorithms that torch does not
compute exactly under a per-step learning-rate schedule.

All updates are vectorized over a parameter group with ``torch._foreach_*`` ops.

* :class:`Momentum` (book alg. 8.2) and :class:`Nesterov` (alg. 8.3) keep eps *inside* the
  velocity, v <- alpha v - eps_k g. ``torch.optim.SGD(momentum=...)`` keeps it outside
  (b <- mu b + g; theta <- theta - eps_k b), which is the same trajectory only while eps is
  constant: under a schedule, torch rescales all past gradients by the current eps_k.
* :class:`RMSProp` (alg. 8.5) puts delta inside the square root; ``torch.optim.RMSprop``
  adds its eps outside.
* :class:`RMSPropNesterov` (alg. 8.6) has no torch counterpart.

Nesterov variants store the *look-ahead point* theta~ = theta + alpha v in the parameter
tensor: that is where the algorithm evaluates the gradient, so a plain
``loss.backward(); optimizer.step()`` loop is exact. The book's theta is
``p - alpha * optimizer.state[p]["velocity"]``.
"""

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from initlab.optim._checks import check_fraction, check_positive, check_range


class _ForeachOptimizer(Optimizer):
    """Shared ``step``: collects each group's parameters that have a gradient, their gradients
    and their zero-initialized state buffers (named in ``buffers``), then calls ``_update``."""

    buffers: tuple[str, ...] = ()

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], **defaults: float) -> None:
        check_range("lr", defaults["lr"])
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """One update of every parameter that has a gradient; returns the closure's loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                grads = [p.grad for p in params]
                self._update(group, params, grads, *(self._state_list(params, name) for name in self.buffers))
        return loss

    def _state_list(self, params: list[Tensor], name: str) -> list[Tensor]:
        """The state tensor ``name`` of each parameter, created as zeros on first use."""
        for p in params:
            if name not in self.state[p]:
                self.state[p][name] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return [self.state[p][name] for p in params]

    def _update(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor], *buffers: list[Tensor]) -> None:
        raise NotImplementedError


def _velocity_step(velocity: list[Tensor], directions: list[Tensor], lr: float, alpha: float) -> None:
    """v <- alpha v - eps d, in place (book alg. 8.2, 8.3, 8.6)."""
    torch._foreach_mul_(velocity, alpha)
    torch._foreach_add_(velocity, directions, alpha=-lr)


def _nesterov_step(
    params: list[Tensor], velocity: list[Tensor], directions: list[Tensor], lr: float, alpha: float
) -> None:
    """Move the stored look-ahead point theta + alpha v to theta' + alpha v' (book alg. 8.3, 8.6),
    where v' = alpha v - eps d and theta' = theta + v'."""
    torch._foreach_add_(params, velocity, alpha=-alpha)  # theta
    _velocity_step(velocity, directions, lr, alpha)
    torch._foreach_add_(params, velocity, alpha=1.0 + alpha)  # theta' + alpha v'


def _rms_denominator(square_avg: list[Tensor], grads: list[Tensor], rho: float, delta: float) -> list[Tensor]:
    """r <- rho r + (1 - rho) g*g in place; returns sqrt(delta + r) (book alg. 8.5, 8.6)."""
    torch._foreach_mul_(square_avg, rho)
    torch._foreach_addcmul_(square_avg, grads, grads, value=1.0 - rho)
    denominator = torch._foreach_add(square_avg, delta)
    torch._foreach_sqrt_(denominator)
    return denominator


class Momentum(_ForeachOptimizer):
    """SGD with momentum, book alg. 8.2: v <- alpha v - eps g; theta <- theta + v.

    Exact under a per-step lr schedule (eps_k enters the velocity once, at step k);
    ``torch.optim.SGD(momentum=alpha)`` equals it only for constant eps.
    """

    buffers = ("velocity",)

    def __init__(self, params: Iterable[Tensor], lr: float = 0.05, alpha: float = 0.9) -> None:
        super().__init__(params, lr=lr, alpha=check_fraction("alpha", alpha))

    def _update(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor], velocity: list[Tensor]) -> None:
        _velocity_step(velocity, grads, group["lr"], group["alpha"])
        torch._foreach_add_(params, velocity)


class Nesterov(_ForeachOptimizer):
    """Nesterov momentum, book alg. 8.3: g at theta + alpha v; v <- alpha v - eps g; theta <- theta + v.

    The parameter tensor holds the look-ahead point theta + alpha v (see module docstring).
    ``torch.optim.SGD(nesterov=True)`` is the same reformulation but exact only for constant eps.
    """

    buffers = ("velocity",)

    def __init__(self, params: Iterable[Tensor], lr: float = 0.05, alpha: float = 0.9) -> None:
        super().__init__(params, lr=lr, alpha=check_fraction("alpha", alpha))

    def _update(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor], velocity: list[Tensor]) -> None:
        _nesterov_step(params, velocity, grads, group["lr"], group["alpha"])


class RMSProp(_ForeachOptimizer):
    """RMSProp, book alg. 8.5: r <- rho r + (1-rho) g*g; theta <- theta - eps g / sqrt(delta + r).

    delta sits inside the square root (``torch.optim.RMSprop`` uses sqrt(r) + eps).
    """

    buffers = ("square_avg",)

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3, rho: float = 0.9, delta: float = 1e-6) -> None:
        super().__init__(params, lr=lr, rho=check_fraction("rho", rho), delta=check_positive("delta", delta))

    def _update(
        self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor], square_avg: list[Tensor]
    ) -> None:
        denominator = _rms_denominator(square_avg, grads, group["rho"], group["delta"])
        torch._foreach_addcdiv_(params, grads, denominator, value=-group["lr"])


class RMSPropNesterov(_ForeachOptimizer):
    """RMSProp with Nesterov momentum, book alg. 8.6: g at theta + alpha v;
    r <- rho r + (1-rho) g*g; v <- alpha v - eps g / sqrt(r); theta <- theta + v.

    The book divides by sqrt(r), which is 0/0 for a coordinate whose gradients were all zero
    (a dead ReLU); we use alg. 8.5's stabilized sqrt(delta + r). The parameter tensor holds
    the look-ahead point theta + alpha v (see module docstring).
    """

    buffers = ("square_avg", "velocity")

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-3,
        rho: float = 0.9,
        alpha: float = 0.9,
        delta: float = 1e-6,
    ) -> None:
        super().__init__(
            params,
            lr=lr,
            rho=check_fraction("rho", rho),
            alpha=check_fraction("alpha", alpha),
            delta=check_positive("delta", delta),
        )

    def _update(
        self,
        group: dict[str, Any],
        params: list[Tensor],
        grads: list[Tensor],
        square_avg: list[Tensor],
        velocity: list[Tensor],
    ) -> None:
        denominator = _rms_denominator(square_avg, grads, group["rho"], group["delta"])
        scaled = torch._foreach_div(grads, denominator)
        _nesterov_step(params, velocity, scaled, group["lr"], group["alpha"])
