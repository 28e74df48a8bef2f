"""Every claim function on synthetic rows whose verdict is known, for each of its outcomes; claim texts come from params only."""

import copy
import math
import re

import pytest
import yaml

from initlab.config import PROJECT_ROOT
from initlab.pipeline import claims
from initlab.pipeline.claims import CONTRADICTED, DERIVATION, EMPIRICAL, FAILS, HOLDS, INCONCLUSIVE, VERIFIED
from initlab.stats import holm, t_interval

PROTOCOL = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())["report"]
SPECS = PROTOCOL["claims"]


def sub_specs(raw: dict) -> list[dict]:
    """A row's spec once per sub-row (the row's keys with the sub-row's overrides), as the claim functions see it."""
    return [{k: v for k, v in raw.items() if k != "sub"} | sub for sub in raw.get("sub") or [{}]]


def spec(check: str, **match) -> dict:
    found = next(s for raw in SPECS if raw["check"] == check for s in sub_specs(raw) if all(s.get(k) == v for k, v in match.items()))
    return claims.resolve(copy.deepcopy(found), PROTOCOL, "tanh")


# Per-seed values whose 95% t-interval lies inside [lo, hi], outside it, or straddles a finite bound.
def values_for(outcome: str, lo: float, hi: float) -> list[float]:
    bound = lo if math.isfinite(lo) else hi
    span = hi - lo if math.isfinite(hi - lo) else max(abs(bound), 0.1)
    inside = (lo + hi) / 2 if math.isfinite(hi - lo) else bound + (span / 2 if math.isfinite(lo) else -span / 2)
    outside = hi + span if math.isfinite(hi) else lo - span
    centre = {HOLDS: inside, FAILS: outside, INCONCLUSIVE: bound}[outcome]
    return [centre + 0.01 * span * d for d in (-2, -1, 0, 1, 2)]


def rows_rmt(values, init="spectral"):
    return {"rmt": [{"init": init, "m": 512, "n": 512, "trial": k, "ratio": v, "norm": v, "sigma": 1.0} for k, v in enumerate(values)]}


def rows_jacobian(values, activation):
    return {"depth_at_init": [{"init": "spectral", "activation": activation, "depth": 2, "seed": s, "jacobian_norm_mean": v,
                               "variance_ratio": 0.25} for s, v in enumerate(values)]}


def rows_gain(values, init):
    depth = 3
    return {"depth_at_init": [{"init": init, "activation": "relu", "depth": depth, "seed": s, "variance_ratio": v ** (depth - 1)}
                              for s, v in enumerate(values)]}


def rows_dead(values, init="spectral"):
    return {"dead_relu": [{"seed": s, "init": init, "bias": bias, "layer": layer, "inactive_fraction": 0.5 - (v if bias == "relu_0.1" else 0),
                           "dead_fraction": 0.1} for s, v in enumerate(values) for bias in ("zeros", "relu_0.1") for layer in (0, 1)]}


def rows_gn(values, state="init"):
    return {"curvature": [{"seed": s, "activation": "tanh", "block": b, "state": state, "rel_diff": v - (0 if b else 0.01)}
                          for s, v in enumerate(values) for b in (0, 1)]}


def rows_far(values):
    """Gap at init 0.1, far from init 0.1 + v: the contrast is v."""
    return {"curvature": [{"seed": s, "activation": "tanh", "block": 0, "state": state, "rel_diff": gap}
                          for s, v in enumerate(values) for state, gap in (("init", 0.1), ("trained", 0.12), ("weights x3", 0.1 + v))]}


def rows_edge(values):
    return {"edge_of_stability": [{"seed": s, "step": step, "lr": 2.0, "lambda_max": v if step else 5 * v}
                                  for s, v in enumerate(values) for step in (0, 10)]}


def rows_theorem2(values, init="spectral"):
    return {"theorem2": [{"init": init, "seed": s, "layer": k, "ratio_as_written": v * (1 if k else 0.5), "ratio_corrected": v / 10}
                         for s, v in enumerate(values) for k in (0, 1)]}


