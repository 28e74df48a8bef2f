"""Matrix-free curvature operators over a data set: Hessian- and Gauss-Newton-vector products.

A product is the sum over the problem's chunks of the weighted chunk products, i.e. the
curvature of the loss over all samples. Each chunk is moved to the operator's device and cast
once, and its forward pass and first-order graph are built once and reused by every product
(double backward through the cached gradient graph: one product costs ~1.3 gradients instead of
~2.2), as long as the chunks and graphs fit ``problem.max_device_bytes``; chunks past the budget
keep only their data on the device, or are read again per product, so memory stays bounded.
Products come in blocks (``rows``): a chunk's graph is built at most once per block.
"""

import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from initlab.analysis._modes import evaluation_mode, forward_with_buffer_copies
from initlab.analysis.progress import count_products
from initlab.analysis.problem import CurvatureProblem, LossFn, ParamSpec, loss_reduction, working_model
from initlab.analysis.segments import layer_segments


class CurvatureCheckError(RuntimeError):
    """Products are not deterministic or not symmetric (stochastic forward, detached terms, ...)."""


@dataclass(frozen=True)
class ParameterBlock:
    """The parameters a curvature operator differentiates by (a block of the full Hessian)."""

    names: tuple[str, ...]
    layer: str | None
    include_bias: bool | None

    @property
    def description(self) -> str:
        if self.layer is None:
            return "all" if self.include_bias is None else ",".join(self.names)
        return f"layer {self.layer} ({'weight+bias' if self.include_bias else 'weight'})"


def resolve_parameter_block(model: nn.Module, params: ParamSpec = None, include_bias: bool = True) -> ParameterBlock:
    """Turn a parameter spec into names (see :class:`CurvatureProblem` ``params``)."""
    named = dict(model.named_parameters())
    if params is None:
        return ParameterBlock(tuple(n for n, p in named.items() if p.requires_grad), None, None)
    if isinstance(params, int | str):
        segments = layer_segments(model)
        by_name = {s.name: s for s in segments}
        if isinstance(params, int):
            if not -len(segments) <= params < len(segments):
                raise IndexError(f"weight layer index {params} out of range for {len(segments)} layers")
            segment = segments[params]
        elif params in by_name:
            segment = by_name[params]
        else:
            raise KeyError(f"no weight layer named {params!r}; weight layers: {list(by_name)}")
        names = [f"{segment.name}.weight"]
        if include_bias and getattr(segment.layer, "bias", None) is not None:
            names.append(f"{segment.name}.bias")
        return ParameterBlock(tuple(names), segment.name, include_bias and len(names) == 2)
    ids = {id(p): n for n, p in named.items()}
    names = []
    for p in params:
        if isinstance(p, str):
            if p not in named:
                raise KeyError(f"model has no parameter {p!r}")
            names.append(p)
        elif id(p) in ids:
            names.append(ids[id(p)])
        else:
            raise ValueError("a parameter in `params` does not belong to the model")
    return ParameterBlock(tuple(names), None, False)


def _grads(outputs: Tensor | Sequence[Tensor], inputs: Sequence[Tensor], grad_outputs: object) -> list[Tensor]:
    return list(torch.autograd.grad(outputs, inputs, grad_outputs=grad_outputs, retain_graph=True,
                                    allow_unused=True, materialize_grads=True))


def _flat(tensors: Sequence[Tensor]) -> Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def _nbytes(tensor: Tensor) -> int:
    return tensor.numel() * tensor.element_size()


@contextmanager
def saved_tensor_bytes(exclude: set[int]) -> Iterator[list[int]]:
    """Counts the bytes autograd saves for backward inside the block (storages counted once, those in
    ``exclude``, e.g. the parameters, not at all): what keeping a graph alive costs."""
    total, seen = [0], set(exclude)

    def pack(tensor: Tensor) -> Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in seen:
            seen.add(storage.data_ptr())
            total[0] += storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        yield total


