"""Momentum vs gradient descent on an ill-conditioned quadratic "canyon" (docs/methods.md).

Both optimizers get their best constant step: gradient descent the fastest lr in (0, 2/lambda_max),
heavy-ball momentum (book alg. 8.2, ``initlab.optim.Momentum``) the fastest (lr, alpha) on a grid;
"fastest" = fewest steps to loss <= ``tol``. Theory: GD needs ~ kappa/2 ln(1/tol) steps,
well-tuned momentum ~ sqrt(kappa)/2 ln(1/tol), a speed-up ~ sqrt(kappa). A second check: under a
constant gradient g the momentum step approaches the terminal velocity eps ||g|| / (1 - alpha).
The race from the canyon start (equal components along both axes) is the figure's; the claim's
sample is ``draws`` more races, each from a random start (a uniform direction at ``distance`` from
the minimizer, drawn from ``seed`` + draw), so the speed-up has an interval over draws.

Writes ``summary.json``, ``draws.csv`` (per draw: the start's angle, the best GD's and the best
momentum's steps, their ratio), ``loss.csv`` (loss per step of both best runs) and ``paths.json``
(the quadratic and both best paths, for the contour plot).
"""

from functools import partial

import numpy as np
import torch

from initlab.optim import OPTIMIZERS
from initlab.optim.quadratic import canyon_start, fastest_lr, ill_conditioned_quadratic, run_optimizer_on_quadratic, stable_sgd_lrs
from initlab.pipeline.common import write_csv, write_json
from initlab.pipeline.demos import DemoContext


def terminal_velocity(alpha: float, lr: float, steps: int) -> dict[str, float]:
    """Step length of momentum after ``steps`` steps of a constant unit gradient, vs eps / (1 - alpha)."""
    x = torch.zeros(1, dtype=torch.float64, device="cpu", requires_grad=True)  # a 1-D check: CPU by design
    optimizer = OPTIMIZERS["momentum"]([x], lr=lr, alpha=alpha)
    previous = x.detach().clone()
    for _ in range(steps):
        previous = x.detach().clone()
        x.grad = torch.ones_like(x)
        optimizer.step()
    measured = float((x.detach() - previous).abs())
    return {"alpha": alpha, "lr": lr, "steps": steps, "step_length": measured, "predicted": lr / (1 - alpha),
            "speedup": measured / lr, "predicted_speedup": 1 / (1 - alpha)}


def random_start(quadratic, distance: float, seed: int) -> np.ndarray:
    """A start at ``distance`` from the minimizer in a uniformly random direction drawn from ``seed``."""
    direction = np.random.default_rng(seed).standard_normal(len(quadratic.minimizer))
    return quadratic.minimizer + distance * direction / np.linalg.norm(direction)


def draw_rows(settings: dict) -> list[dict]:
    """``draws`` races from random starts (draw k from seed ``seed`` + 1 + k): steps of both best runs and their ratio."""
    rows = []
    for k in range(settings["draws"]):
        result = race(settings, start_seed=settings["seed"] + 1 + k)
        summary, offset = result["summary"], result["x0"] - result["quadratic"].minimizer
        rows.append({"draw": k, "angle": float(np.arctan2(offset[1], offset[0])), "gd_steps": summary["gd"]["steps"],
                     "momentum_steps": summary["momentum"]["steps"], "steps_ratio": summary["steps_ratio"]})
    return rows


def race(settings: dict, start_seed: int | None = None) -> dict:
    """Best GD and best momentum runs to ``tol`` on the canyon (from the canyon start, or a random start drawn from
    ``start_seed``); their paths and losses."""
    quadratic = ill_conditioned_quadratic(dim=2, condition=settings["condition"], seed=settings["seed"])
    x0 = (canyon_start(quadratic, settings["distance"]) if start_seed is None
          else random_start(quadratic, settings["distance"], start_seed))
    steps, tol = settings["steps"], settings["tol"]
    lambda_max = float(quadratic.eigenvalues[-1])

    def sgd(lr):
        return partial(OPTIMIZERS["sgd"], lr=lr)

    gd_lr, gd_steps = fastest_lr(sgd, stable_sgd_lrs(quadratic, settings["num_lrs"]), quadratic, x0, steps, tol)
    best = {"alpha": None, "lr": None, "steps": None}
    for alpha in settings["alphas"]:
        lrs = np.geomspace(1e-3, 2 * (1 + alpha) / lambda_max, settings["num_lrs"], endpoint=False)

        def momentum(lr, alpha=alpha):
            return partial(OPTIMIZERS["momentum"], lr=lr, alpha=alpha)

        lr, n = fastest_lr(momentum, lrs, quadratic, x0, steps, tol)
        if n is not None and (best["steps"] is None or n < best["steps"]):
            best = {"alpha": alpha, "lr": lr, "steps": n}
    runs = {
        "gd": run_optimizer_on_quadratic(sgd(gd_lr), quadratic, x0, steps, tol=tol),
        "momentum": run_optimizer_on_quadratic(
            partial(OPTIMIZERS["momentum"], lr=best["lr"], alpha=best["alpha"]), quadratic, x0, steps, tol=tol
        ),
    }
    return {
        "quadratic": quadratic,
        "x0": x0,
        "runs": runs,
        "summary": {
            "condition": settings["condition"],
            "eigenvalues": quadratic.eigenvalues.tolist(),
            "tol": tol,
            "gd": {"lr": gd_lr, "lr_times_lambda_max": gd_lr * lambda_max if gd_lr else None, "steps": gd_steps},
            "momentum": best,
            "steps_ratio": gd_steps / best["steps"] if gd_steps and best["steps"] else None,
            "sqrt_condition": float(np.sqrt(settings["condition"])),
        },
    }


def run(settings: dict, context: DemoContext) -> None:
    result = race(settings)
    velocity = terminal_velocity(settings["velocity_alpha"], settings["velocity_lr"], settings["velocity_steps"])
    write_json(context.out / "summary.json", result["summary"] | {"terminal_velocity": velocity})
    write_csv(context.out / "draws.csv", draw_rows(settings))
    runs = result["runs"]
    length = max(len(r["loss"]) for r in runs.values())
    write_csv(
        context.out / "loss.csv",
        ({"step": k, **{name: float(r["loss"][k]) if k < len(r["loss"]) else None for name, r in runs.items()}} for k in range(length)),
    )
    quadratic = result["quadratic"]
    write_json(context.out / "paths.json", {
        "A": quadratic.A.tolist(),
        "minimizer": quadratic.minimizer.tolist(),
        "x0": result["x0"].tolist(),
        "paths": {name: r["path"].tolist() for name, r in runs.items()},
    })
