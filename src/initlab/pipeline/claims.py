"""The claims of the report: data (``params.yaml`` ``report``) filled by one scaffold.

A claim's spec holds its text, its source (``source``: where, ``quote``: the source's own words, as
``docs/methods.md`` quotes them; a spec without a quote is one of *our own questions*, outside the
paper's tally), expectation and correction (templates whose ``{placeholders}`` are filled from the
spec and the data), and the region in which it holds. A function of :data:`CLAIMS` turns tidy rows
into the number(s) the verdict rests on and hands them to :func:`derivation` or :func:`empirical`:

* a **derivation** (deterministic: no seed, draw or grid decides it) is ``verified`` when the computed
  number lies in the region, else ``contradicted``; a provable bound is ``verified`` with its looseness;
* an **empirical** claim has one value per seed (or draw): the verdict compares their 95% interval with
  the region: ``holds`` inside, ``fails`` outside, ``inconclusive`` when it straddles a boundary. A
  grid-valued statistic carries its resolution (each value lies in [low_i, high_i]) and the interval
  spans both ends, so it is inconclusive when the resolution straddles the region.

:func:`build` then adds what a reader needs to trust an empirical verdict: its p-value and the
Holm-Bonferroni verdict over the empirical family, the smallest difference the design detects at n
(80% power), and a robustness column: the verdict recomputed under the alternative protocols of
:func:`alternatives` (interval method, margin x0.5 / x2, comparator, budget, coarser grid, one seed
left out), ``robust`` when all agree. Selections read val, never test. Pure functions on rows.
"""

import math
import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from initlab.init import spectral_std
from initlab.pipeline.grid_edges import edge_words, next_grid_value, on_grid_edge
from initlab.pipeline.tables import Row, group_by, loss_or_inf, setting_runs
from initlab.stats import (Interval, bracketed_interval, dkw_interval, dkw_p_values, finite, holm, mean_std,
                           min_detectable_difference, region_p_values)

VERIFIED, CONTRADICTED = "verified", "contradicted"
HOLDS, FAILS, INCONCLUSIVE = "holds", "fails", "inconclusive"
DERIVATION, EMPIRICAL = "derivation", "empirical"
CORRECTED = (CONTRADICTED, FAILS)
ALPHA = 0.05  # every interval is 95%; a decision's p-value is compared with this
TYPO, OURS = "typo", "ours"
SOURCE_KINDS = {"paper": "paper", "book": "book", "lectures": "lecture notes", "notes": "lecture notes"}
TEXT_KEYS = frozenset({"region", "rel_tol", "why", "claim", "measured", "expected", "correction", "reference", "finding", "contrast"})


@dataclass(frozen=True)
class Claim:
    """One row of the report: ``section`` derivation or empirical; ``source`` None for our own questions."""

    section: str
    id: str
    claim: str
    source: str | None
    quote: str | None
    measured: str
    expected: str
    verdict: str
    value: float | None
    reference: float | None = None
    interval: dict[str, Any] | None = None
    p: float | None = None
    mdd: float | None = None
    correction: str | None = None
    figure: str | None = None
    adjusted: str | None = None
    p_adjusted: float | None = None
    robustness: str | None = None
    power: str | None = None
    p_in: float | None = None
    p_out: float | None = None
    h1: str | None = None
    kind: str = "claim"
    note: str | None = None
    sub_rows: tuple[dict[str, Any], ...] = ()
    finding: str | None = None

    @property
    def own(self) -> bool:
        return self.quote is None

    @property
    def source_kind(self) -> str:
        """Who makes the claim (the first word of ``source`` through :data:`SOURCE_KINDS`); ``ours`` for our own questions."""
        if self.own:
            return OURS
        first = (self.source or "").split(" ", 1)[0]
        if first not in SOURCE_KINDS:
            raise ValueError(f"claim {self.id}: source {self.source!r} must start with one of {sorted(SOURCE_KINDS)}")
        return SOURCE_KINDS[first]

    @property
    def decided(self) -> str:
        """The verdict the tally counts: Holm-adjusted for an empirical row, the verdict of a derivation; ``typo``
        for a typo (a correction, never a fail)."""
        if self.kind == TYPO:
            return TYPO
        return {VERIFIED: HOLDS, CONTRADICTED: FAILS}.get(self.verdict, self.adjusted or self.verdict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"own": self.own, "source_kind": self.source_kind, "decided": self.decided,
                               "sub_rows": list(self.sub_rows)}


def fmt(value: Any, digits: int = 3) -> str:
    """A number for the report: ints exact, floats to ``digits`` significant digits, 'n/a' when missing; lists joined."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return ", ".join(map(fmt, value)) if isinstance(value, (list, tuple)) else str(value)
    return str(value) if isinstance(value, int) else f"{value:.{digits}g}"


def render(template: str | None, values: dict[str, Any]) -> str | None:
    """``template`` with its ``{name}`` fields replaced by ``fmt(values[name])``."""
    if template is None:
        return None
    return re.sub(r"\{(\w+)\}", lambda m: fmt(values[m.group(1)]), template)


def region(spec: dict[str, Any], reference: float | None = None) -> tuple[float, float]:
    """The spec's ``region: [low, high]`` (null = unbounded), or ``reference`` +- ``rel_tol`` |reference|."""
    if "rel_tol" in spec:
        return reference - spec["rel_tol"] * abs(reference), reference + spec["rel_tol"] * abs(reference)
    low, high = spec["region"]
    return (-math.inf if low is None else float(low)), (math.inf if high is None else float(high))


def point_verdict(value: float | None, low: float, high: float) -> str:
    return VERIFIED if value is not None and math.isfinite(value) and low <= value <= high else CONTRADICTED


def interval_verdict(iv: Interval, low: float, high: float) -> str:
    """``holds`` if [iv.low, iv.high] lies in [low, high], ``fails`` if it is disjoint from it, else ``inconclusive``."""
    if iv.n == 0:
        return INCONCLUSIVE
    if low <= iv.low and iv.high <= high:
        return HOLDS
    if iv.high < low or iv.low > high:
        return FAILS
    return INCONCLUSIVE


