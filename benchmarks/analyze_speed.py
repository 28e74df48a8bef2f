"""Analyze speed: ``analyze_model`` today vs the frozen pre-engine path, side by side in one process.

    python benchmarks/analyze_speed.py                    # 1,024 samples, conf/analyze.yaml settings
    python benchmarks/analyze_speed.py --samples 256 --rounds 1
    python benchmarks/analyze_speed.py --pipeline         # the settings dvc.yaml passes (params.yaml)
    python benchmarks/analyze_speed.py --activation relu  # ReLU (the new trace is exact for both: no probes)

The model is the pipeline's MLP (conf/experiment/pipeline.yaml: widths [256, 256], tanh) on
MNIST-shaped inputs (784 -> 10; the real mnist_t10k train images when the repo has them, else
Gaussian inputs with random labels), float32, one torch thread. ``old`` is a frozen copy of
``initlab.analysis.analyze_model`` before the curvature engine (commit 0ebf25c: one batch, one
solve per quantity, two Lanczos implementations, per-sample Jacobian norms by JVP/VJP Lanczos to
1e-5, residuals from fresh products); ``new`` is the package's ``analyze_model``. Both arms run
in turn per round (``interleaved``); the ratio is the median of per-round old/new CPU times.
The script checks that both agree on lambda_max and the layer-block lambda_max (tolerance).
"""

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import interleaved, machine_line, paired_ratio, ratio_line, timed  # noqa: E402

from initlab.analysis import AnalysisSettings, analyze_model  # noqa: E402
from initlab.analysis._modes import evaluation_mode, forward_with_buffer_copies  # noqa: E402
from initlab.analysis.segments import flat_children, layer_segments, model_prefix, segment_inputs  # noqa: E402
from initlab.models import mlp  # noqa: E402

# ---------------------------------------------------------------------------------------------
# FROZEN BASELINE: the analyze_model path of commit 0ebf25c (src/initlab/analysis/{lanczos,
# operators,eigen,spectrum,jacobian,bounds,variance,report}.py), trimmed to what analyze_model
# runs with its defaults (no ARPACK, power iteration, batched products or dtype copies).
# ---------------------------------------------------------------------------------------------


def old_batched_lanczos(apply, start, max_steps, tol=None, check_every=4):
    batch, dim = start.shape
    dtype, device = start.dtype, start.device
    tiny, eps = torch.finfo(dtype).tiny, torch.finfo(dtype).eps
    max_steps = min(max_steps, dim)
    basis = torch.empty(batch, min(max_steps, 16) + 1, dim, dtype=dtype, device=device)
    basis[:, 0] = start / torch.linalg.vector_norm(start, dim=1, keepdim=True)
    alphas = torch.zeros(batch, max_steps, dtype=torch.float64, device=device)
    betas = torch.zeros(batch, max_steps, dtype=torch.float64, device=device)
    settled = torch.zeros(batch, dtype=torch.bool, device=device)

    def matrix(a, b):
        off = torch.diag_embed(b, offset=1)
        return torch.diag_embed(a) + off + off.transpose(1, 2)

    for step in range(1, max_steps + 1):
        q = basis[:, step - 1]
        w = apply(q)
        alphas[:, step - 1] = (w * q).sum(dim=1).double()
        w = old_reorthogonalize_rows(w, basis[:, :step])
        beta = torch.linalg.vector_norm(w, dim=1).double()
        scale = alphas[:, :step].abs().amax(dim=1) + betas[:, :step].abs().amax(dim=1)
        broken = beta <= 10 * eps * step * scale.clamp_min(tiny)
        if step == max_steps or bool(broken.all()):
            return matrix(alphas[:, :step], betas[:, : step - 1])
        if tol is not None and step % check_every == 0:
            open_rows = (~settled & ~broken).nonzero().squeeze(1)
            values, vectors = torch.linalg.eigh(matrix(alphas[open_rows, :step], betas[open_rows, : step - 1]))
            residual = beta[open_rows] * vectors[:, -1, -1].abs()
            settled[open_rows] = residual <= tol * values.abs().amax(dim=1)
            if bool((settled | broken).all()):
                return matrix(alphas[:, :step], betas[:, : step - 1])
        betas[:, step - 1] = torch.where(broken, torch.zeros_like(beta), beta)
        if step + 1 > basis.shape[1] - 1:
            grown = torch.empty(batch, min(2 * basis.shape[1], max_steps + 1), dim, dtype=dtype, device=device)
            grown[:, : basis.shape[1]] = basis
            basis = grown
        unit = w / beta.clamp_min(tiny).to(dtype)[:, None]
        basis[:, step] = torch.where(broken[:, None], torch.zeros_like(w), unit)
    raise AssertionError("unreachable")


