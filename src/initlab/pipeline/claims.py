"""The claims of the report: data (``params.yaml`` ``report.claims``) filled by one scaffold.

A claim's spec in ``params.yaml`` holds its text, source, expectation and correction (templates
whose ``{placeholders}`` are filled from the spec itself and from the data), the region in which
it holds and, for empirical claims, the interval method. A function of :data:`CLAIMS` turns tidy
rows into the number(s) the verdict rests on and hands them to :func:`identity` or :func:`empirical`:

* an **identity** (a derivation or exact check: no randomness decides it) is ``verified`` when the
  computed number lies in the region, else ``contradicted``;
* an **empirical** claim has one value per seed; the verdict compares their 95% interval with the
  region: ``holds`` inside, ``fails`` outside, ``inconclusive`` when it straddles a boundary.

A correction is printed only when the verdict is ``contradicted`` or ``fails``. Pure functions on
rows (tested on synthetic rows).
"""

import math
import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from initlab.init import spectral_std
from initlab.pipeline.tables import Row, group_by, loss_or_inf, setting_runs
from initlab.stats import Interval, finite, interval

VERIFIED, CONTRADICTED = "verified", "contradicted"
HOLDS, FAILS, INCONCLUSIVE = "holds", "fails", "inconclusive"
IDENTITY, EMPIRICAL = "identity", "empirical"
CORRECTED = (CONTRADICTED, FAILS)


@dataclass(frozen=True)
class Claim:
    """One row of the report (``section`` identity or empirical)."""

    section: str
    id: str
    claim: str
    source: str
    measured: str
    expected: str
    verdict: str
    value: float | None
    reference: float | None = None
    interval: dict[str, Any] | None = None
    correction: str | None = None
    figure: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def _fields(spec: dict[str, Any], data: dict[str, Any], reference: float | None = None) -> dict[str, Any]:
    low, high = region(spec, reference)
    return spec | data | {"low": low, "high": high}


def identity(cid: str, spec: dict[str, Any], computed: float | None, closed_form: float | None, **data: Any) -> Claim:
    """An exact check: ``computed`` beside its ``closed_form``; verified when ``computed`` lies in the spec's region."""
    values = _fields(spec, data | {"computed": computed, "closed_form": closed_form}, closed_form)
    verdict = point_verdict(computed, values["low"], values["high"])
    return Claim(IDENTITY, cid, render(spec["claim"], values), spec["source"], render(spec["measured"], values),
                 render(spec["expected"], values), verdict, computed, closed_form, None,
                 render(spec.get("correction"), values) if verdict in CORRECTED else None, spec.get("figure"))


def empirical(cid: str, spec: dict[str, Any], per_seed: Sequence[float | None], **data: Any) -> Claim:
    """A claim decided by the 95% interval (``spec['interval']``: t or bootstrap) of its per-seed values against the region."""
    iv = interval(per_seed, spec.get("interval", "t"))
    values = _fields(spec, data | {"n": iv.n, "mean": iv.mean, "ci_low": iv.low, "ci_high": iv.high, "method": iv.method})
    verdict = interval_verdict(iv, *region(spec))
    return Claim(EMPIRICAL, cid, render(spec["claim"], values), spec["source"], render(spec["measured"], values),
                 render(spec["expected"], values), verdict, iv.mean, None, iv.to_dict(),
                 render(spec.get("correction"), values) if verdict in CORRECTED else None, spec.get("figure"))


def per_seed(rows: Sequence[Row], value: Callable[[list[Row]], float | None]) -> list[float | None]:
    """``value`` of each seed's rows, in seed order."""
    return [value(group) for _, group in sorted(group_by(rows, "seed").items())]


def _only(rows: Sequence[Row], **match: Any) -> list[Row]:
    return [r for r in rows if all(r.get(k) == v for k, v in match.items())]


def _finite_max(values: Sequence[Any]) -> float | None:
    return max(finite(values), default=None)


# ---------------------------------------------------------------- identities and derivations


def rem3_sigma_ratio(data: dict, spec: dict) -> Claim:
    """Paper Remark 3 on a square layer of the pipeline's width: sigma_spectral / sigma_Glorot."""
    n = spec["width"]
    computed = spectral_std(n, n) / math.sqrt(2 / (n + n))
    return identity("rem3_sigma_ratio", spec, computed, math.sqrt(2 * n) / (math.sqrt(2) * 2 * math.sqrt(n)))