def lr_rows(acc, optim="sgd", lr=0.1, **extra):
    """One lr-study run per (seed, init) with test accuracy acc[(seed, init)]."""
    return [{"init": init, "optim": optim, "seed": seed, "lr": lr, "default_lr": lr, "setting": "grid", "lambda_max": 1.0,
             "val_loss": 1.0, "test_acc": a, "train_loss": 2.0 - a, **extra} for (seed, init), a in acc.items()]


def rows_non_inferior(values, comparator="xavier_normal"):
    acc = {(s, init): 0.9 + (v if init == "spectral" else 0) for s, v in enumerate(values) for init in ("spectral", comparator)}
    return {"lr_runs": lr_rows(acc)}


def rows_adam(values):
    """SGD's spread over inits max(v, 0), Adam's max(-v, 0): their difference is v."""
    sgd = lr_rows({(s, i): 0.9 + (max(v, 0) if i == "spectral" else 0) for s, v in enumerate(values) for i in ("spectral", "xavier_normal")})
    adam = lr_rows({(s, i): 0.9 + (max(-v, 0) if i == "spectral" else 0) for s, v in enumerate(values) for i in ("spectral", "xavier_normal")},
                   optim="adam", lr=1e-3)
    return {"lr_runs": sgd + adam}


def rows_depth(values, activation, comparator):
    return {"depth_runs": [{"init": init, "activation": activation, "depth": 16, "seed": s, "train_loss": 1.0 + (v if init == "spectral" else 0)}
                           for s, v in enumerate(values) for init in ("spectral", comparator, "orthogonal")]}


SEC34 = spec("sec34_unit_variance")
SEC34_REFERENCE = 1 / (2 * math.sqrt(512))

EMPIRICAL_ROWS = [
    (spec("cor2_rmt_norm", init="spectral"), rows_rmt, None),
    (spec("cor2_rmt_norm", init="spectral_uniform"), lambda v: rows_rmt(v, "spectral_uniform"), None),
    (SEC34, rows_rmt, SEC34_REFERENCE),
    (spec("cor1_spectral_jacobian", activation="tanh"), lambda v: rows_jacobian(v, "tanh"), None),
    (spec("variance_gain", init="xavier_normal"), lambda v: rows_gain(v, "xavier_normal"), None),
    (spec("variance_gain", init="kaiming_normal"), lambda v: rows_gain(v, "kaiming_normal"), None),
    (spec("dead_relu_bias", init="lecun"), lambda v: rows_dead(v, "lecun"), None),
    (spec("rem2_gauss_newton_gap", state="init"), rows_gn, None),
    (spec("rem2_gauss_newton_gap", state="trained"), lambda v: rows_gn(v, "trained"), None),
    (spec("rem2_near_vs_far"), rows_far, None),
    (spec("gd_edge_of_stability"), rows_edge, None),
    (spec("spectral_vs_comparator", optim="sgd", setting="best_lr", metric="test_acc", activation="tanh"), rows_non_inferior, None),
    (spec("spectral_vs_comparator", optim="sgd", setting="default", metric="test_acc", activation="tanh"), rows_non_inferior, None),
    (spec("adam_robust_defaults"), rows_adam, None),
    (spec("depth_trainable", activation="relu", depth=16), lambda v: rows_depth(v, "relu", "kaiming_normal"), None),
    (spec("depth_trainable", activation="tanh", depth=16), lambda v: rows_depth(v, "tanh", "xavier_normal"), None),
]


@pytest.mark.parametrize("outcome", [HOLDS, FAILS, INCONCLUSIVE])
@pytest.mark.parametrize(("claim_spec", "make", "reference"), EMPIRICAL_ROWS,
                         ids=[f"{s['check']}-{i}" for i, (s, _, _) in enumerate(EMPIRICAL_ROWS)])
