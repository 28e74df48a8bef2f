"""Weight schemes against the formulas of docs/methods.md, written here independently of the library."""

import math
from collections.abc import Callable

import pytest
import torch
from torch import nn

from initlab.init import WEIGHT_INITS, Initializer

# layer factory, fan_in, fan_out (torch's convention: kernel area on both sides for convolutions)
LAYERS: dict[str, tuple[Callable[[], nn.Module], int, int]] = {
    "linear784x256": (lambda: nn.Linear(784, 256), 784, 256),
    "linear256x10": (lambda: nn.Linear(256, 10), 256, 10),
    "conv3to16k3": (lambda: nn.Conv2d(3, 16, 3), 27, 144),
}
PARAMS = {"constant": {"value": 0.3}, "normal": {"std": 0.05}, "orthogonal": {"gain": 1.5}, "sparse": {"k": 5}}


def _uniform(bound: float) -> tuple[float, float, float]:
    return 0.0, bound / math.sqrt(3.0), bound


# name -> (fan_in, fan_out, rows, cols) -> (mean, std, uniform bound or None) of the entries
EXPECTED: dict[str, Callable[[int, int, int, int], tuple[float, float, float | None]]] = {
    "zeros": lambda fi, fo, r, c: (0.0, 0.0, None),
    "constant": lambda fi, fo, r, c: (0.3, 0.0, None),
    "normal": lambda fi, fo, r, c: (0.0, 0.05, None),
    "uniform_fanin": lambda fi, fo, r, c: _uniform(1 / math.sqrt(fi)),
    "lecun": lambda fi, fo, r, c: (0.0, math.sqrt(1 / fi), None),
    "xavier_normal": lambda fi, fo, r, c: (0.0, math.sqrt(2 / (fi + fo)), None),
    "xavier_uniform": lambda fi, fo, r, c: _uniform(math.sqrt(6 / (fi + fo))),
    "kaiming_normal": lambda fi, fo, r, c: (0.0, math.sqrt(2 / fi), None),
    "kaiming_uniform": lambda fi, fo, r, c: _uniform(math.sqrt(6 / fi)),
    # rows <= cols: orthonormal rows scaled by the gain, so sum of squares = gain^2 * rows
    "orthogonal": lambda fi, fo, r, c: (0.0, 1.5 / math.sqrt(max(r, c)), None),
    # k of c entries are N(0, 1)
    "sparse": lambda fi, fo, r, c: (0.0, math.sqrt(5 / c), None),
    "spectral": lambda fi, fo, r, c: (0.0, 1 / (math.sqrt(fi) + math.sqrt(fo)), None),
    "spectral_uniform": lambda fi, fo, r, c: _uniform(math.sqrt(3) / (math.sqrt(fi) + math.sqrt(fo))),
}


def test_every_weight_scheme_has_an_expected_formula() -> None:
    assert set(EXPECTED) == set(WEIGHT_INITS)


def _draws(name: str, layer: nn.Module, entries: int = 200_000) -> torch.Tensor:
    """The layer's weights after ``Initializer(name)``, pooled over enough draws for ~0.3% std accuracy."""
    init = Initializer(name, **PARAMS.get(name, {}))
    model = nn.Sequential(layer)
    return torch.stack([init(model)[0].weight.detach().clone() for _ in range(math.ceil(entries / layer.weight.numel()))])


@pytest.mark.parametrize("layer_id", sorted(LAYERS))
@pytest.mark.parametrize("name", sorted(WEIGHT_INITS))
def test_weight_statistics_match_formula(name: str, layer_id: str) -> None:
    factory, fan_in, fan_out = LAYERS[layer_id]
    layer = factory()
    rows, cols = layer.weight.shape[0], layer.weight[0].numel()
    mean, std, bound = EXPECTED[name](fan_in, fan_out, rows, cols)
    weights = _draws(name, layer)
    if std == 0.0:
        assert torch.all(weights == mean)
        return
    assert weights.std().item() == pytest.approx(std, rel=0.03)
    assert abs(weights.mean().item() - mean) < 0.03 * std
    if bound is not None:
        assert weights.abs().max().item() <= bound
        assert weights.abs().max().item() >= 0.99 * bound


@pytest.mark.parametrize("gain", [1.0, 1.5])
@pytest.mark.parametrize("layer_id", sorted(LAYERS))
def test_orthogonal_rows_are_orthonormal_times_gain(layer_id: str, gain: float) -> None:
    layer = LAYERS[layer_id][0]().double()
    Initializer("orthogonal", gain=gain)(nn.Sequential(layer))
    w = layer.weight.detach().reshape(layer.weight.shape[0], -1)
    assert w.shape[0] <= w.shape[1]
    torch.testing.assert_close(w @ w.T, gain**2 * torch.eye(w.shape[0], dtype=w.dtype), rtol=0, atol=1e-5)


