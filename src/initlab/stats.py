"""Summary statistics over seeds: mean, sample std, 95% confidence intervals and the tests behind them.

One helper for everything that aggregates repeated runs (``initlab.aggregate``, the pipeline's
tables and the claims report), so a mean, a std and an interval mean the same thing everywhere.
Non-finite values (failed or diverged runs) are dropped and counted out of ``n``.

The claims report also needs, for each interval, the p-value of the decision it supports (the
interval lies inside a region, or outside it), Holm-Bonferroni over a family of such decisions, and
the smallest difference a design of n seeds detects: :func:`region_p_values`, :func:`holm`,
:func:`min_detectable_difference`. A p-value here is the interval-inversion one: 1 minus the largest
confidence level at which the two-sided interval still supports the decision, so "the 95% interval
lies inside" and "p <= 0.05" are the same statement. Where the t statistic is undefined (every value
equal: zero sample variance), the p-value is the exact sign-flip permutation test over the paired
values (:func:`sign_flip_p`): never 0, at least 1 / 2^n, so five seeds alone cannot decide a
zero-variance row at 2.5% per tail.
"""

import math
import statistics
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

__all__ = [
    "INTERVALS", "Interval", "bootstrap_interval", "bracketed_interval", "dkw_interval", "dkw_p_values", "finite", "holm", "interval", "mean_std",
    "min_detectable_difference", "region_p_values", "sign_flip_p", "t_interval",
]


@dataclass(frozen=True)
class Interval:
    """``n`` finite values: their mean, sample std and a ``level`` confidence interval [low, high] by ``method``."""

    n: int
    mean: float
    std: float
    low: float
    high: float
    method: str
    level: float = 0.95

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def finite(values: Iterable[Any]) -> list[float]:
    """The finite numbers among ``values`` as floats (None, nan, inf and non-numbers dropped)."""
    return [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]


def mean_std(values: Iterable[Any]) -> tuple[float, float, int]:
    """(mean, sample std, count) of the finite values; (nan, nan, 0) without any; std 0 for one value."""
    kept = finite(values)
    if not kept:
        return math.nan, math.nan, 0
    return statistics.fmean(kept), statistics.stdev(kept) if len(kept) > 1 else 0.0, len(kept)


def _degenerate(kept: list[float], method: str, level: float) -> Interval | None:
    """The interval when there is nothing to estimate: no values (nan) or one value (unbounded)."""
    if not kept:
        return Interval(0, math.nan, math.nan, math.nan, math.nan, method, level)
    if len(kept) == 1:
        return Interval(1, kept[0], 0.0, -math.inf, math.inf, method, level)
    return None


def t_interval(values: Iterable[Any], level: float = 0.95) -> Interval:
    """Student-t interval mean +- t_{(1+level)/2, n-1} s / sqrt(n): exact for normal values, the honest
    choice for a handful of seeds (a bootstrap of 5 values under-covers)."""
    kept = finite(values)
    if (empty := _degenerate(kept, "t", level)) is not None:
        return empty
    mean, std, n = mean_std(kept)
    half = float(scipy_stats.t.ppf((1 + level) / 2, n - 1)) * std / math.sqrt(n)
    return Interval(n, mean, std, mean - half, mean + half, "t", level)


def bootstrap_interval(
    values: Iterable[Any], level: float = 0.95, resamples: int = 10_000, seed: int = 0,
    statistic: Callable[[np.ndarray], np.ndarray] = lambda x: x.mean(axis=-1),
) -> Interval:
    """Percentile bootstrap interval of ``statistic`` (vectorized over the last axis; default the mean)
    from ``resamples`` resamples with replacement, seeded so a report is reproducible."""
    kept = finite(values)
    if (empty := _degenerate(kept, "bootstrap", level)) is not None:
        return empty
    draws = _bootstrap_draws(kept, resamples, seed, statistic)
    low, high = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    mean, std, n = mean_std(kept)
    return Interval(n, mean, std, float(low), float(high), "bootstrap", level)


