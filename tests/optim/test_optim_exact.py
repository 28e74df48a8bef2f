"""Every optimizer equals a float64 NumPy transcription of its book formula (docs/methods.md) for
50 steps on a random quadratic, at constant lr and under a linear-decay schedule; and the torch
reformulations we did NOT use really differ from the formulas."""

from collections.abc import Callable
from functools import partial

import numpy as np
import pytest
import torch

from initlab.optim import OPTIMIZERS, SCHEDULES
from initlab.optim.quadratic import Quadratic, run_optimizer_on_quadratic

STEPS = 50
TAU = 30  # linear decay reaches eps_tau = eps_0 / 100 at step 30, then stays there

# Per optimizer: the defaults, and a "loud" set (large delta, small decay rates) under which a
# misplaced delta, a missing bias correction or a wrong decay rate changes the path visibly.
HYPERPARAMETERS = {
    "sgd": [dict(lr=0.1), dict(lr=0.3)],
    "momentum": [dict(lr=0.05, alpha=0.9), dict(lr=0.1, alpha=0.5)],
    "momentum_lowpass": [dict(lr=0.5, beta=0.1), dict(lr=0.2, beta=0.5)],
    "nesterov": [dict(lr=0.05, alpha=0.9), dict(lr=0.1, alpha=0.5)],
    "adagrad": [dict(lr=0.1, delta=1e-7), dict(lr=0.5, delta=0.5)],
    "rmsprop": [dict(lr=0.01, rho=0.9, delta=1e-6), dict(lr=0.05, rho=0.5, delta=0.5)],
    "rmsprop_nesterov": [
        dict(lr=0.01, rho=0.9, alpha=0.9, delta=1e-6),
        dict(lr=0.05, rho=0.5, alpha=0.5, delta=0.5),
    ],
    "adam": [dict(lr=0.01, rho1=0.9, rho2=0.999, delta=1e-8), dict(lr=0.1, rho1=0.5, rho2=0.9, delta=0.5)],
}

Update = Callable[[dict, float, Callable[[np.ndarray], np.ndarray]], np.ndarray]


# ---- NumPy transcriptions of the docs/methods.md updates. Each update(state, eps, grad) performs one step
# ---- from state["theta"] and returns the point the torch parameter must hold afterwards.


def book_sgd() -> Update:
    def update(s: dict, eps: float, grad: Callable) -> np.ndarray:
        s["theta"] = s["theta"] - eps * grad(s["theta"])
        return s["theta"]

    return update


def book_momentum(alpha: float) -> Update:
    def update(s: dict, eps: float, grad: Callable) -> np.ndarray:
        v = s.get("v", np.zeros_like(s["theta"]))
        s["v"] = alpha * v - eps * grad(s["theta"])
        s["theta"] = s["theta"] + s["v"]
        return s["theta"]

    return update


def lecture_lowpass(beta: float) -> Update:
    def update(s: dict, eta: float, grad: Callable) -> np.ndarray:
        a = s.get("a", np.zeros_like(s["theta"]))
        s["a"] = (1 - beta) * a + beta * (-grad(s["theta"]))
        s["theta"] = s["theta"] + eta * s["a"]
        return s["theta"]

    return update


def book_nesterov(alpha: float) -> Update:
    def update(s: dict, eps: float, grad: Callable) -> np.ndarray:
        v = s.get("v", np.zeros_like(s["theta"]))
        g = grad(s["theta"] + alpha * v)
        s["v"] = alpha * v - eps * g
        s["theta"] = s["theta"] + s["v"]
        return s["theta"] + alpha * s["v"]  # the look-ahead point where the next gradient is taken

    return update


def book_adagrad(delta: float) -> Update:
    def update(s: dict, eps: float, grad: Callable) -> np.ndarray:
        g = grad(s["theta"])
        s["r"] = s.get("r", 0.0) + g * g
        s["theta"] = s["theta"] - eps / (delta + np.sqrt(s["r"])) * g
        return s["theta"]

    return update


def book_rmsprop(rho: float, delta: float) -> Update:
    def update(s: dict, eps: float, grad: Callable) -> np.ndarray:
        g = grad(s["theta"])
        s["r"] = rho * s.get("r", 0.0) + (1 - rho) * g * g
        s["theta"] = s["theta"] - eps / np.sqrt(delta + s["r"]) * g
        return s["theta"]

    return update


def book_rmsprop_nesterov(rho: float, alpha: float, delta: float) -> Update:
    def update(s: dict, eps: float, grad: Callable) -> np.ndarray:
        v = s.get("v", np.zeros_like(s["theta"]))
        g = grad(s["theta"] + alpha * v)
        s["r"] = rho * s.get("r", 0.0) + (1 - rho) * g * g
        s["v"] = alpha * v - eps / np.sqrt(delta + s["r"]) * g
        s["theta"] = s["theta"] + s["v"]
        return s["theta"] + alpha * s["v"]

    return update


