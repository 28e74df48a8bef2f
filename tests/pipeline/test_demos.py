"""The demos' measuring helpers against exact answers (small sizes, no data files)."""

import math

import pytest
import torch

from initlab.models import deep_linear, weight_layers
from initlab.pipeline.demos import DEMOS, canyon, deep_linear as deep_linear_demo, elbow, lr_stability, rmt, symmetry


def test_every_demo_module_has_run():
    import importlib

    for name in DEMOS:
        assert callable(importlib.import_module(f"initlab.pipeline.demos.{name}").run)


def test_rmt_ratio_is_close_to_one_and_the_norm_is_exact():
    rows = rmt.norm_ratios([[200, 100]], ["spectral"], trials=2, seed=0)
    assert len(rows) == 2 and all(0.85 < r["ratio"] < 1.05 for r in rows)
    matrix = torch.randn(50, 20, dtype=torch.float64).numpy()
    assert rmt.spectral_norm(matrix) == pytest.approx(float(torch.linalg.matrix_norm(torch.from_numpy(matrix), ord=2)), rel=1e-6)


def test_deep_linear_scaled_identity_gives_exact_powers():
    model = deep_linear([2], 2, depth=10, width=2)
    with torch.no_grad():
        for _, layer in weight_layers(model):
            layer.weight.copy_(1.5 * torch.eye(2))
    rows = deep_linear_demo.signal_norms(model, torch.randn(16, 2), torch.randn(16, 2))
    assert len(rows) == 11
    assert rows[10]["activation_norm"] / rows[1]["activation_norm"] == pytest.approx(1.5**9, rel=1e-4)
    assert rows[1]["gradient_norm"] / rows[10]["gradient_norm"] == pytest.approx(1.5**9, rel=1e-4)
    assert rows[10]["weight_gradient_norm"] is None


def test_unit_spread_detects_identical_units():
    assert symmetry.unit_spread(torch.full((8, 4), 0.01)) == (0.0, 1)
    assert symmetry.unit_spread(torch.zeros(8, 4)) == (0.0, 0)
    distance, rank = symmetry.unit_spread(torch.eye(8))
    assert distance == pytest.approx(math.sqrt(2)) and rank == 8


def test_cauchy_elbows_are_cauchy_not_normal():
    elbows = elbow.cauchy_elbows(20000, seed=0)
    ks = elbow.ks_to_cauchy(elbows)
    assert ks["ks_cauchy"] < 0.02 < ks["ks_normal"]
    running = elbow.running_statistics(elbows, points=10)
    assert running[-1]["n"] == 20000 and abs(running[-1]["median"]) < 0.05


def test_terminal_velocity_of_momentum():
    velocity = canyon.terminal_velocity(alpha=0.9, lr=0.01, steps=300)
    assert velocity["speedup"] == pytest.approx(10.0, rel=1e-6)


def test_canyon_race_momentum_beats_gd():
    settings = {"condition": 50, "distance": 1.0, "steps": 600, "tol": 1e-4, "num_lrs": 10, "alphas": [0.5, 0.8], "seed": 0}
    summary = canyon.race(settings)["summary"]
    assert summary["gd"]["steps"] > summary["momentum"]["steps"] and summary["steps_ratio"] > 1


def test_stability_summary_picks_thresholds():
    rows = [{"factor": f, "stable": s, "first_step_decrease": d, "every_step_decrease": e}
            for f, s, d, e in ((1, True, True, True), (2, True, True, False), (4, False, True, False), (8, False, False, False))]
    assert lr_stability.stability_summary(rows) == {"max_stable_factor": 2, "min_unstable_factor": 4, "max_first_step_decrease_factor": 4,
                                                    "max_every_step_decrease_factor": 1}


def test_gradient_descent_losses_stop_at_non_finite():
    model = torch.nn.Linear(3, 2)
    losses = lr_stability.gradient_descent_losses(model, torch.randn(8, 3), torch.randint(0, 2, (8,)), lr=1e-3, steps=3)
    assert len(losses) == 4 and losses[-1] < losses[0]
    diverging = lr_stability.gradient_descent_losses(model, 1e3 * torch.randn(8, 3), torch.randint(0, 2, (8,)), lr=1e8, steps=20)
    assert not math.isfinite(diverging[-1]) or diverging[-1] > diverging[0]


def test_every_step_decrease_needs_each_step_to_lower_the_loss():
    assert lr_stability.every_step_decreases([2.3, 2.0, 1.5, 1.49])
    assert not lr_stability.every_step_decreases([2.3, 2.0, 2.1, 1.0])  # one rise: not 'guarantees a decrease', though it ends lower
    assert not lr_stability.every_step_decreases([2.3, float("nan")]) and not lr_stability.every_step_decreases([2.3])


def test_inactive_relu_fraction_counts_unit_sample_pairs():
    """Two ReLU units: unit 0 passes x, unit 1 passes -x; on inputs (1, -1, 2, -3) each is inactive on 2 of 4 samples (1/2),
    and no unit is dead on every sample."""
    from initlab.pipeline.demos import variance_flow

    model = torch.nn.Sequential(torch.nn.Linear(1, 2, bias=False), torch.nn.ReLU(), torch.nn.Linear(2, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0], [-1.0]]))
    inputs = torch.tensor([[1.0], [-1.0], [2.0], [-3.0]])
    assert list(variance_flow.inactive_relu_fraction(model, inputs).values()) == [0.5]
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0], [0.0]]))  # unit 1 outputs 0 everywhere: 2 + 4 of 8 pairs
    assert list(variance_flow.inactive_relu_fraction(model, inputs).values()) == [0.75]


def test_canyon_random_starts_lie_at_the_distance_and_differ_by_draw():
    quadratic = canyon.ill_conditioned_quadratic(dim=2, condition=50, seed=0)
    starts = [canyon.random_start(quadratic, 2.0, seed) for seed in (1, 2)]
    assert all(abs(float(((s - quadratic.minimizer) ** 2).sum()) ** 0.5 - 2.0) < 1e-12 for s in starts)
    assert not (starts[0] == starts[1]).all()