def old_reorthogonalize_rows(w, basis):
    norm = torch.linalg.vector_norm(w, dim=1)
    w = w - torch.bmm(torch.bmm(basis, w[:, :, None]).transpose(1, 2), basis)[:, 0]
    if bool((torch.linalg.vector_norm(w, dim=1) < norm / 2**0.5).any()):
        w = w - torch.bmm(torch.bmm(basis, w[:, :, None]).transpose(1, 2), basis)[:, 0]
    return w


def old_reorthogonalize(w, basis):
    norm = torch.linalg.vector_norm(w)
    w = w - (basis @ w) @ basis
    if torch.linalg.vector_norm(w) < norm / 2**0.5:
        w = w - (basis @ w) @ basis
    return w


def old_extreme_eigenpairs(apply, start, n_top, n_bottom, tol, max_steps=300, seed=0):
    dim, dtype, device = start.shape[0], start.dtype, start.device
    max_steps = min(max_steps, dim)
    eps = torch.finfo(dtype).eps
    generator = torch.Generator().manual_seed(seed)
    basis = torch.empty(min(max_steps, 32), dim, dtype=dtype, device=device)
    basis[0] = start / torch.linalg.vector_norm(start)
    alphas, betas = [], []
    for step in range(1, max_steps + 1):
        q = basis[step - 1]
        w = apply(q)
        alphas.append(torch.dot(w, q).item())
        krylov = basis[:step]
        w = old_reorthogonalize(w, krylov)
        beta = torch.linalg.vector_norm(w).item()
        tridiagonal = torch.diag(torch.tensor(alphas, dtype=torch.float64))
        if betas:
            off = torch.diag(torch.tensor(betas, dtype=torch.float64), 1)
            tridiagonal = tridiagonal + off + off.T
        values, vectors = torch.linalg.eigh(tridiagonal)
        scale = values.abs().max().item()
        invariant = beta <= 10 * eps * step * max(scale, torch.finfo(dtype).tiny)
        wanted = list(range(min(n_bottom, step))) + list(range(max(step - n_top, n_bottom), step))
        enough = step >= n_top + n_bottom
        converged = enough and all(beta * abs(vectors[-1, i].item()) <= tol * scale or invariant for i in wanted)
        if converged or step == max_steps:
            ritz = basis[:step].T @ vectors.to(dtype)
            top = list(range(step - 1, step - 1 - min(n_top, step), -1))
            bottom = list(range(min(n_bottom, step)))
            return values[top], ritz[:, top], values[bottom], ritz[:, bottom], converged
        if step == basis.shape[0]:
            basis = torch.cat([basis, torch.empty(min(step, max_steps - step), dim, dtype=dtype, device=device)])
        if invariant:
            fresh = torch.randn(dim, generator=generator, dtype=torch.float64).to(device, dtype)
            w = old_reorthogonalize(fresh, krylov)
            betas.append(0.0)
            basis[step] = w / torch.linalg.vector_norm(w)
        else:
            betas.append(beta)
            basis[step] = w / beta
    raise AssertionError("unreachable")


def old_grads(outputs, inputs, grad_outputs):
    return list(torch.autograd.grad(outputs, inputs, grad_outputs=grad_outputs, retain_graph=True, allow_unused=True,
                                    materialize_grads=True))


