"""The exact trace of the Gauss-Newton matrix, and when it is the Hessian's trace.

H = G + R with G = sum_n J_n^T H_z,n J_n (paper eq. (10), H_1) and R = sum_n sum_c (dl_n/dz_c) D^2_theta z_c
(H_2). tr(G) = sum_n tr(H_z,n K_n) with K_n = J_n J_n^T the sample's C x C Jacobian Gram matrix (C
outputs): per-sample Jacobians (C reverse passes per sample, batched by ``torch.func.vmap``) give it
exactly, with no random probes. tr(R) needs only the diagonal of D^2_theta z_c, which vanishes for every
parameter of a layer behind which the network is piecewise linear (z is then linear in that layer's
(W, b) almost everywhere: paper Remark 1, per layer). So for ReLU networks tr(H) = tr(G) exactly (H
itself differs from G by cross-layer blocks). Elsewhere (tanh) tr(R) does not vanish, and on the
pipeline MLP it cancels most of tr(G) with at least H's variance, so the record keeps the deflated
Hutchinson trace there (``benchmarks/README.md``).
"""

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from initlab.analysis.problem import LossFn
from initlab.analysis.segments import flat_children
from initlab.models.nets import WEIGHT_LAYER_TYPES

# Modules that keep z^(n) piecewise linear in a layer's (W, b): behind them H_w(k) = G_w(k) (Remark 1)
PIECEWISE_LINEAR_TYPES: tuple[type[nn.Module], ...] = (
    *WEIGHT_LAYER_TYPES, nn.ReLU, nn.LeakyReLU, nn.Identity, nn.Flatten, nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d,
    nn.AvgPool2d,
)


def piecewise_linear_after(model: nn.Module, layer: str) -> bool:
    """True when every module after weight layer ``layer`` keeps the output piecewise linear in its
    (W, b), so the layer's Hessian block equals its Gauss-Newton block (paper Remark 1)."""
    names = [name for name, _ in flat_children(model)]
    return layer in names and all(
        isinstance(m, PIECEWISE_LINEAR_TYPES) for _, m in flat_children(model)[names.index(layer):])


def residual_trace_vanishes(model: nn.Module, names: Iterable[str]) -> bool:
    """tr(R) = 0 for the parameters ``names``: each belongs to a weight layer behind which the model is
    piecewise linear (so the diagonal of D^2_theta z is zero there). False for anything else."""
    try:
        return all(piecewise_linear_after(model, name.rpartition(".")[0]) for name in names)
    except TypeError:  # not a (cuttable) Sequential: no layer order to reason about
        return False


def output_hessian_blocks(loss_fn: LossFn, outputs: Tensor, targets: Tensor) -> Tensor:
    """H_z,n per sample [batch, width, width]: sample n's diagonal block of D_z^2 L (loss as given).

    One batched product per output coordinate (the same unit tangent in every sample), which reads
    off the diagonal blocks for any loss that is a sum/mean of per-sample terms."""
    out = outputs.detach().requires_grad_(True)
    (gradient,) = torch.autograd.grad(loss_fn(out, targets), out, create_graph=True)
    batch, width = out.shape[0], out[0].numel()
    if not gradient.requires_grad:
        return out.new_zeros(batch, width, width)
    tangents = torch.eye(width, dtype=out.dtype, device=out.device)[:, None, :].expand(width, batch, width)
    (columns,) = torch.autograd.grad(gradient, out, grad_outputs=tangents.reshape(width, *out.shape),
                                     is_grads_batched=True)
    blocks = columns.reshape(width, batch, width).permute(1, 2, 0)
    return (blocks + blocks.transpose(1, 2)) / 2