def _texts(spec: dict[str, Any], values: dict[str, Any], verdict: str) -> dict[str, Any]:
    return {"claim": render(spec["claim"], values), "source": spec.get("source"), "quote": spec.get("quote"),
            "measured": render(spec["measured"], values), "expected": render(spec["expected"], values),
            "correction": render(spec.get("correction"), values) if verdict in CORRECTED else None, "figure": spec.get("figure")}


def derivation(cid: str, spec: dict[str, Any], computed: float | None, closed_form: float | None, **data: Any) -> Claim:
    """A deterministic check: ``computed`` beside its ``closed_form``; verified when ``computed`` lies in the spec's region."""
    low, high = region(spec, closed_form)
    values = spec | data | {"computed": computed, "closed_form": closed_form, "low": low, "high": high}
    verdict = point_verdict(computed, low, high)
    return Claim(DERIVATION, cid, value=computed, reference=closed_form, verdict=verdict, **_texts(spec, values, verdict))


def _drop(values: Sequence[Any], index: int | None) -> list[Any]:
    return list(values) if index is None else [v for i, v in enumerate(values) if i != index]


def empirical(cid: str, spec: dict[str, Any], per_seed: Sequence[float | None], lower: Sequence[float | None] | None = None,
              upper: Sequence[float | None] | None = None, resolution: str | None = None, reference: float | None = None,
              **data: Any) -> Claim:
    """A claim decided by the 95% interval (``spec['interval']``: t or bootstrap) of its per-seed values against the
    region. A grid-valued statistic also has ``lower`` / ``upper`` ends (each true value lies in [lower_i, upper_i], a
    ``resolution`` the report names); the interval then runs from the lower ends' low to the upper ends' high, while
    the mean and std are the grid values'. ``spec['drop_seed']`` leaves one value out (a robustness alternative)."""
    method, drop = spec.get("interval", "t"), spec.get("drop_seed")
    points = _drop(per_seed, drop)
    lows, highs = _drop(per_seed if lower is None else lower, drop), _drop(per_seed if upper is None else upper, drop)
    iv = bracketed_interval(points, lows, highs, method)
    low, high = region(spec, reference)
    p_in, p_out = region_p_values(lows, highs, low, high, method)
    widths = finite(h - l for l, h in zip(lows, highs, strict=True) if l is not None and h is not None)
    mdd = max(min_detectable_difference(iv.std, iv.n), statistics.fmean(widths) if widths else 0.0)  # nothing finer than the grid
    return _decided(cid, spec, iv, (p_in, p_out), (low, high), mdd, resolution, reference, data)


def _decided(cid: str, spec: dict, iv: Interval, p: tuple[float, float], bounds: tuple[float, float], mdd: float,
             resolution: str | None, reference: float | None, data: dict) -> Claim:
    verdict = interval_verdict(iv, *bounds)
    decision_p = {HOLDS: p[0], FAILS: p[1]}.get(verdict, min(p))
    note = None
    if decision_p > ALPHA and verdict != INCONCLUSIVE:  # an interval the exact test does not back (zero variance): not decided
        verdict = INCONCLUSIVE
        note = (f"every value equal over the {iv.n} seeds: the exact sign-flip test cannot go below 2 / 2^{iv.n} = "
                f"{fmt(2 / 2 ** iv.n, 2)}, so the interval alone does not decide")
    values = spec | data | {"n": iv.n, "mean": iv.mean, "ci_low": iv.low, "ci_high": iv.high, "method": iv.method,
                            "low": bounds[0], "high": bounds[1], "reference": reference}
    return Claim(EMPIRICAL, cid, value=iv.mean, reference=reference, verdict=verdict, p=decision_p, mdd=mdd, p_in=p[0], p_out=p[1],
                 interval=iv.to_dict() | {"resolution": resolution}, note=note, **_texts(spec, values, verdict))


def per_seed(rows: Sequence[Row], value: Callable[[list[Row]], float | None]) -> list[float | None]:
    """``value`` of each seed's rows, in seed order."""
    return [value(group) for _, group in sorted(group_by(rows, "seed").items())]


def _only(rows: Sequence[Row], **match: Any) -> list[Row]:
    return [r for r in rows if all(r.get(k) == v for k, v in match.items())]


def _finite_max(values: Sequence[Any]) -> float | None:
    return max(finite(values), default=None)


def _truthy(value: Any) -> bool:
    return value in (True, "True", "true", 1)


# ---------------------------------------------------------------- derivations (deterministic)


def rem3_sigma_ratio(data: dict, spec: dict) -> Claim:
    """Paper Remark 3 on a square layer of the pipeline's width: sigma_spectral / sigma_Glorot."""
    n = spec["width"]
    computed = spectral_std(n, n) / math.sqrt(2 / (n + n))
    return derivation("rem3_sigma_ratio", spec, computed, math.sqrt(2 * n) / (math.sqrt(2) * 2 * math.sqrt(n)))


def spectral_variance_flow(data: dict, spec: dict) -> Claim:
    """n sigma^2 of the spectral init on a square layer vs variance preservation's 1; the depth study's measured gain beside it."""
    n = spec["width"]
    gains = [r["variance_ratio"] ** (1 / (r["depth"] - 1)) for r in _only(data["depth_at_init"], init="spectral", activation="tanh")
             if r["depth"] > 1 and r["variance_ratio"]]
    return derivation("spectral_variance_flow", spec, n * spectral_std(n, n) ** 2, 0.25,
                      measured_gain=statistics.fmean(gains) if gains else None)


def quadratic_safe_step(eigenvalues: Sequence[float], tol: float = 1e-9) -> float:
    """The largest c such that one GD step of lr = c / lambda_max decreases the quadratic 1/2 w^T H w from every
    starting point: bisection on 'every eigen-direction shrinks', |1 - c lambda_i / lambda_max| < 1."""
    top = max(eigenvalues)

    def decreases(c: float) -> bool:
        return all(abs(1 - c * lam / top) < 1 for lam in eigenvalues)

    lo, hi = 0.0, 1.0
    while decreases(hi):
        lo, hi = hi, 2 * hi
    while hi - lo > tol:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if decreases(mid) else (lo, mid)
    return lo


