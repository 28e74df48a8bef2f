"""Evaluation context shared by every analysis function.

The functions never change the model's parameters, mode (train/eval) or buffers: they run
under :func:`evaluation_mode`, which switches to ``eval()`` by default, refuses stochastic
modules unless asked, snapshots the buffers (BatchNorm running statistics) and restores the
per-module ``training`` flags and the buffers on exit.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import torch
from torch import Tensor, nn

Mode = Literal["eval", "train", "keep"]

STOCHASTIC_MODULE_TYPES: tuple[type[nn.Module], ...] = (
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
    nn.RReLU,
)


class StochasticModelError(RuntimeError):
    """The model's forward pass is random (e.g. Dropout in train mode): curvature is undefined."""


def active_stochastic_modules(model: nn.Module) -> list[str]:
    """Names of modules that draw random numbers in their current mode (Dropout in train mode)."""
    return [
        name or type(module).__name__
        for name, module in model.named_modules()
        if isinstance(module, STOCHASTIC_MODULE_TYPES) and module.training
    ]


def model_mode(model: nn.Module) -> str:
    """'train', 'eval' or 'mixed' (submodules disagree)."""
    flags = {module.training for module in model.modules()}
    if len(flags) > 1:
        return "mixed"
    return "train" if flags.pop() else "eval"


@contextmanager
def evaluation_mode(model: nn.Module, mode: Mode = "eval", allow_stochastic: bool = False,
                    restore_buffers: bool = True) -> Iterator[str]:
    """Run the body with ``model`` in ``mode``; restore every module's mode and all buffers after.

    ``mode="eval"`` (default) evaluates the deterministic network; ``"train"`` switches to train
    mode (BatchNorm uses batch statistics; its running statistics are restored afterwards);
    ``"keep"`` leaves the current flags. Active stochastic modules raise
    :class:`StochasticModelError` unless ``allow_stochastic``. Yields the mode evaluated in.
    ``restore_buffers=False`` skips the buffer snapshot and comparison (a host sync per buffer) for
    bodies that never write the model's buffers (forwards through :func:`forward_with_buffer_copies`).
    """
    if mode not in ("eval", "train", "keep"):
        raise ValueError(f"mode must be 'eval', 'train' or 'keep', got {mode!r}")
    flags = [(module, module.training) for module in model.modules()]
    buffers = [(buffer, buffer.detach().clone()) for buffer in model.buffers()] if restore_buffers else []
    try:
        if mode == "eval":
            model.eval()
        elif mode == "train":
            model.train()
        stochastic = active_stochastic_modules(model)
        if stochastic and not allow_stochastic:
            raise StochasticModelError(
                f"stochastic modules are active in {mode!r} mode: {stochastic}; the Hessian of a random "
                "loss is undefined. Evaluate with mode='eval' (default) or pass allow_stochastic=True "
                "(the dropout mask is then frozen at the single forward pass)."
            )
        yield model_mode(model)
    finally:
        with torch.no_grad():  # copy only what changed: a copy bumps the version a saved graph checks
            for buffer, saved in buffers:
                if not torch.equal(buffer, saved):
                    buffer.copy_(saved)
        for module, training in flags:
            module.training = training


def forward_with_buffer_copies(model: nn.Module, inputs: Tensor) -> Tensor:
    """``model(inputs)`` with every buffer replaced by a clone, so a cached graph never sees the
    model's own buffers change (BatchNorm in train mode updates the clones, not the model)."""
    buffers = {name: buffer.clone() for name, buffer in model.named_buffers()}
    return torch.func.functional_call(model, buffers, (inputs,), strict=False)
