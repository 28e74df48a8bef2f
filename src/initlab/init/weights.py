"""Weight initializers (docs/methods.md): ``WEIGHT_INITS`` maps a config name to an in-place rule.

Every rule has the signature ``rule_(weight, fan_in, fan_out, **hyperparameters)`` with the fans
passed explicitly: the layer's own fans come from torch's convention
(``torch.nn.init._calculate_fan_in_and_fan_out``: a convolution has fan_in = in_channels * kernel
area and fan_out = out_channels * kernel area), and the ``fanin_plus_one`` bias draws the bias as
one more input column, i.e. the same rule on a [fan_out rows, fan_in + 1] matrix with fans
(fan_in + 1, fan_out). The explicit fans are also why the rules call ``nn.init.normal_`` /
``uniform_`` with the formula instead of ``xavier_normal_`` / ``kaiming_normal_``, which would
recompute the fans from the tensor's shape.
"""

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

WeightInit = Callable[..., None]


def fans(weight: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) by torch's convention (kernel area counted on both sides for convolutions)."""
    return nn.init._calculate_fan_in_and_fan_out(weight)


def spectral_std(fan_in: int, fan_out: int) -> float:
    """sigma = 1 / (sqrt(fan_in) + sqrt(fan_out)), so that E||W||_2 ~ 1 (paper eq. (7)-(8))."""
    return 1.0 / (math.sqrt(fan_in) + math.sqrt(fan_out))


def zeros_(weight: Tensor, fan_in: int, fan_out: int) -> None:
    """All weights 0: the units stay identical under training (symmetry is never broken)."""
    nn.init.zeros_(weight)


def constant_(weight: Tensor, fan_in: int, fan_out: int, *, value: float = 0.01) -> None:
    """All weights ``value``: fails like ``zeros`` (identical units)."""
    nn.init.constant_(weight, value)


def normal_(weight: Tensor, fan_in: int, fan_out: int, *, std: float = 0.01) -> None:
    """N(0, std^2) with a fixed std: too small vanishes, too large explodes (lecture notes)."""
    nn.init.normal_(weight, 0.0, std)


def uniform_fanin_(weight: Tensor, fan_in: int, fan_out: int) -> None:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (book, the heuristic before eq. (8.23))."""
    bound = 1.0 / math.sqrt(fan_in)
    nn.init.uniform_(weight, -bound, bound)


def lecun_normal_(weight: Tensor, fan_in: int, fan_out: int) -> None:
    """N(0, 1/fan_in) (lectures (6.3), which call it "Xavier")."""
    nn.init.normal_(weight, 0.0, 1.0 / math.sqrt(fan_in))


def xavier_normal_(weight: Tensor, fan_in: int, fan_out: int) -> None:
    """Glorot: N(0, 2/(fan_in + fan_out)) (paper eq. (3))."""
    nn.init.normal_(weight, 0.0, math.sqrt(2.0 / (fan_in + fan_out)))


def xavier_uniform_(weight: Tensor, fan_in: int, fan_out: int) -> None:
    """Glorot uniform: U(-a, a), a = sqrt(6/(fan_in + fan_out)) (book eq. (8.23))."""
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    nn.init.uniform_(weight, -bound, bound)


def kaiming_normal_(weight: Tensor, fan_in: int, fan_out: int, *, nonlinearity: str = "relu") -> None:
    """He: N(0, gain^2/fan_in), gain = ``nn.init.calculate_gain(nonlinearity)`` (sqrt(2) for ReLU, lectures (6.4))."""
    nn.init.normal_(weight, 0.0, nn.init.calculate_gain(nonlinearity) / math.sqrt(fan_in))


def kaiming_uniform_(weight: Tensor, fan_in: int, fan_out: int, *, nonlinearity: str = "relu") -> None:
    """He uniform: U(-a, a), a = gain * sqrt(3/fan_in), the same variance as ``kaiming_normal_``."""
    bound = nn.init.calculate_gain(nonlinearity) * math.sqrt(3.0 / fan_in)
    nn.init.uniform_(weight, -bound, bound)


def orthogonal_(weight: Tensor, fan_in: int, fan_out: int, *, gain: float = 1.0) -> None:
    """gain * a random orthogonal matrix (book, Saxe et al.); convolutions as [out, in*kh*kw]."""
    nn.init.orthogonal_(weight, gain)


def sparse_(weight: Tensor, fan_in: int, fan_out: int, *, k: int = 15) -> None:
    """Every unit (row of [out, in*kh*kw]) gets exactly ``k`` nonzero N(0, 1) incoming weights (Martens 2010).

    A unit with fewer than ``k`` inputs (e.g. a 3x3 convolution on one channel) gets all of them.
    ``nn.init.sparse_`` differs: it zeroes a fraction of every *column*, so the number of
    nonzero incoming weights varies from unit to unit.
    """
    rows = weight.reshape(weight.shape[0], -1)
    nonzero = min(k, rows.shape[1])
    chosen = torch.rand(rows.shape, device=weight.device).topk(nonzero, dim=1).indices
    values = torch.randn(rows.shape[0], nonzero, dtype=weight.dtype, device=weight.device)
    with torch.no_grad():
        weight.copy_(torch.zeros_like(rows).scatter_(1, chosen, values).reshape(weight.shape))


def spectral_normal_(weight: Tensor, fan_in: int, fan_out: int) -> None:
    """N(0, sigma^2), sigma = 1/(sqrt(fan_in) + sqrt(fan_out)) (paper Corollary 2, eq. (8))."""
    nn.init.normal_(weight, 0.0, spectral_std(fan_in, fan_out))


def spectral_uniform_(weight: Tensor, fan_in: int, fan_out: int) -> None:
    """U(-sqrt(3) sigma, sqrt(3) sigma): the spectral std of eq. (8) with uniform entries."""
    bound = math.sqrt(3.0) * spectral_std(fan_in, fan_out)
    nn.init.uniform_(weight, -bound, bound)


WEIGHT_INITS: dict[str, WeightInit] = {
    "zeros": zeros_,
    "constant": constant_,
    "normal": normal_,
    "uniform_fanin": uniform_fanin_,
    "lecun": lecun_normal_,
    "xavier_normal": xavier_normal_,
    "xavier_uniform": xavier_uniform_,
    "kaiming_normal": kaiming_normal_,
    "kaiming_uniform": kaiming_uniform_,
    "orthogonal": orthogonal_,
    "sparse": sparse_,
    "spectral": spectral_normal_,
    "spectral_uniform": spectral_uniform_,
}