def book_adam(rho1: float, rho2: float, delta: float) -> Update:
    def update(s: dict, eps: float, grad: Callable) -> np.ndarray:
        g = grad(s["theta"])
        s["t"] = s.get("t", 0) + 1
        s["s"] = rho1 * s.get("s", 0.0) + (1 - rho1) * g
        s["r"] = rho2 * s.get("r", 0.0) + (1 - rho2) * g * g
        s_hat = s["s"] / (1 - rho1 ** s["t"])
        r_hat = s["r"] / (1 - rho2 ** s["t"])
        s["theta"] = s["theta"] - eps * s_hat / (np.sqrt(r_hat) + delta)
        return s["theta"]

    return update


TRANSCRIPTIONS: dict[str, Callable[..., Update]] = {
    "sgd": book_sgd,
    "momentum": book_momentum,
    "momentum_lowpass": lecture_lowpass,
    "nesterov": book_nesterov,
    "adagrad": book_adagrad,
    "rmsprop": book_rmsprop,
    "rmsprop_nesterov": book_rmsprop_nesterov,
    "adam": book_adam,
}


def linear_decay_lrs(eps0: float) -> np.ndarray:
    """Book eq. 8.14 with eps_tau = eps_0 / 100, written out independently of the library."""
    a = np.minimum(np.arange(STEPS) / TAU, 1.0)
    return (1 - a) * eps0 + a * eps0 / 100


SCHEDULE_CASES = {
    "constant": (lambda eps0: np.full(STEPS, eps0), SCHEDULES["constant"]),
    "linear_decay": (linear_decay_lrs, partial(SCHEDULES["linear_decay"], tau=TAU)),
}


@pytest.fixture(scope="module")
def quadratic() -> Quadratic:
    rng = np.random.default_rng(0)
    m = rng.standard_normal((5, 5))
    return Quadratic(A=m @ m.T / 5 + 0.5 * np.eye(5), minimizer=rng.standard_normal(5))


@pytest.fixture(scope="module")
def x0() -> np.ndarray:
    return np.random.default_rng(1).standard_normal(5) * 2


def transcribed_path(update: Update, quadratic: Quadratic, x0: np.ndarray, lrs: np.ndarray) -> np.ndarray:
    state = {"theta": x0.copy()}

    def grad(x: np.ndarray) -> np.ndarray:
        return quadratic.A @ (x - quadratic.minimizer)

    return np.array([x0, *(update(state, eps, grad) for eps in lrs)])


def relative_error(path: np.ndarray, reference: np.ndarray) -> float:
    """Largest deviation, relative to how far the reference path moves from its start."""
    return np.abs(path - reference).max() / np.abs(reference - reference[0]).max()


def paths(name: str, hp: dict, schedule: str, quadratic: Quadratic, x0: np.ndarray, make_optimizer=None):
    """(torch path of OPTIMIZERS[name] or of make_optimizer, NumPy path of the book formula)."""
    lrs_of, make_scheduler = SCHEDULE_CASES[schedule]
    book_hp = {k: v for k, v in hp.items() if k != "lr"}
    reference = transcribed_path(TRANSCRIPTIONS[name](**book_hp), quadratic, x0, lrs_of(hp["lr"]))
    factory = make_optimizer or partial(OPTIMIZERS[name], **hp)
    path = run_optimizer_on_quadratic(factory, quadratic, x0, STEPS, make_scheduler)["path"]
    return path, reference


def test_every_optimizer_has_a_transcription() -> None:
    assert set(TRANSCRIPTIONS) == set(OPTIMIZERS) == set(HYPERPARAMETERS)


@pytest.mark.parametrize("schedule", SCHEDULE_CASES)
@pytest.mark.parametrize("which", [0, 1], ids=["defaults", "loud"])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_matches_book_formula(name: str, which: int, schedule: str, quadratic, x0) -> None:
    path, reference = paths(name, HYPERPARAMETERS[name][which], schedule, quadratic, x0)
    assert np.abs(reference - reference[0]).max() > 1e-3, "the run must actually move"
    assert relative_error(path, reference) < 1e-10


# ---- The torch formulations we did not use: each provably differs from the seed formula.


def torch_sgd_momentum(lr: float, alpha: float, nesterov: bool = False):
    return partial(torch.optim.SGD, lr=lr, momentum=alpha, nesterov=nesterov)