def sec12_gamma_star_quadratic(data: dict, spec: dict) -> Claim:
    """Paper §1.2 on its own quadratic model: the largest step that guarantees a decrease, in units of 1/lambda_max
    (the canyon demo's quadratic), beside the paper's 1 and the stability edge 2."""
    eigenvalues = data["canyon"]["eigenvalues"]
    return derivation("sec12_gamma_star_quadratic", spec, quadratic_safe_step(eigenvalues), 2.0, condition=max(eigenvalues) / min(eigenvalues))


def rem1_relu_gauss_newton(data: dict, spec: dict) -> Claim:
    """Paper Remark 1: for ReLU every layer block's lambda_max(H) equals lambda_max(GN) (every seed, every state)."""
    blocks = [r for r in data["curvature"] if r["activation"] == "relu" and str(r["block"]) != "all"]
    return derivation("rem1_relu_gauss_newton", spec, _finite_max([r["rel_diff"] for r in blocks]), 0.0, blocks=len(blocks))


def seed_symmetry(data: dict, spec: dict) -> Claim:
    """Zero / constant init: hidden units stay identical (pairwise distance 0) under training."""
    rows = [r for r in data["symmetry"] if r["init"] in spec["symmetric_inits"]]
    steps = max((r["step"] for r in rows), default=0)
    return derivation("seed_symmetry", spec, _finite_max([r["distance"] for r in rows if r["step"] == steps]), 0.0, steps=steps)


def seed_deep_linear(data: dict, spec: dict) -> Claim:
    """W = s I in an L-layer linear net: ||z^(L)|| / ||z^(1)|| = s^(L-1)."""
    rows = [r for r in data["deep_linear"] if r.get("scale") == spec["scale"]]
    by_layer = {r["layer"]: r for r in rows}
    depth = max(by_layer, default=1)
    computed = by_layer[depth]["activation_norm"] / by_layer[1]["activation_norm"] if rows else None
    return derivation("seed_deep_linear", spec, computed, spec["scale"] ** (depth - 1), depth=depth)


def momentum_terminal_velocity(data: dict, spec: dict) -> Claim:
    """Momentum under a constant gradient: step / (eps ||g||) -> 1 / (1 - alpha)."""
    velocity = data["canyon"]["terminal_velocity"]
    return derivation("momentum_terminal_velocity", spec, velocity["speedup"], velocity["predicted_speedup"],
                      alpha=velocity["alpha"], steps=velocity["steps"])


def theorem2_corrected_bound(data: dict, spec: dict) -> Claim:
    """The corrected Theorem 2 bound must hold for every draw: verified when the largest lambda_max / bound over
    seeds, inits and layers is <= 1; its looseness (bound / lambda_max) per layer beside it."""
    rows = data["theorem2"]
    looseness = {layer: [1 / r["ratio_corrected"] for r in g if r["ratio_corrected"]] for (layer,), g in group_by(rows, "layer").items()}
    spread = "; ".join(f"{_layer_name(layer, len(looseness))} {fmt(min(v), 2)}-{fmt(max(v), 2)}x" for layer, v in looseness.items() if v)
    return derivation("thm2_corrected_bound", spec, _finite_max([r["ratio_corrected"] for r in rows]), None, looseness=spread,
                      inits=sorted({r["init"] for r in rows}), draws=len(group_by(rows, "init", "seed")))


def _layer_name(layer: Any, layers: int) -> str:
    """A weight layer as the models name it (hidden1, ..., output); an integer index k is mapped to that name."""
    if isinstance(layer, int):
        return "output" if layer == layers - 1 else f"hidden{layer + 1}"
    return str(layer)


# ---------------------------------------------------------------- empirical: random matrices, signal propagation


def cor2_rmt_norm(data: dict, spec: dict) -> Claim:
    """Paper Cor. 2 for one init: ||W|| / ((sqrt m + sqrt n) sigma) ~ 1, per trial the mean over the large shapes."""
    large = [r for r in _only(data["rmt"], init=spec["init"]) if min(r["m"], r["n"]) >= spec["min_dim"]]
    values = [statistics.fmean(r["ratio"] for r in group) for _, group in sorted(group_by(large, "trial").items())]
    return empirical(f"cor2_rmt_norm_{spec['init']}", spec, values, reference=1.0, shapes=len(group_by(large, "m", "n")))


def sec34_unit_variance(data: dict, spec: dict) -> Claim:
    """Paper §3.4 as written: E sigma_max of an m x n unit-variance matrix = 1/(sqrt m + sqrt n); one value per draw
    (every init and trial) of the largest shape, its region the written value +- ``rel_tol``."""
    rows = data["rmt"]
    m, n = max(((r["m"], r["n"]) for r in rows), key=lambda shape: shape[0] * shape[1])
    values = [r["norm"] / r["sigma"] for r in _only(rows, m=m, n=n)]
    return empirical("sec34_unit_variance_norm", spec, values, reference=1 / (math.sqrt(m) + math.sqrt(n)), shape=f"{m} x {n}",
                     edge=math.sqrt(m) + math.sqrt(n))


def cor1_spectral_jacobian(data: dict, spec: dict) -> Claim:
    """Paper Cor. 1-2: spectral init gives mean ||J^(k)|| ~ 1 (shallowest MLP of the depth study)."""
    rows = _only(data["depth_at_init"], init="spectral", activation=spec["activation"])
    depth = min((r["depth"] for r in rows), default=None)
    values = per_seed(_only(rows, depth=depth), lambda g: g[0]["jacobian_norm_mean"])
    return empirical(f"cor1_spectral_jacobian_{spec['activation']}", spec, values, reference=1.0, depth=depth)


def variance_gain(data: dict, spec: dict) -> Claim:
    """Per-layer Var(u) gain (Var(u^(L)) / Var(u^(1)))^(1/(L-1)) of one init at the deepest ReLU depth."""
    rows = _only(data["depth_at_init"], activation=spec["activation"], init=spec["init"])
    depth = max((r["depth"] for r in rows), default=None)
    values = per_seed(_only(rows, depth=depth), lambda g: g[0]["variance_ratio"] ** (1 / (depth - 1)))
    return empirical(f"variance_gain_{spec['init']}_{spec['activation']}", spec, values, reference=spec["reference"], depth=depth)


