"""The study's tables (fair lr settings, intervals over seeds) and the demo loaders, on synthetic rows."""

import math

import pytest

from initlab.pipeline import tables
from initlab.pipeline.common import read_csv, write_csv
from initlab.stats import t_interval


def test_geometric_mean_skips_non_positive():
    assert tables.geometric_mean([1.0, 4.0, -1.0]) == pytest.approx(2.0)
    assert math.isnan(tables.geometric_mean([]))


def test_csv_roundtrip_parses_numbers(tmp_path):
    path = write_csv(tmp_path / "t.csv", [{"a": 1, "b": 0.5, "c": "x"}, {"a": 2, "b": None, "c": "nan", "d": float("inf")}])
    rows = read_csv(path)
    assert rows[0] == {"a": 1, "b": 0.5, "c": "x", "d": None}
    assert rows[1]["b"] is None and math.isinf(rows[1]["d"]) and math.isnan(rows[1]["c"])


def _runs():
    """Two seeds; lr 0.1 is the default, 1.0 has the lower val loss except where it diverged; one curvature run."""
    rows = []
    for seed in (1, 2):
        rows.append({"init": "spectral", "optim": "sgd", "seed": seed, "lr": 0.1, "default_lr": 0.1, "setting": "grid", "epochs": 10.0,
                     "val_loss": 0.5, "val_acc": 0.8, "test_loss": 0.5, "test_acc": 0.8 + 0.01 * seed})
        rows.append({"init": "spectral", "optim": "sgd", "seed": seed, "lr": 1.0, "default_lr": 0.1, "setting": "grid", "epochs": 10.0,
                     "val_loss": 0.3 if seed == 1 else math.nan, "val_acc": 0.9, "test_loss": 0.3, "test_acc": 0.9})
        rows.append({"init": "spectral", "optim": "sgd", "seed": seed, "lr": 0.2 * seed, "default_lr": 0.1, "setting": "curvature",
                     "epochs": 10.0,
                     "val_loss": 0.1, "val_acc": 0.95, "test_loss": 0.1, "test_acc": 0.95})
    return rows


def test_best_lr_counts_diverged_runs_as_infinite_and_ignores_curvature_runs():
    assert tables.best_lrs(_runs()) == {("spectral", "sgd", 10.0, None): 0.1}


def test_best_lr_is_chosen_per_budget_among_the_lrs_evaluated_there():
    early = [r | {"epochs": 1.0, "val_loss": 0.2 if r["lr"] == 1.0 else 0.9} for r in _runs()]
    best = tables.best_lrs(_runs() + early)
    assert best == {("spectral", "sgd", 10.0, None): 0.1, ("spectral", "sgd", 1.0, None): 1.0}
    assert {(r["setting"], r["epochs"], r["lr"]) for r in tables.setting_runs(_runs() + early) if r["setting"] == "best_lr"} == {
        ("best_lr", 10.0, 0.1), ("best_lr", 1.0, 1.0)}


def test_fairness_table_has_the_three_settings_with_t_intervals():
    table = {r["setting"]: r for r in tables.lr_fairness_table(_runs())}
    assert set(table) == {"default", "best_lr", "curvature_lr"}
    expected = t_interval([0.81, 0.82])
    assert table["default"]["n"] == 2 and table["default"]["lr"] == 0.1
    assert table["default"]["test_acc_low"] == pytest.approx(expected.low) and table["default"]["test_acc_mean"] == pytest.approx(0.815)
    assert table["curvature_lr"]["lr"] == pytest.approx(0.3) and table["curvature_lr"]["test_acc_mean"] == pytest.approx(0.95)


