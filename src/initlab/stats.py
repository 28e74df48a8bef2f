"""Summary statistics over seeds: mean, sample std and 95% confidence intervals.

One helper for everything that aggregates repeated runs (``initlab.aggregate``, the pipeline's
tables and the claims report), so a mean, a std and an interval mean the same thing everywhere.
Non-finite values (failed or diverged runs) are dropped and counted out of ``n``.
"""

import math
import statistics
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

__all__ = ["INTERVALS", "Interval", "bootstrap_interval", "finite", "interval", "mean_std", "t_interval"]


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
    data = np.asarray(kept)
    rng = np.random.default_rng(seed)
    draws = statistic(data[rng.integers(0, len(data), size=(resamples, len(data)))])
    low, high = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    mean, std, n = mean_std(kept)
    return Interval(n, mean, std, float(low), float(high), "bootstrap", level)


INTERVALS: dict[str, Callable[..., Interval]] = {"t": t_interval, "bootstrap": bootstrap_interval}


def interval(values: Iterable[Any], method: str = "t", level: float = 0.95) -> Interval:
    """The ``method`` interval (a key of :data:`INTERVALS`) of ``values``."""
    if method not in INTERVALS:
        raise ValueError(f"interval method must be one of {sorted(INTERVALS)}, got {method!r}")
    return INTERVALS[method](values, level=level)