def test_empirical_claim_outcomes(claim_spec, make, reference, outcome):
    lo, hi = claims.region(claim_spec, reference)
    values = values_for(outcome, lo, hi)
    claim = claims.CLAIMS[claim_spec["check"]](make(values), claim_spec)
    expected = t_interval(values)
    assert claim.section == EMPIRICAL and claim.interval["n"] == 5
    assert claim.interval["low"] == pytest.approx(expected.low, abs=1e-9) and claim.value == pytest.approx(expected.mean, abs=1e-9)
    assert claim.verdict == outcome
    assert (claim.p <= 0.05) == (outcome != INCONCLUSIVE)
    assert (claim.correction is not None) == (outcome == FAILS and claim_spec.get("correction") is not None)


def test_comparator_is_the_pre_registered_one_not_the_best_other_init():
    """The ReLU depth row compares with He even when another init (orthogonal) trains better: no choice among inits."""
    s = spec("depth_trainable", activation="relu", depth=16)
    assert s["comparator"] == "kaiming_normal" == PROTOCOL["comparators"]["relu"]
    rows = rows_depth([0.0] * 5, "relu", "kaiming_normal")
    for r in rows["depth_runs"]:
        r["train_loss"] += -5.0 if r["init"] == "orthogonal" else 0.01 * r["seed"]
    assert claims.CLAIMS["depth_trainable"](rows, s).value == pytest.approx(0.0, abs=1e-12)


def _stability_rows(c_star: list[float], grid: list[float], init: str = "spectral") -> dict:
    return {"lr_stability": [{"seed": s, "init": init, "factor": f, "loss_0": 2.3, "max_loss": 2.3 if f <= c else 12.0,
                              "every_step_decrease": f <= c} for s, c in enumerate(c_star) for f in grid]}


def test_gamma_star_is_grid_valued_and_inconclusive_when_its_resolution_straddles():
    s = spec("gamma_star_empirical", init="spectral")
    assert s["measure"] == "every_step_decrease"  # the primary reading, from params.yaml
    coarse = [0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 8.0]
    six = [1.0] * 6  # six equal seeds: the exact sign-flip test can reach 2 / 2^6 < 0.05 (five cannot: 2 / 32)
    claim = claims.CLAIMS["gamma_star_empirical"](_stability_rows(six, coarse), s)
    assert (claim.interval["low"], claim.interval["high"]) == (1.0, 1.5) and claim.verdict == INCONCLUSIVE  # [1, 1.5) crosses 1.414
    assert claim.mdd == pytest.approx(0.5)  # every seed picks 1: zero spread, but the grid cannot resolve less than its step
    fine = [0.8, 0.9, 1.0, 1.1, 1.2, 1.5, 2.0]
    held = claims.CLAIMS["gamma_star_empirical"](_stability_rows(six, fine), s)
    assert held.verdict == HOLDS and held.p == pytest.approx(2 / 2**6)
    five = claims.CLAIMS["gamma_star_empirical"](_stability_rows([1.0] * 5, fine), s)
    assert five.verdict == INCONCLUSIVE and five.p == pytest.approx(2 / 2**5)  # the interval lies inside, the exact test cannot back it
    spiked = claims.CLAIMS["gamma_star_empirical"](_stability_rows([4.0] * 6, coarse), s)
    assert (spiked.interval["low"], spiked.interval["high"], spiked.verdict) == (4.0, 8.0, FAILS) and spiked.correction


def test_gamma_star_measure_comes_from_params():
    """The same runs under the two readings of 'guarantees a decrease': a spike above the start (never_above_start fails
    it) vs a step that does not lower the loss (every_step_decrease fails it)."""
    s = spec("gamma_star_empirical", init="spectral")
    rows = [r | {"every_step_decrease": r["factor"] <= 1.0, "never_above_start": r["factor"] <= 2.0}
            for r in _stability_rows([1.0] * 5, [0.5, 1.0, 1.5, 2.0, 3.0])["lr_stability"]]
    assert claims.CLAIMS["gamma_star_empirical"]({"lr_stability": rows}, s).interval["mean"] == 1.0
    assert claims.CLAIMS["gamma_star_empirical"]({"lr_stability": rows}, s | {"measure": "never_above_start"}).interval["mean"] == 2.0
    dead = spec("dead_relu_bias", init="lecun")
    data = rows_dead([0.05, 0.06, 0.05, 0.06, 0.05], "lecun")
    assert claims.CLAIMS["dead_relu_bias"](data, dead).value == pytest.approx(0.054)
    assert claims.CLAIMS["dead_relu_bias"](data, dead | {"measure": "dead_fraction"}).value == pytest.approx(0.0)