def _bootstrap_draws(kept: list[float], resamples: int = 10_000, seed: int = 0,
                     statistic: Callable[[np.ndarray], np.ndarray] = lambda x: x.mean(axis=-1)) -> np.ndarray:
    """``statistic`` of ``resamples`` resamples with replacement (seeded: the interval and its p-values use the same draws)."""
    data = np.asarray(kept)
    rng = np.random.default_rng(seed)
    return statistic(data[rng.integers(0, len(data), size=(resamples, len(data)))])


INTERVALS: dict[str, Callable[..., Interval]] = {"t": t_interval, "bootstrap": bootstrap_interval}


def interval(values: Iterable[Any], method: str = "t", level: float = 0.95) -> Interval:
    """The ``method`` interval (a key of :data:`INTERVALS`) of ``values``."""
    if method not in INTERVALS:
        raise ValueError(f"interval method must be one of {sorted(INTERVALS)}, got {method!r}")
    return INTERVALS[method](values, level=level)


def unbounded(values: Iterable[Any], sign: int) -> bool:
    """Whether ``values`` hold ``sign`` x inf: a grid-valued end beyond the grid's last value (no bound on that side)."""
    return any(isinstance(v, float) and v == sign * math.inf for v in values)


def bracketed_interval(points: Iterable[Any], lows: Iterable[Any], highs: Iterable[Any], method: str = "t",
                       level: float = 0.95) -> Interval:
    """The interval of a grid-valued statistic: each seed's true value lies somewhere in [lows_i, highs_i] (the grid
    value and its neighbour), so the interval runs from the low end of the ``lows``' interval to the high end of the
    ``highs``' (unbounded where an end is infinite: beyond the grid); mean and std are the grid ``points``'. An
    interval never claims more resolution than the grid it came from."""
    points, lows, highs = list(points), list(lows), list(highs)
    iv = interval(points, method, level)
    low = -math.inf if unbounded(lows, -1) else interval(lows, method, level).low
    high = math.inf if unbounded(highs, +1) else interval(highs, method, level).high
    return Interval(iv.n, iv.mean, iv.std, low, high, method, level)


# ---------------------------------------------------------------- decisions: p-values, Holm, power


def sign_flip_p(values: Iterable[Any], bound: float = 0.0) -> float:
    """Exact one-sided sign-flip permutation p-value of H0: the differences d_i = value_i - ``bound`` are symmetric
    about 0 (against mean > bound): the share of the 2^n sign patterns s whose mean of s_i d_i is >= the observed
    mean (the observed pattern included, so p >= 1 / 2^n > 0). 1.0 without values."""
    d = np.asarray(finite(values)) - bound
    if d.size == 0:
        return 1.0
    if d.size > 20:
        raise ValueError(f"sign_flip_p enumerates 2^n patterns: n must be <= 20, got {d.size}")
    signs = 1 - 2 * ((np.arange(2 ** d.size)[:, None] >> np.arange(d.size)) & 1)
    flipped = (signs * d).sum(axis=1)
    return float(np.mean(flipped >= d.sum() - 1e-12 * max(1.0, float(np.abs(d).sum()))))


def _p_greater(values: Iterable[Any], bound: float, method: str) -> float:
    """One-sided p-value of H0: mean <= ``bound`` (small when the values show mean > bound), by ``method``:
    Student t, or the share of bootstrap means <= bound (the percentile interval's own tail); the exact sign-flip
    test where every value is equal (the t statistic undefined). An unbounded side (``bound`` = -inf) is no
    constraint: 0, used only inside :func:`region_p_values`' max with the finite side. A value of -inf (a grid-valued
    lower end past the grid) leaves the mean unbounded below: 1."""
    if bound == -math.inf:
        return 0.0
    values = list(values)
    if unbounded(values, -1):  # a value with no lower bound (a grid end) cannot be shown above anything
        return 1.0
    kept = finite(values)
    if len(kept) < 2 or bound == math.inf:
        return 1.0
    mean, std, n = mean_std(kept)
    if std == 0.0:
        return sign_flip_p(kept, bound)
    if method == "bootstrap":  # (count + 1) / (B + 1): the Monte Carlo p-value that is never 0
        draws = _bootstrap_draws(kept)
        return float((np.sum(draws <= bound) + 1) / (draws.size + 1))
    return float(scipy_stats.t.sf((mean - bound) / (std / math.sqrt(n)), n - 1))


