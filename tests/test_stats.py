"""initlab.stats against textbook t quantiles and scipy.stats.bootstrap."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from initlab.stats import bootstrap_interval, interval, mean_std, t_interval

# t_{0.975, df} from a printed table (Student's t, two-sided 95%).
T_TABLE = {1: 12.706, 2: 4.303, 4: 2.776, 9: 2.262}


@pytest.mark.parametrize("df", sorted(T_TABLE))
def test_t_interval_matches_closed_form(df: int) -> None:
    values = [1.0 + 0.37 * k * (-1) ** k for k in range(df + 1)]
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    got = t_interval(values)
    assert got.n == n and got.method == "t"
    assert got.mean == pytest.approx(mean) and got.std == pytest.approx(std)
    assert got.high - mean == pytest.approx(T_TABLE[df] * std / math.sqrt(n), rel=1e-3)
    assert mean - got.low == pytest.approx(got.high - mean)


def test_bootstrap_matches_scipy_percentile() -> None:
    values = np.random.default_rng(3).lognormal(size=12)
    ours = bootstrap_interval(values, resamples=40_000, seed=1)
    ref = scipy_stats.bootstrap((values,), np.mean, method="percentile", n_resamples=40_000,
                                random_state=np.random.default_rng(2)).confidence_interval
    width = ref.high - ref.low
    assert ours.low == pytest.approx(ref.low, abs=0.03 * width)
    assert ours.high == pytest.approx(ref.high, abs=0.03 * width)
    assert ours.mean == pytest.approx(values.mean())


def test_non_finite_values_are_dropped_and_degenerate_cases() -> None:
    assert mean_std([1.0, None, math.nan, 3.0, math.inf]) == (2.0, math.sqrt(2.0), 2)
    one = t_interval([2.0])
    assert (one.n, one.mean, one.low, one.high) == (1, 2.0, -math.inf, math.inf)
    assert t_interval([]).n == 0 and math.isnan(bootstrap_interval([None]).mean)
    with pytest.raises(ValueError, match="interval method"):
        interval([1.0, 2.0], method="jackknife")