class HessianGraph:
    """One chunk's weighted loss with its first-order graph: products by double backward."""

    def __init__(self, model: nn.Module, params: list[Tensor], loss_fn: LossFn, inputs: Tensor, targets: Tensor,
                 weight: float) -> None:
        self.params = params
        self.loss = weight * loss_fn(forward_with_buffer_copies(model, inputs), targets)
        grads = torch.autograd.grad(self.loss, params, create_graph=True, allow_unused=True, materialize_grads=True)
        self._gradient = _flat(grads)
        self.gradient = self._gradient.detach()

    def product(self, v: Tensor) -> Tensor:
        if not self._gradient.requires_grad:  # loss linear in the parameters
            return torch.zeros_like(v)
        return _flat(_grads(self._gradient, self.params, v))

    def products(self, vectors: Tensor) -> Tensor:
        """The product with every row of ``vectors`` through this one graph (looped: a vmapped
        double backward measured 1.2x slower on CPU)."""
        return torch.stack([self.product(v) for v in vectors])


class GaussNewtonGraph:
    """G = J^T H_z J of one chunk (J = D_theta z^(n), H_z = D^2_z of the weighted loss): the H_1 term
    of paper eq. (10). A product is three cached reverse passes: J v by the double-vjp trick,
    H_z J v, then J^T (H_z J v)."""

    def __init__(self, model: nn.Module, params: list[Tensor], loss_fn: LossFn, inputs: Tensor, targets: Tensor,
                 weight: float) -> None:
        self.params = params
        self._output = forward_with_buffer_copies(model, inputs)
        self._dual = torch.zeros_like(self._output, requires_grad=True)
        self._jacobian_t_dual = torch.autograd.grad(self._output, params, grad_outputs=self._dual, create_graph=True,
                                                    allow_unused=True, materialize_grads=True)
        self._output_leaf = self._output.detach().requires_grad_(True)
        self.loss = weight * loss_fn(self._output_leaf, targets)
        (self._loss_gradient,) = torch.autograd.grad(self.loss, self._output_leaf, create_graph=True)

    @property
    def gradient(self) -> Tensor:
        """Computed on demand: only the first pass over the data reads it, products rebuild chunk graphs often."""
        return _flat(_grads(self._output, self.params, self._loss_gradient.detach()))

    def product(self, v: Tensor) -> Tensor:
        if not self._loss_gradient.requires_grad:
            return torch.zeros_like(v)
        tangents = torch.split(v, [p.numel() for p in self.params])
        live = [(j, t.reshape(j.shape)) for j, t in zip(self._jacobian_t_dual, tangents, strict=True)
                if j.requires_grad]
        (jv,) = _grads([j for j, _ in live], [self._dual], [t for _, t in live])
        (h_jv,) = _grads(self._loss_gradient, [self._output_leaf], jv)
        return _flat(_grads(self._output, self.params, h_jv))

    products = HessianGraph.products


GRAPHS: dict[str, type[HessianGraph] | type[GaussNewtonGraph]] = {
    "hessian": HessianGraph,
    "gauss_newton": GaussNewtonGraph,
}