class OldOperator:
    """HessianOperator / GaussNewtonOperator of 0ebf25c (looped products, check on construction)."""

    def __init__(self, model, loss_fn, inputs, targets, params=None, include_bias=True, gauss_newton=False):
        named = dict(model.named_parameters())
        if params is None:
            names = [n for n, p in named.items() if p.requires_grad]
        else:
            segment = layer_segments(model)[params]
            names = [f"{segment.name}.weight"] + ([f"{segment.name}.bias"] if include_bias and
                                                  segment.layer.bias is not None else [])
        self.params = [named[n] for n in names]
        self.dim = sum(p.numel() for p in self.params)
        self.dtype, self.device, self.n_products = self.params[0].dtype, self.params[0].device, 0
        self.gauss_newton = gauss_newton
        with evaluation_mode(model, "eval"):
            if gauss_newton:
                self._output = forward_with_buffer_copies(model, inputs)
                self._dual = torch.zeros_like(self._output, requires_grad=True)
                self._jt = torch.autograd.grad(self._output, self.params, grad_outputs=self._dual, create_graph=True,
                                               allow_unused=True, materialize_grads=True)
                self._leaf = self._output.detach().requires_grad_(True)
                loss = loss_fn(self._leaf, targets)
                (self._loss_gradient,) = torch.autograd.grad(loss, self._leaf, create_graph=True)
            else:
                loss = loss_fn(forward_with_buffer_copies(model, inputs), targets)
                grads = torch.autograd.grad(loss, self.params, create_graph=True, allow_unused=True,
                                            materialize_grads=True)
                self._gradient = torch.cat([g.reshape(-1) for g in grads])
                self.gradient = self._gradient.detach()
            self.loss = loss.item()
            with torch.no_grad():
                repeat = loss_fn(forward_with_buffer_copies(model, inputs), targets).item()
            assert np.isclose(repeat, self.loss, rtol=1e-5, atol=0)
        self.check()
        self.n_products = 0

    def _one(self, v):
        if not self.gauss_newton:
            return torch.cat([g.reshape(-1) for g in old_grads(self._gradient, self.params, v)])
        tangents = [c.reshape(p.shape) for c, p in zip(torch.split(v, [p.numel() for p in self.params]), self.params,
                                                          strict=True)]
        live = [(j, t) for j, t in zip(self._jt, tangents, strict=True) if j.requires_grad]
        (jv,) = old_grads([j for j, _ in live], [self._dual], [t for _, t in live])
        (h_jv,) = old_grads(self._loss_gradient, [self._leaf], jv)
        return torch.cat([g.reshape(-1) for g in old_grads(self._output, self.params, h_jv)])

    def matvec(self, v):
        self.n_products += 1
        return self._one(v.to(self.dtype))

    def matmat(self, vectors):
        self.n_products += vectors.shape[1]
        return torch.stack([self._one(v) for v in vectors.T.to(self.dtype)]).T

    def check(self):
        pair = torch.randn(self.dim, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64).to(self.dtype)
        products = self.matmat(pair)
        self.matvec(pair[:, 0])
        torch.dot(pair[:, 0], products[:, 1]).item()


def old_residuals(operator, values, vectors, scale):
    if len(values) == 0:
        return []
    basis = torch.as_tensor(vectors)
    product = operator.matmat(basis.to(operator.dtype)).double()
    lam = torch.as_tensor(values)
    return (torch.linalg.vector_norm(product - basis * lam, dim=0) / lam.abs().clamp_min(max(scale, 1e-300))).tolist()


def old_eigenvalues(operator, k, which, tol, seed=0):
    start = torch.randn(operator.dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    n_top = k if which in ("LA", "both") else 0
    n_bottom = k if which in ("SA", "both") else 0
    before = operator.n_products
    top, top_v, bottom, bottom_v, converged = old_extreme_eigenpairs(operator.matvec, start.to(operator.dtype), n_top,
                                                                      n_bottom, tol, 300, seed)
    top, bottom = top.numpy(), bottom.numpy()
    top_v, bottom_v = top_v.double().numpy(), bottom_v.double().numpy()
    scale = float(np.abs(np.concatenate([top, bottom])).max())
    return {"top": top.tolist(), "bottom": bottom.tolist(), "converged": converged,
            "top_residuals": old_residuals(operator, top, top_v, scale),
            "bottom_residuals": old_residuals(operator, bottom, bottom_v, scale),
            "n_products": operator.n_products - before}


def old_probes(dim, n, seed, dtype):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 2, (dim, n), generator=generator).to(dtype) * 2 - 1


def old_hutchinson(operator, n_probes, seed, probe_batch=10):
    probes = old_probes(operator.dim, n_probes, seed, operator.dtype)
    samples = torch.cat([(c * operator.matmat(c)).sum(dim=0) for c in probes.split(probe_batch, dim=1)]).double()
    return samples.mean().item(), (samples.std() / n_probes**0.5).item()


def old_spectral_density(operator, n_probes, steps, grid, seed):
    probes = old_probes(operator.dim, n_probes, seed, operator.dtype)
    values, vectors = torch.linalg.eigh(old_batched_lanczos(lambda rows: operator.matmat(rows.T).T,
                                                            probes.T.contiguous(), steps))
    weights = vectors[:, 0, :] ** 2
    low, high = values.min().item(), values.max().item()
    sigma = 0.01 * max(high - low, abs(high), abs(low), 1e-12)
    points = torch.linspace(low - 5 * sigma, high + 5 * sigma, grid, dtype=torch.float64)
    kernel = torch.exp(-0.5 * ((points[:, None, None] - values[None]) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))
    return {"grid": points.tolist(), "density": (kernel * weights[None]).sum(dim=2).mean(dim=1).tolist()}