def dead_relu_bias(data: dict, spec: dict) -> Claim:
    """Book §8.4: a 0.1 ReLU bias instead of 0 saturates fewer ReLUs at init, for one init: per seed the measured fraction
    (``spec['measure']``, a column of the variance_flow demo's dead_relu table: ``inactive_fraction`` per (unit, sample)
    pair or ``dead_fraction`` of units silent on every sample), mean over layers, with zero bias minus with 0.1 bias."""
    column = spec["measure"]

    def reduction(group: list[Row]) -> float | None:
        mean = {b: statistics.fmean(finite(r.get(column) for r in g) or [math.nan]) for (b,), g in group_by(group, "bias").items()}
        return mean["zeros"] - mean["relu_0.1"] if {"zeros", "relu_0.1"} <= set(mean) else None

    return empirical(f"dead_relu_bias_{spec['init']}", spec, per_seed(_only(data["dead_relu"], init=spec["init"]), reduction))


def cauchy_elbow(data: dict, spec: dict) -> Claim:
    """Lectures 6: with w, b ~ N(0, 1) the elbow -b/w is Cauchy: the KS distance of the samples to the standard Cauchy
    CDF with its DKW interval (n = samples: the randomness is the draw, not a seed)."""
    summary = data["elbow"]
    distance, n = summary["ks_cauchy"], summary["samples"]
    low, high = dkw_interval(distance, n)
    iv = Interval(n, distance, math.nan, low, high, "DKW")
    bounds = region(spec)
    return _decided("cauchy_elbow", spec, iv, dkw_p_values(distance, n, bounds[1]), bounds, high - distance, None, 0.0,
                    {"samples": n, "ks_normal": summary["ks_normal"]})


def momentum_canyon(data: dict, spec: dict) -> Claim:
    """Book §8.3: best heavy-ball momentum vs best GD on an ill-conditioned quadratic: speed-up in steps, one value per
    random start (the canyon demo's draws; its single canyon-start race where a run has no draws)."""
    summary = data["canyon"]
    draws = data.get("canyon_draws") or data["canyon_runs"]
    return empirical("momentum_canyon", spec, [r["steps_ratio"] for r in draws], reference=1.0, condition=summary["condition"],
                     sqrt_condition=summary["sqrt_condition"], draws=len(draws))


# ---------------------------------------------------------------- empirical: curvature


def rem2_gauss_newton_gap(data: dict, spec: dict) -> Claim:
    """Paper Remark 2 in one state (``spec['state']``): per seed the largest |lambda_H - lambda_GN| / lambda_H over the tanh
    layer blocks."""
    rows = [r for r in data["curvature"] if r["activation"] == "tanh" and str(r["block"]) != "all" and r["state"] == spec["state"]]
    return empirical(f"rem2_gauss_newton_{spec['state']}", spec, per_seed(rows, lambda g: max(r["rel_diff"] for r in g)),
                     reference=0.0, state=spec["state"])


def rem2_near_vs_far(data: dict, spec: dict) -> Claim:
    """Paper Remark 2's contrast: per seed the largest tanh block gap far from init (weights scaled) minus at init."""
    rows = [r for r in data["curvature"] if r["activation"] == "tanh" and str(r["block"]) != "all"]
    far = next((s for s in dict.fromkeys(r["state"] for r in rows) if s not in ("init", "trained")), None)

    def contrast(group: list[Row]) -> float | None:
        at = {s: max(r["rel_diff"] for r in g) for (s,), g in group_by(group, "state").items()}
        return at[far] - at["init"] if far in at and "init" in at else None

    return empirical("rem2_near_vs_far", spec, per_seed(rows, contrast), far=far)


def _every_step_decrease(row: Row) -> bool:
    return _truthy(row.get("every_step_decrease"))


def _never_above_start(row: Row) -> bool:
    if "never_above_start" in row:
        return _truthy(row["never_above_start"])
    peak, start = row.get("max_loss"), row.get("loss_0")
    return isinstance(peak, float) and isinstance(start, float) and math.isfinite(peak) and peak <= start


SAFE_STEP: dict[str, Callable[[Row], bool]] = {"every_step_decrease": _every_step_decrease, "never_above_start": _never_above_start}


def _stability_factor(rows: Sequence[Row], safe: Callable[[Row], bool], every: int = 1) -> tuple[float | None, float | None, list[float]]:
    """The largest grid factor c whose run is ``safe``, the next grid factor (its resolution: the true c* lies in
    [c, next)); ``every``: use every n-th factor only (a coarser grid). None without any factor."""
    grid = sorted({r["factor"] for r in rows})[::every]
    if not grid:
        return None, None, grid
    best = max((r["factor"] for r in rows if r["factor"] in grid and safe(r)), default=0.0)
    above = [f for f in grid if f > best]
    return best, (min(above) if above else math.inf), grid


def gamma_star_empirical(data: dict, spec: dict) -> Claim:
    """Paper §1.2 measured for one init: per seed the largest c (lr = c / lambda_max(H_0), full-batch GD) whose run is safe
    by ``spec['measure']`` (a key of :data:`SAFE_STEP`: every step lowers the loss, or the loss never rises above its
    start), with the grid's resolution [c, next factor)."""
    rows = _only(data["lr_stability"], init=spec["init"])
    pairs = per_seed(rows, lambda g: _stability_factor(g, SAFE_STEP[spec["measure"]], spec.get("grid_every", 1)))
    grid = pairs[0][2] if pairs else []
    return empirical(f"gamma_star_{spec['init']}", spec, [p[0] for p in pairs], upper=[p[1] for p in pairs],
                     resolution="grid-valued: c* in [c, next grid c)", reference=1.0, grid=grid)


def softmax_regression_scale_exponent(scale: float, dim: int = 16, classes: int = 10, samples: int = 64, seed: int = 0) -> float:
    """The exponent e in lambda_max(H_W)(s x) = s^e lambda_max(H_W)(x) of a softmax regression at W = 0, by dense
    eigenvalues: H_W = (I/C - 11^T / C^2) (x) E[x x^T] (uniform softmax at W = 0, whatever the input scale)."""
    x = np.random.default_rng(seed).standard_normal((samples, dim))
    h_z = np.eye(classes) / classes - np.ones((classes, classes)) / classes**2

    def top(inputs: np.ndarray) -> float:
        return float(np.linalg.eigvalsh(np.kron(h_z, inputs.T @ inputs / samples))[-1])

    return math.log(top(scale * x) / top(x)) / math.log(scale)


