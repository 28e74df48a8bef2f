"""Exploding / vanishing signals in a deep linear net (docs/methods.md; book ch. 8.2.5).

L = ``depth`` square layers of width ``width`` (``initlab.models.deep_linear`` on inputs of the
same width), weights W = s I for every s in ``scales`` and the random ``inits`` for comparison.
With W = s I the activations z^(k) = s^k x and the backpropagated gradients
dL/dz^(k) = s^(L-k) dL/dz^(L), so from the first hidden layer to the output both change by
exactly s^(L-1): 1.5^9 = 38.4 and 0.5^9 = 0.002 for L = 10.

Writes ``norms.csv``: per case, trial and layer k = 0..L the mean over samples of ||z^(k)||,
||dL/dz^(k)|| and (k < L) the Frobenius norm of dL/dW^(k).
"""

import torch
from torch import Tensor, nn

from initlab.analysis import layer_segments, model_prefix
from initlab.models import deep_linear, weight_layers
from initlab.pipeline.common import make_initializer, write_csv
from initlab.pipeline.demos import DemoContext


def signal_norms(model: nn.Sequential, inputs: Tensor, targets: Tensor) -> list[dict[str, float]]:
    """Per layer k: mean ||z^(k)||, mean ||dL/dz^(k)|| (L = mean squared error / 2) and ||dL/dW^(k)||_F."""
    z = model_prefix(model)(inputs.detach().requires_grad_(True))
    zs = [z]
    for segment in layer_segments(model):
        z = segment.module(z)
        zs.append(z)
    loss = 0.5 * (zs[-1] - targets).pow(2).sum(dim=1).mean()
    weights = [layer.weight for _, layer in weight_layers(model)]
    grads = torch.autograd.grad(loss, zs + weights)
    z_grads, w_grads = grads[: len(zs)], grads[len(zs) :]
    rows = []
    for k, (activation, gradient) in enumerate(zip(zs, z_grads, strict=True)):
        rows.append({
            "layer": k,
            "activation_norm": activation.detach().norm(dim=1).mean().item(),
            # the loss is a mean over samples: undo the 1/n to get the per-sample gradient's norm
            "gradient_norm": (gradient * len(inputs)).norm(dim=1).mean().item(),
            "weight_gradient_norm": w_grads[k].norm().item() if k < len(w_grads) else None,
        })
    return rows


def run(settings: dict, context: DemoContext) -> None:
    depth, width = settings["depth"], settings["width"]
    generator = torch.Generator().manual_seed(settings["seed"])  # drawn on the CPU: the same inputs on every device
    inputs = torch.randn(settings["num_samples"], width, generator=generator, device="cpu").to(context.device)
    targets = torch.randn(settings["num_samples"], width, generator=generator, device="cpu").to(context.device)
    cases = [(f"{scale:g} I", 0, {"scale": scale}) for scale in settings["scales"]]
    cases += [(init, trial, {"init": init}) for init in settings["inits"] for trial in range(settings["trials"])]
    rows = []
    for case, trial, how in cases:
        torch.manual_seed(settings["seed"] + trial)
        with torch.device(context.device):
            model = deep_linear([width], width, depth=depth, width=width)
            if "scale" in how:
                with torch.no_grad():
                    for _, layer in weight_layers(model):
                        layer.weight.copy_(how["scale"] * torch.eye(width))
            else:
                make_initializer(how["init"])(model)
        for row in signal_norms(model, inputs, targets):
            rows.append({"case": case, "scale": how.get("scale"), "trial": trial, **row})
    write_csv(context.out / "norms.csv", rows)
