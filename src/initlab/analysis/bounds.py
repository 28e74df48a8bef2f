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
the H_2 term vanishes), and up to H_2 otherwise. One solve per block: the Gauss-Newton block is
only solved when it can differ from the Hessian block.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from initlab.analysis._modes import evaluation_mode
from initlab.analysis.gauss_newton import output_hessian_blocks, piecewise_linear_after
from initlab.analysis.jacobian import segment_jacobian_norms
from initlab.analysis.operators import DatasetOperator
from initlab.analysis.problem import CurvatureProblem, LossFn, eager_view, working_model
from initlab.analysis.record import CurvatureRecord, curvature_record
from initlab.analysis.segments import layer_segments, segment_inputs


def output_hessian_norms(loss_fn: LossFn, outputs: Tensor, targets: Tensor) -> Tensor:
    """||H_z,n|| per sample: spectral norm of sample n's block of D_z^2 L (loss as given)."""
    return torch.linalg.eigvalsh(output_hessian_blocks(loss_fn, outputs, targets)).abs().amax(dim=1)


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


def sample_factors(problem: CurvatureProblem, iters: int, tol: float, seed: int) -> dict[str, Tensor]:
    """Per weight layer and sample over all the problem's chunks: ``jacobian`` ||J^(k)||,
    ``activation`` ||A^(k)||, ``input`` ||z~^(k)|| ([layers, N]) and ``output_hessian`` ||H_z,n||
    of the loss over all samples ([N])."""
    work = working_model(problem)
    parameter = next(work.parameters())
    parts: dict[str, list[Tensor]] = {"jacobian": [], "activation": [], "input": [], "output_hessian": []}
    with evaluation_mode(work, problem.mode):
        segments = layer_segments(work)
        for inputs, targets, weight in problem.weighted_chunks(parameter.device, parameter.dtype):
            values = segment_inputs(work, inputs)
            norms = [segment_jacobian_norms(s, z, iters, tol, seed) for s, z in zip(segments, values, strict=False)]
            parts["jacobian"].append(torch.stack([j for j, _ in norms]))
            parts["activation"].append(torch.stack([a for _, a in norms]))
            parts["input"].append(torch.stack([weight_input_norms(s.layer, z, problem.include_bias)
                                               for s, z in zip(segments, values, strict=False)]))
            parts["output_hessian"].append(weight * output_hessian_norms(problem.loss_fn, values[-1], targets))
    return {key: torch.cat(value, dim=-1) for key, value in parts.items()}


def block_records(problem: CurvatureProblem, layer: str, tol: float, seed: int, gauss_newton: bool,
                  start: dict[str, Tensor] | None, check: bool) -> tuple[CurvatureRecord, CurvatureRecord | None]:
    """lambda_max of layer ``layer``'s Hessian block (warm-started from ``start``, e.g. the full top
    eigenvector by parameter name) and of its Gauss-Newton block (the Hessian's record when they are
    equal by Remark 1; None without ``gauss_newton``)."""
    operator = DatasetOperator(problem.replace(block=layer, kind="hessian", check=check))
    v0 = operator.join(start) if start else None
    warm = v0 is not None and torch.linalg.vector_norm(v0).item() > 1e-3
    hessian = curvature_record(operator, tol=tol, seed=seed, v0=v0 if warm else None)
    if not gauss_newton or piecewise_linear_after(eager_view(problem.model), layer):
        return hessian, hessian if gauss_newton else None
    ggn = DatasetOperator(problem.replace(block=layer, kind="gauss_newton", check=False))
    return hessian, curvature_record(ggn, tol=tol, seed=seed, v0=hessian.top_vectors[:, 0])


def theorem2_bounds(
    problem: CurvatureProblem,
    tol: float = 1e-4,
    jacobian_iters: int = 100,
    jacobian_tol: float = 1e-5,
    gauss_newton: bool = True,
    seed: int = 0,
    start: dict[str, Tensor] | None = None,
) -> list[dict[str, object]]:
    """Per weight layer k: Theorem 2's bound as written and corrected (module docstring) next to
    the measured lambda_max of the layer's Hessian block (and Gauss-Newton block), with ratios
    measured / bound, over all the problem's samples. Also reports the factors (sample means):
    ||J^(k)|| (and max over samples), ||A^(k)||, ||z~^(k)||, and sum_n ||H_z,n||. Per-sample
    norms (``jacobian_tol``: relative accuracy of ||J||^2) need sample-independent segments (eval
    mode). ``start`` ({parameter name: entries}) warm-starts the block solves."""
    factors = sample_factors(problem, jacobian_iters, jacobian_tol, seed)
    jac, act, inputs, h_z = factors["jacobian"], factors["activation"], factors["input"], factors["output_hessian"]
    records = []
    for k, segment in enumerate(layer_segments(eager_view(problem.model))):
        others = torch.cat([jac[:k], jac[k + 1:]]).prod(dim=0)
        as_written = (others * act[k]).mean().item()
        corrected = (h_z * act[k].pow(2) * jac[k + 1:].pow(2).prod(dim=0) * inputs[k].pow(2)).sum().item()
        hessian, ggn = block_records(problem, segment.name, tol, seed, gauss_newton, start, problem.check and k == 0)
        record: dict[str, object] = {
            "layer": segment.name,
            "include_bias": hessian.settings["include_bias"],
            "lambda_max": hessian.lambda_max,
            "lambda_max_residual": hessian.residuals["top"][0],
            "bound_as_written": as_written,
            "bound_corrected": corrected,
            "ratio_as_written": hessian.lambda_max / as_written if as_written else float("inf"),
            "ratio_corrected": hessian.lambda_max / corrected if corrected else float("inf"),
            "jacobian_norm": jac[k].mean().item(),
            "jacobian_norm_max": jac[k].max().item(),
            "activation_derivative_norm": act[k].mean().item(),
            "input_norm": inputs[k].mean().item(),
            "output_hessian_norm_sum": h_z.sum().item(),
            "n_products": hessian.n_products,
        }
        if ggn is not None:
            record["gauss_newton_lambda_max"] = ggn.lambda_max
            record["gauss_newton_equals_hessian"] = ggn is hessian
            record["ratio_corrected_gauss_newton"] = ggn.lambda_max / corrected if corrected else float("inf")
            record["n_products"] = hessian.n_products + (ggn.n_products if ggn is not hessian else 0)
        records.append(record)
    return records