def _p_less(values: Iterable[Any], bound: float, method: str) -> float:
    """One-sided p-value of H0: mean >= ``bound`` (the mirror image of :func:`_p_greater`)."""
    numbers = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return _p_greater([-v for v in numbers], -bound, method)  # +inf (no upper bound) becomes -inf: unbounded below


def region_p_values(lows: Iterable[Any], highs: Iterable[Any], low: float, high: float, method: str = "t") -> tuple[float, float]:
    """(p_inside, p_outside) for the region [low, high] (infinite bounds allowed), interval-inversion p-values.

    ``lows`` / ``highs`` are the per-seed values at the lower / upper end of their resolution (the same list for
    a plain statistic; a grid-valued one lies somewhere in [lows_i, highs_i]): inside needs the interval of
    ``lows`` above ``low`` and that of ``highs`` below ``high``; outside needs ``highs`` below ``low`` or
    ``lows`` above ``high``. Each one-sided p is doubled (a two-sided 95% interval has 2.5% in each tail)."""
    lows, highs = list(lows), list(highs)  # an infinite end stays: it is a side the values leave unbounded
    inside = 2 * max(_p_greater(lows, low, method), _p_less(highs, high, method))
    outside = 2 * min(_p_less(highs, low, method) if low > -math.inf else 1.0, _p_greater(lows, high, method) if high < math.inf else 1.0)
    return _valid(inside), _valid(outside)


def _valid(p: float) -> float:
    """A p-value in (0, 1]: capped at 1, and a tail that underflows to 0.0 (far beyond any reported digit) kept at the
    smallest positive float, so no decision ever reads p = 0."""
    return min(1.0, max(p, sys.float_info.min))


def dkw_interval(distance: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """Interval for sup |F - G| given the Kolmogorov-Smirnov distance of n samples of F to G: the
    Dvoretzky-Kiefer-Wolfowitz bound P(sup |F_n - F| > eps) <= 2 exp(-2 n eps^2) (Massart's constant)."""
    eps = math.sqrt(math.log(2 / (1 - level)) / (2 * n))
    return max(0.0, distance - eps), distance + eps


def dkw_p_values(distance: float, n: int, high: float) -> tuple[float, float]:
    """(p_inside, p_outside) of the region sup |F - G| <= ``high`` by the DKW bound (interval inversion, as
    :func:`region_p_values`)."""
    gap = high - distance
    tail = _valid(2 * math.exp(-2 * n * gap * gap))
    return (tail, 1.0) if gap > 0 else (1.0, tail)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order: sorted ascending, p_(i) (m - i + 1), running
    maximum, capped at 1; rejecting where adjusted p <= alpha controls the family-wise error at alpha."""
    m = len(p_values)
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(sorted(range(m), key=lambda i: p_values[i])):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def min_detectable_difference(std: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest distance between the mean and a region bound that n values of sample std ``std`` show with
    probability ``power`` (one-sided t test at alpha / 2: the 95% interval's tail), from the noncentral t
    distribution; inf when n < 2."""
    if n < 2 or not math.isfinite(std):
        return math.inf
    if std == 0.0:
        return 0.0
    df = n - 1
    critical = float(scipy_stats.t.ppf(1 - alpha / 2, df))
    from scipy.optimize import brentq

    shift = brentq(lambda nc: float(scipy_stats.nct.sf(critical, df, nc)) - power, 0.0, 100.0)
    return shift * std / math.sqrt(n)