def test_sparse_gives_every_unit_exactly_k_inputs_unlike_torch_sparse() -> None:
    ours, theirs = nn.Linear(256, 64), nn.Linear(256, 64)
    Initializer("sparse", k=6)(nn.Sequential(ours))
    nn.init.sparse_(theirs.weight, sparsity=0.9)
    ours_rows = (ours.weight != 0).sum(dim=1)
    theirs_rows = (theirs.weight != 0).sum(dim=1)
    assert torch.all(ours_rows == 6)
    # torch zeroes ceil(0.9 * 64) = 58 entries of every *column*: 6 nonzeros per column, a varying number per unit
    assert torch.all((theirs.weight != 0).sum(dim=0) == 6)
    assert theirs_rows.min() < theirs_rows.max()
    assert (ours.weight != 0).sum(dim=0).min() < (ours.weight != 0).sum(dim=0).max()


def test_sparse_units_with_fewer_than_k_inputs_get_all_of_them() -> None:
    conv = nn.Conv2d(1, 8, 3)
    Initializer("sparse", k=15)(nn.Sequential(conv))
    assert torch.all(conv.weight != 0)


# (rows, cols) of W = [fan_out, fan_in]: square 64..2048 and skewed shapes
SQUARE = [(n, n) for n in (64, 128, 256, 512, 1024, 2048)]
SPECTRAL_SHAPES = [*SQUARE, (256, 784), (784, 256), (2048, 64), (64, 2048)]


def _spectral_norms(rows: int, cols: int, draws: int) -> torch.Tensor:
    """||W||_2 of ``draws`` spectral-initialized [rows, cols] weights, from the smaller Gram matrix (float64)."""
    layer = nn.Linear(cols, rows, bias=False)
    init = Initializer("spectral")
    w = torch.stack([init(nn.Sequential(layer))[0].weight.detach().double() for _ in range(draws)])
    gram = w @ w.transpose(1, 2) if rows <= cols else w.transpose(1, 2) @ w
    return torch.linalg.eigvalsh(gram)[:, -1].sqrt()


@pytest.mark.parametrize(("rows", "cols"), SPECTRAL_SHAPES)
def test_spectral_init_has_unit_spectral_norm(rows: int, cols: int) -> None:
    """E||W||_2 ~ (sqrt(d_in) + sqrt(d_out)) sigma = 1 within 3% (paper eq. (7)-(8), Silverstein / Edelman).

    The mean over draws (2^22 entries in all, at least one draw) is compared: small Gaussian
    matrices sit below the asymptote by the Tracy-Widom offset of relative order n^(-2/3); for
    64 x 64 we measured E||W||_2 = 0.9715 +- 0.0004 (5000 draws), close to the 3% edge, so that
    shape needs ~1000 draws for a reliable mean.
    """
    norms = _spectral_norms(rows, cols, draws=max(1, 2**22 // (rows * cols)))
    assert norms.mean().item() == pytest.approx(1.0, rel=0.03)


FANS = [(d_in, d_out) for d_in in (1, 3, 10, 64, 256, 784, 4096) for d_out in (1, 10, 64, 256, 784, 4096)]


@pytest.mark.parametrize(("d_in", "d_out"), FANS)
def test_remark3_spectral_versus_glorot(d_in: int, d_out: int) -> None:
    """Paper Remark 3: sqrt(d_in + d_out) <= sqrt(d_in) + sqrt(d_out) <= sqrt(2) sqrt(d_in + d_out).

    So sigma_spectral * sqrt(d_in + d_out) lies in [1/sqrt(2), 1], with 1/sqrt(2) iff square.
    Against Glorot's sigma of eq. (3), sqrt(2/(d_in + d_out)), that is a factor in
    [1/2, 1/sqrt(2)): 1/2 iff square, approaching 1/sqrt(2) for skewed layers. (The paper
    quotes [1/sqrt(2), 1] "times Glorot's": that holds against 1/sqrt(d_in + d_out) only.)
    """
    spectral = 1 / (math.sqrt(d_in) + math.sqrt(d_out))
    ratio_to_paper_bound = spectral * math.sqrt(d_in + d_out)
    ratio_to_glorot = spectral / math.sqrt(2 / (d_in + d_out))
    assert 1 / math.sqrt(2) - 1e-12 <= ratio_to_paper_bound <= 1.0
    assert 0.5 - 1e-12 <= ratio_to_glorot <= 1 / math.sqrt(2)
    assert math.isclose(ratio_to_paper_bound, 1 / math.sqrt(2)) == (d_in == d_out)
    assert math.isclose(ratio_to_glorot, 0.5) == (d_in == d_out)
