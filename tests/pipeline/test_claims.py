"""Verdict logic of the report: every claim function on synthetic rows, passing and failing."""

import math

import pytest

from initlab.pipeline import claims
from initlab.pipeline.claims import FAILS, HOLDS, PARTIALLY


def test_verdict_counts_checks():
    assert claims.verdict([True, True]) == HOLDS
    assert claims.verdict([False, False]) == FAILS
    assert claims.verdict([True, False]) == PARTIALLY
    with pytest.raises(ValueError):
        claims.verdict([])


def test_within_and_in_range_reject_missing_values():
    assert claims.within(1.04, 1.0, 0.05)
    assert not claims.within(1.06, 1.0, 0.05)
    assert not claims.within(None, 1.0, 0.05)
    assert not claims.within(math.nan, 1.0, 0.05)
    assert claims.in_range(0.5, 0.4, 0.6)
    assert not claims.in_range(math.inf, 0.0, 1.0)
    assert claims.fmt(None) == "n/a" and claims.fmt(0.123456) == "0.123"


def _rmt_rows(ratio_large, ratio_small):
    rows = []
    for m, n, ratio in ((64, 64, ratio_small), (256, 256, ratio_large), (1024, 256, ratio_large)):
        sigma = 1 / (m**0.5 + n**0.5)
        rows += [{"m": m, "n": n, "init": "spectral", "trial": t, "sigma": sigma, "norm": ratio, "ratio": ratio} for t in range(2)]
    return rows


def test_rmt_norm_verdicts():
    assert claims.rmt_norm(_rmt_rows(0.99, 0.97), 0.05).verdict == HOLDS
    partial = claims.rmt_norm(_rmt_rows(0.99, 0.9), 0.05)
    assert partial.verdict == PARTIALLY and partial.correction
    assert claims.rmt_norm(_rmt_rows(0.5, 0.5), 0.05).verdict == FAILS
    assert claims.rmt_norm(_rmt_rows(0.99, 0.97), 0.05).value == pytest.approx(0.99)


def test_unit_variance_typo_fails_on_the_real_edge():
    rows = [{"m": 256, "n": 256, "sigma": 0.1, "norm": 0.1 * 32 * 0.99, "ratio": 0.99}]
    claim = claims.rmt_unit_variance_typo(rows)
    assert claim.verdict == FAILS and claim.value == pytest.approx(31.68)


def _layer(init, layer, **values):
    return {"init": init, "seed": 1, "layer": layer, **values}


def test_spectral_jacobian_partially_when_relu_misses():
    main = [_layer("spectral", k, jacobian_norm=v) for k, v in enumerate((0.95, 1.02, 1.1))]
    deep_ok = [{"init": "spectral", "activation": "tanh", "jacobian_norm": 0.98}]
    deep_bad = [{"init": "spectral", "activation": "relu", "jacobian_norm": 0.6}]
    assert claims.spectral_jacobian(main, deep_ok, 0.2, "tanh").verdict == HOLDS
    assert claims.spectral_jacobian(main, deep_ok + deep_bad, 0.2, "tanh").verdict == PARTIALLY
    assert claims.spectral_jacobian([_layer("spectral", 0, jacobian_norm=3.0)], deep_bad, 0.2, "tanh").verdict == FAILS


def test_sigma_ratio_fails_outside_remark3_range():
    square = {"layer": 0, "fan_in": 256, "fan_out": 256, "measured_ratio": 0.5, "formula_ratio": 0.5}
    assert claims.sigma_ratio([square]).verdict == FAILS
    skewed = {"layer": 0, "fan_in": 1, "fan_out": 10000, "measured_ratio": 0.7, "formula_ratio": 0.7}
    assert claims.sigma_ratio([skewed]).verdict == HOLDS


def _blocks(activation, gaps):
    return [{"activation": activation, "state": state, "block": block, "rel_diff": gap}
            for state, per_block in gaps.items() for block, gap in per_block.items()]


def test_gauss_newton_remarks():
    exact = _blocks("relu", {"init": {0: 0.0, 1: 0.0, "all": 0.2}, "trained": {0: 0.0, 1: 0.0, "all": 0.01}})
    assert claims.relu_gauss_newton(exact, 1e-6).verdict == HOLDS
    assert claims.relu_gauss_newton(_blocks("relu", {"init": {0: 0.01}}), 1e-6).verdict == FAILS
    growing = _blocks("tanh", {"init": {0: 0.01}, "trained": {0: 0.05}})
    assert claims.smooth_gauss_newton(growing, 0.05).verdict == HOLDS
    flat = _blocks("tanh", {"init": {0: 0.01}, "trained": {0: 0.005}})
    assert claims.smooth_gauss_newton(flat, 0.05).verdict == PARTIALLY
    assert claims.smooth_gauss_newton(_blocks("tanh", {"init": {0: 0.5}, "trained": {0: 0.1}}), 0.05).verdict == FAILS


def test_theorem2_bound_violations():
    ok = [_layer("spectral", k, ratio_as_written=0.5, ratio_corrected=0.1) for k in range(3)]
    assert claims.theorem2(ok).verdict == HOLDS
    bad = ok + [_layer("xavier_normal", 0, ratio_as_written=4.0, ratio_corrected=0.2)]
    claim = claims.theorem2(bad)
    assert claim.verdict == FAILS and claim.value == 4.0


def test_init_controls_hessian():
    rows = [_layer("spectral", k, lambda_max=v) for k, v in enumerate((0.5, 1.0))]
    rows += [_layer("xavier_normal", k, lambda_max=v) for k, v in enumerate((5.0, 8.0))]
    assert claims.init_controls_hessian(rows).verdict == HOLDS
    rows_small = [_layer("spectral", 0, lambda_max=0.01), _layer("xavier_normal", 0, lambda_max=0.1)]
    assert claims.init_controls_hessian(rows_small).verdict == PARTIALLY


