"""The largest stable learning rate vs the curvature at init (paper §1.2: gamma* = 1/||H||).

For every init in ``inits``: lambda_0 = lambda_max of the loss Hessian at init on a fixed batch
(``initlab.analysis.top_eigenvalue``), then ``steps`` steps of full-batch gradient descent
with lr = c / lambda_0 for every c in ``factors``. On the quadratic model GD decreases the loss
for every lr < 2/lambda (1/lambda is the *best* step along the top eigenvector, not the largest
safe one); a network can go further because its curvature changes as it trains.

Writes ``runs.csv`` (init, factor, lr, loss at steps 0, 1 and the end, max loss, stable, every step
decreasing) and ``summary.json`` (per init: lambda_0, the largest stable and the smallest unstable
factor, the largest factor at which every step lowered the loss). A run is *stable* when its final
loss is finite and below the initial loss; ``every_step_decrease``: each of its steps lowered the loss
(the paper's "guarantees a decrease", step by step).
"""

import copy
import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from initlab.pipeline.common import build_model, lambda_max, load_train_batch, make_initializer, write_csv, write_json
from initlab.pipeline.demos import DemoContext


def gradient_descent_losses(model: nn.Module, inputs: Tensor, targets: Tensor, lr: float, steps: int) -> list[float]:
    """Full-batch GD on a copy of ``model``; the loss before every step and after the last."""
    model = copy.deepcopy(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(inputs), targets)
        losses.append(loss.item())
        if not math.isfinite(losses[-1]):
            return losses
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        losses.append(F.cross_entropy(model(inputs), targets).item())
    return losses


def every_step_decreases(losses: list[float]) -> bool:
    """Each step lowered the loss: the run finished (finite losses) and the losses fall strictly."""
    return len(losses) > 1 and all(map(math.isfinite, losses)) and all(b < a for a, b in zip(losses, losses[1:], strict=False))


def stability_summary(rows: list[dict]) -> dict:
    """Largest stable and smallest unstable factor of one init's sweep (None when there is none)."""
    stable = [r["factor"] for r in rows if r["stable"]]
    unstable = [r["factor"] for r in rows if not r["stable"]]
    decreasing = [r["factor"] for r in rows if r["first_step_decrease"]]
    monotone = [r["factor"] for r in rows if r["every_step_decrease"]]
    return {
        "max_stable_factor": max(stable) if stable else None,
        "min_unstable_factor": min(unstable) if unstable else None,
        "max_first_step_decrease_factor": max(decreasing) if decreasing else None,
        "max_every_step_decrease_factor": max(monotone) if monotone else None,
    }


def run(settings: dict, context: DemoContext) -> None:
    inputs, targets = load_train_batch(context.data_file, settings["num_samples"], settings["seed"], context.device)
    rows, summary = [], {}
    for init in settings["inits"]:
        torch.manual_seed(settings["seed"])
        with torch.device(context.device):
            model = make_initializer(init)(build_model(context.data))
        lambda_0 = lambda_max(model, (inputs, targets), settings["tol"])
        init_rows = []
        for factor in settings["factors"]:
            losses = gradient_descent_losses(model, inputs, targets, factor / lambda_0, settings["steps"])
            final = losses[-1]
            init_rows.append({
                "init": init, "factor": factor, "lr": factor / lambda_0, "lambda_0": lambda_0,
                "loss_0": losses[0], "loss_1": losses[1] if len(losses) > 1 else float("nan"), "final_loss": final,
                # a non-finite loss ends the run: max() would skip the nan, so it counts as inf
                "max_loss": max(losses) if all(map(math.isfinite, losses)) else math.inf, "final_over_initial": final / losses[0],
                "stable": math.isfinite(final) and final < losses[0],
                "first_step_decrease": len(losses) > 1 and losses[1] < losses[0],
                "every_step_decrease": every_step_decreases(losses),
            })
        rows += init_rows
        summary[init] = {"lambda_0": lambda_0, **stability_summary(init_rows)}
    write_csv(context.out / "runs.csv", rows)
    write_json(context.out / "summary.json", {"steps": settings["steps"], "num_samples": len(targets), "inits": summary})