def jacobian_grams(model: nn.Module, params: dict[str, Tensor], inputs: Tensor, max_bytes: int) -> Tensor:
    """K_n = J_n J_n^T [batch, width, width], J_n the Jacobian of sample n's output by ``params``;
    samples in groups whose per-sample Jacobians fit ``max_bytes``."""

    def output(p: dict[str, Tensor], x: Tensor) -> Tensor:
        return torch.func.functional_call(model, p, (x[None],), strict=False).reshape(-1)

    per_sample = torch.func.vmap(torch.func.jacrev(output), in_dims=(None, 0))
    detached = {name: p.detach() for name, p in params.items()}
    with torch.no_grad():
        width = model(inputs[:1]).numel()
    size = width * sum(p.numel() for p in params.values()) * next(iter(params.values())).element_size()
    grams = []
    for group in inputs.split(max(1, max_bytes // size)):
        jacobians = per_sample(detached, group)
        gram = 0
        for jacobian in jacobians.values():
            flat = jacobian.reshape(len(group), width, -1)
            gram = gram + flat @ flat.transpose(1, 2)
        grams.append(gram)
    return torch.cat(grams)


def linear_layer_traces(model: nn.Module, params: dict[str, Tensor], loss_fn: LossFn, inputs: Tensor,
                        targets: Tensor) -> float | None:
    """sum_n tr(J_n^T H_z,n J_n) when every parameter is a weight or bias of an ``nn.Linear`` fed
    vectors (None otherwise). A layer u = W a + b has per-sample Jacobian rows delta_c a^T (and
    delta_c for b), delta_c = d z_c / d u, so its share of the trace is (||a_n||^2 + [bias]) tr(H_z,n S_n)
    with S_n = Delta_n Delta_n^T: C batched backward passes to the pre-activations, no per-sample
    weight gradients (the Goodfellow et al. 2015 per-example norm trick)."""
    modules = dict(model.named_modules())
    layers = {name.rpartition(".")[0] for name in params}
    if not all(isinstance(modules.get(layer), nn.Linear) for layer in layers):
        return None
    calls: dict[str, list[tuple[Tensor, Tensor]]] = {layer: [] for layer in layers}
    hooks = [modules[layer].register_forward_hook(
        lambda _, args, out, layer=layer: calls[layer].append((args[0].detach(), out))) for layer in layers]
    try:
        outputs = model(inputs)
    finally:
        for hook in hooks:
            hook.remove()
    if any(len(c) != 1 or c[0][0].dim() != 2 for c in calls.values()):  # shared weights, sequences: general path
        return None
    seen = {layer: c[0] for layer, c in calls.items()}
    order = sorted(layers)
    batch, width = outputs.shape[0], outputs[0].numel()
    tangents = torch.eye(width, dtype=outputs.dtype, device=outputs.device)[:, None, :].expand(width, batch, width)
    deltas = torch.autograd.grad(outputs, [seen[layer][1] for layer in order], tangents.reshape(width, *outputs.shape),
                                 is_grads_batched=True, allow_unused=True, materialize_grads=True)
    blocks = output_hessian_blocks(loss_fn, outputs, targets)
    total = 0.0
    for layer, delta in zip(order, deltas, strict=True):
        inputs_norm = seen[layer][0].pow(2).sum(dim=1) * (f"{layer}.weight" in params) + (f"{layer}.bias" in params)
        gram = torch.einsum("cnd,end->nce", delta, delta)
        total += (inputs_norm * (blocks * gram).sum(dim=(1, 2))).sum().item()
    return total


def gauss_newton_trace(model: nn.Module, params: dict[str, Tensor], loss_fn: LossFn,
                       chunks: Iterable[tuple[Tensor, Tensor, float]], max_bytes: int = 2**27) -> float:
    """tr(G) = sum over chunks of weight * sum_n tr(H_z,n K_n), exact (no probes): by
    :func:`linear_layer_traces` for Linear layers, else from per-sample Jacobians (:func:`jacobian_grams`,
    ~C gradients' work per sample). ``model`` must treat samples independently (eval mode for batch norm)."""
    total = 0.0
    for inputs, targets, weight in chunks:
        fast = linear_layer_traces(model, params, loss_fn, inputs, targets)
        if fast is None:
            with torch.no_grad():
                outputs = model(inputs)
            blocks = output_hessian_blocks(loss_fn, outputs, targets)
            fast = (blocks * jacobian_grams(model, params, inputs, max_bytes)).sum().item()
        total += weight * fast
    return total


def samples_independent(model: nn.Module) -> bool:
    """No module mixes samples in the forward pass (a batch norm in training mode does)."""
    return not any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training for m in model.modules())

