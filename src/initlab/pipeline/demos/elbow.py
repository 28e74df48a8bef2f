"""Where a ReLU unit bends: the elbow c = -b/w of relu(w x + b) (docs/methods.md).

With w, b ~ N(0, 1) independent, c is a ratio of two standard normals, i.e. standard Cauchy
(pdf 1/(pi (1 + c^2))): heavy tails and no mean, so the sample mean never settles. We draw
``samples`` elbows, measure the Kolmogorov-Smirnov distance to the standard Cauchy CDF and
record the running sample mean (which keeps jumping) next to the running median (which
converges to 0).

Writes ``elbows.csv`` (the first ``keep`` elbows, for the histogram), ``summary.json`` and
``running.csv`` (running mean / median at logarithmically spaced n).
"""

import numpy as np
from scipy import stats

from initlab.pipeline.common import write_csv, write_json
from initlab.pipeline.demos import DemoContext


def cauchy_elbows(samples: int, seed: int) -> np.ndarray:
    """-b/w for ``samples`` independent pairs w, b ~ N(0, 1)."""
    rng = np.random.default_rng(seed)
    w, b = rng.standard_normal(samples), rng.standard_normal(samples)
    return -b / w


def ks_to_cauchy(elbows: np.ndarray) -> dict[str, float]:
    """Kolmogorov-Smirnov distance (and p-value) between the elbows and the standard Cauchy law,
    with the standard normal as a contrast."""
    cauchy = stats.kstest(elbows, "cauchy")
    normal = stats.kstest(elbows, "norm")
    return {"ks_cauchy": float(cauchy.statistic), "p_cauchy": float(cauchy.pvalue), "ks_normal": float(normal.statistic)}


def running_statistics(elbows: np.ndarray, points: int = 40) -> list[dict[str, float]]:
    """Sample mean and median of the first n elbows at ``points`` log-spaced n."""
    sizes = np.unique(np.geomspace(10, len(elbows), points).astype(int))
    cumulative = np.cumsum(elbows)
    return [{"n": int(n), "mean": float(cumulative[n - 1] / n), "median": float(np.median(elbows[:n]))} for n in sizes]


def run(settings: dict, context: DemoContext) -> None:
    elbows = cauchy_elbows(settings["samples"], settings["seed"])
    write_csv(context.out / "elbows.csv", ({"elbow": float(c)} for c in elbows[: settings["keep"]]))
    write_csv(context.out / "running.csv", running_statistics(elbows))
    write_json(context.out / "summary.json", {"samples": len(elbows), **ks_to_cauchy(elbows)})