class CurvatureOperator:
    """A symmetric matrix-free operator on flat parameter vectors with product counting.

    Subclasses implement ``_product`` (one flat vector); ``dim``, ``dtype``, ``device``,
    ``settings`` describe it."""

    dim: int
    dtype: torch.dtype
    device: torch.device
    n_products: int = 0
    settings: dict[str, object]

    def _product(self, v: Tensor) -> Tensor:
        raise NotImplementedError

    def _products(self, vectors: Tensor) -> Tensor:
        """M applied to every row (subclasses override to share work across a block)."""
        return torch.stack([self._product(v) for v in vectors])

    def matvec(self, v: Tensor) -> Tensor:
        """M v for a flat vector v of length ``dim``."""
        return self.rows(v[None])[0]

    def rows(self, vectors: Tensor) -> Tensor:
        """M applied to every row of ``vectors`` [m, dim] (the form :func:`lanczos` uses)."""
        self.n_products += len(vectors)
        count_products(len(vectors))
        return self._products(vectors.to(self.device, self.dtype))

    def matmat(self, vectors: Tensor) -> Tensor:
        """M V for V of shape [dim, m] (columns are probe vectors)."""
        return self.rows(vectors.T).T

    def check(self, seed: int = 0) -> None:
        """Raise :class:`CurvatureCheckError` unless products repeat and u^T M v = v^T M u (3 products).

        u, v are random unit vectors. For any M, |u^T M v| is typically ||M v|| / sqrt(dim), so the
        asymmetry is compared with that size (not with ||M v|| sqrt(dim), which lets a clearly
        asymmetric operator pass at 1e5+ parameters): rtol 1e-2 in single/half precision, 1e-7
        in double; rounding leaves ~eps * sqrt(dim) of it."""
        generator = torch.Generator(device=self.device).manual_seed(seed)
        pair = torch.randn(self.dim, 2, generator=generator, dtype=self.dtype, device=self.device)
        pair = pair / torch.linalg.vector_norm(pair, dim=0)
        products = self.matmat(pair)
        again = self.matvec(pair[:, 0])
        double = self.dtype == torch.float64
        size = torch.linalg.vector_norm(products, dim=0).amax().item()
        if torch.linalg.vector_norm(again - products[:, 0]).item() > (1e-9 if double else 1e-3) * size:
            raise CurvatureCheckError("two products with the same vector differ: the loss is not deterministic")
        u_mv = torch.dot(pair[:, 0], products[:, 1]).item()
        v_mu = torch.dot(pair[:, 1], products[:, 0]).item()
        if abs(u_mv - v_mu) > (1e-7 if double else 1e-2) * size / self.dim**0.5:
            raise CurvatureCheckError(
                f"operator is not symmetric: u^T M v = {u_mv:.6g} but v^T M u = {v_mu:.6g} for random unit u, v "
                f"(typical size {size / self.dim**0.5:.3g}; a stochastic or partly detached loss?)"
            )


