"""Zero / constant init never breaks the symmetry between hidden units (docs/methods.md).

The pipeline's model is trained with minibatch SGD from each init in ``inits``; every
``every`` steps we record, for each hidden weight layer, the mean pairwise distance between the
units' incoming weight rows (relative to the mean row norm) and the numerical rank of W. Units
that start identical receive identical gradients, so the distance stays 0 and rank W <= 1;
with all-zero weights even the gradients of the hidden layers vanish.

Writes ``trace.csv`` (init, step, layer, loss, distance, rank).
"""

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from initlab.models import weight_layers
from initlab.pipeline.common import build_model, load_train_batch, make_initializer, write_csv
from initlab.pipeline.demos import DemoContext


def unit_spread(weight: Tensor) -> tuple[float, int]:
    """(mean pairwise distance of the rows / mean row norm, numerical rank with rtol 1e-3)."""
    rows = weight.detach().reshape(weight.shape[0], -1)
    scale = rows.norm(dim=1).mean().item()
    distance = torch.pdist(rows).mean().item()
    rank = int(torch.linalg.matrix_rank(rows, rtol=1e-3)) if scale > 0 else 0
    return (distance / scale if scale > 0 else 0.0), rank


def trace_training(model: nn.Module, inputs: Tensor, targets: Tensor, settings: dict) -> list[dict]:
    """Minibatch SGD (``lr``, ``batch_size``, ``steps``); one row per hidden layer every ``every`` steps."""
    optimizer = torch.optim.SGD(model.parameters(), lr=settings["lr"])
    generator = torch.Generator().manual_seed(settings["seed"])
    hidden = [(name, layer) for name, layer in weight_layers(model)][:-1]
    rows = []
    for step in range(settings["steps"] + 1):
        if step % settings["every"] == 0:
            with torch.no_grad():
                loss = F.cross_entropy(model(inputs), targets).item()
            for k, (name, layer) in enumerate(hidden):
                distance, rank = unit_spread(layer.weight)
                rows.append({"step": step, "layer": k, "name": name, "loss": loss, "distance": distance, "rank": rank})
        if step == settings["steps"]:
            break
        idx = torch.randint(len(targets), (settings["batch_size"],), generator=generator, device="cpu").to(targets.device)
        optimizer.zero_grad()
        F.cross_entropy(model(inputs[idx]), targets[idx]).backward()
        optimizer.step()
    return rows


def run(settings: dict, context: DemoContext) -> None:
    inputs, targets = load_train_batch(context.data_file, device=context.device)
    rows = []
    for init in settings["inits"]:
        torch.manual_seed(settings["seed"])
        with torch.device(context.device):
            model = make_initializer(init)(build_model(context.data))
        rows += [{"init": init, **row} for row in trace_training(model, inputs, targets, settings)]
    write_csv(context.out / "trace.csv", rows)
