"""In-memory splits: the (x, y) tensor pair, seeded index splits and per-channel normalization."""

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class TensorSplit:
    """One split held as tensors: float32 ``x`` of shape [N, C, H, W] and int64 ``y`` of shape [N]."""

    x: Tensor
    y: Tensor

    def __post_init__(self) -> None:
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"x has {self.x.shape[0]} samples but y has {self.y.shape[0]}")

    def __len__(self) -> int:
        return self.x.shape[0]

    def head(self, n: int) -> "TensorSplit":
        """The first ``n`` samples (all of them when ``n`` exceeds the split)."""
        return TensorSplit(self.x[:n], self.y[:n])

    def to(self, device: torch.device) -> "TensorSplit":
        """The split with both tensors on ``device`` (no copy when already there)."""
        return TensorSplit(self.x.to(device), self.y.to(device))

    @property
    def nbytes(self) -> int:
        """Memory the split occupies, to decide whether a dataset fits on an accelerator."""
        return self.x.nbytes + self.y.nbytes


def holdout_split(n: int, holdout_sizes: Sequence[int], seed: int) -> list[Tensor]:
    """Indices ``[rest, *holdouts]`` of a seeded permutation of ``range(n)``.

    The holdouts are taken first so their content depends only on (n, sizes, seed).
    """
    total = sum(holdout_sizes)
    if total >= n:
        raise ValueError(f"hold-out sizes {list(holdout_sizes)} leave no training samples out of {n}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    parts = list(torch.split(perm, [*holdout_sizes, n - total]))
    return [parts[-1], *parts[:-1]]


def channel_stats(x: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel mean and std of an [N, C, H, W] tensor, each of shape [C]."""
    dims = (0, *range(2, x.ndim))
    return x.mean(dim=dims), x.std(dim=dims)


def normalize(x: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """``(x - mean) / std`` per channel."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return (x - mean.view(shape)) / std.view(shape)


def take(x: Tensor, y: Tensor, parts: Sequence[Tensor]) -> list[TensorSplit]:
    """One :class:`TensorSplit` per index tensor in ``parts``."""
    return [TensorSplit(x[idx], y[idx]) for idx in parts]