def _curvature_rows(d: float, grid: list[float]) -> dict:
    """spectral's best lr 0.1 with lambda 10, xavier's best lr 10^d-times larger x lambda: best lr x lambda differs by d decades."""
    rows = []
    for seed in range(6):  # six seeds: a zero-variance difference can pass the exact sign-flip test (2 / 2^6 < 0.05)
        for init, best, lam in (("spectral", 0.1, 10.0), ("xavier_normal", None, 10.0)):
            target = math.log10(0.1) + d if best is None else math.log10(best)
            for lr in grid:
                rows.append({"init": init, "optim": "sgd", "seed": seed, "lr": lr, "default_lr": 0.1, "setting": "grid", "lambda_max": lam,
                             "val_loss": 1.0 + abs(math.log10(lr) - target) + 0.001 * seed, "test_acc": 0.9})
    return {"lr_runs": rows}


@pytest.mark.parametrize(("d", "step", "verdict"), [(0.0, 0.25, HOLDS), (1.0, 0.25, FAILS), (0.5, 0.5, INCONCLUSIVE), (0.0, 0.5, INCONCLUSIVE)])
def test_curvature_predicts_lr_carries_the_grid_resolution(d, step, verdict):
    grid = [10 ** (-3 + step * k) for k in range(int(4 / step) + 1)]
    claim = claims.CLAIMS["curvature_predicts_lr"](_curvature_rows(d, grid), spec("curvature_predicts_lr", init="xavier_normal"))
    assert claim.interval["mean"] == pytest.approx(d, abs=1e-9)  # the grid values' mean, the interval spans the resolution
    assert claim.interval["low"] == pytest.approx(d - step, abs=1e-9) and claim.interval["high"] == pytest.approx(d + step, abs=1e-9)
    assert claim.verdict == verdict
    assert f"{step:g}" in claim.interval["resolution"]


@pytest.mark.parametrize(("ks", "n", "verdict"), [(0.0015, 100_000, HOLDS), (0.05, 100_000, FAILS), (0.005, 2_000, INCONCLUSIVE)])
def test_cauchy_elbow_uses_the_dkw_interval_over_samples(ks, n, verdict):
    claim = claims.CLAIMS["cauchy_elbow"]({"elbow": {"ks_cauchy": ks, "samples": n, "ks_normal": 0.2}}, spec("cauchy_elbow"))
    eps = math.sqrt(math.log(2 / 0.05) / (2 * n))
    assert claim.interval["high"] == pytest.approx(ks + eps) and claim.interval["n"] == n and claim.verdict == verdict


def test_momentum_canyon_is_an_empirical_row_over_random_starts():
    s = spec("momentum_canyon")
    run = {"steps_ratio": 6.8, "condition": 100, "sqrt_condition": 10.0}
    assert claims.CLAIMS["momentum_canyon"]({"canyon": run, "canyon_runs": [run]}, s).verdict == INCONCLUSIVE  # n = 1: no interval
    draws = [{"draw": k, "steps_ratio": r} for k, r in enumerate((6.5, 6.8, 7.0, 6.9, 6.6))]
    claim = claims.CLAIMS["momentum_canyon"]({"canyon": run, "canyon_runs": [run], "canyon_draws": draws}, s)
    assert claim.verdict == HOLDS and claim.interval["n"] == 5 and "5 random starts" in claim.measured