def theorem2_as_written(data: dict, spec: dict) -> Claim:
    """Paper Theorem 2 eq. (6) as written, one derivation: its bound has no factor of the layer input, so it cannot follow
    the Hessian when the input is rescaled. On a one-layer net (softmax regression at W = 0) the bound as written is 1
    (empty product, identity activation) while lambda_max(H_W) scales as s^2: a scale-consistent bound has exponent 0.
    The lr study's measured lambda_max / bound (every init, seed and layer, inputs as normalised) stands beside it."""
    ratios = finite(r["ratio_as_written"] for r in data["theorem2"])
    return derivation("thm2_as_written", spec, softmax_regression_scale_exponent(spec["scale"]), 2.0, scale=spec["scale"],
                      ratio_low=min(ratios, default=None), ratio_high=max(ratios, default=None),
                      draws=len(group_by(data["theorem2"], "init", "seed")))


def gd_edge_of_stability(data: dict, spec: dict) -> Claim:
    """GD settles only where lambda_max < 2/lr: per seed the largest lambda_max * lr / 2 in the second half of the run."""
    def settled(group: list[Row]) -> float | None:
        rows = [r for r in group if r["lambda_max"] is not None]
        half = max((r["step"] for r in rows), default=0) / 2
        return _finite_max([r["lambda_max"] * r["lr"] / 2 for r in rows if r["step"] >= half])

    return empirical("gd_edge_2_over_lr", spec, per_seed(data["edge_of_stability"], settled), reference=1.0)


# ---------------------------------------------------------------- empirical: training (the lr and depth studies)


def training_rows(data: dict[str, Any], spec: dict[str, Any]) -> tuple[list[Row], Any]:
    """The lr study's runs at the spec's ``budget`` (epochs; from ``lr/budgets.csv``, every budget) or, by default, at the
    longest (``lr/runs.csv``), with that budget (None when the tables carry no budgets); only the spec's ``activation``
    when the study has several (its ``activation`` column; without it every run is the pipeline model's, ``lr_activation``);
    ``drop_grid_edge``: without runs the study flags as selected on a grid edge (its ``grid_edge`` column)."""
    budget = spec.get("budget")
    rows = data["lr_runs"] if budget is None else [r for r in data.get("lr_budgets", []) if r.get("epochs") == budget]
    rows = _of_activation(rows, spec.get("activation"), data.get("lr_activation"))
    if spec.get("drop_grid_edge"):
        rows = [r for r in rows if not on_grid_edge(r)]
    present = budgets(rows)
    return ([r for r in rows if r.get("epochs") == present[-1]], present[-1]) if present else (list(rows), None)


def _of_activation(rows: Sequence[Row], activation: str | None, default: str | None) -> list[Row]:
    """The rows of ``activation`` (None: all); a row without an ``activation`` column is the ``default`` model's (any, when
    no default is known)."""
    return list(rows) if activation is None else [r for r in rows if (r.get("activation") or default or activation) == activation]


def budgets(rows: Sequence[Row]) -> list[Any]:
    """The training budgets (epochs) present in ``rows``, shortest first."""
    return sorted({r["epochs"] for r in rows if r.get("epochs") is not None})


def _by_seed(rows: Sequence[Row], key: str, metric: str) -> dict[Any, dict[Any, float]]:
    """{seed: {row[key]: row[metric]}}."""
    out: dict[Any, dict[Any, float]] = {}
    for r in rows:
        out.setdefault(r["seed"], {})[r[key]] = r[metric]
    return dict(sorted(out.items()))


CONTRASTS: dict[str, Callable[[float, float], float | None]] = {
    "difference": lambda a, b: a - b,
    "log10_ratio": lambda a, b: math.log10(a / b) if a > 0 and b > 0 else None,
}


def spectral_vs_comparator(data: dict, spec: dict) -> Claim:
    """``spec['metric']`` (test_acc or train_loss) of spectral minus the pre-registered comparator (``spec['comparator']``)
    at one lr setting (lrs chosen on val), paired by seed, for the spec's activation and optimizer, at the budget
    ``spec['budget']`` (default: the longest)."""
    rows, budget = training_rows(data, spec)
    rows = _only(setting_runs(rows), optim=spec["optim"], setting=spec["setting"])
    comparator, metric, contrast = spec["comparator"], spec["metric"], CONTRASTS[spec.get("contrast", "difference")]
    values = [contrast(m["spectral"], m[comparator]) for m in _by_seed(rows, "init", metric).values() if {"spectral", comparator} <= set(m)]
    return empirical(f"non_inferior_{spec['setting']}_{spec['optim']}_{spec.get('activation')}_{metric}", spec, values, reference=0.0,
                     budget=_budget_text(budget))


def _budget_text(budget: Any) -> str:
    return "the study's budget" if budget is None else f"{fmt(budget)} epochs"


def adam_robust_defaults(data: dict, spec: dict) -> Claim:
    """Spread over inits of the test accuracy at the default lr: SGD's minus Adam's, per seed."""
    rows, budget = training_rows(data, spec)
    rows = _only(setting_runs(rows), setting="default")
    spread = {optim: {seed: max(acc.values()) - min(acc.values()) for seed, acc in _by_seed(_only(rows, optim=optim), "init", "test_acc").items()}
              for optim in ("sgd", "adam")}
    values = [spread["sgd"][seed] - spread["adam"][seed] for seed in spread["sgd"] if seed in spread["adam"]]
    return empirical("adam_robust_defaults", spec, values, reference=0.0, budget=_budget_text(budget))


def _half_gap(lr: float, grid: Sequence[float]) -> float:
    """Half the larger log10 gap from ``lr`` to its grid neighbours (at a grid edge, the one inside): how far the best lr
    of a grid search may lie from the selected one; inf on a one-lr grid."""
    logs, at = {math.log10(g) for g in grid}, math.log10(lr)
    below, above = [at - g for g in logs if g < at], [g - at for g in logs if g > at]
    near = ([min(below)] if below else []) + ([min(above)] if above else [])
    return max(near) / 2 if near else math.inf


