"""initlab.stats against textbook t quantiles and scipy.stats.bootstrap."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from initlab.stats import (bootstrap_interval, bracketed_interval, dkw_interval, dkw_p_values, holm, interval, mean_std,
                           min_detectable_difference, region_p_values, sign_flip_p, t_interval)

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


def test_holm_matches_a_worked_example() -> None:
    """Hand-computed: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> running max 0.02, 0.03, 0.06, 0.06."""
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0]) and holm([]) == []


def test_min_detectable_difference_has_its_power_in_simulation() -> None:
    """Normal samples whose mean sits the returned distance above a bound: the 95% t-interval's lower end clears the bound
    in 80% of draws (Monte Carlo oracle, 20,000 draws: SE 0.3%)."""
    n, std = 5, 1.0
    mdd = min_detectable_difference(std, n)
    rng = np.random.default_rng(0)
    draws = rng.normal(mdd, std, size=(20_000, n))
    se = draws.std(axis=1, ddof=1) / math.sqrt(n)
    cleared = draws.mean(axis=1) - scipy_stats.t.ppf(0.975, n - 1) * se > 0.0
    assert cleared.mean() == pytest.approx(0.8, abs=0.01)
    assert min_detectable_difference(std, 1) == math.inf and min_detectable_difference(0.0, 5) == 0.0


@pytest.mark.parametrize("method", ["t", "bootstrap"])
def test_region_p_values_agree_with_the_interval(method: str) -> None:
    """p_inside <= 0.05 exactly when the 95% interval lies inside the region; p_outside <= 0.05 when it lies outside."""
    rng = np.random.default_rng(1)
    for _ in range(60):
        values = list(rng.normal(rng.uniform(-1, 1), rng.uniform(0.05, 0.5), size=6))
        iv = interval(values, method)
        for low, high in ((-0.2, 0.2), (0.0, math.inf), (-math.inf, 0.3)):
            p_in, p_out = region_p_values(values, values, low, high, method)
            inside = low <= iv.low and iv.high <= high
            outside = iv.high < low or iv.low > high
            if min(abs(iv.low - low), abs(iv.high - high), abs(iv.high - low), abs(iv.low - high)) > 1e-3:  # off the knife-edge
                assert (p_in <= 0.05) == inside and (p_out <= 0.05) == outside, (values, low, high)


def test_dkw_interval_covers_in_simulation() -> None:
    """The KS distance of n uniform samples to their true CDF exceeds the DKW half-width in at most 5% of draws."""
    n = 200
    low, high = dkw_interval(0.0, n)
    assert low == 0.0 and high == pytest.approx(math.sqrt(math.log(40) / (2 * n)))
    rng = np.random.default_rng(2)
    distances = [scipy_stats.kstest(rng.uniform(size=n), "uniform").statistic for _ in range(2000)]
    assert np.mean(np.array(distances) > high) <= 0.05
    assert dkw_p_values(0.0, n, high) == pytest.approx((0.05, 1.0))


@pytest.mark.parametrize(("values", "bound", "expected"), [
    ([1.0, 2.0, 3.0], 0.0, 1 / 8),          # only +++ reaches the observed sum 6
    ([1.0, 1.0, -1.0], 0.0, 4 / 8),         # sums of +-1 +-1 +-1 >= 1: +++, ++-, +-+, -++
    ([2.0, 2.0, 2.0, 2.0, 2.0], 1.0, 1 / 32),  # zero variance, every value above the bound: 1 / 2^n, never 0
    ([0.5, 0.5, 0.5], 0.5, 1.0),            # every difference 0: every pattern ties
    ([-1.0, -2.0], 0.0, 1.0),               # below the bound: every pattern reaches the (lowest) observed sum
    ([3.0, -1.0], 0.0, 2 / 4),              # sums 2, 4, -4, -2 (+-3 +-1): 2 and 4 reach 2
])
def test_sign_flip_p_is_the_exact_enumeration(values, bound, expected) -> None:
    assert sign_flip_p(values, bound) == pytest.approx(expected, abs=1e-15)


def test_p_values_are_valid_where_the_variance_is_zero() -> None:
    """Five equal values far inside a region: no p = 0; the exact test gives 2 x 1/32 (two-sided), so five equal seeds
    cannot decide at 5%, six can."""
    for method in ("t", "bootstrap"):
        p_in, p_out = region_p_values([1.0] * 5, [1.0] * 5, 0.0, 2.0, method)
        assert (p_in, p_out) == (pytest.approx(2 / 32), 1.0)
        assert region_p_values([1.0] * 6, [1.0] * 6, 0.0, 2.0, method)[0] == pytest.approx(2 / 64)
    rng = np.random.default_rng(0)
    for _ in range(200):
        values = list(rng.normal(rng.uniform(-3, 3), rng.choice([0.0, 1e-6, 0.1, 1.0]), size=int(rng.integers(2, 9))))
        for method in ("t", "bootstrap"):
            for p in region_p_values(values, values, *sorted(rng.uniform(-3, 3, size=2)), method):
                assert 0.0 < p <= 1.0


def test_an_unbounded_grid_end_is_never_shown_inside_or_beyond_a_bound() -> None:
    """A grid-valued statistic whose true value lies in [lows_i, highs_i] with highs_i = inf (past the grid's top) can
    not be shown below any bound: dropping the inf seed instead would claim it."""
    lows, highs = [5.0, 5.1, 4.9, 5.2], [6.0, 6.2, 6.1, math.inf]
    assert region_p_values(lows, highs, 0.0, 10.0)[0] == 1.0  # inside [0, 10] needs the highs below 10: unbounded
    assert region_p_values(lows, highs[:3] + [6.3], 0.0, 10.0)[0] < 0.01  # the same with a finite end is shown inside
    assert region_p_values([-math.inf, 1.0, 1.1], [1.0, 1.1, 1.2], -5.0, 5.0)[0] == 1.0  # mirror image: no lower bound
    iv = bracketed_interval([5.0, 5.1, 4.9, 5.2], lows, highs)
    assert iv.low < 5.0 and iv.high == math.inf and iv.mean == pytest.approx(5.05)
