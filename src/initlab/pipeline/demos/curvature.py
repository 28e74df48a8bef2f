"""Hessian vs Gauss-Newton per layer block (paper Theorem 1, Remarks 1-2).

The Hessian is GN + H_2 with H_2 = sum_j dL/dz_j * D^2_w z_j (paper eq. (10)). For a ReLU net
z is piecewise linear in each layer's weights, so on a layer block H_w(k) = GN_k exactly
(Remark 1) -- near init and after training alike, while the full Hessian keeps cross-layer
H_2 terms. For tanh, H_2 is small near init and grows far from it (Remark 2). For every
activation we compare lambda_max(H) and lambda_max(GN) of each layer block and of the whole
network in three states: at init, after ``train_steps`` steps of GD (lr = 1/lambda_0) and with
all weights scaled by ``far_scale`` ("far from init").

Writes ``blocks.csv`` (activation, state, block, lambda_h, lambda_gn, rel_diff).
"""

import copy

import torch
from torch.nn import functional as F

from initlab.models import weight_layers
from initlab.pipeline.common import build_model, lambda_max, load_train_batch, make_initializer, write_csv
from initlab.pipeline.demos import DemoContext


def block_comparison(model, inputs, targets, tol: float) -> list[dict]:
    """lambda_max of H and GN for every layer block (index k) and the whole network ("all")."""
    blocks = [*range(len(weight_layers(model))), None]
    rows = []
    for block in blocks:
        lambda_h = lambda_max(model, (inputs, targets), tol, params=block)
        lambda_gn = lambda_max(model, (inputs, targets), tol, params=block, kind="gauss_newton")
        rows.append({"block": "all" if block is None else block, "lambda_h": lambda_h, "lambda_gn": lambda_gn,
                     "rel_diff": abs(lambda_h - lambda_gn) / abs(lambda_h)})
    return rows


def states(model, inputs, targets, settings: dict):
    """(name, model) for init, trained by GD and scaled far from init."""
    yield "init", model
    trained = copy.deepcopy(model)
    lambda_0 = lambda_max(model, (inputs, targets), settings["tol"])
    optimizer = torch.optim.SGD(trained.parameters(), lr=1.0 / lambda_0)
    for _ in range(settings["train_steps"]):
        optimizer.zero_grad()
        F.cross_entropy(trained(inputs), targets).backward()
        optimizer.step()
    yield "trained", trained
    far = copy.deepcopy(model)
    with torch.no_grad():
        for _, layer in weight_layers(far):
            layer.weight.mul_(settings["far_scale"])
    yield f"weights x{settings['far_scale']:g}", far


def run(settings: dict, context: DemoContext) -> None:
    inputs, targets = load_train_batch(context.data_file, settings["num_samples"], settings["seed"], context.device)
    inputs = inputs.double()
    rows = []
    for activation in settings["activations"]:
        torch.manual_seed(settings["seed"])
        with torch.device(context.device):
            model = make_initializer(settings["init"])(build_model(context.data, [f"model.activation={activation}"])).double()
        for state, snapshot in states(model, inputs, targets, settings):
            rows += [{"activation": activation, "state": state, **row} for row in block_comparison(snapshot, inputs, targets, settings["tol"])]
    write_csv(context.out / "blocks.csv", rows)