def test_gamma_star_fails_when_runs_survive_beyond_one_over_lambda():
    def summary(stable):
        return {"max_stable_factor": stable, "min_unstable_factor": 2 * stable, "max_first_step_decrease_factor": 4.0}

    assert claims.gamma_star({"a": summary(1.5), "b": summary(8.0)}).verdict == FAILS
    assert claims.gamma_star({"a": summary(0.5), "b": summary(0.75)}).verdict == HOLDS


def test_edge_of_stability_settles_below_two_over_lr():
    rows = [{"factor": 1.9, "lr": 1.0, "step": s, "lambda_max": lam} for s, lam in ((0, 1.0), (10, 5.0), (30, 1.8), (40, 1.5))]
    claim = claims.edge_of_stability(rows)
    assert claim.verdict == HOLDS and claim.value == pytest.approx(0.9)
    rows.append({"factor": 1.9, "lr": 1.0, "step": 50, "lambda_max": 3.0})
    assert claims.edge_of_stability(rows).verdict == FAILS


def test_symmetry_claim():
    def trace(init, distance, rank):
        return [{"init": init, "layer": 0, "step": s, "distance": distance, "rank": rank, "loss": 1.0} for s in (0, 10)]

    assert claims.symmetry(trace("zeros", 0.0, 0) + trace("spectral", 1.4, 64)).verdict == HOLDS
    assert claims.symmetry(trace("constant", 0.3, 5) + trace("spectral", 1.4, 64)).verdict == PARTIALLY


def test_deep_linear_powers_exact_and_broken():
    def rows(scale, factor=1.0):
        return [{"case": f"{scale} I", "scale": scale, "trial": 0, "layer": k, "activation_norm": scale**k * (factor if k == 10 else 1),
                 "gradient_norm": scale ** (10 - k)} for k in range(11)]

    assert claims.deep_linear_powers(rows(1.5) + rows(0.5), 1e-6).verdict == HOLDS
    assert claims.deep_linear_powers(rows(1.5, factor=2.0), 1e-6).verdict == PARTIALLY


def _flow(init, activation, variances):
    return [{"init": init, "activation": activation, "layer": k, "fan_in": 64 if k == 0 else 256, "fan_out": 256,
             "preactivation_var": v} for k, v in enumerate(variances)]


def test_xavier_relu_and_spectral_variance_flow():
    rows = _flow("xavier_normal", "relu", [1, 0.5, 0.25, 0.125]) + _flow("kaiming_normal", "relu", [1, 1, 1, 1])
    assert claims.square_layer_variance_ratio(rows, "relu", "xavier_normal") == pytest.approx(0.5)
    assert claims.xavier_relu(rows).verdict == HOLDS
    assert claims.xavier_relu(_flow("xavier_normal", "relu", [1, 1, 1]) + _flow("kaiming_normal", "relu", [1, 1, 1])).verdict == PARTIALLY
    assert claims.spectral_variance_flow(_flow("spectral", "tanh", [1, 0.25, 0.0625])).verdict == FAILS
    assert claims.spectral_variance_flow(_flow("spectral", "tanh", [1, 1, 1])).verdict == HOLDS


def test_cauchy_and_dead_relu_claims():
    assert claims.cauchy_elbow({"ks_cauchy": 0.003, "p_cauchy": 0.5, "ks_normal": 0.1, "samples": 10}, 0.01).verdict == HOLDS
    assert claims.cauchy_elbow({"ks_cauchy": 0.1, "p_cauchy": 0.0, "ks_normal": 0.1, "samples": 10}, 0.01).verdict == FAILS
    dead = [{"init": "a", "bias": "zeros", "layer": 0, "dead_fraction": 0.1}, {"init": "a", "bias": "relu_0.1", "layer": 0, "dead_fraction": 0.0}]
    assert claims.dead_relus(dead).verdict == HOLDS
    dead[1]["dead_fraction"] = 0.2
    assert claims.dead_relus(dead).verdict == FAILS


def test_momentum_claims():
    summary = {"condition": 100, "tol": 1e-6, "gd": {"lr": 0.02, "steps": 300}, "momentum": {"alpha": 0.7, "lr": 0.03, "steps": 40},
               "steps_ratio": 7.5, "sqrt_condition": 10.0}
    assert claims.momentum_canyon(summary).verdict == HOLDS
    assert claims.momentum_canyon(summary | {"steps_ratio": 1.1}).verdict == FAILS
    velocity = {"alpha": 0.9, "steps": 200, "speedup": 9.99999, "predicted_speedup": 10.0}
    assert claims.terminal_velocity(velocity).verdict == HOLDS
    assert claims.terminal_velocity(velocity | {"speedup": 5.0}).verdict == FAILS


def _outcome(init, optim, acc):
    return {"init": init, "optim": optim, "test_acc": acc, "test_loss": 1 - acc, "failed": 0, "diverged": 0}


def test_adam_robust_and_training_outcome():
    table = [_outcome("spectral", "sgd", 0.90), _outcome("xavier_normal", "sgd", 0.96),
             _outcome("spectral", "adam", 0.97), _outcome("xavier_normal", "adam", 0.975)]
    assert claims.adam_robust(table).verdict == HOLDS
    assert claims.training_outcome(table, 0.02).verdict == PARTIALLY
    assert claims.training_outcome(table, 0.1).verdict == HOLDS
    table[0]["test_acc"] = 0.96
    assert claims.adam_robust(table).verdict == PARTIALLY
    table[0]["test_loss"] = 0.04
    assert claims.adam_robust(table).verdict == FAILS