def torch_sgd_dampened(lr: float, beta: float):
    return partial(torch.optim.SGD, lr=lr, momentum=1 - beta, dampening=1 - beta)


def torch_rmsprop(lr: float, rho: float, delta: float):
    return partial(torch.optim.RMSprop, lr=lr, alpha=rho, eps=delta)


@pytest.mark.parametrize(
    "name, make", [("momentum", torch_sgd_momentum), ("nesterov", partial(torch_sgd_momentum, nesterov=True))]
)
def test_torch_sgd_momentum_is_the_book_update_only_at_constant_lr(name: str, make, quadratic, x0) -> None:
    """torch's b <- mu b + g; theta <- theta - eps_k b equals alg. 8.2 / 8.3 (v = -eps b) only while
    eps is constant: under a schedule it rescales all past gradients by the current eps_k."""
    hp = HYPERPARAMETERS[name][0]
    assert relative_error(*paths(name, hp, "constant", quadratic, x0, make(**hp))) < 1e-10
    assert relative_error(*paths(name, hp, "linear_decay", quadratic, x0, make(**hp))) > 1e-2


def test_torch_dampening_is_not_the_lowpass_filter(quadratic, x0) -> None:
    """SGD(momentum=1-beta, dampening=1-beta) starts its buffer at g, not beta g."""
    hp = HYPERPARAMETERS["momentum_lowpass"][0]
    assert relative_error(*paths("momentum_lowpass", hp, "constant", quadratic, x0, torch_sgd_dampened(**hp))) > 1e-2


def test_torch_rmsprop_puts_delta_outside_the_root(quadratic, x0) -> None:
    """torch.optim.RMSprop divides by sqrt(r) + eps, alg. 8.5 by sqrt(delta + r)."""
    hp = HYPERPARAMETERS["rmsprop"][1]
    assert relative_error(*paths("rmsprop", hp, "constant", quadratic, x0, torch_rmsprop(**hp))) > 1e-2


@pytest.mark.parametrize("name", ["nesterov", "rmsprop_nesterov"])
def test_nesterov_state_recovers_the_book_theta(name: str, quadratic, x0) -> None:
    """The parameter holds theta + alpha v; p - alpha * state["velocity"] is the book's theta."""
    hp = HYPERPARAMETERS[name][1]
    x = torch.tensor(x0, requires_grad=True)
    optimizer = OPTIMIZERS[name]([x], **hp)
    state = {"theta": x0.copy()}
    update = TRANSCRIPTIONS[name](**{k: v for k, v in hp.items() if k != "lr"})
    a, minimizer = torch.from_numpy(quadratic.A), torch.from_numpy(quadratic.minimizer)
    for _ in range(10):
        optimizer.zero_grad()
        (0.5 * (x - minimizer) @ a @ (x - minimizer)).backward()
        optimizer.step()
        update(state, hp["lr"], lambda y: quadratic.A @ (y - quadratic.minimizer))
    theta = (x - hp["alpha"] * optimizer.state[x]["velocity"]).detach().numpy()
    np.testing.assert_allclose(theta, state["theta"], rtol=1e-10)


@pytest.mark.parametrize("name", ["momentum", "nesterov", "rmsprop", "rmsprop_nesterov"])
def test_own_optimizers_skip_parameters_without_gradient(name: str) -> None:
    used, unused = torch.ones(3, requires_grad=True), torch.ones(2, requires_grad=True)
    optimizer = OPTIMIZERS[name]([used, unused])
    used.sum().backward()
    optimizer.step()
    assert torch.equal(unused, torch.ones(2)) and not torch.equal(used, torch.ones(3))
    assert unused not in optimizer.state


@pytest.mark.parametrize("name", ["momentum", "nesterov", "rmsprop", "rmsprop_nesterov"])
def test_own_optimizers_resume_from_state_dict(name: str, quadratic, x0) -> None:
    """A run split by a checkpoint (state_dict round trip) equals the uninterrupted run."""
    hp = HYPERPARAMETERS[name][1]
    full = run_optimizer_on_quadratic(partial(OPTIMIZERS[name], **hp), quadratic, x0, 20)["path"]
    x = torch.tensor(x0, requires_grad=True)
    first = OPTIMIZERS[name]([x], **hp)
    a, minimizer = torch.from_numpy(quadratic.A), torch.from_numpy(quadratic.minimizer)
    for k in range(20):
        if k == 10:
            resumed = OPTIMIZERS[name]([x], lr=1.0)  # hyperparameters come back from the checkpoint
            resumed.load_state_dict(first.state_dict())
            first = resumed
        x.grad = a @ (x.detach() - minimizer)
        first.step()
    np.testing.assert_allclose(x.detach().numpy(), full[-1], rtol=1e-12)