def test_derivations_verified_and_contradicted_from_closed_forms():
    n = spec("rem3_sigma_ratio")["width"]
    rem3 = claims.CLAIMS["rem3_sigma_ratio"]({}, spec("rem3_sigma_ratio"))
    assert rem3.section == DERIVATION and rem3.value == pytest.approx(0.5) and rem3.verdict == CONTRADICTED and rem3.correction
    flow = claims.CLAIMS["spectral_variance_flow"]({"depth_at_init": []}, spec("spectral_variance_flow"))
    assert flow.value == pytest.approx(n * (1 / (2 * math.sqrt(n))) ** 2) and flow.verdict == CONTRADICTED and flow.own
    deep = spec("seed_deep_linear")
    rows = [{"scale": deep["scale"], "layer": k, "activation_norm": deep["scale"] ** (k - 1)} for k in range(1, 11)]
    assert claims.CLAIMS["seed_deep_linear"]({"deep_linear": rows}, deep).verdict == VERIFIED
    rows[-1]["activation_norm"] *= 1.01
    assert claims.CLAIMS["seed_deep_linear"]({"deep_linear": rows}, deep).verdict == CONTRADICTED
    canyon = {"eigenvalues": [1.0, 100.0], "terminal_velocity": {"speedup": 10.0, "predicted_speedup": 10.0, "alpha": 0.9, "steps": 200}}
    assert claims.CLAIMS["momentum_terminal_velocity"]({"canyon": canyon}, spec("momentum_terminal_velocity")).verdict == VERIFIED


def test_gamma_star_on_the_quadratic_model_is_two_over_lambda():
    """Bisection against the closed form: a GD step shrinks every eigen-direction iff lr < 2 / lambda_max."""
    assert claims.quadratic_safe_step([1.0, 100.0]) == pytest.approx(2.0, abs=1e-8)
    assert claims.quadratic_safe_step([3.0]) == pytest.approx(2.0, abs=1e-8)
    claim = claims.CLAIMS["sec12_gamma_star_quadratic"]({"canyon": {"eigenvalues": [1.0, 100.0]}}, spec("sec12_gamma_star_quadratic"))
    assert claim.section == DERIVATION and claim.verdict == CONTRADICTED and claim.reference == 2.0


@pytest.mark.parametrize(("ratio", "verdict"), [(0.3, VERIFIED), (1.2, CONTRADICTED)])
def test_corrected_theorem2_is_a_bound_verified_with_its_looseness(ratio, verdict):
    rows = [{"init": i, "seed": s, "layer": k, "ratio_corrected": ratio / (k + 1)} for i in ("spectral", "xavier_normal") for s in range(3)
            for k in range(3)]
    claim = claims.CLAIMS["theorem2_corrected_bound"]({"theorem2": rows}, spec("theorem2_corrected_bound"))
    assert claim.section == DERIVATION and claim.verdict == verdict and claim.value == pytest.approx(ratio)
    assert f"hidden1 {claims.fmt(1 / ratio, 2)}-{claims.fmt(1 / ratio, 2)}x" in claim.measured and "output" in claim.measured


def _noninf_row(optim: str) -> dict:
    raw = next(s for s in SPECS if s["id"] == "trains_as_well_default")
    return copy.deepcopy(raw) | {"id": f"noninf_{optim}", "optim": optim, "sub": [raw["sub"][0]]}  # tanh, test accuracy


def test_holm_adjusts_over_the_empirical_family_and_robustness_names_the_flipping_choice():
    """Two non-inferiority rows: one holds narrowly (flips under margin x0.5 and the other comparator), one fails."""
    protocol = copy.deepcopy(PROTOCOL)
    protocol["claims"] = [_noninf_row("sgd"), _noninf_row("adam") | {"h1": FAILS}]
    diff = [-0.006, -0.005, -0.004, -0.005, -0.005]
    acc = {}
    for optim, shift in (("sgd", 0.0), ("adam", -0.02)):
        for s, d in enumerate(diff):
            acc[(optim, s)] = {"spectral": 0.9 + d + shift, "xavier_normal": 0.9, "kaiming_normal": 0.9 + 0.05}
    runs = [{"init": i, "optim": o, "seed": s, "lr": 0.1, "default_lr": 0.1, "setting": "grid", "lambda_max": 1.0, "val_loss": 1.0,
             "test_acc": a} for (o, s), per in acc.items() for i, a in per.items()]
    sgd, adam = built = claims.build({"lr_runs": runs}, protocol, "tanh")
    assert sgd.verdict == HOLDS and adam.verdict == FAILS and (sgd.h1, adam.h1) == (HOLDS, FAILS)
    assert [c.p_adjusted for c in built] == pytest.approx(holm([c.p for c in built]))
    assert all(c.adjusted == (c.h1 if c.p_adjusted <= 0.05 else INCONCLUSIVE) for c in built)
    assert "margin x0.5 -> " in sgd.robustness and "the other family's comparator -> fails" in sgd.robustness
    assert "optimizer adam -> fails" in sgd.robustness  # the optimizer is an alternative that matters
    assert "interval" not in sgd.robustness and "left out" not in sgd.robustness  # power-only choices are reported apart
    assert "significantly worse" in sgd.note  # non-inferior, and significantly below the comparator: both said


