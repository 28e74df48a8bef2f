"""Every claim function on synthetic rows, for each of its outcomes; claim texts come from params only."""

import copy
import math
import re

import pytest
import yaml

from initlab.config import PROJECT_ROOT
from initlab.pipeline import claims
from initlab.pipeline.claims import CONTRADICTED, FAILS, HOLDS, INCONCLUSIVE, VERIFIED
from initlab.stats import t_interval

SPECS = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())["report"]["claims"]


def spec(check: str, **match) -> dict:
    return copy.deepcopy(next(s for s in SPECS if s["check"] == check and all(s.get(k) == v for k, v in match.items())))


# Per-seed values whose 95% t-interval lies inside [lo, hi], outside it, or straddles a finite bound.
def values_for(outcome: str, lo: float, hi: float) -> list[float]:
    bound = lo if math.isfinite(lo) else hi
    span = hi - lo if math.isfinite(hi - lo) else max(abs(bound), 0.1)
    inside = (lo + hi) / 2 if math.isfinite(hi - lo) else bound + (span / 2 if math.isfinite(lo) else -span / 2)
    outside = hi + span if math.isfinite(hi) else lo - span
    centre = {HOLDS: inside, FAILS: outside, INCONCLUSIVE: bound}[outcome]
    return [centre + 0.01 * span * d for d in (-2, -1, 0, 1, 2)]


def bounds(s: dict) -> tuple[float, float]:
    return claims.region(s)


def rows_rmt(values):
    return {"rmt": [{"m": 512, "n": 512, "trial": k, "ratio": v, "norm": v, "sigma": 1.0} for k, v in enumerate(values)]}


def rows_jacobian(values, activation):
    return {"depth_at_init": [{"init": "spectral", "activation": activation, "depth": 2, "seed": s, "jacobian_norm_mean": v, "variance_ratio": 0.25}
                              for s, v in enumerate(values)]}


def rows_xavier(values):
    depth = 3
    rows = [{"init": "xavier_normal", "activation": "relu", "depth": depth, "seed": s, "variance_ratio": v ** (depth - 1)}
            for s, v in enumerate(values)]
    return {"depth_at_init": rows + [r | {"init": "kaiming_normal", "variance_ratio": 1.0} for r in rows]}


def rows_dead(values):
    return {"dead_relu": [{"seed": s, "init": "spectral", "bias": bias, "layer": 0, "dead_fraction": 0.5 - (v if bias == "relu_0.1" else 0)}
                          for s, v in enumerate(values) for bias in ("zeros", "relu_0.1")]}


def rows_gn(values):
    return {"curvature": [{"seed": s, "activation": "tanh", "block": 0, "state": state, "rel_diff": v * scale}
                          for s, v in enumerate(values) for state, scale in (("init", 1.0), ("trained", 3.0))]}


def rows_gamma(values):
    return {"lr_stability": [{"seed": s, "init": "spectral", "factor": f, "stable": f <= v}
                             for s, v in enumerate(values) for f in (0.5, v, 1e9)]}


def rows_edge(values):
    return {"edge_of_stability": [{"seed": s, "step": step, "lr": 2.0, "lambda_max": v if step else 5 * v}
                                  for s, v in enumerate(values) for step in (0, 10)]}


def lr_rows(acc, optim="sgd", lr=0.1, **extra):
    """One lr-study run per (seed, init) with test accuracy acc[(seed, init)]."""
    return [{"init": init, "optim": optim, "seed": seed, "lr": lr, "default_lr": lr, "setting": "grid", "lambda_max": 1.0,
             "val_loss": 1.0, "test_acc": a, **extra} for (seed, init), a in acc.items()]


def rows_non_inferior(values):
    acc = {(s, init): 0.9 + (v if init == "spectral" else 0) for s, v in enumerate(values) for init in ("spectral", "xavier_normal")}
    return {"lr_runs": lr_rows(acc)}


def rows_adam(values):
    """SGD's spread over inits max(v, 0), Adam's max(-v, 0): their difference is v."""
    sgd = lr_rows({(s, i): 0.9 + (max(v, 0) if i == "spectral" else 0) for s, v in enumerate(values) for i in ("spectral", "xavier_normal")})
    adam = lr_rows({(s, i): 0.9 + (max(-v, 0) if i == "spectral" else 0) for s, v in enumerate(values) for i in ("spectral", "xavier_normal")},
                   optim="adam", lr=1e-3)
    return {"lr_runs": sgd + adam}