def curvature_predicts_lr(data: dict, spec: dict) -> Claim:
    """Per seed: log10 of (best lr x lambda_max(H_0)) of ``spec['init']`` over that of spectral, best lrs per seed chosen on
    val on the grid; 0 = lambda_max predicts the lr exactly. Grid-valued: each best lr is known to half its larger
    neighbouring grid gap (a refined grid narrows it), the difference to the sum of both. The grid of an init and seed
    is every lr the study ran for it (all budgets: successive halving keeps only some to the longest, a refinement adds
    lrs near the selection); ``spec['grid_every']`` keeps every n-th lr (a coarser grid)."""
    rows, budget = training_rows(data, spec)
    rows = [r for r in rows if r["optim"] == spec["optim"] and r["setting"] == "grid"]
    ran = [r for r in [*rows, *_of_activation(data.get("lr_budgets", []), spec.get("activation"), data.get("lr_activation"))]
           if r["optim"] == spec["optim"] and r["setting"] == "grid"]
    every = spec.get("grid_every", 1)
    grids = {key: sorted({r["lr"] for r in g})[::every] for key, g in group_by(ran, "init", "seed").items()}
    values, resolutions, raw, edges = [], [], [], 0
    for (seed,), group in sorted(group_by(rows, "seed").items()):
        best = {init: min((r for r in g if r["lr"] in grids.get((init, seed), [])), key=lambda r: loss_or_inf(r["val_loss"]), default=None)
                for (init,), g in group_by(group, "init").items()}
        other, own = best.get(spec["init"]), best.get("spectral")
        if other is None or own is None:
            continue
        values.append(math.log10(other["lr"] * other["lambda_max"] / (own["lr"] * own["lambda_max"])))
        raw.append(math.log10(other["lr"] / own["lr"]))
        resolutions.append(_half_gap(other["lr"], grids[(spec["init"], seed)]) + _half_gap(own["lr"], grids[("spectral", seed)]))
        edges += any(on_grid_edge(r) or r["lr"] in (grids[(init, seed)][0], grids[(init, seed)][-1])
                     for init, r in ((spec["init"], other), ("spectral", own)))
    step = statistics.fmean(resolutions) if resolutions else math.nan
    return empirical(f"curvature_predicts_lr_{spec['optim']}_{spec['init']}", spec, values,
                     lower=[v - r for v, r in zip(values, resolutions, strict=True)], upper=[v + r for v, r in zip(values, resolutions, strict=True)],
                     resolution=f"grid-valued: +-{fmt(step, 2)} decade (mean over seeds)", reference=0.0,
                     lr_spread=statistics.fmean(raw) if raw else None, step=step, budget=_budget_text(budget), grid_edges=edges)


def _depth_grid_edge(data: dict, activation: str, depth: Any, init: str, selected: float) -> str | None:
    """Where ``init``'s selected lr factor sits on the depth study's grid: 'lowest' / 'highest' factor tried, else None
    (for tables without the study's ``grid_edge`` column, which decides alone where it is written)."""
    tried = [r for r in data.get("depth_budgets", []) if r["activation"] == activation and r["depth"] == depth and r["init"] == init]
    factors = sorted({r["c"] for r in tried})
    if len(factors) < 2 or selected not in (factors[0], factors[-1]):
        return None
    return "lowest" if selected == factors[0] else "highest"


def depth_trainable(data: dict, spec: dict) -> Claim:
    """MLPs of ``spec['depth']`` hidden layers (default: the deepest trained) of one activation: spectral's train loss after
    the budget minus the comparator's, per seed, each init at its lr factor chosen on val. A selection on the edge of the
    lr-factor grid is named in the row with the best train loss at any lr tried ("at every lr tried, ...")."""
    source = data["depth_runs"] if spec.get("budget") is None else [r for r in data.get("depth_budgets", []) if r.get("epochs") == spec["budget"]]
    rows = _only(source, activation=spec["activation"])
    rows = [r for r in rows if r.get("lr") is None or r.get("best_lr") is None or r["lr"] == r["best_lr"]]
    depth = spec.get("depth", max((r["depth"] for r in rows), default=None))
    comparator = spec["comparator"]
    deepest = _only(rows, depth=depth)
    values = [loss["spectral"] - loss[comparator] for loss in _by_seed(deepest, "init", "train_loss").values() if {"spectral", comparator} <= set(loss)]
    notes = []
    for init in ("spectral", comparator):
        chosen = _only(deepest, init=init)
        flagged = next((r for r in chosen if on_grid_edge(r)), None)
        edge = (edge_words(flagged) if flagged else None) if any("grid_edge" in r for r in chosen) else (
            _depth_grid_edge(data, spec["activation"], depth, init, chosen[0]["c"]) if chosen and "c" in chosen[0] else None)
        if edge:
            tried = [r["train_loss"] for r in data.get("depth_budgets", [])
                     if (r["activation"], r["depth"], r["init"]) == (spec["activation"], depth, init)]
            notes.append(f"{init}'s lr sits on the grid edge ({edge}): at every lr tried its train loss "
                         f"stays >= {fmt(min(finite(tried), default=None))} nats")
    epochs = max((r.get("epochs") for r in deepest if r.get("epochs") is not None), default=None)
    steps = max((r.get("steps") for r in deepest if r.get("steps") is not None), default=None)
    claim = empirical(f"depth_trainable_{spec['activation']}_{depth}", spec, values, reference=0.0, depth=depth,
                      budget=f"{fmt(epochs)} epochs ({fmt(steps)} steps)" if epochs else "the study's budget",
                      spectral_loss=mean_std(r["train_loss"] for r in _only(deepest, init="spectral"))[0],
                      comparator_loss=mean_std(r["train_loss"] for r in _only(deepest, init=comparator))[0])
    return replace(claim, note="; ".join(filter(None, [claim.note, *notes])) or None)


CLAIMS: dict[str, Callable[[dict, dict], Claim]] = {
    f.__name__: f for f in (
        rem3_sigma_ratio, spectral_variance_flow, sec12_gamma_star_quadratic, rem1_relu_gauss_newton, seed_symmetry,
        seed_deep_linear, momentum_terminal_velocity, theorem2_corrected_bound, cor2_rmt_norm, sec34_unit_variance,
        cor1_spectral_jacobian, variance_gain, dead_relu_bias, cauchy_elbow, momentum_canyon, rem2_gauss_newton_gap,
        rem2_near_vs_far, gamma_star_empirical, theorem2_as_written, gd_edge_of_stability, spectral_vs_comparator,
        adam_robust_defaults, curvature_predicts_lr, depth_trainable,
    )
}


