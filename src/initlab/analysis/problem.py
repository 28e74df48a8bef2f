"""One curvature problem: model, loss, a data source and the block/precision/mode to analyse.

The data source is one batch ``(inputs, targets)`` or a re-iterable of such batches (a list, a
DataLoader). Every quantity is the curvature of the loss over *all* N samples: chunk c of n_c
samples enters with weight n_c / N for a mean-reduced loss (1 for a sum), so uneven chunks give
exactly the mean loss's Hessian. ``batch_size`` bounds memory: larger batches are cut into chunks.
"""

import copy
import dataclasses
import inspect
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from initlab.analysis._modes import Mode

LossFn = Callable[[Tensor, Tensor], Tensor]
Batch = tuple[Tensor, Tensor]
DataSource = Batch | Iterable[Batch]
ParamSpec = None | str | int | Sequence[str] | Sequence[nn.Parameter]
Kind = Literal["hessian", "gauss_newton"]


def is_batch(data: object) -> bool:
    """True for one ``(inputs, targets)`` pair of tensors (as opposed to an iterable of batches)."""
    return isinstance(data, tuple | list) and len(data) == 2 and all(isinstance(t, Tensor) for t in data)


def loss_reduction(loss_fn: LossFn) -> str:
    """The loss's ``reduction``: a loss module's attribute, a functional loss's default
    (``F.cross_entropy`` -> 'mean'), else 'unknown' (treated as a mean when chunks are combined)."""
    if hasattr(loss_fn, "reduction"):
        return str(loss_fn.reduction)
    try:
        parameter = inspect.signature(loss_fn).parameters.get("reduction")
    except (TypeError, ValueError):
        return "unknown"
    return "unknown" if parameter is None or parameter.default is inspect.Parameter.empty else str(parameter.default)


def eager_view(model: nn.Module) -> nn.Module:
    """The uncompiled module: ``_orig_mod`` of an OptimizedModule, or a shallow copy without the
    compiled call of ``model.compile()`` (same parameters). Double backward through aot_autograd fails."""
    original = getattr(model, "_orig_mod", None)
    if isinstance(original, nn.Module):
        return original
    if getattr(model, "_compiled_call_impl", None) is None:
        return model
    view = copy.copy(model)
    view._compiled_call_impl = None
    return view


def working_model(problem: "CurvatureProblem") -> nn.Module:
    """The module to differentiate: the eager view, cast on a copy when ``problem.dtype`` differs."""
    model = eager_view(problem.model)
    if problem.dtype is None or problem.dtype == next(model.parameters()).dtype:
        return model
    return copy.deepcopy(model).to(problem.dtype)


@dataclass(frozen=True)
class CurvatureProblem:
    """What to analyse: the Hessian (``kind="hessian"``) or Gauss-Newton matrix of ``loss_fn`` over ``data``.

    ``params`` (or its alias ``block``): ``None`` = all trainable parameters; a weight layer's
    name (``"3"``) or forward index (``1``) = that layer's block H_w(k) (its bias joins when
    ``include_bias``); a list of parameter names or ``nn.Parameter`` s = exactly those.
    ``dtype=torch.float64`` analyses a cast copy of the model. ``mode``: ``"eval"`` (default),
    ``"train"`` or ``"keep"`` (see :func:`evaluation_mode`); stochastic modules are refused unless
    ``allow_stochastic``. ``check`` verifies once that the forward pass repeats and that products
    are deterministic and symmetric. ``max_device_bytes`` (None: no limit) bounds what an operator
    keeps on the model's device between products: chunk data and cached chunk graphs (default 1 GiB).
    The model's parameters, mode and buffers are never changed.
    """

    model: nn.Module
    loss_fn: LossFn
    data: DataSource
    batch_size: int | None = 1024
    kind: Kind = "hessian"
    params: ParamSpec = None
    block: str | int | None = None
    dtype: torch.dtype | None = None
    include_bias: bool = True
    mode: Mode = "eval"
    allow_stochastic: bool = False
    check: bool = True
    max_device_bytes: int | None = 2**30

    def __post_init__(self) -> None:
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 or None, got {self.batch_size}")
        if self.max_device_bytes is not None and self.max_device_bytes < 0:
            raise ValueError(f"max_device_bytes must be >= 0 or None, got {self.max_device_bytes}")
        if self.block is not None and self.params is not None:
            raise ValueError("give the block either as `block` or as `params`, not both")
        if isinstance(self.data, Iterator):
            raise ValueError("data: a one-shot iterator cannot be read once per product; pass a list or a DataLoader")

    @property
    def parameter_spec(self) -> ParamSpec:
        return self.params if self.block is None else self.block

    def replace(self, **changes: object) -> "CurvatureProblem":
        """A copy with ``changes`` (e.g. another block or kind); ``block`` replaces ``params``."""
        if "block" in changes:
            changes.setdefault("params", None)
        return dataclasses.replace(self, **changes)

    def chunks(self) -> Iterator[Batch]:
        """The data as chunks of at most ``batch_size`` samples (inputs and targets as given)."""
        for batch in [self.data] if is_batch(self.data) else self.data:
            inputs, targets = batch[0], batch[1]
            if self.batch_size is None or len(inputs) <= self.batch_size:
                yield inputs, targets
            else:
                yield from zip(inputs.split(self.batch_size), targets.split(self.batch_size), strict=True)

    def weighted_chunks(self, device: torch.device, dtype: torch.dtype, total: int | None = None
                        ) -> Iterator[tuple[Tensor, Tensor, float]]:
        """(inputs, targets, weight) on ``device`` (floating data cast to ``dtype``): the weights turn
        the per-chunk losses into the loss over all ``total`` samples (n_c / N for a mean, 1 for a sum)."""
        total = self.num_samples() if total is None else total
        summed = loss_reduction(self.loss_fn) == "sum"
        for inputs, targets in self.chunks():
            yield (_to(inputs, device, dtype), _to(targets, device, dtype), 1.0 if summed else len(inputs) / total)

    def num_samples(self) -> int:
        return sum(len(inputs) for inputs, _ in self.chunks())


def _to(tensor: Tensor, device: torch.device, dtype: torch.dtype) -> Tensor:
    return tensor.to(device, dtype) if tensor.is_floating_point() else tensor.to(device)