def spectral_variance_flow(data: dict, spec: dict) -> Claim:
    """n sigma^2 of the spectral init on a square layer vs Glorot's 1; the depth study's measured gain beside it."""
    n = spec["width"]
    gains = [r["variance_ratio"] ** (1 / (r["depth"] - 1)) for r in _only(data["depth_at_init"], init="spectral", activation="tanh")
             if r["depth"] > 1 and r["variance_ratio"]]
    return identity("spectral_variance_flow", spec, n * spectral_std(n, n) ** 2, 0.25,
                    measured_gain=statistics.fmean(gains) if gains else None)


def sec34_unit_variance(data: dict, spec: dict) -> Claim:
    """Paper §3.4: E sigma_max of an m x n unit-variance matrix, as written 1/(sqrt m + sqrt n)."""
    rows = data["rmt"]
    m, n = max(((r["m"], r["n"]) for r in rows), key=lambda shape: shape[0] * shape[1])
    computed = statistics.fmean(r["norm"] / r["sigma"] for r in _only(rows, m=m, n=n))
    return identity("sec34_unit_variance_norm", spec, computed, math.sqrt(m) + math.sqrt(n), m=m, n=n,
                    paper=1 / (math.sqrt(m) + math.sqrt(n)))


def rem1_relu_gauss_newton(data: dict, spec: dict) -> Claim:
    """Paper Remark 1: for ReLU every layer block's lambda_max(H) equals lambda_max(GN)."""
    blocks = [r for r in data["curvature"] if r["activation"] == "relu" and str(r["block"]) != "all"]
    return identity("rem1_relu_gauss_newton", spec, _finite_max([r["rel_diff"] for r in blocks]), 0.0, blocks=len(blocks))


def seed_symmetry(data: dict, spec: dict) -> Claim:
    """Zero / constant init: hidden units stay identical (pairwise distance 0) under training."""
    rows = [r for r in data["symmetry"] if r["init"] in spec["symmetric_inits"]]
    steps = max((r["step"] for r in rows), default=0)
    return identity("seed_symmetry", spec, _finite_max([r["distance"] for r in rows if r["step"] == steps]), 0.0, steps=steps)


def seed_deep_linear(data: dict, spec: dict) -> Claim:
    """W = s I in an L-layer linear net: ||z^(L)|| / ||z^(1)|| = s^(L-1)."""
    rows = [r for r in data["deep_linear"] if r.get("scale") == spec["scale"]]
    by_layer = {r["layer"]: r for r in rows}
    depth = max(by_layer, default=1)
    computed = by_layer[depth]["activation_norm"] / by_layer[1]["activation_norm"] if rows else None
    return identity("seed_deep_linear", spec, computed, spec["scale"] ** (depth - 1), depth=depth)


def seed_cauchy_elbow(data: dict, spec: dict) -> Claim:
    """w, b ~ N(0, 1): the elbow -b/w is standard Cauchy (Kolmogorov-Smirnov distance ~ 0)."""
    summary = data["elbow"]
    return identity("seed_cauchy_elbow", spec, summary["ks_cauchy"], 0.0, samples=summary["samples"], ks_normal=summary["ks_normal"])


def momentum_terminal_velocity(data: dict, spec: dict) -> Claim:
    """Momentum under a constant gradient: step / (eps ||g||) -> 1 / (1 - alpha)."""
    velocity = data["canyon"]["terminal_velocity"]
    return identity("momentum_terminal_velocity", spec, velocity["speedup"], velocity["predicted_speedup"],
                    alpha=velocity["alpha"], steps=velocity["steps"])


def momentum_canyon(data: dict, spec: dict) -> Claim:
    """Best heavy-ball momentum vs best GD on a fixed quadratic (deterministic): speed-up beside sqrt(kappa)."""
    summary = data["canyon"]
    return identity("momentum_canyon", spec, summary["steps_ratio"], summary["sqrt_condition"], condition=summary["condition"],
                    gd_steps=summary["gd"]["steps"], momentum_steps=summary["momentum"]["steps"])


# ---------------------------------------------------------------- empirical: random matrices, signal propagation