def test_row_p_value_is_that_of_its_preregistered_direction():
    """H1 comes from params.yaml: the same data gives the p of 'inside' under h1 holds and of 'outside' under h1 fails;
    a row whose data go the other way is not Holm-covered (adjusted inconclusive)."""
    protocol = copy.deepcopy(PROTOCOL)
    jac = next(s for s in SPECS if s["id"] == "cor1_spectral_jacobian")
    values = [0.9, 0.92, 0.95, 0.93, 0.94]
    for h1 in (HOLDS, FAILS):
        protocol["claims"] = [jac | {"h1": h1}]
        (row,) = claims.build(rows_jacobian(values, "tanh"), protocol, "tanh")
        assert row.verdict == HOLDS and row.p == pytest.approx(row.p_in if h1 == HOLDS else row.p_out)
        assert row.adjusted == (HOLDS if h1 == HOLDS else INCONCLUSIVE) and 0.0 < row.p <= 1.0


def test_sub_rows_decide_one_row_by_the_rule_every():
    """One claim checked on three inits is one row: holds when all hold (p = the largest p_inside), fails when one fails
    (p = k x the smallest p_outside); the sub-rows are kept under the row."""
    protocol = copy.deepcopy(PROTOCOL)
    raw = next(s for s in SPECS if s["id"] == "cor2_rmt_norm")
    protocol["claims"] = [raw | {"sub": [{"init": "spectral"}, {"init": "spectral_uniform"}, {"init": "xavier_normal"}]}]
    good = [0.99, 1.0, 1.01, 1.0, 0.995]
    data = {"rmt": [*rows_rmt(good)["rmt"], *rows_rmt(good, "spectral_uniform")["rmt"], *rows_rmt(good, "xavier_normal")["rmt"]]}
    (row,) = claims.build(data, protocol, "tanh")
    assert row.verdict == HOLDS and len(row.sub_rows) == 3 and row.p == pytest.approx(max(r["p_in"] for r in row.sub_rows))
    data["rmt"] = [*rows_rmt(good)["rmt"], *rows_rmt(good, "spectral_uniform")["rmt"], *rows_rmt([v / 2 for v in good], "xavier_normal")["rmt"]]
    (row,) = claims.build(data, protocol | {"claims": [protocol["claims"][0] | {"h1": FAILS}]}, "tanh")
    assert row.verdict == FAILS and [r["verdict"] for r in row.sub_rows] == [HOLDS, HOLDS, FAILS]
    assert row.p == pytest.approx(min(1.0, 3 * min(r["p_out"] for r in row.sub_rows)))


def test_a_duplicated_claim_is_refused():
    protocol = copy.deepcopy(PROTOCOL)
    protocol["claims"] = [*protocol["claims"], protocol["claims"][0]]
    with pytest.raises(ValueError, match="distinct"):
        claims.build({}, protocol, "tanh")


def test_holm_turns_a_narrow_verdict_inconclusive_in_a_larger_family():
    protocol = copy.deepcopy(PROTOCOL)
    jac = next(s for s in SPECS if s["check"] == "cor1_spectral_jacobian" and s["activation"] == "tanh")
    protocol["claims"] = [jac | {"id": f"jac{i}", "h1": HOLDS} for i in range(6)]
    values = [0.85, 0.9, 0.95, 1.0, 1.02]  # lower end of the t-interval just above 0.8
    built = claims.build(rows_jacobian(values, "tanh"), protocol, "tanh")
    assert all(c.verdict == HOLDS and 0.0 < c.p < 0.05 for c in built)
    assert all(c.adjusted == INCONCLUSIVE and c.p_adjusted == pytest.approx(min(1.0, 6 * c.p)) for c in built)