def test_lr_grid_and_depth_tables_follow_the_figure_contract():
    grid = tables.lr_grid_table(_runs())
    assert [r["lr"] for r in grid] == [0.1, 1.0]
    assert list(grid[0]) == ["activation", "init", "optim", "lr", "epochs", "n", "val_loss_mean", "val_loss_low", "val_loss_high", "val_acc_mean",
                             "val_acc_low", "val_acc_high"]
    assert grid[1]["n"] == 1  # the diverged run's nan val loss is not a value
    at_init = [{"init": "spectral", "activation": "tanh", "depth": 2, "seed": s, "lambda_max": 1.0 + s, "jacobian_norm_product": 1.0,
                "variance_ratio": 0.25} for s in (1, 2, 3)]
    runs = [{"init": "spectral", "activation": "tanh", "depth": 2, "seed": s, "train_loss": 0.5} for s in (1, 2, 3)]
    depth = tables.depth_table({"runs": runs, "at_init": at_init})
    assert list(depth[0]) == ["init", "activation", "depth", "quantity", "n", "mean", "low", "high"]
    assert {r["quantity"] for r in depth} == set(tables.DEPTH_QUANTITIES)
    lam = next(r for r in depth if r["quantity"] == "lambda_max")
    assert lam["mean"] == pytest.approx(3.0) and lam["low"] == pytest.approx(t_interval([2.0, 3.0, 4.0]).low)


def test_per_seed_demo_tables_are_concatenated_with_a_seed_column(tmp_path):
    for seed in (10, 2):
        write_csv(tmp_path / "demos" / "d" / f"seed-{seed}" / "t.csv", [{"x": seed}])
    assert tables.load_demo_csv(tmp_path, "d", "t.csv") == [{"seed": 2, "x": 2}, {"seed": 10, "x": 10}]
    write_csv(tmp_path / "demos" / "e" / "t.csv", [{"x": 1}])
    assert tables.load_demo_csv(tmp_path, "e", "t.csv") == [{"x": 1}]


class _Stub:
    """An arm's seeds whose val loss is |log10(lr / 0.1)| + 1 / steps (best at lr 0.1, falling with the budget)."""

    def __init__(self, lrs: dict) -> None:
        self.lrs, self.steps = lrs, 0

    def advance(self, x, y, steps: int) -> None:
        self.steps = steps

    def record(self, data, eval_samples: int, test: bool = True) -> list[dict]:
        return [{"val_loss": abs(math.log10(lr / 0.1)) + 1 / self.steps} for lr in self.lrs.values()]


def test_successive_halving_takes_the_best_third_and_the_unranked_arms_to_the_next_budget():
    from types import SimpleNamespace

    import torch

    from initlab.pipeline.study import Arm, successive_halving

    data = SimpleNamespace(train=SimpleNamespace(x=torch.zeros(100, 1), y=torch.zeros(100)))  # 10 steps per epoch at batch 10
    lrs = [0.001, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0]
    arms = [Arm({"setting": "grid"}, {1: lr, 2: lr}) for lr in lrs] + [Arm({"setting": "curvature"}, {1: 50.0, 2: 60.0}, ranked=False)]
    settings = {"budgets": [1, 3, 10], "batch_size": 10, "eta": 3, "min_keep": 2, "eval_samples": 1}
    rows = successive_halving(arms, _Stub, data, settings)
    reached = {steps: sorted({r["lr"] for r in rows if r["steps"] == steps and r["setting"] == "grid"}) for steps in (10, 30, 100)}
    assert reached == {10: lrs, 30: [0.03, 0.1, 0.3], 100: [0.1, 0.3]}  # 9 -> ceil(9/3) = 3 -> max(ceil(3/3), 2) = 2
    assert sorted(r["lr"] for r in rows if r["setting"] == "curvature") == [50.0, 50.0, 50.0, 60.0, 60.0, 60.0]
    assert {r["epochs"] for r in rows} == {1.0, 3.0, 10.0}


def test_selection_is_made_per_activation():
    relu = [r | {"activation": "relu", "val_loss": 1.0 - r["lr"] if r["lr"] == 1.0 and r["seed"] == 2 else r["val_loss"]} for r in _runs()]
    relu = [r | {"val_loss": 0.0} if r["lr"] == 1.0 else r for r in relu]
    tanh = [r | {"activation": "tanh"} for r in _runs()]
    assert tables.best_lrs(tanh + relu) == {("spectral", "sgd", 10.0, "tanh"): 0.1, ("spectral", "sgd", 10.0, "relu"): 1.0}
    fairness = {(r["activation"], r["setting"]): r["lr"] for r in tables.lr_fairness_table(tanh + relu)}
    assert fairness[("tanh", "best_lr")] == 0.1 and fairness[("relu", "best_lr")] == 1.0