def cor2_rmt_norm(data: dict, spec: dict) -> Claim:
    """Paper Cor. 2: ||W|| / ((sqrt m + sqrt n) sigma) ~ 1, per trial the mean over the large shapes."""
    large = [r for r in data["rmt"] if min(r["m"], r["n"]) >= spec["min_dim"]]
    values = [statistics.fmean(r["ratio"] for r in group) for _, group in sorted(group_by(large, "trial").items())]
    return empirical("cor2_rmt_norm", spec, values, shapes=len(group_by(large, "m", "n")))


def cor1_spectral_jacobian(data: dict, spec: dict) -> Claim:
    """Paper Cor. 1-2: spectral init gives mean ||J^(k)|| ~ 1 (shallowest MLP of the depth study)."""
    rows = _only(data["depth_at_init"], init="spectral", activation=spec["activation"])
    depth = min((r["depth"] for r in rows), default=None)
    values = per_seed(_only(rows, depth=depth), lambda g: g[0]["jacobian_norm_mean"])
    return empirical(f"cor1_spectral_jacobian_{spec['activation']}", spec, values, depth=depth)


def xavier_fails_relu(data: dict, spec: dict) -> Claim:
    """Glorot halves Var(u) per square ReLU layer: per-layer gain at the deepest depth."""
    rows = _only(data["depth_at_init"], activation="relu")
    depth = max((r["depth"] for r in rows), default=None)

    def gain(init: str) -> list[float | None]:
        return per_seed(_only(rows, init=init, depth=depth), lambda g: g[0]["variance_ratio"] ** (1 / (depth - 1)))

    kaiming = interval(gain("kaiming_normal"))
    return empirical("xavier_fails_relu", spec, gain("xavier_normal"), depth=depth, kaiming=kaiming.mean)


def seed_dead_relu(data: dict, spec: dict) -> Claim:
    """A 0.1 ReLU bias leaves no more dead units than zero bias: per seed, the worst init's reduction."""
    def reduction(group: list[Row]) -> float | None:
        mean = {(i, b): statistics.fmean(r["dead_fraction"] for r in g) for (i, b), g in group_by(group, "init", "bias").items()}
        inits = {i for i, _ in mean}
        return min(mean[(i, "zeros")] - mean[(i, "relu_0.1")] for i in inits) if inits else None

    return empirical("seed_dead_relu", spec, per_seed(data["dead_relu"], reduction))


# ---------------------------------------------------------------- empirical: curvature


def rem2_smooth_gauss_newton(data: dict, spec: dict) -> Claim:
    """Paper Remark 2: for tanh, GN approximates every layer block's lambda_max at init."""
    rows = [r for r in data["curvature"] if r["activation"] != "relu" and str(r["block"]) != "all"]
    far = [r["rel_diff"] for r in rows if r["state"] != "init"]
    values = per_seed(_only(rows, state="init"), lambda g: max(r["rel_diff"] for r in g))
    return empirical("rem2_smooth_gauss_newton", spec, values, far=_finite_max(far))


def sec12_gamma_star(data: dict, spec: dict) -> Claim:
    """Paper §1.2: gamma* = 1/lambda_max is the largest safe step: per seed the smallest (over inits) largest stable c."""
    def factor(group: list[Row]) -> float | None:
        stable = {init: max((r["factor"] for r in g if r["stable"] in (True, "True")), default=0.0)
                  for (init,), g in group_by(group, "init").items()}
        return min(stable.values()) if stable else None

    return empirical("sec12_gamma_star", spec, per_seed(data["lr_stability"], factor))


def gd_edge_of_stability(data: dict, spec: dict) -> Claim:
    """GD settles only where lambda_max < 2/lr: per seed the largest lambda_max * lr / 2 in the second half of the run."""
    def settled(group: list[Row]) -> float | None:
        rows = [r for r in group if r["lambda_max"] is not None]
        half = max((r["step"] for r in rows), default=0) / 2
        return _finite_max([r["lambda_max"] * r["lr"] / 2 for r in rows if r["step"] >= half])

    return empirical("gd_edge_2_over_lr", spec, per_seed(data["edge_of_stability"], settled))


def theorem2_bound(data: dict, spec: dict) -> Claim:
    """Paper Theorem 2: lambda_max(H_w(k)) <= bound; per seed the largest ratio over layers and inits (``spec['ratio']``)."""
    values = per_seed(data["theorem2"], lambda g: _finite_max([r[spec["ratio"]] for r in g]))
    inits = sorted({r["init"] for r in data["theorem2"]})
    return empirical(f"thm2_{spec['ratio']}", spec, values, inits=inits, layers=len(group_by(data["theorem2"], "layer")))