def test_eq6_as_written_is_one_derivation_by_rescaling_the_input():
    """Softmax regression at W = 0: lambda_max(H_W) is (1/C) lambda_max(E x x^T), so rescaling x by s multiplies it by s^2
    exactly, while eq. (6) as written stays 1: exponent 2, not the 0 of a scale-consistent bound."""
    assert claims.softmax_regression_scale_exponent(10.0) == pytest.approx(2.0, abs=1e-9)
    assert claims.softmax_regression_scale_exponent(0.1, dim=4, samples=8, seed=3) == pytest.approx(2.0, abs=1e-9)
    s = spec("theorem2_as_written")
    claim = claims.CLAIMS["theorem2_as_written"](rows_theorem2([0.5, 2.0]), s)
    assert claim.section == DERIVATION and claim.verdict == CONTRADICTED and claim.reference == 2.0 and "0.25-2" in claim.measured


def test_every_sourced_row_quotes_a_passage_of_docs_methods_verbatim():
    methods = (PROJECT_ROOT / "docs" / "methods.md").read_text()
    sourced = [s for s in SPECS if s.get("quote")]
    assert len(sourced) >= 15
    for s in SPECS:
        assert (s.get("source") is None) == (s.get("quote") is None), s["check"]
    for s in sourced:
        assert s["quote"] in methods, f"{s['check']}: quote not in docs/methods.md: {s['quote']!r}"


def test_margins_carry_their_reason_and_claim_functions_match_params():
    assert {s["check"] for s in SPECS} == set(claims.CLAIMS)
    assert len({s["id"] for s in SPECS}) == len(SPECS)
    for s in SPECS:
        if "interval" in s:
            assert s.get("h1") in (HOLDS, FAILS), f"{s['id']}: an empirical row names its direction (h1) in params.yaml"
        if "measures" in s:
            assert s["measure"] in s["measures"] and all(s["measures"].values()), f"{s['id']}: each measurement needs its reason"
        if "interval" in s or s["check"] == "cauchy_elbow":
            assert s.get("why"), f"{s['check']}: an empirical region needs its reason (why)"


def _template_regex(template: str) -> re.Pattern:
    """The rendered form of ``template``: its literal text, with any value in place of each {field}."""
    parts = re.split(r"\{\w+\}", template)
    return re.compile("(?:.+?)".join(re.escape(p) for p in parts), re.DOTALL)


@pytest.mark.parametrize("shift", [0.0, 0.37])
def test_claim_texts_are_params_templates_filled_from_params_or_data(shift):
    """Every text of every claim is its params.yaml template with fields filled (the code adds no text, so no
    number); moving every region's bounds moves the rendered expectations with them."""
    protocol = copy.deepcopy(PROTOCOL)
    for s in protocol["claims"]:
        for part in [s, *s.get("sub", [])]:
            if "region" in part:
                part["region"] = [None if b is None else b + shift for b in part["region"]]
    rendered = claims.build(synthetic_inputs(), protocol, "tanh")
    for claim, s in zip(rendered, protocol["claims"], strict=True):
        for field in ("claim", "measured", "expected", "correction"):
            text = getattr(claim, field)
            templates = [t for t in (s.get(field), *(sub.get(field) for sub in s.get("sub", []))) if t]
            if text is not None:
                assert any(_template_regex(t).fullmatch(text) for t in templates), f"{claim.id}.{field}: {text!r}"
            assert "inf" not in (text or "").replace("init", "").replace("infer", ""), f"{claim.id}.{field}: {text!r}"
        if "region" in s and not s.get("sub") and ("{low}" in s["expected"] or "{high}" in s["expected"]):
            bounds_shown = {claims.fmt(b) for b in claims.region(s) if math.isfinite(b)}
            assert any(b in claim.expected for b in bounds_shown), (claim.id, claim.expected, bounds_shown)
        if claim.section == EMPIRICAL:
            assert claim.robustness and claim.adjusted in (HOLDS, FAILS, INCONCLUSIVE)


