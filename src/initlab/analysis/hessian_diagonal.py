"""The exact Hessian trace of MLPs with elementwise activations, by Hessian backpropagation.

Dangel et al. (2020, BackPACK's DiagHessian) backpropagate the per-sample Hessian of the loss by
a layer's output: through ``u = W a + b`` it becomes H_a = W^T H_u W; through an elementwise
``a = f(u)`` it becomes H_u = diag(f'(u)) H_a diag(f'(u)) + diag(f''(u) * dL/da) (the residual term
that makes tr(H) differ from tr(G) for tanh, sigmoid, GELU). The loss is a sum over samples, so the
Hessian block of a Linear layer is sum_n (a_n a_n^T) (x) H_u,n and its trace is
sum_n (||a_n||^2 + [bias]) tr(H_u,n): exact, no probes, no Hessian-vector products.

H_u,n is kept as F diag(s) F^T + M + diag(r): F the backpropagated eigenvectors of the output
Hessian (C columns), M a dense part only where a residual must cross two Linear layers (deep
nets), and r the diagonal residual (a diagonal stays diagonal through activations). Crossing the
last Linear layer that still needs one only the diagonal is formed, so a two-hidden-layer MLP
costs O(n d^2 C) and never an n x d x d tensor. ``benchmarks/curvature.py`` measures it.
"""

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from initlab.analysis.gauss_newton import output_hessian_blocks
from initlab.analysis.problem import LossFn, loss_reduction
from initlab.analysis.segments import flat_children

# Modules that act elementwise on [batch, features] (their f', f'' come from autograd)
ELEMENTWISE_TYPES: tuple[type[nn.Module], ...] = (
    nn.Identity, nn.Tanh, nn.ReLU, nn.LeakyReLU, nn.Sigmoid, nn.GELU, nn.SiLU, nn.ELU, nn.Softplus, nn.Dropout,
)
RESHAPE_TYPES: tuple[type[nn.Module], ...] = (nn.Flatten, nn.Identity)  # allowed before the first Linear
DENSE_BYTES = 2**26  # per-sample dense parts (deep nets) are formed for groups of samples up to this


@dataclass
class BackpropagatedHessian:
    """Per-sample H = F diag(s) F^T + M + diag(r) by one module's output: F [n, d, k], s [n, k], M [n, d, d]
    and r [n, d] (None: zero, so the output layer's Hessian never forms a dense part)."""

    factor: Tensor
    signs: Tensor
    dense: Tensor | None = None
    diagonal: Tensor | None = None

    def trace(self) -> Tensor:
        """tr(H_n) per sample."""
        total = torch.einsum("ndk,nk->n", self.factor.square(), self.signs)
        if self.diagonal is not None:
            total = total + self.diagonal.sum(dim=1)
        return total if self.dense is None else total + self.dense.diagonal(dim1=1, dim2=2).sum(dim=1)

    def through_elementwise(self, first: Tensor, second: Tensor, gradient: Tensor) -> "BackpropagatedHessian":
        """H by the input u of a = f(u): f' = ``first``, f'' = ``second``, dL/da = ``gradient``."""
        dense = None if self.dense is None else self.dense * first[:, :, None] * first[:, None, :]
        diagonal = second * gradient if self.diagonal is None else self.diagonal * first.square() + second * gradient
        return BackpropagatedHessian(self.factor * first[:, :, None], self.signs, dense, diagonal)

    def through_linear(self, weight: Tensor, full: bool) -> "BackpropagatedHessian":
        """H by the input a of u = W a + b: all of it (``full``) or what its diagonal needs (F and diag)."""
        factor = torch.einsum("oi,nok->nik", weight, self.factor)
        if full:
            parts = [] if self.dense is None else [torch.einsum("oi,nop,pj->nij", weight, self.dense, weight)]
            if self.diagonal is not None:
                parts.append(torch.einsum("oi,no,oj->nij", weight, self.diagonal, weight))
            return BackpropagatedHessian(factor, self.signs, sum(parts) if parts else None)
        parts = [] if self.dense is None else [torch.einsum("oi,nop,pi->ni", weight, self.dense, weight)]
        if self.diagonal is not None:
            parts.append(self.diagonal @ weight.square())
        return BackpropagatedHessian(factor, self.signs, None, sum(parts) if parts else None)


def _supported(modules: list[tuple[str, nn.Module]]) -> bool:
    """Reshapes, then Linear layers and elementwise modules only (dropout in eval mode)."""
    first = next((i for i, (_, m) in enumerate(modules) if isinstance(m, nn.Linear)), None)
    if first is None or not all(isinstance(m, RESHAPE_TYPES) for _, m in modules[:first]):
        return False
    return all(isinstance(m, nn.Linear) or (isinstance(m, ELEMENTWISE_TYPES) and not (isinstance(m, nn.Dropout)
               and m.training)) for _, m in modules[first:])


