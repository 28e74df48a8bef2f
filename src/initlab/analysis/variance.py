"""Glorot's variance flow (paper §1.1, eqs. (1)-(2)) and dead ReLU units, per layer, over batches.

Both accept the chunks of a data set: variances are merged exactly across chunks (Chan et al.'s
pairwise update of count, mean and squared deviations), a unit is dead when it is 0 on every
sample of every chunk.
"""

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from initlab.analysis._modes import Mode, evaluation_mode
from initlab.analysis.problem import CurvatureProblem, LossFn, working_model
from initlab.analysis.segments import flat_children, layer_segments, model_prefix

QUANTITIES = ("input_variance", "preactivation_variance", "activation_variance", "gradient_variance",
              "preactivation_gradient_variance")


@dataclass
class Moments:
    """Count, mean and sum of squared deviations of every entry seen so far (float64)."""

    count: int = 0
    mean: float = 0.0
    squares: float = 0.0

    def add(self, values: Tensor) -> None:
        values = values.detach().double()
        n, mean = values.numel(), values.mean().item()
        squares = (values - mean).pow(2).sum().item()
        delta, total = mean - self.mean, self.count + n
        self.squares += squares + delta**2 * self.count * n / total
        self.mean += delta * n / total
        self.count = total

    @property
    def variance(self) -> float:
        """Population variance."""
        return self.squares / self.count


def variance_flow_chunks(model: nn.Module, loss_fn: LossFn, chunks: Iterable[tuple[Tensor, Tensor, float]],
                         mode: Mode = "eval") -> list[dict[str, object]]:
    """:func:`variance_flow` over weighted chunks (inputs, targets, weight): the gradients are those
    of the weighted sum of the chunk losses (the loss over all samples)."""
    segments = layer_segments(model)
    moments = [{q: Moments() for q in QUANTITIES} for _ in segments]
    with evaluation_mode(model, mode):
        for inputs, targets, weight in chunks:
            z = model_prefix(model)(inputs).detach().requires_grad_(True)
            layer_inputs, preactivations, outputs = [], [], []
            for segment in segments:
                layer_inputs.append(z)
                u = segment.layer(z)
                preactivations.append(u)
                z = segment.after_layer(u)
                outputs.append(z)
            grads = torch.autograd.grad(weight * loss_fn(z, targets), layer_inputs + preactivations)
            n = len(segments)
            for k, m in enumerate(moments):
                values = (layer_inputs[k], preactivations[k], outputs[k], grads[k], grads[n + k])
                for quantity, value in zip(QUANTITIES, values, strict=True):
                    m[quantity].add(value)
    return [{"layer": s.name, **{q: m[q].variance for q in QUANTITIES}} for s, m in zip(segments, moments, strict=True)]


def variance_flow(
    model: nn.Module, loss_fn: LossFn, inputs: Tensor, targets: Tensor, mode: Mode = "eval"
) -> list[dict[str, object]]:
    """Per weight layer k: forward variances of z^(k) (layer input), u^(k) (pre-activation) and
    z^(k+1) (segment output = the layer's output after its activation) and backward variances of
    dL/dz^(k) and dL/du^(k) for the loss as given (a mean-reduced loss scales the gradients by
    1/batch). Variances are over all samples and units (population variance). Variance flow is
    "flat" when these stay of the same order across layers (Glorot and Bengio, eq. (3))."""
    return variance_flow_chunks(model, loss_fn, [(inputs, targets, 1.0)], mode)


def dead_relu_chunks(model: nn.Module, chunks: Iterable[Tensor], mode: Mode = "eval") -> dict[str, float]:
    """:func:`dead_relu_fraction` over several input chunks."""
    dead: dict[str, Tensor] = {}
    with evaluation_mode(model, mode), torch.no_grad():
        for inputs in chunks:
            z = inputs
            for name, child in flat_children(model):
                z = child(z)
                if isinstance(child, nn.ReLU):
                    silent = (z <= 0).all(dim=0)
                    dead[name] = dead[name] & silent if name in dead else silent
    return {name: mask.double().mean().item() for name, mask in dead.items()}


def dead_relu_fraction(model: nn.Module, inputs: Tensor, mode: Mode = "eval") -> dict[str, float]:
    """Per ``nn.ReLU`` module (by name): the fraction of its units (output coordinates; for a
    convolution every channel x position) whose output is 0 for every sample of the batch."""
    return dead_relu_chunks(model, [inputs], mode)


def problem_variances(problem: CurvatureProblem) -> tuple[list[dict[str, object]], dict[str, float]]:
    """Variance flow and dead-ReLU fractions over all the problem's samples."""
    work = working_model(problem)
    parameter = next(work.parameters())
    flow = variance_flow_chunks(work, problem.loss_fn, problem.weighted_chunks(parameter.device, parameter.dtype),
                                problem.mode)
    dead = dead_relu_chunks(work, (x for x, _, _ in problem.weighted_chunks(parameter.device, parameter.dtype)),
                            problem.mode)
    return flow, dead