# ---------------------------------------------------------------- empirical: training (the lr and depth studies)


def _by_seed(rows: Sequence[Row], key: str, metric: str) -> dict[Any, dict[Any, float]]:
    """{seed: {row[key]: row[metric]}}."""
    out: dict[Any, dict[Any, float]] = {}
    for r in rows:
        out.setdefault(r["seed"], {})[r[key]] = r[metric]
    return dict(sorted(out.items()))


def spectral_non_inferior(data: dict, spec: dict) -> Claim:
    """Test accuracy of spectral minus the best other init at one lr setting, paired by seed."""
    rows = _only(setting_runs(data["lr_runs"]), optim=spec["optim"], setting=spec["setting"])
    values = [acc["spectral"] - max(v for i, v in acc.items() if i != "spectral")
              for acc in _by_seed(rows, "init", "test_acc").values() if "spectral" in acc and len(acc) > 1]
    others = sorted({r["init"] for r in rows} - {"spectral"})
    return empirical(f"non_inferior_{spec['setting']}_{spec['optim']}", spec, values, others=others)


def adam_robust_defaults(data: dict, spec: dict) -> Claim:
    """Spread over inits of the test accuracy at the default lr: SGD's minus Adam's, per seed."""
    rows = _only(setting_runs(data["lr_runs"]), setting="default")
    spread = {optim: {seed: max(acc.values()) - min(acc.values()) for seed, acc in _by_seed(_only(rows, optim=optim), "init", "test_acc").items()}
              for optim in ("sgd", "adam")}
    values = [spread["sgd"][seed] - spread["adam"][seed] for seed in spread["sgd"] if seed in spread["adam"]]
    return empirical("adam_robust_defaults", spec, values)


def curvature_predicts_lr(data: dict, spec: dict) -> Claim:
    """Per seed: log10 of max/min over inits of best_lr(seed) * lambda_max(H_0); 0 = lambda_max predicts the lr exactly."""
    grid = [r for r in data["lr_runs"] if r["optim"] == spec["optim"] and r["setting"] != "curvature"]
    values, raw = [], []
    for _, group in sorted(group_by(grid, "seed").items()):
        best = {init: min(g, key=lambda r: loss_or_inf(r["val_loss"]))
                for (init,), g in group_by(group, "init").items()}
        products = [r["lr"] * r["lambda_max"] for r in best.values()]
        values.append(math.log10(max(products) / min(products)))
        raw.append(math.log10(max(r["lr"] for r in best.values()) / min(r["lr"] for r in best.values())))
    return empirical(f"curvature_predicts_lr_{spec['optim']}", spec, values, lr_spread=statistics.fmean(raw) if raw else None)


def depth_trainable(data: dict, spec: dict) -> Claim:
    """Deepest MLP: spectral's train loss after the budget minus the best other init's, per seed."""
    rows = _only(data["depth_runs"], activation=spec["activation"])
    depth = max((r["depth"] for r in rows), default=None)
    values = [loss["spectral"] - min(v for i, v in loss.items() if i != "spectral")
              for loss in _by_seed(_only(rows, depth=depth), "init", "train_loss").values() if "spectral" in loss and len(loss) > 1]
    return empirical(f"depth_trainable_{spec['activation']}", spec, values, depth=depth,
                     spectral_loss=statistics.fmean(r["train_loss"] for r in _only(rows, depth=depth, init="spectral")))


CLAIMS: dict[str, Callable[[dict, dict], Claim]] = {
    f.__name__: f for f in (
        rem3_sigma_ratio, spectral_variance_flow, sec34_unit_variance, rem1_relu_gauss_newton, seed_symmetry, seed_deep_linear,
        seed_cauchy_elbow, momentum_terminal_velocity, momentum_canyon, cor2_rmt_norm, cor1_spectral_jacobian, xavier_fails_relu,
        seed_dead_relu, rem2_smooth_gauss_newton, sec12_gamma_star, gd_edge_of_stability, theorem2_bound, spectral_non_inferior,
        adam_robust_defaults, curvature_predicts_lr, depth_trainable,
    )
}


def build(data: dict[str, Any], specs: Sequence[dict[str, Any]]) -> list[Claim]:
    """One claim per spec (``check`` names its function in :data:`CLAIMS`), in the order of ``params.yaml``."""
    return [CLAIMS[spec["check"]](data, spec) for spec in specs]