# ---------------------------------------------------------------- the protocol: sub-rows, rules, alternatives, Holm


def resolve(spec: dict[str, Any], protocol: dict[str, Any], activation: str | None) -> dict[str, Any]:
    """The spec with its pre-registered comparator filled in (``comparator: by_activation`` -> ``protocol['comparators']``
    for the row's activation, or the lr study's ``activation``)."""
    if spec.get("comparator") != "by_activation":
        return spec
    return spec | {"comparator": protocol["comparators"][spec.get("activation", activation)]}


def _combine_every(verdicts: Sequence[str]) -> str:
    """holds when every sub-row holds, fails when any fails, else inconclusive (derivation verdicts count alike)."""
    decided = [{VERIFIED: HOLDS, CONTRADICTED: FAILS}.get(v, v) for v in verdicts]
    if FAILS in decided:
        return FAILS
    return HOLDS if decided and all(v == HOLDS for v in decided) else INCONCLUSIVE


def _p_every(parts: Sequence[Claim], h1: str) -> float:
    """The row's p-value for its pre-registered direction under the rule 'every': holds needs every sub-row inside
    (intersection-union test: the largest p_inside), fails needs one outside (Bonferroni over the k sub-rows)."""
    if h1 == HOLDS:
        return max(c.p_in for c in parts)
    return min(1.0, len(parts) * min(c.p_out for c in parts))


RULES: dict[str, tuple[Callable[[Sequence[str]], str], Callable[[Sequence[Claim], str], float]]] = {"every": (_combine_every, _p_every)}


def sub_label(sub: dict[str, Any]) -> str:
    """A sub-row's name: its overrides that are not texts or regions (e.g. 'init spectral', 'metric test_acc')."""
    return ", ".join(f"{k} {fmt(v)}" for k, v in sub.items() if k not in TEXT_KEYS) or "-"


def _deciding(parts: Sequence[Claim], verdict: str, h1: str) -> Claim:
    """The sub-row the row's verdict turns on: a failing one (smallest p_outside), else the weakest for the direction."""
    if verdict in (FAILS, CONTRADICTED):
        return min((c for c in parts if c.verdict in (FAILS, CONTRADICTED)), key=lambda c: c.p_out if c.p_out is not None else 0.0)
    if verdict in (HOLDS, VERIFIED) or h1 == HOLDS:
        return max(parts, key=lambda c: c.p_in if c.p_in is not None else 0.0)
    return min(parts, key=lambda c: c.p_out if c.p_out is not None else 1.0)


def evaluate(spec: dict[str, Any], protocol: dict[str, Any], data: dict[str, Any], activation: str | None) -> Claim:
    """One row of ``params.yaml``: its check run on every sub-row (``sub``: a list of overrides, e.g. one per init) and the
    verdicts combined by its ``rule``; the row carries its id, direction (``h1``), kind and the sub-rows."""
    subs = spec.get("sub") or [{}]
    specs = [resolve({k: v for k, v in spec.items() if k != "sub"} | sub, protocol, activation) for sub in subs]
    parts = [CLAIMS[s["check"]](data, s) for s in specs]
    h1 = spec.get("h1", HOLDS)
    combine, p_rule = RULES[spec.get("rule", "every")]
    verdict = combine([c.verdict for c in parts]) if "sub" in spec else parts[0].verdict
    deciding = _deciding(parts, verdict, h1)
    where = specs[parts.index(deciding)]
    texts = {"claim": render(spec["claim"], where)} if "sub" in spec else {}
    p = (p_rule(parts, h1) if parts[0].section == EMPIRICAL else None)
    notes = [_worse_note(c, s) or c.note for c, s in zip(parts, specs, strict=True)]
    rows = tuple({"label": sub_label(sub), "verdict": c.verdict, "value": c.value, "interval": c.interval, "p_in": c.p_in,
                  "p_out": c.p_out, "measured": c.measured, "expected": c.expected, "note": note}
                 for sub, c, note in zip(subs, parts, notes, strict=True)) if "sub" in spec else ()
    note = "; ".join(f"{r['label']}: {r['note']}" for r in rows if r["note"]) if rows else notes[0]
    finding = render(spec.get("finding", {}).get(verdict), _values(deciding, where) | {"sub": sub_label(subs[parts.index(deciding)])})
    return replace(deciding, id=spec["id"], verdict=verdict, p=p, h1=h1 if p is not None else None, kind=spec.get("kind", "claim"),
                   sub_rows=rows, note=note or None, finding=finding, **texts)


def _values(claim: Claim, spec: dict[str, Any]) -> dict[str, Any]:
    """Template values of a row from its deciding sub-row (the spec's own values win for the row's texts)."""
    iv = claim.interval or {}
    return {"value": claim.value, "mean": iv.get("mean", claim.value), "ci_low": iv.get("low"), "ci_high": iv.get("high")} | {
        k: v for k, v in spec.items() if isinstance(v, (int, float, str))}


def _worse_note(claim: Claim, spec: dict[str, Any]) -> str | None:
    """'non-inferior but significantly worse' for a one-sided margin row that holds while its interval excludes the reference
    on the worse side."""
    if claim.section != EMPIRICAL or claim.verdict != HOLDS or claim.reference is None or not claim.interval:
        return None
    low, high = region(spec) if "region" in spec else (-math.inf, math.inf)
    iv, ref = claim.interval, claim.reference
    worse = (math.isinf(high) and low < ref and iv["high"] < ref) or (math.isinf(low) and high > ref and iv["low"] > ref)
    if not worse:
        return None
    return f"within the margin, but significantly worse than the comparator: {fmt(iv['mean'])} [{fmt(iv['low'])}, {fmt(iv['high'])}]"


