"""Behaviour the seeds claim: momentum's terminal velocity, and momentum beating gradient descent
in an ill-conditioned canyon (docs/methods.md)."""

import numpy as np
import pytest
import torch

from initlab.optim import OPTIMIZERS
from initlab.optim.quadratic import (
    best_stable_sgd_lr,
    canyon_start,
    fastest_lr,
    ill_conditioned_quadratic,
    run_optimizer_on_quadratic,
    stable_sgd_lrs,
    steps_to_tolerance,
)

TOL = 1e-6


@pytest.mark.parametrize("name", ["momentum", "nesterov"])
@pytest.mark.parametrize("alpha", [0.5, 0.9, 0.99])
def test_terminal_velocity_under_constant_gradient(name: str, alpha: float) -> None:
    """With g constant, the step length tends to eps ||g|| / (1 - alpha) (alpha = 0.9: 10x SGD's step)."""
    eps, g = 0.01, torch.tensor([3.0, -4.0, 12.0], dtype=torch.float64)
    x = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    optimizer = OPTIMIZERS[name]([x], lr=eps, alpha=alpha)
    steps = int(np.ceil(np.log(1e-12) / np.log(alpha)))  # alpha^steps < 1e-12: transient gone
    for _ in range(steps):
        before = x.detach().clone()
        optimizer.zero_grad()
        (g @ x).backward()
        optimizer.step()
    step_length = torch.linalg.vector_norm(x.detach() - before).item()
    assert step_length == pytest.approx(eps * g.norm().item() / (1 - alpha), rel=1e-9)


@pytest.fixture(scope="module")
def canyon():
    quadratic = ill_conditioned_quadratic(dim=2, condition=100.0, seed=0)
    return quadratic, canyon_start(quadratic)


def test_canyon_is_ill_conditioned(canyon) -> None:
    quadratic, x0 = canyon
    np.testing.assert_allclose(quadratic.eigenvalues, [1.0, 100.0])
    assert quadratic.loss(quadratic.minimizer) == 0.0 and quadratic.loss(x0) > 1.0


def sgd_with(lr: float):
    return lambda params: OPTIMIZERS["sgd"](params, lr=lr)


def test_sgd_diverges_above_two_over_lambda_max(canyon) -> None:
    quadratic, x0 = canyon
    loss = run_optimizer_on_quadratic(sgd_with(2.05 / quadratic.eigenvalues[-1]), quadratic, x0, 300)["loss"]
    assert loss[-1] > loss[0]


@pytest.fixture(scope="module")
def best_sgd(canyon) -> tuple[float, int]:
    """SGD's fastest lr over a grid below 2/lambda_max and its steps to TOL."""
    quadratic, x0 = canyon
    lr, steps = fastest_lr(sgd_with, stable_sgd_lrs(quadratic, num=40), quadratic, x0, steps=3000, tol=TOL)
    assert steps is not None
    return lr, steps


def test_best_grid_lr_is_near_the_theoretical_optimum(canyon, best_sgd) -> None:
    quadratic, _ = canyon
    assert best_sgd[0] == pytest.approx(best_stable_sgd_lr(quadratic), rel=0.05)


@pytest.mark.parametrize("name", ["momentum", "nesterov"])
def test_momentum_crosses_the_canyon_faster_than_tuned_sgd(name: str, canyon, best_sgd) -> None:
    """Fixed, untuned momentum (alpha 0.9, eps = 1/lambda_max) beats SGD at its best stable lr."""
    quadratic, x0 = canyon
    lr = 1.0 / quadratic.eigenvalues[-1]
    loss = run_optimizer_on_quadratic(lambda p: OPTIMIZERS[name](p, lr=lr, alpha=0.9), quadratic, x0, 3000)["loss"]
    steps = steps_to_tolerance(loss, TOL)
    assert steps is not None and steps < best_sgd[1] / 2


def test_run_records_every_step(canyon) -> None:
    quadratic, x0 = canyon
    run = run_optimizer_on_quadratic(sgd_with(0.01), quadratic, x0, 7)
    assert run["path"].shape == (8, 2) and run["loss"].shape == (8,)
    np.testing.assert_array_equal(run["path"][0], x0)
    np.testing.assert_allclose(run["loss"], quadratic.loss(run["path"]))


def test_steps_to_tolerance() -> None:
    assert steps_to_tolerance(np.array([3.0, 1.0, 0.5, 0.1]), 0.5) == 2
    assert steps_to_tolerance(np.array([3.0, np.nan, np.inf]), 0.5) is None
