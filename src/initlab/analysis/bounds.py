"""Paper Theorem 2 per layer: the bound as written (eq. (6)) and a corrected, provable version.

Notation (paper §1.2, per sample n): z^(k) the input of weight layer k, u^(k) = w^(k) z^(k) + b^(k),
A^(k) = D_u z^(k+1) (activation, and pooling if the segment has one), J^(i) = D_{z^(i)} z^(i+1),
B^(k+1) = J^(n-1) ... J^(k+1), H_z = D_z^2 L.

Eq. (6) as written: ||H_w(k)|| <~ prod_{i != k} ||J^(i)|| * ||A^(k)||. It omits the loss
curvature ||H_z|| and the layer input z^(k), and its product over i < k comes from the
linearization z^(k) ~ J^(k-1)...J^(0) z^(0) of eq. (5), so it is not scale-consistent: in the
linear regime, scaling the data by c scales the first layer's block by c^2 and leaves eq. (6)
unchanged. We report it as written.

Corrected (what Theorem 1 gives exactly for the Gauss-Newton part H_1 of eq. (10)): for a loss
L = sum_n l_n (a mean loss has l_n = loss_n / N), J_n g = B_n A_n g z~_n with z~ = (z, 1) when
the bias is in the block, so ||J_n g|| <= ||B_n|| ||A_n|| ||g||_F ||z~_n|| and

    lambda_max(G_w(k)) <= sum_n ||H_z,n|| * ||A_n^(k)||^2 * prod_{i>k} ||J_n^(i)||^2 * ||z~_n^(k)||^2,

where H_z,n is sample n's diagonal block of the Hessian of the loss *as given* w.r.t. the
outputs (so the 1/N of a mean loss is inside it: the bound is the mean over samples of the
per-sample-loss quantity; for a sum loss it is the sum). For a convolution ||z~_n|| becomes the
spectral norm of the sample's patch matrix (unfold, plus a row of ones for the bias). The bound
holds for the Hessian block itself whenever H_w(k) = G_w(k), i.e. ReLU networks (Remark 1:
the H_2 term vanishes), and up to H_2 otherwise.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from initlab.analysis._modes import Mode, evaluation_mode
from initlab.analysis.eigen import gauss_newton_eigenvalues, hessian_eigenvalues
from initlab.analysis.jacobian import per_sample_spectral_norms
from initlab.analysis.operators import LossFn
from initlab.analysis.segments import layer_segments, segment_inputs


def output_hessian_norms(loss_fn: LossFn, outputs: Tensor, targets: Tensor) -> Tensor:
    """||H_z,n|| per sample: spectral norm of sample n's block of D_z^2 L (loss as given).

    Uses one batched product per output coordinate (the same unit tangent in every sample), which
    reads off the diagonal blocks for any loss that is a sum/mean of per-sample terms."""
    out = outputs.detach().requires_grad_(True)
    (gradient,) = torch.autograd.grad(loss_fn(out, targets), out, create_graph=True)
    batch, width = out.shape[0], out[0].numel()
    if not gradient.requires_grad:
        return torch.zeros(batch, dtype=out.dtype, device=out.device)
    tangents = torch.eye(width, dtype=out.dtype, device=out.device)[:, None, :].expand(width, batch, width)
    (columns,) = torch.autograd.grad(gradient, out, grad_outputs=tangents.reshape(width, *out.shape),
                                     is_grads_batched=True)
    blocks = columns.reshape(width, batch, width).permute(1, 2, 0)
    return torch.linalg.eigvalsh((blocks + blocks.transpose(1, 2)) / 2).abs().amax(dim=1)


def weight_input_norms(layer: nn.Module, z: Tensor, include_bias: bool) -> Tensor:
    """Per sample, the operator norm of g -> (the layer's output with weights g): ||z~_n|| for a
    Linear layer on vectors, the patch matrix's spectral norm for a Conv2d (bias adds a 1)."""
    bias = include_bias and getattr(layer, "bias", None) is not None
    if isinstance(layer, nn.Linear) and z.dim() == 2:
        return (z.pow(2).sum(dim=1) + float(bias)).sqrt()
    if isinstance(layer, nn.Linear):
        patches = z.reshape(z.shape[0], -1, z.shape[-1]).transpose(1, 2)
    elif isinstance(layer, nn.Conv2d) and layer.groups == 1 and layer.padding_mode == "zeros" and not isinstance(
        layer.padding, str
    ):
        patches = F.unfold(z, layer.kernel_size, layer.dilation, layer.padding, layer.stride)
    else:
        raise NotImplementedError(f"no input-norm formula for {layer}")
    if bias:
        patches = torch.cat([patches, torch.ones_like(patches[:, :1])], dim=1)
    return torch.linalg.matrix_norm(patches, ord=2)


ELEMENTWISE_TYPES: tuple[type[nn.Module], ...] = (
    nn.Identity, nn.Tanh, nn.ReLU, nn.Sigmoid, nn.GELU, nn.LeakyReLU, nn.ELU, nn.SiLU, nn.Softplus, nn.Flatten,
    nn.Dropout,
)


def activation_derivative_norms(after_layer: nn.Sequential, u: Tensor, iters: int, tol: float, seed: int) -> Tensor:
    """||A^(k)|| = ||D_u z^(k+1)|| per sample. For elementwise activations (eval-mode dropout and
    flattening included) A is diagonal and one JVP with a tangent of ones gives it exactly:
    ||A|| = max |f'(u)|; otherwise (pooling, ...) a per-sample Lanczos on A^T A."""
    if all(isinstance(m, ELEMENTWISE_TYPES) and not (isinstance(m, nn.Dropout) and m.training) for m in after_layer):
        _, diagonal = torch.func.jvp(after_layer, (u,), (torch.ones_like(u),))
        return diagonal.abs().flatten(1).amax(dim=1)
    return per_sample_spectral_norms(after_layer, u, iters, tol, seed)[0]


def theorem2_bounds(
    model: nn.Module,
    loss_fn: LossFn,
    inputs: Tensor,
    targets: Tensor,
    include_bias: bool = True,
    tol: float = 1e-4,
    jacobian_iters: int = 100,
    jacobian_tol: float = 1e-5,
    gauss_newton: bool = True,
    mode: Mode = "eval",
    dtype: torch.dtype | None = None,
    seed: int = 0,
) -> list[dict[str, object]]:
    """Per weight layer k: Theorem 2's bound as written and corrected (module docstring) next to
    the measured lambda_max of the layer's Hessian block (and Gauss-Newton block), with ratios
    measured / bound. Also reports the factors (sample means): ||J^(k)|| (and max over samples),
    ||A^(k)||, ||z~^(k)||, and sum_n ||H_z,n||. Per-sample norms need sample-independent segments
    (eval mode)."""
    with evaluation_mode(model, mode):
        segments = layer_segments(model)
        values = segment_inputs(model, inputs)
        jac = torch.stack(
            [per_sample_spectral_norms(s.module, z, jacobian_iters, jacobian_tol, seed)[0] for s, z in
             zip(segments, values, strict=False)]
        )
        act = []
        for segment, z in zip(segments, values, strict=False):
            with torch.no_grad():
                u = segment.layer(z)
            act.append(activation_derivative_norms(segment.after_layer, u, jacobian_iters, jacobian_tol, seed))
        act_norms = torch.stack(act)
        input_norms = torch.stack(
            [weight_input_norms(s.layer, z, include_bias) for s, z in zip(segments, values, strict=False)]
        )
        h_z = output_hessian_norms(loss_fn, values[-1], targets)
    records = []
    for k, segment in enumerate(segments):
        others = torch.cat([jac[:k], jac[k + 1:]]).prod(dim=0)
        as_written = (others * act_norms[k]).mean().item()
        after = jac[k + 1:].pow(2).prod(dim=0)
        corrected = (h_z * act_norms[k].pow(2) * after * input_norms[k].pow(2)).sum().item()
        hessian = hessian_eigenvalues(model, loss_fn, inputs, targets, params=k, include_bias=include_bias, tol=tol,
                                      mode=mode, dtype=dtype, seed=seed)
        record: dict[str, object] = {
            "layer": segment.name,
            "include_bias": hessian.settings["include_bias"],
            "lambda_max": hessian.lambda_max,
            "lambda_max_residual": hessian.top_residuals[0],
            "bound_as_written": as_written,
            "bound_corrected": corrected,
            "ratio_as_written": hessian.lambda_max / as_written if as_written else float("inf"),
            "ratio_corrected": hessian.lambda_max / corrected if corrected else float("inf"),
            "jacobian_norm": jac[k].mean().item(),
            "jacobian_norm_max": jac[k].max().item(),
            "activation_derivative_norm": act_norms[k].mean().item(),
            "input_norm": input_norms[k].mean().item(),
            "output_hessian_norm_sum": h_z.sum().item(),
            "n_products": hessian.n_products_total,
        }
        if gauss_newton:
            ggn = gauss_newton_eigenvalues(model, loss_fn, inputs, targets, params=k, include_bias=include_bias,
                                           tol=tol, mode=mode, dtype=dtype, seed=seed)
            record["gauss_newton_lambda_max"] = ggn.lambda_max
            record["ratio_corrected_gauss_newton"] = ggn.lambda_max / corrected if corrected else float("inf")
            record["n_products"] = hessian.n_products_total + ggn.n_products_total
        records.append(record)
    return records