def scaled_region(spec: dict[str, Any], factor: float, reference: float) -> dict[str, Any] | None:
    """The spec with its margin (distance of each finite region bound from ``reference``) times ``factor``, its sub-rows' own
    regions alike; None without any margin."""
    def scaled(part: dict[str, Any]) -> dict[str, Any] | None:
        if "rel_tol" in part:
            return part | {"rel_tol": part["rel_tol"] * factor}
        bounds = part.get("region")
        if bounds is None or all(b is None or b == reference for b in bounds):
            return None
        return part | {"region": [None if b is None else reference + factor * (b - reference) for b in bounds]}

    subs = [scaled(sub) for sub in spec.get("sub") or []]
    own = scaled({k: v for k, v in spec.items() if k != "sub"})
    if own is None and not any(subs):
        return None
    return (own or spec) | ({"sub": [new or old for new, old in zip(subs, spec["sub"], strict=True)]} if subs else {})


SUBSTANTIVE, POWER = "substantive", "power"
BUDGET_TABLES = {"depth_trainable": "depth_budgets"}  # where a check's shorter budgets are (default: the lr study's)


def alternatives(spec: dict[str, Any], claim: Claim, protocol: dict[str, Any], data: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """The alternative protocols of one empirical row, each as (label, kind, spec), computable from the data collected.
    Substantive (a reader could have chosen them): each other measurement of ``measures``, margin x0.5 / x2, the other
    family's comparator, the other optimizer, every shorter budget, a grid of every second value, the grid-edge
    selections left out. Power only (same question, less or differently summarised data): the other interval method and
    each seed left out (n >= 3)."""
    robust = protocol["robustness"]
    out: list[tuple[str, str, dict[str, Any]]] = [
        (f"measure {m}", SUBSTANTIVE, spec | {"measure": m}) for m in spec.get("measures", {}) if m != spec.get("measure")]
    if claim.reference is not None:
        out += [(f"margin x{fmt(f)}", SUBSTANTIVE, s) for f in robust["margin_factors"] if (s := scaled_region(spec, f, claim.reference)) is not None]
    if spec.get("comparator") == "by_activation":
        out.append(("the other family's comparator", SUBSTANTIVE,
                    spec | {"sub": [sub | {"comparator": robust["comparators"][sub.get("activation", spec.get("activation"))]}
                                    for sub in spec.get("sub") or [{}]]}))
    if "optim" in spec and spec["check"] in robust["optimizer_checks"]:
        out.append((f"optimizer {robust['optimizers'][spec['optim']]}", SUBSTANTIVE, spec | {"optim": robust["optimizers"][spec["optim"]]}))
    if spec["check"] in robust["budget_checks"]:
        table = data.get(BUDGET_TABLES.get(spec["check"], "lr_budgets"), [])
        out += [(f"budget {fmt(b)} epochs", SUBSTANTIVE, spec | {"budget": b}) for b in budgets(table)[:-1]]
    if spec["check"] in robust["grid_checks"]:
        out.append(("every 2nd grid value", SUBSTANTIVE, spec | {"grid_every": 2}))
    if spec["check"] in robust["grid_edge_checks"] and any(on_grid_edge(r) for r in data.get("lr_runs", [])):
        out.append(("grid-edge selections left out", SUBSTANTIVE, spec | {"drop_grid_edge": True}))
    method = spec.get("interval", "t")
    if method in robust["interval"]:
        out.append((f"{robust['interval'][method]} interval", POWER, spec | {"interval": robust["interval"][method]}))
    n = max([r["interval"]["n"] for r in claim.sub_rows if r["interval"]] or [claim.interval["n"] if claim.interval else 0])
    if claim.interval and claim.interval["method"] in ("t", "bootstrap") and n >= 3:
        out += [(f"seed #{i + 1} left out", POWER, spec | {"drop_seed": i}) for i in range(n)]
    return out


def robustness(claim: Claim, recomputed: Sequence[tuple[str, Claim]]) -> str:
    """``robust (k alternatives)`` when every alternative gives the same raw verdict, else the choices that flip it."""
    flips = [f"{label} -> {c.verdict}" for label, c in recomputed if c.verdict != claim.verdict]
    seeds_flip = [f for f in flips if "left out" in f and f.startswith("seed")]
    named = [f for f in flips if f not in seeds_flip] + ([f"{len(seeds_flip)} of the seeds left out -> "
                                                          f"{', '.join(sorted({f.split('-> ')[1] for f in seeds_flip}))}"] if seeds_flip else [])
    labels = {label.split(" #")[0] if label.startswith("seed") else label for label, _ in recomputed}
    if not labels:
        return "-"
    return f"robust ({len(labels)} alternative{'s' if len(labels) != 1 else ''})" if not flips else "flips: " + "; ".join(named)


def build(data: dict[str, Any], protocol: dict[str, Any], activation: str | None = None) -> list[Claim]:
    """One row per spec of ``protocol['claims']`` (``check`` names its function in :data:`CLAIMS`; ``id`` is distinct), in
    params order; empirical ones with their Holm-adjusted verdict (the pre-registered direction ``h1`` at family-wise 5%
    over the empirical rows) and their robustness columns (substantive alternatives apart from power-only ones)."""
    ids = [spec["id"] for spec in protocol["claims"]]
    if (duplicates := sorted({i for i in ids if ids.count(i) > 1})):
        raise ValueError(f"report.claims: every id must be distinct, repeated: {duplicates}")
    data = {"lr_activation": activation} | data
    rows = []
    for spec in protocol["claims"]:
        claim = evaluate(spec, protocol, data, activation)
        if claim.section == EMPIRICAL:
            recomputed = [(label, kind, evaluate(alt, protocol, data, activation)) for label, kind, alt in alternatives(spec, claim, protocol, data)]
            claim = replace(claim, robustness=robustness(claim, [(lb, c) for lb, k, c in recomputed if k == SUBSTANTIVE]),
                            power=robustness(claim, [(lb, c) for lb, k, c in recomputed if k == POWER]))
        rows.append(claim)
    empirical_rows = [i for i, c in enumerate(rows) if c.section == EMPIRICAL]
    adjusted = holm([rows[i].p for i in empirical_rows])
    for i, p in zip(empirical_rows, adjusted, strict=True):
        adjusted = rows[i].h1 if p <= ALPHA else INCONCLUSIVE
        finding = rows[i].finding if adjusted == rows[i].verdict else None  # a finding states only a Holm-covered verdict
        rows[i] = replace(rows[i], p_adjusted=p, adjusted=adjusted, finding=finding)
    return rows