class DatasetOperator(CurvatureOperator):
    """The Hessian or Gauss-Newton operator of a :class:`CurvatureProblem` (its ``kind``), summed over its chunks.

    Construction makes one pass over the data (loss and gradient over all samples: ``loss``,
    ``gradient``), checks determinism and symmetry when ``problem.check``, and keeps the graph
    when the data is one chunk. ``param_sizes`` maps the block's parameter names to their sizes
    (in the order of the flat vectors).
    """

    def __init__(self, problem: CurvatureProblem) -> None:
        self.problem = problem
        self.work = working_model(problem)
        self.block = resolve_parameter_block(self.work, problem.parameter_spec, problem.include_bias)
        self.dtype = next(self.work.parameters()).dtype
        named = dict(self.work.named_parameters())
        self.params = [named[n] for n in self.block.names]
        if not self.params:
            raise ValueError("no parameters to differentiate (none trainable, or an empty list)")
        frozen = [n for n, p in zip(self.block.names, self.params, strict=True) if not p.requires_grad]
        if frozen:
            raise ValueError(f"parameters {frozen} do not require grad")
        self.param_sizes = {n: p.numel() for n, p in zip(self.block.names, self.params, strict=True)}
        self.dim = sum(self.param_sizes.values())
        self.device = self.params[0].device
        self.graph_type = GRAPHS[problem.kind]
        self.num_samples = problem.num_samples()
        loss, gradient = self._first_pass()
        self.loss, self.gradient = loss.item(), gradient
        self.settings = {
            "kind": problem.kind,
            "num_samples": self.num_samples,
            "batch_size": problem.batch_size,
            "loss_reduction": loss_reduction(problem.loss_fn),
            "params": self.block.description,
            "layer": self.block.layer,
            "include_bias": self.block.include_bias,
            "mode": self.evaluated_mode,
            "dtype": str(self.dtype).removeprefix("torch."),
            "device": str(self.device),
            "dim": self.dim,
            "max_device_bytes": problem.max_device_bytes,
            "cached_chunk_graphs": len(self._graphs),
            "chunks": len(self._graphs) + len(self._resident) + self._streamed,
        }
        if problem.check:
            self.check()
        self.n_products = 0

    def _graph(self, inputs: Tensor, targets: Tensor, weight: float) -> HessianGraph | GaussNewtonGraph:
        return self.graph_type(self.work, self.params, self.problem.loss_fn, inputs, targets, weight)

    def chunks(self) -> Iterator[tuple[Tensor, Tensor, float]]:
        """The problem's weighted chunks on this operator's device and dtype (read again per pass)."""
        return self.problem.weighted_chunks(self.device, self.dtype, self.num_samples)

    def _first_pass(self) -> tuple[Tensor, Tensor]:
        """Loss and gradient over all chunks; keeps, in chunk order and within ``max_device_bytes``,
        the chunks' graphs (their saved tensors counted), then only their data on the device, then nothing."""
        problem = self.problem
        budget = problem.max_device_bytes
        loss = torch.zeros((), dtype=self.dtype, device=self.device)
        gradient = torch.zeros(self.dim, dtype=self.dtype, device=self.device)
        self._graphs: list[HessianGraph | GaussNewtonGraph] = []
        self._resident: list[tuple[Tensor, Tensor, float]] = []
        self._streamed = 0
        used, parameters = 0, {p.untyped_storage().data_ptr() for p in self.work.parameters()}
        with evaluation_mode(self.work, problem.mode, problem.allow_stochastic) as self.evaluated_mode:
            for inputs, targets, weight in self.chunks():
                with saved_tensor_bytes(parameters) as graph_bytes:
                    graph = self._graph(inputs, targets, weight)
                loss, gradient = loss + graph.loss.detach(), gradient + graph.gradient
                data_bytes = _nbytes(inputs) + _nbytes(targets)
                if budget is None or (not self._resident and not self._streamed
                                      and used + data_bytes + graph_bytes[0] <= budget):
                    self._graphs.append(graph)
                    used += data_bytes + graph_bytes[0]
                elif not self._streamed and used + data_bytes <= budget:
                    self._resident.append((inputs, targets, weight))
                    used += data_bytes
                else:
                    self._streamed += 1
            self.resident_bytes = used
            if problem.check and not problem.allow_stochastic:
                self._check_forward_repeats()
        return loss, gradient

    def _check_forward_repeats(self) -> None:
        inputs, targets, weight = next(self.chunks())
        with torch.no_grad():
            first = weight * self.problem.loss_fn(forward_with_buffer_copies(self.work, inputs), targets)
            again = weight * self.problem.loss_fn(forward_with_buffer_copies(self.work, inputs), targets)
        if not torch.isclose(first, again, rtol=1e-5, atol=0):
            raise CurvatureCheckError(
                f"two forward passes give losses {first.item():.8g} and {again.item():.8g}: the model is stochastic"
            )

    def _product(self, v: Tensor) -> Tensor:
        return self._products(v[None])[0]

    def _products(self, vectors: Tensor) -> Tensor:
        """Every row through each chunk's graph: cached graphs reused, the others built once per block
        (the model's buffers are never written: forwards run on buffer copies, so nothing is restored)."""
        total = torch.zeros_like(vectors)
        for graph in self._graphs:
            total += graph.products(vectors)
        if self._resident or self._streamed:
            with evaluation_mode(self.work, self.problem.mode, self.problem.allow_stochastic, restore_buffers=False):
                for inputs, targets, weight in self._resident:
                    total += self._graph(inputs, targets, weight).products(vectors)
                skip = len(self._graphs) + len(self._resident)
                for inputs, targets, weight in itertools.islice(self.chunks(), skip, None) if self._streamed else ():
                    total += self._graph(inputs, targets, weight).products(vectors)
        return total

    def split(self, v: Tensor) -> dict[str, Tensor]:
        """A flat vector as {parameter name: its entries (flat)}."""
        return dict(zip(self.param_sizes, torch.split(v, list(self.param_sizes.values())), strict=True))

    def join(self, parts: dict[str, Tensor]) -> Tensor | None:
        """The flat vector of this block from named entries (None if a name is missing)."""
        if not all(n in parts for n in self.param_sizes):
            return None
        return torch.cat([parts[n].reshape(-1) for n in self.param_sizes]).to(self.device, self.dtype)