def old_per_sample_norms(fn, z, iters=100, tol=1e-5, seed=0):
    start = torch.randn(z.shape, generator=torch.Generator().manual_seed(seed), dtype=z.dtype)
    _, vjp_fn = torch.func.vjp(fn, z)

    def gram(v):
        _, jv = torch.func.jvp(fn, (z,), (v,))
        return vjp_fn(jv)[0].detach()

    tridiagonal = old_batched_lanczos(lambda q: gram(q.reshape(z.shape)).flatten(1), start.flatten(1), iters, tol)
    return torch.linalg.eigvalsh(tridiagonal)[:, -1].clamp_min(0).sqrt().to(z.dtype)


def old_output_hessian_norms(loss_fn, outputs, targets):
    out = outputs.detach().requires_grad_(True)
    (gradient,) = torch.autograd.grad(loss_fn(out, targets), out, create_graph=True)
    batch, width = out.shape[0], out[0].numel()
    tangents = torch.eye(width, dtype=out.dtype)[:, None, :].expand(width, batch, width)
    (columns,) = torch.autograd.grad(gradient, out, grad_outputs=tangents.reshape(width, *out.shape),
                                     is_grads_batched=True)
    blocks = columns.reshape(width, batch, width).permute(1, 2, 0)
    return torch.linalg.eigvalsh((blocks + blocks.transpose(1, 2)) / 2).abs().amax(dim=1)


def old_theorem2_bounds(model, loss_fn, inputs, targets, tol, seed=0):
    with evaluation_mode(model, "eval"):
        segments = layer_segments(model)
        values = segment_inputs(model, inputs)
        jac = torch.stack([old_per_sample_norms(s.module, z, 100, 1e-5, seed) for s, z in
                           zip(segments, values, strict=False)])
        act = []
        for segment, z in zip(segments, values, strict=False):
            with torch.no_grad():
                u = segment.layer(z)
            _, diagonal = torch.func.jvp(segment.after_layer, (u,), (torch.ones_like(u),))
            act.append(diagonal.abs().flatten(1).amax(dim=1))
        act = torch.stack(act)
        input_norms = torch.stack([(z.pow(2).sum(dim=1) + 1.0).sqrt() for z in values[:-1]])
        h_z = old_output_hessian_norms(loss_fn, values[-1], targets)
    records = []
    for k, segment in enumerate(segments):
        others = torch.cat([jac[:k], jac[k + 1:]]).prod(dim=0)
        corrected = (h_z * act[k].pow(2) * jac[k + 1:].pow(2).prod(dim=0) * input_norms[k].pow(2)).sum().item()
        hessian = old_eigenvalues(OldOperator(model, loss_fn, inputs, targets, params=k), 1, "LA", tol, seed)
        ggn = old_eigenvalues(OldOperator(model, loss_fn, inputs, targets, params=k, gauss_newton=True), 1, "LA", tol,
                              seed)
        records.append({"layer": segment.name, "lambda_max": hessian["top"][0],
                        "gauss_newton_lambda_max": ggn["top"][0],
                        "bound_as_written": (others * act[k]).mean().item(), "bound_corrected": corrected,
                        "jacobian_norm": jac[k].mean().item()})
    return records


def old_variances(model, loss_fn, inputs, targets):
    with evaluation_mode(model, "eval"):
        z = model_prefix(model)(inputs).detach().requires_grad_(True)
        layer_inputs, pre, outs = [], [], []
        for segment in layer_segments(model):
            layer_inputs.append(z)
            u = segment.layer(z)
            pre.append(u)
            z = segment.after_layer(u)
            outs.append(z)
        grads = torch.autograd.grad(loss_fn(z, targets), layer_inputs + pre)
        with torch.no_grad():
            z = inputs
            for _, child in flat_children(model):
                z = child(z)
    return [t.detach().var(unbiased=False).item() for t in layer_inputs + pre + outs + list(grads)]


def old_analyze_model(model, loss_fn, inputs, targets, k_top=3, tol=1e-4, trace_probes=50, slq_probes=4, slq_steps=64,
                      grid=500, seed=0):
    operator = OldOperator(model, loss_fn, inputs, targets)
    eigen = old_eigenvalues(operator, k_top, "both", tol, seed)
    trace = old_hutchinson(operator, trace_probes, seed)
    esd = old_spectral_density(operator, slq_probes, slq_steps, grid, seed)
    bounds = old_theorem2_bounds(model, loss_fn, inputs, targets, tol, seed)
    old_variances(model, loss_fn, inputs, targets)
    return {"lambda_max": eigen["top"][0], "trace": trace[0], "layers": bounds, "esd": esd}


