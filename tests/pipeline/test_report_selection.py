"""Every selection of the pipeline reads val, never test: run each selection function on rows whose test columns
cannot be read (any access raises) or are scrambled, and check the choices are unchanged."""

import copy
import math
import random

import pytest
import yaml

from initlab.config import PROJECT_ROOT
from initlab.pipeline import claims, study, tables

PROTOCOL = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())["report"]


class ValOnly(dict):
    """A row whose test columns raise on access: a selection that reads them fails loudly."""

    def __getitem__(self, key):
        if str(key).startswith("test"):
            raise AssertionError(f"a selection read the test column {key!r}")
        return super().__getitem__(key)

    def get(self, key, default=None):
        return self[key] if key in self else default


def _runs(seed_count: int = 4) -> list[dict]:
    """lr-study runs whose val and test disagree on the best lr (test would pick the largest lr, val the middle one)."""
    rng = random.Random(0)
    rows = []
    for init in ("spectral", "xavier_normal", "kaiming_normal"):
        for optim, grid in (("sgd", [0.01, 0.1, 1.0]), ("adam", [1e-4, 1e-3, 1e-2])):
            for seed in range(seed_count):
                for epochs in (1, 3):
                    for lr in grid:
                        middle = lr == grid[1]
                        rows.append({"init": init, "optim": optim, "seed": seed, "lr": lr, "default_lr": grid[0], "setting": "grid",
                                     "epochs": epochs, "lambda_max": 2.0 + seed, "val_loss": (0.3 if middle else 0.6) + 0.01 * rng.random(),
                                     "val_acc": 0.9, "test_loss": 0.1 if lr == grid[2] else 0.9, "test_acc": 0.99 if lr == grid[2] else 0.5})
    return rows


def _guarded(rows):
    return [ValOnly(r) for r in rows]


def _scrambled(rows):
    """Test columns permuted across all rows and partly NaN."""
    rng = random.Random(1)
    out = copy.deepcopy(rows)
    for column in ("test_loss", "test_acc"):
        values = [r[column] for r in out]
        rng.shuffle(values)
        for r, v in zip(out, values, strict=True):
            r[column] = math.nan if rng.random() < 0.3 else v
    return out


def test_best_lrs_and_settings_never_read_test():
    runs = _runs()
    best = tables.best_lrs(_guarded(runs))
    assert best == tables.best_lrs(_scrambled(runs))
    assert all(lr in (0.1, 1e-3) for lr in best.values())  # val's choice, not test's (the largest lr)
    chosen = [(r["init"], r["optim"], r["seed"], r["epochs"], r["lr"]) for r in tables.setting_runs(_guarded(runs)) if r["setting"] == "best_lr"]
    assert chosen == [(r["init"], r["optim"], r["seed"], r["epochs"], r["lr"]) for r in tables.setting_runs(_scrambled(runs))
                      if r["setting"] == "best_lr"]


def test_depth_selection_never_reads_test():
    rows = [r | {"activation": "relu", "depth": 16} for r in _runs() if r["init"] == "spectral" and r["optim"] == "sgd"]
    assert tables.best_depth_lr(_guarded(rows)) == tables.best_depth_lr(_scrambled(rows)) == 0.1


def test_successive_halving_keeps_arms_by_val_only():
    """The study's halving loop with runs whose records carry a test column that raises on access."""
    class Runs:
        def __init__(self, lrs):
            self.lrs = lrs

        def advance(self, x, y, steps):
            pass

        def record(self, data, eval_samples, test=True):
            return [ValOnly({"val_loss": abs(math.log10(lr) + 1) + 0.01 * seed, "test_loss": -math.log10(lr), "train_loss": 1.0})
                    for seed, lr in self.lrs.items()]

    class Split:
        x, y = None, [0] * 700

    data = type("Data", (), {"train": Split})()
    arms = [study.Arm(labels={"init": "spectral"}, lrs={seed: lr for seed in (1, 2)}) for lr in (0.001, 0.01, 0.1, 1.0, 10.0)]
    settings = {"budgets": [1, 2, 4], "batch_size": 100, "eta": 3, "min_keep": 1, "eval_samples": 10}
    rows = study.successive_halving(arms, Runs, data, settings)
    last = max(r["epochs"] for r in rows)
    assert {r["lr"] for r in rows if r["epochs"] == last} == {0.1}  # val's best; test would keep 10.0


@pytest.mark.parametrize("check", ["curvature_predicts_lr", "spectral_vs_comparator"])
def test_claims_select_on_val(check):
    """The claim rows' own selections (best lr per seed, best lr per init): the curvature row reads no test column at all;
    the comparator row reads test only for the chosen runs, so scrambling the test of the other lrs leaves it unchanged."""
    raw = next(s for s in PROTOCOL["claims"] if s["check"] == check and s.get("setting", "best_lr") == "best_lr")
    first = (raw.get("sub") or [{}])[0]  # the row's first sub-row (tanh; test accuracy for the comparator row)
    spec = claims.resolve({k: v for k, v in raw.items() if k != "sub"} | first, PROTOCOL, "tanh")
    runs = _runs()
    if check == "curvature_predicts_lr":
        guarded = claims.CLAIMS[check]({"lr_runs": _guarded(runs)}, spec)
        assert guarded.value == claims.CLAIMS[check]({"lr_runs": _scrambled(runs)}, spec).value
    else:
        other = [r | {"test_acc": math.nan} if r["lr"] not in (0.1, 1e-3) else r for r in runs]
        assert claims.CLAIMS[check]({"lr_runs": other}, spec).value == claims.CLAIMS[check]({"lr_runs": runs}, spec).value
