"""Per-step learning-rate schedules (docs/methods.md), each with an optional linear warm-up.

Every factory is called as ``factory(optimizer, total_steps=int, **hyperparameters)`` and
returns a ``torch.optim.lr_scheduler.LambdaLR`` to be stepped once per optimizer step, so
the lr of step k = 0, 1, ... is eps_0 * factor(k), eps_0 being the optimizer's lr.

Durations (``tau``, ``step_size``) are in optimizer steps *after* the warm-up; ``null``
(None) means all remaining steps, ``total_steps - warmup_steps``. Warm-up: for k < W =
``warmup_steps`` the factor is (k+1)/(W+1), a straight line that reaches 1 at k = W, where
the schedule starts at its own k = 0.

Why one ``LambdaLR`` of a closed form rather than ``LinearLR`` / ``SequentialLR``: ``LinearLR``
is the book's eq. 8.14 but applies it as a chain of ratios to the current ``group["lr"]``
(rounding accumulates, and any other writer of ``group["lr"]`` is compounded), and
``SequentialLR`` re-steps sub-schedulers at its milestones. A closed form is exact at every
step and its factor objects (frozen dataclasses) survive ``state_dict`` / checkpointing.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from initlab.optim._checks import check_positive, check_range

Factor = Callable[[int], float]


@dataclass(frozen=True)
class Constant:
    """eps_k = eps_0."""

    def __call__(self, k: int) -> float:
        return 1.0


@dataclass(frozen=True)
class LinearDecay:
    """Book eq. 8.14: eps_k = (1-a) eps_0 + a eps_tau, a = k/tau; eps_tau for k >= tau.
    ``end_factor`` = eps_tau / eps_0."""

    tau: float
    end_factor: float

    def __call__(self, k: int) -> float:
        a = min(k / self.tau, 1.0)
        return (1.0 - a) + a * self.end_factor


@dataclass(frozen=True)
class InverseTime:
    """Robbins-Monro: eps_k = eps_0 / (1 + k/tau); sum eps_k = inf, sum eps_k^2 < inf."""

    tau: float

    def __call__(self, k: int) -> float:
        return 1.0 / (1.0 + k / self.tau)


@dataclass(frozen=True)
class StepDecay:
    """eps_k = eps_0 gamma^floor(k / step_size)."""

    step_size: float
    gamma: float

    def __call__(self, k: int) -> float:
        return self.gamma ** (k // self.step_size)


@dataclass(frozen=True)
class Exponential:
    """eps_k = eps_0 gamma^k."""

    gamma: float

    def __call__(self, k: int) -> float:
        return self.gamma**k


@dataclass(frozen=True)
class Cosine:
    """eps_k = eps_min + (eps_0 - eps_min)(1 + cos(pi min(k, tau)/tau))/2; ``end_factor`` = eps_min/eps_0."""

    tau: float
    end_factor: float

    def __call__(self, k: int) -> float:
        return self.end_factor + (1.0 - self.end_factor) * (1.0 + math.cos(math.pi * min(k / self.tau, 1.0))) / 2.0


@dataclass(frozen=True)
class WarmedUp:
    """(k+1)/(W+1) for k < W = ``warmup_steps``, then ``schedule(k - W)``."""

    warmup_steps: int
    schedule: Factor

    def __call__(self, k: int) -> float:
        if k < self.warmup_steps:
            return (k + 1) / (self.warmup_steps + 1)
        return self.schedule(k - self.warmup_steps)


def _scheduler(optimizer: Optimizer, schedule: Factor, warmup_steps: int) -> LambdaLR:
    """The ``LambdaLR`` of ``schedule`` behind a linear warm-up of ``warmup_steps`` steps."""
    return LambdaLR(optimizer, WarmedUp(int(check_range("warmup_steps", warmup_steps)), schedule))


def _remaining(total_steps: int, warmup_steps: int) -> int:
    """Steps after the warm-up: what a null duration resolves to."""
    check_positive("total_steps", total_steps)
    return total_steps - int(check_range("warmup_steps", warmup_steps, 0, total_steps))


def _duration(name: str, value: float | None, total_steps: int, warmup_steps: int) -> float:
    """A duration in steps; None means all steps after the warm-up."""
    return check_positive(name, _remaining(total_steps, warmup_steps) if value is None else value)


def constant(optimizer: Optimizer, total_steps: int, warmup_steps: int = 0) -> LambdaLR:
    """Constant lr (after the optional warm-up); ``total_steps`` is unused."""
    return _scheduler(optimizer, Constant(), warmup_steps)


def linear_decay(
    optimizer: Optimizer,
    total_steps: int,
    tau: float | None = None,
    end_factor: float = 0.01,
    warmup_steps: int = 0,
) -> LambdaLR:
    """Book eq. 8.14, linear from eps_0 to eps_tau = end_factor * eps_0 over tau steps, then constant."""
    tau = _duration("tau", tau, total_steps, warmup_steps)
    return _scheduler(optimizer, LinearDecay(tau, check_range("end_factor", end_factor)), warmup_steps)


def inverse_time(optimizer: Optimizer, total_steps: int, tau: float | None = None, warmup_steps: int = 0) -> LambdaLR:
    """Robbins-Monro eps_0 / (1 + k/tau): the lr halves after tau steps."""
    return _scheduler(optimizer, InverseTime(_duration("tau", tau, total_steps, warmup_steps)), warmup_steps)


def step(
    optimizer: Optimizer,
    total_steps: int,
    step_size: float | None = None,
    gamma: float = 0.1,
    warmup_steps: int = 0,
) -> LambdaLR:
    """Multiply the lr by gamma every ``step_size`` steps; null: ceil(remaining / 3), i.e. two drops."""
    if step_size is None:
        step_size = math.ceil(_remaining(total_steps, warmup_steps) / 3)
    gamma = check_range("gamma", gamma, 0.0, 1.0, low_open=True, high_open=False)
    return _scheduler(optimizer, StepDecay(check_positive("step_size", step_size), gamma), warmup_steps)


def exponential(optimizer: Optimizer, total_steps: int, gamma: float = 0.99, warmup_steps: int = 0) -> LambdaLR:
    """Multiply the lr by gamma every step; ``total_steps`` is unused."""
    gamma = check_range("gamma", gamma, 0.0, 1.0, low_open=True, high_open=False)
    return _scheduler(optimizer, Exponential(gamma), warmup_steps)


def cosine(
    optimizer: Optimizer,
    total_steps: int,
    tau: float | None = None,
    end_factor: float = 0.0,
    warmup_steps: int = 0,
) -> LambdaLR:
    """Half a cosine from eps_0 down to end_factor * eps_0 over tau steps, then constant."""
    tau = _duration("tau", tau, total_steps, warmup_steps)
    end_factor = check_range("end_factor", end_factor, 0.0, 1.0, high_open=False)
    return _scheduler(optimizer, Cosine(tau, end_factor), warmup_steps)


SCHEDULES: dict[str, Callable[..., LambdaLR]] = {
    "constant": constant,
    "linear_decay": linear_decay,
    "inverse_time": inverse_time,
    "step": step,
    "exponential": exponential,
    "cosine": cosine,
}

# The factor objects end up in checkpoints (LambdaLR.state_dict keeps a callable object's
# __dict__, and WarmedUp holds its inner factor): allow them for ``torch.load(weights_only=True)``.
torch.serialization.add_safe_globals([Constant, LinearDecay, InverseTime, StepDecay, Exponential, Cosine, WarmedUp])