def rows_curvature_lr(values):
    rows = []
    for s, v in enumerate(values):
        for init, lam in (("spectral", 1.0), ("xavier_normal", 10.0 ** v)):
            rows += [{"init": init, "optim": "sgd", "seed": s, "lr": 0.1, "default_lr": 0.1, "lambda_max": lam, "setting": "grid",
                      "val_loss": 1.0, "test_acc": 0.9}]
    return {"lr_runs": rows}


def rows_depth(values, activation):
    return {"depth_runs": [{"init": init, "activation": activation, "depth": 16, "seed": s, "train_loss": 1.0 + (v if init == "spectral" else 0)}
                           for s, v in enumerate(values) for init in ("spectral", "kaiming_normal")]}


def rows_theorem2(values):
    return {"theorem2": [{"init": init, "seed": s, "layer": k, "ratio_as_written": v * (1 if k else 0.5), "ratio_corrected": v / 10}
                         for s, v in enumerate(values) for init in ("spectral", "xavier_normal") for k in (0, 1)]}


EMPIRICAL = [
    (spec("cor2_rmt_norm"), rows_rmt),
    (spec("cor1_spectral_jacobian", activation="tanh"), lambda v: rows_jacobian(v, "tanh")),
    (spec("xavier_fails_relu"), rows_xavier),
    (spec("seed_dead_relu"), rows_dead),
    (spec("rem2_smooth_gauss_newton"), rows_gn),
    (spec("sec12_gamma_star"), rows_gamma),
    (spec("gd_edge_of_stability"), rows_edge),
    (spec("theorem2_bound", ratio="ratio_as_written"), rows_theorem2),
    (spec("spectral_non_inferior", optim="sgd", setting="best_lr"), rows_non_inferior),
    (spec("spectral_non_inferior", optim="sgd", setting="default"), rows_non_inferior),
    (spec("adam_robust_defaults"), rows_adam),
    (spec("curvature_predicts_lr", optim="sgd"), rows_curvature_lr),
    (spec("depth_trainable", activation="relu"), lambda v: rows_depth(v, "relu")),
]


@pytest.mark.parametrize("outcome", [HOLDS, FAILS, INCONCLUSIVE])
@pytest.mark.parametrize(("claim_spec", "make"), EMPIRICAL, ids=[f"{s['check']}-{i}" for i, (s, _) in enumerate(EMPIRICAL)])
def test_empirical_claim_outcomes(claim_spec, make, outcome):
    lo, hi = bounds(claim_spec)
    values = values_for(outcome, lo, hi)
    if claim_spec["check"] == "sec12_gamma_star":
        values = [max(v, 0.6) for v in values]  # a stable factor of the grid is at least its smallest factor
    claim = claims.CLAIMS[claim_spec["check"]](make(values), claim_spec)
    expected = t_interval(values)
    assert claim.section == claims.EMPIRICAL and claim.interval["n"] == 5
    assert claim.interval["low"] == pytest.approx(expected.low, abs=1e-9) and claim.value == pytest.approx(expected.mean, abs=1e-9)
    assert claim.verdict == outcome
    assert (claim.correction is not None) == (outcome == FAILS and claim_spec.get("correction") is not None)


def test_interval_verdict_regions():
    iv = t_interval([1.0, 1.1, 0.9])
    assert claims.interval_verdict(iv, 0.0, 2.0) == HOLDS
    assert claims.interval_verdict(iv, 5.0, math.inf) == FAILS
    assert claims.interval_verdict(iv, 1.0, math.inf) == INCONCLUSIVE
    assert claims.interval_verdict(t_interval([]), 0.0, 1.0) == INCONCLUSIVE