def supports_exact_trace(model: nn.Module, names: Iterable[str]) -> bool:
    """True when :func:`hessian_trace_exact` applies: a flat MLP (Linear + elementwise) and only Linear parameters."""
    try:
        modules = flat_children(model)
    except TypeError:
        return False
    linear = {f"{name}.{kind}" for name, m in modules if isinstance(m, nn.Linear) for kind in ("weight", "bias")}
    return _supported(modules) and all(name in linear for name in names)


def _derivatives(module: nn.Module, u: Tensor) -> tuple[Tensor, Tensor]:
    """f'(u), f''(u) of an elementwise module, exactly by autograd."""
    with torch.enable_grad():
        leaf = u.detach().requires_grad_(True)
        (first,) = torch.autograd.grad(module(leaf.clone()).sum(), leaf, create_graph=True)  # clone: in-place modules
        if not first.requires_grad:  # piecewise linear: f'' = 0
            return first.detach(), torch.zeros_like(leaf)
        (second,) = torch.autograd.grad(first.sum(), leaf)
    return first.detach(), second


def _chunk_trace(modules: list[tuple[str, nn.Module]], names: set[str], loss_fn: LossFn, inputs: Tensor,
                 targets: Tensor) -> float | None:
    """sum_n tr of the requested Linear blocks of one chunk's loss Hessian (loss as given); None unless every
    Linear layer is fed [batch, features] (a sequence shares the weights across positions)."""
    values, z = [], inputs  # (module name, module, its input, its output)
    with torch.enable_grad():
        for name, module in modules:
            out = module(z.clone() if getattr(module, "inplace", False) else z)  # keep u for f'(u), f''(u)
            if isinstance(module, nn.Linear) and z.dim() != 2:
                return None
            values.append((name, module, z, out))
            z = out
        loss = loss_fn(z, targets)
        acting = [v for v in values if v[3].requires_grad and not isinstance(v[1], nn.Linear)]  # dL/da for f''
        gradients = dict(zip([v[0] for v in acting], torch.autograd.grad(
            loss, [v[3] for v in acting], allow_unused=True, materialize_grads=True), strict=True))
    blocks = output_hessian_blocks(loss_fn, z.detach(), targets)
    eigenvalues, eigenvectors = torch.linalg.eigh(blocks)
    hessian = BackpropagatedHessian(eigenvectors, eigenvalues)
    linear = [i for i, (_, m, _, _) in enumerate(values) if isinstance(m, nn.Linear)]
    wanted = [i for i in linear if any(f"{values[i][0]}.{kind}" in names for kind in ("weight", "bias"))]
    total = torch.zeros((), dtype=torch.float64, device=z.device)
    lowest = wanted[0] if wanted else len(values)
    for i in range(len(values) - 1, lowest - 1, -1):
        name, module, inputs_i, _ = values[i]
        if isinstance(module, nn.Linear):
            trace = hessian.trace()
            size = inputs_i.detach().square().sum(dim=1) * (f"{name}.weight" in names) + (f"{name}.bias" in names)
            total += (size * trace).sum().double()
            below = sum(1 for j in wanted if j < i)
            if below == 0:
                break
            hessian = hessian.through_linear(module.weight.detach(), full=below >= 2)
        else:
            first, second = _derivatives(module, inputs_i)
            hessian = hessian.through_elementwise(first, second, gradients[name].detach())
    return total.item()


def hessian_trace_exact(model: nn.Module, names: Iterable[str], loss_fn: LossFn,
                        chunks: Iterable[tuple[Tensor, Tensor, float]]) -> float | None:
    """tr of the Hessian block of ``names`` over all chunks (weight * each chunk's trace): exact, or None
    when the model is not a flat MLP of Linear and elementwise modules. ``model`` must treat samples
    independently (no batch norm in training mode). Deep nets' dense parts come in sample groups."""
    names = set(names)
    if not supports_exact_trace(model, names):
        return None
    modules = flat_children(model)
    hidden = [m.in_features for _, m in modules if isinstance(m, nn.Linear)][1:]
    dense_width = max(hidden) if len(hidden) >= 3 else 0  # a dense part forms only with 4+ Linear layers
    mean = loss_reduction(loss_fn) != "sum"
    total = 0.0
    for inputs, targets, weight in chunks:
        group = max(1, DENSE_BYTES // (dense_width**2 * inputs.element_size())) if dense_width else len(inputs)
        for part_x, part_y in zip(inputs.split(group), targets.split(group), strict=True):
            share = len(part_x) / len(inputs) if mean else 1.0  # a mean loss's groups enter with their share
            trace = _chunk_trace(modules, names, loss_fn, part_x, part_y)
            if trace is None:
                return None
            total += weight * share * trace
    return total