def synthetic_inputs() -> dict:
    """One table of every kind the report reads (values of no particular verdict)."""
    data: dict = {}
    for _, make, _ in EMPIRICAL_ROWS:
        for key, rows in make([0.1, 0.2, 0.3, 0.4, 0.5]).items():
            data.setdefault(key, []).extend(rows)
    data["rmt"] = [{"init": i, "m": 2048, "n": 2048, "trial": t, "ratio": 0.99, "norm": 90.0, "sigma": 1.0}
                   for i in ("spectral", "spectral_uniform") for t in range(5)]
    data["symmetry"] = [{"init": "zeros", "step": 150, "distance": 0.0, "layer": 0}]
    data["deep_linear"] = [{"scale": 1.5, "layer": k, "activation_norm": 1.5 ** (k - 1)} for k in range(1, 11)]
    data["elbow"] = {"ks_cauchy": 0.002, "samples": 100000, "ks_normal": 0.2}
    data["canyon"] = {"eigenvalues": [1.0, 100.0], "condition": 100, "sqrt_condition": 10.0, "terminal_velocity": {"speedup": 10.0, "predicted_speedup": 10.0, "alpha": 0.9, "steps": 200}}
    data["canyon_runs"] = [{"steps_ratio": 6.8, "condition": 100, "sqrt_condition": 10.0}]
    data["curvature"] += [{"seed": 0, "activation": "relu", "block": 0, "state": "init", "rel_diff": 0.0}]
    data["curvature"] += rows_gn([0.01, 0.02, 0.01, 0.02, 0.01])["curvature"] + rows_far([0.1, 0.2, 0.1, 0.2, 0.1])["curvature"]
    data["depth_at_init"] += [{"init": "spectral", "activation": "tanh", "depth": 3, "seed": 0, "variance_ratio": 1 / 16,
                               "jacobian_norm_mean": 1.0}, {"init": "spectral", "activation": "relu", "depth": 2, "seed": 0,
                                                             "variance_ratio": 0.1, "jacobian_norm_mean": 0.7}]
    data["dead_relu"] = [r | {"init": i} for i in ("spectral", "xavier_normal", "kaiming_normal", "lecun") for r in rows_dead([0.01] * 5)["dead_relu"]]
    data["theorem2"] = [r | {"init": i} for i in ("spectral", "xavier_normal", "kaiming_normal") for r in rows_theorem2([0.5] * 5)["theorem2"]]
    data["lr_stability"] = [r for i in ("spectral", "xavier_normal", "kaiming_normal")
                            for r in _stability_rows([1.0, 1.5, 2.0, 1.0, 1.5], [0.5, 1.0, 1.5, 2.0, 4.0], i)["lr_stability"]]
    data["lr_runs"] += [r | {"optim": "adam"} for r in data["lr_runs"] if r["optim"] == "sgd" and r["init"] == "spectral"]
    data["lr_runs"] += [r | {"init": "kaiming_normal"} for r in data["lr_runs"] if r["init"] == "xavier_normal"]
    return data


def test_coarser_grid_alternative_doubles_the_resolution():
    grid = [10 ** (-3 + 0.25 * k) for k in range(17)]
    s = spec("curvature_predicts_lr", init="xavier_normal")
    fine = claims.CLAIMS["curvature_predicts_lr"](_curvature_rows(0.0, grid), s)
    coarse = claims.CLAIMS["curvature_predicts_lr"](_curvature_rows(0.0, grid), s | {"grid_every": 2})
    assert (fine.interval["low"], coarse.interval["low"]) == pytest.approx((-0.25, -0.5))
    assert fine.verdict == HOLDS
    # [-0.5, 0.5] touches the region's bounds with zero spread: the exact test cannot show 'inside' (p = 1)
    assert coarse.verdict == INCONCLUSIVE and coarse.p == 1.0