# ---------------------------------------------------------------------------------------------


def mnist_batch(samples: int, seed: int) -> tuple[Tensor, Tensor, str]:
    """``samples`` mnist_t10k train images (standardized, flattened) when the repo has them, else Gaussian."""
    from common import mnist_t10k_path, read_idx_images

    path = mnist_t10k_path(required=False)
    generator = torch.Generator().manual_seed(seed)
    if path is None:
        return torch.randn(samples, 784, generator=generator), torch.randint(0, 10, (samples,), generator=generator), \
            "Gaussian"
    x, y = read_idx_images(path)
    index = torch.randperm(len(y), generator=generator)[:samples]
    return x[index].reshape(samples, -1), y[index], "mnist_t10k"


def settings_from(args: argparse.Namespace) -> AnalysisSettings:
    if args.pipeline:  # params.yaml analysis: what dvc.yaml passes to python -m initlab.analyze
        return AnalysisSettings(k_top=1, tol=1e-3, trace_probes=20, slq_probes=2, slq_steps=48)
    return AnalysisSettings()


def compare(old: dict, new: dict, tolerance: float) -> list[str]:
    """Disagreements between the two arms' lambda_max (global and per layer block)."""
    pairs = [("lambda_max", old["lambda_max"], new["analysis"]["global"]["lambda_max"])]
    pairs += [(f"layer {a['layer']} lambda_max", a["lambda_max"], b["lambda_max"])
              for a, b in zip(old["layers"], new["analysis"]["layers"], strict=True)]
    pairs += [(f"layer {a['layer']} gauss_newton", a["gauss_newton_lambda_max"], b["gauss_newton_lambda_max"])
              for a, b in zip(old["layers"], new["analysis"]["layers"], strict=True)]
    pairs += [(f"layer {a['layer']} jacobian_norm", a["jacobian_norm"], b["jacobian_norm"])
              for a, b in zip(old["layers"], new["analysis"]["layers"], strict=True)]
    return [f"{name}: old {x:.6g} new {y:.6g}" for name, x, y in pairs if abs(x - y) > tolerance * abs(x)]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pipeline", action="store_true", help="params.yaml settings instead of conf/analyze.yaml")
    parser.add_argument("--activation", default="tanh", choices=["tanh", "relu"])
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    x, y, source = mnist_batch(args.samples, args.seed)
    torch.manual_seed(args.seed)
    model = mlp([784], 10, (256, 256), args.activation)
    settings = settings_from(args)
    results: dict[str, object] = {}

    def arm(name: str, fn: Callable[[], object]) -> Callable[[], float]:
        def run() -> float:
            timing = timed(lambda: results.__setitem__(name, fn()))
            return timing.cpu

        return run

    arms = {
        "old": arm("old", lambda: old_analyze_model(model, F.cross_entropy, x, y, settings.k_top, settings.tol,
                                                    settings.trace_probes, settings.slq_probes, settings.slq_steps,
                                                    settings.grid, settings.seed)),
        "new": arm("new", lambda: analyze_model(settings.problem(model, F.cross_entropy, (x, y)), settings)),
    }
    print(f"analyze_model on the pipeline MLP 784-256-256-10 {args.activation}, {args.samples} {source} samples, "
          f"float32; "
          f"settings: {settings}")
    print(machine_line())
    seconds = interleaved(arms, args.rounds, warmup=False)
    for name, values in seconds.items():
        print(f"{name:4} CPU s per round: {' '.join(f'{v:.2f}' for v in values)}")
    new = results["new"]["analysis"]
    print(f"products: new full Hessian {new['global']['n_products_full_hessian']}, "
          f"layer blocks {new['global']['n_products_layer_blocks']}; trace: old {results['old']['trace']:.4f}, "
          f"new {new['global']['trace']:.4f} +- {new['global']['trace_se']:.4f} ({new['global']['trace_method']})")
    problems = compare(results["old"], results["new"], tolerance=2e-3)
    print("agreement (2e-3 relative): " + ("lambda_max, block lambda_max, GN block, ||J|| all agree" if not problems
                                           else "; ".join(problems)))
    print(ratio_line("analyze_speed", paired_ratio(seconds["old"], seconds["new"]), goal=3))


if __name__ == "__main__":
    main()