def test_identities_verified_and_contradicted_from_closed_forms():
    n = spec("rem3_sigma_ratio")["width"]
    rem3 = claims.CLAIMS["rem3_sigma_ratio"]({}, spec("rem3_sigma_ratio"))
    assert rem3.value == pytest.approx(0.5) and rem3.reference == pytest.approx(0.5) and rem3.verdict == CONTRADICTED and rem3.correction
    flow = claims.CLAIMS["spectral_variance_flow"]({"depth_at_init": []}, spec("spectral_variance_flow"))
    assert flow.value == pytest.approx(n * (1 / (2 * math.sqrt(n))) ** 2) and flow.verdict == CONTRADICTED
    deep = spec("seed_deep_linear")
    rows = [{"scale": deep["scale"], "layer": k, "activation_norm": deep["scale"] ** (k - 1)} for k in range(1, 11)]
    assert claims.CLAIMS["seed_deep_linear"]({"deep_linear": rows}, deep).verdict == VERIFIED
    rows[-1]["activation_norm"] *= 1.01
    off = claims.CLAIMS["seed_deep_linear"]({"deep_linear": rows}, deep)
    assert off.verdict == CONTRADICTED and off.reference == pytest.approx(deep["scale"] ** 9)
    canyon = {"steps_ratio": 7.0, "sqrt_condition": 10.0, "condition": 100, "gd": {"steps": 700}, "momentum": {"steps": 100},
              "terminal_velocity": {"speedup": 10.0, "predicted_speedup": 10.0, "alpha": 0.9, "steps": 200}}
    assert claims.CLAIMS["momentum_canyon"]({"canyon": canyon}, spec("momentum_canyon")).verdict == VERIFIED
    assert claims.CLAIMS["momentum_terminal_velocity"]({"canyon": canyon}, spec("momentum_terminal_velocity")).verdict == VERIFIED
    assert claims.CLAIMS["momentum_canyon"]({"canyon": canyon | {"steps_ratio": 1.0}}, spec("momentum_canyon")).verdict == CONTRADICTED


def _template_regex(template: str) -> re.Pattern:
    """The rendered form of ``template``: its literal text, with any value in place of each {field}."""
    parts = re.split(r"\{\w+\}", template)
    return re.compile("(?:.+?)".join(re.escape(p) for p in parts), re.DOTALL)


@pytest.mark.parametrize("shift", [0.0, 0.37])
def test_claim_texts_are_params_templates_filled_from_params_or_data(shift):
    """Every text of every claim is its params.yaml template with fields filled (the code adds no text, so no
    number); moving every region's bounds moves the rendered expectations with them."""
    specs = copy.deepcopy(SPECS)
    for s in specs:
        if "region" in s:
            s["region"] = [None if b is None else b + shift for b in s["region"]]
    rendered = claims.build(_synthetic_inputs(), specs)
    for claim, s in zip(rendered, specs, strict=True):
        for field in ("claim", "measured", "expected", "correction"):
            text = getattr(claim, field)
            if text is not None:
                assert _template_regex(s[field]).fullmatch(text), f"{claim.id}.{field}: {text!r}"
        if "{low}" in s["expected"] or "{high}" in s["expected"]:
            low, high = claims.region(s)
            bounds_shown = {claims.fmt(b) for b in (low, high) if math.isfinite(b)}
            assert any(b in claim.expected for b in bounds_shown), (claim.id, claim.expected, bounds_shown)


def _synthetic_inputs() -> dict:
    data = {}
    for _, make in EMPIRICAL:
        for key, rows in make([0.1, 0.2, 0.3, 0.4, 0.5]).items():
            data.setdefault(key, []).extend(rows)
    data["rmt"] = [{"m": 2048, "n": 2048, "trial": t, "ratio": 0.99, "norm": 90.0, "sigma": 1.0} for t in range(5)]
    data["symmetry"] = [{"init": "zeros", "step": 150, "distance": 0.0, "layer": 0}]
    data["deep_linear"] = [{"scale": 1.5, "layer": k, "activation_norm": 1.5 ** (k - 1)} for k in range(1, 11)]
    data["elbow"] = {"ks_cauchy": 0.002, "samples": 100000, "ks_normal": 0.2}
    data["canyon"] = {"steps_ratio": 7.0, "sqrt_condition": 10.0, "condition": 100, "gd": {"steps": 700}, "momentum": {"steps": 100},
                      "terminal_velocity": {"speedup": 10.0, "predicted_speedup": 10.0, "alpha": 0.9, "steps": 200}}
    data["curvature"] += [{"seed": 0, "activation": "relu", "block": 0, "state": "init", "rel_diff": 0.0}]
    data["depth_at_init"] += [{"init": "spectral", "activation": "tanh", "depth": 3, "seed": 0, "variance_ratio": 1 / 16,
                               "jacobian_norm_mean": 1.0}, {"init": "spectral", "activation": "relu", "depth": 2, "seed": 0,
                                                             "variance_ratio": 0.1, "jacobian_norm_mean": 0.7}]
    data["depth_runs"] += [r | {"activation": "tanh"} for r in data["depth_runs"]]
    data["lr_runs"] += [r | {"optim": "adam"} for r in data["lr_runs"] if r["optim"] == "sgd" and r["init"] == "spectral"]
    return data
