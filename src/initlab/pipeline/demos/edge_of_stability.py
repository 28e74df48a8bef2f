"""lambda_max along full-batch gradient descent vs the stability limit 2/lr (book ch. 8.2; Cohen et al.).

From ``init``, GD with lr = c / lambda_0 for each c in ``factors`` runs ``steps`` steps on a fixed
batch; every ``every`` steps lambda_max of the Hessian is measured (Lanczos, warm-started from
the previous top eigenvector). On a quadratic GD is stable iff lr * lambda_max < 2; a network
whose curvature rises past 2/lr is thrown back: the loss spikes and lambda_max falls below 2/lr.

Writes ``trace.csv`` (factor, lr, step, loss, lambda_max, two_over_lr).
"""

import torch
from torch.nn import functional as F

from initlab.pipeline.common import build_model, lambda_max, load_train_batch, make_initializer, write_csv
from initlab.pipeline.demos import DemoContext


def sharpness_trace(model, inputs, targets, lr: float, steps: int, every: int, tol: float) -> list[dict]:
    """GD with ``lr``; loss every step, lambda_max every ``every`` steps (None in between)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    rows = []
    for step in range(steps + 1):
        sharpness = lambda_max(model, (inputs, targets), tol) if step % every == 0 else None
        optimizer.zero_grad()
        loss = F.cross_entropy(model(inputs), targets)
        rows.append({"step": step, "loss": loss.item(), "lambda_max": sharpness, "two_over_lr": 2 / lr})
        if step < steps:
            loss.backward()
            optimizer.step()
    return rows


def run(settings: dict, context: DemoContext) -> None:
    inputs, targets = load_train_batch(context.data_file, settings["num_samples"], settings["seed"], context.device)
    rows = []
    for factor in settings["factors"]:
        torch.manual_seed(settings["seed"])
        with torch.device(context.device):
            model = make_initializer(settings["init"])(build_model(context.data))
        lambda_0 = lambda_max(model, (inputs, targets), settings["tol"])
        lr = factor / lambda_0
        trace = sharpness_trace(model, inputs, targets, lr, settings["steps"], settings["every"], settings["tol"])
        rows += [{"init": settings["init"], "factor": factor, "lr": lr, **row} for row in trace]
    write_csv(context.out / "trace.csv", rows)
