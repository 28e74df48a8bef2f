"""Schedules (docs/methods.md) against their closed forms, stepped as training does: once per optimizer step."""

import math

import numpy as np
import pytest
import torch

from initlab.optim import SCHEDULES
from initlab.optim.schedules import InverseTime

EPS0 = 0.2


def scheduled_lrs(name: str, steps: int, total_steps: int | None = None, **hyperparameters) -> np.ndarray:
    """The lr used by each of ``steps`` optimizer steps under SCHEDULES[name]."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=EPS0)
    scheduler = SCHEDULES[name](optimizer, total_steps=total_steps or steps, **hyperparameters)
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return np.array(lrs)


@pytest.mark.parametrize("tau", [10, 100])
def test_linear_decay_book_values(tau: int) -> None:
    """eps_k = (1 - k/tau) eps_0 + (k/tau) eps_tau, then eps_tau, with eps_tau = eps_0 / 100 (book eq. 8.14)."""
    lrs = scheduled_lrs("linear_decay", 2 * tau + 1, tau=tau)
    eps_tau = EPS0 / 100
    assert lrs[0] == pytest.approx(EPS0, rel=1e-12)
    assert lrs[tau // 2] == pytest.approx((EPS0 + eps_tau) / 2, rel=1e-12)
    assert lrs[tau] == pytest.approx(eps_tau, rel=1e-12)
    assert lrs[2 * tau] == pytest.approx(eps_tau, rel=1e-12)


def test_linear_decay_null_tau_spans_the_run() -> None:
    lrs = scheduled_lrs("linear_decay", 51, total_steps=50)
    assert lrs[49] > EPS0 / 100 and lrs[50] == pytest.approx(EPS0 / 100, rel=1e-12)


def test_torch_linear_lr_is_the_same_line() -> None:
    """torch's LinearLR (chained ratios) computes eq. 8.14 too; we use the closed form via LambdaLR."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=EPS0)
    linear = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1.0, end_factor=0.01, total_iters=40)
    theirs = []
    for _ in range(60):
        theirs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        linear.step()
    np.testing.assert_allclose(theirs, scheduled_lrs("linear_decay", 60, tau=40), rtol=1e-12)


def test_inverse_time_satisfies_robbins_monro() -> None:
    """eps_k = eps_0/(1 + k/tau): partial sums of eps_k^2 stay below eps_0^2 (1 + tau) and converge,
    partial sums of eps_k grow like eps_0 tau log(1 + n/tau), without bound."""
    tau = 10
    lrs = scheduled_lrs("inverse_time", 50, tau=tau)
    np.testing.assert_allclose(lrs, EPS0 / (1 + np.arange(50) / tau), rtol=1e-12)
    factor = InverseTime(tau)  # the scheduler's own factor, evaluated far beyond a test-sized run
    eps = EPS0 * np.array([factor(k) for k in range(10**6)])
    n = np.array([10**3, 10**4, 10**5, 10**6])
    squares = np.cumsum(eps**2)[n - 1]
    assert np.all(squares < EPS0**2 * (1 + tau))
    decade_gains = np.diff(squares)  # tail ~ eps_0^2 tau^2 / n: each decade adds ~10x less
    assert np.all(decade_gains[1:] < 0.2 * decade_gains[:-1])
    sums = np.cumsum(eps)[n - 1]
    log_growth = EPS0 * tau * np.log(1 + n / tau)
    assert np.all((log_growth <= sums) & (sums <= log_growth + EPS0))


def test_step_schedule() -> None:
    lrs = scheduled_lrs("step", 30, step_size=7, gamma=0.5)
    np.testing.assert_allclose(lrs, EPS0 * 0.5 ** (np.arange(30) // 7), rtol=1e-12)


def test_step_null_size_drops_twice() -> None:
    lrs = scheduled_lrs("step", 230, gamma=0.1)
    assert sorted(set(np.round(lrs / EPS0, 12))) == [0.01, 0.1, 1.0]


def test_exponential_schedule() -> None:
    lrs = scheduled_lrs("exponential", 40, gamma=0.9)
    np.testing.assert_allclose(lrs, EPS0 * 0.9 ** np.arange(40), rtol=1e-12)


@pytest.mark.parametrize("end_factor", [0.0, 0.1])
def test_cosine_schedule(end_factor: float) -> None:
    tau = 20
    lrs = scheduled_lrs("cosine", 30, tau=tau, end_factor=end_factor)
    k = np.minimum(np.arange(30), tau)
    eps_min = end_factor * EPS0
    expected = eps_min + (EPS0 - eps_min) * (1 + np.cos(np.pi * k / tau)) / 2
    np.testing.assert_allclose(lrs, expected, rtol=1e-12, atol=1e-15)


def test_constant_schedule() -> None:
    np.testing.assert_array_equal(scheduled_lrs("constant", 10), np.full(10, EPS0))


@pytest.mark.parametrize("name", SCHEDULES)
def test_warmup_then_the_schedule(name: str) -> None:
    """k < W: eps_0 (k+1)/(W+1); from k = W on, the un-warmed schedule shifted by W (same remaining steps)."""
    warmup, rest = 4, 40
    warmed = scheduled_lrs(name, warmup + rest, warmup_steps=warmup)
    plain = scheduled_lrs(name, rest)
    np.testing.assert_allclose(warmed[:warmup], EPS0 * np.arange(1, warmup + 1) / (warmup + 1), rtol=1e-12)
    np.testing.assert_allclose(warmed[warmup:], plain, rtol=1e-12)
    assert warmed[warmup] == pytest.approx(EPS0, rel=1e-12)


def test_scheduler_state_survives_a_checkpoint() -> None:
    """LambdaLR pickles our factor objects in state_dict: a resumed run continues the same schedule."""
    def make() -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
        optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=EPS0)
        return optimizer, SCHEDULES["cosine"](optimizer, total_steps=30, warmup_steps=3)

    optimizer, scheduler = make()
    for _ in range(10):
        optimizer.step()
        scheduler.step()
    resumed_optimizer, resumed = make()
    resumed_optimizer.load_state_dict(optimizer.state_dict())
    resumed.load_state_dict(scheduler.state_dict())
    resumed_optimizer.step()
    resumed.step()
    expected = scheduled_lrs("cosine", 12, total_steps=30, warmup_steps=3)[11]
    assert resumed_optimizer.param_groups[0]["lr"] == pytest.approx(expected, rel=1e-12)
    assert math.isclose(resumed.get_last_lr()[0], expected, rel_tol=1e-12)
