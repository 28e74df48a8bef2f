"""The study's seed-batched loop (``study.SeedRuns``) against the per-seed loop (``study.Run`` with the config's
``torch.optim`` optimizer): the same losses, parameters, divergence and records for every seed."""

import copy
import math
from types import SimpleNamespace

import pytest
import torch

from initlab.models import mlp
from initlab.pipeline import study
from initlab.pipeline.common import make_optimizer

SEEDS = [3, 4, 5]
SETTINGS = {"batch_size": 16, "diverge_factor": 10}


def _data() -> SimpleNamespace:
    generator = torch.Generator().manual_seed(0)

    def split(n: int) -> SimpleNamespace:
        return SimpleNamespace(x=torch.randn(n, 1, 4, 4, generator=generator), y=torch.randint(0, 5, (n,), generator=generator))

    return SimpleNamespace(train=split(96), val=split(40), test=split(30))


def _models(activation: str) -> list[torch.nn.Module]:
    models = []
    for seed in SEEDS:
        torch.manual_seed(seed)
        models.append(mlp((1, 4, 4), 5, widths=[12, 12], activation=activation))
    return models


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize(("optim", "lrs"), [("sgd", [0.05, 0.3, 400.0]), ("adam", [1e-3, 3e-2, 30.0])])
def test_batched_seeds_follow_the_per_seed_loop(optim, lrs, activation):
    """Two budgets; the last seed's lr is far beyond stable, so it diverges while the others train on."""
    data = _data()
    models = _models(activation)
    runs = [study.Run(m, make_optimizer(optim, m.parameters(), lr=lr), study.batches(96, 16, seed), 10)
            for m, lr, seed in zip(copy.deepcopy(models), lrs, SEEDS, strict=True)]
    batched = study.SeedRuns(models, optim, lrs, SEEDS, 96, SETTINGS)
    for steps in (6, 30):
        for run in runs:
            run.advance(data.train.x, data.train.y, steps)
        batched.advance(data.train.x, data.train.y, steps)
        expected = [run.record(data, 50) for run in runs]
        for want, got in zip(expected, batched.record(data, 50), strict=True):
            assert got["diverged"] == want["diverged"]
            for key, value in want.items():
                if isinstance(value, float) and math.isnan(value):
                    assert math.isnan(got[key]), key
                elif key != "diverged":
                    assert got[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
    assert [r.diverged for r in runs] == [False, False, True]
    for s, run in enumerate(runs):
        for name, p in run.model.named_parameters():
            torch.testing.assert_close(batched.params[name][s], p.detach(), rtol=1e-4, atol=1e-5)


def test_halving_runs_each_arm_as_one_batch_of_seeds():
    """``starter`` gives one SeedRuns per arm; the rows carry every seed with its own lr."""
    data = _data()
    models = dict(zip(SEEDS, _models("tanh"), strict=True))
    start = study.starter(lambda seed: copy.deepcopy(models[seed]), "sgd", SETTINGS | {"n_train": 96})
    arms = [study.Arm({"c": c}, {seed: c * seed for seed in SEEDS}) for c in (0.01, 0.02)]
    rows = study.successive_halving(arms, start, data, {"budgets": [1, 2], "batch_size": 16, "eta": 2, "min_keep": 1, "eval_samples": 20})
    assert [(r["seed"], r["lr"]) for r in rows[:3]] == [(s, 0.01 * s) for s in SEEDS]
    assert all(isinstance(arm.runs, study.SeedRuns) or arm.runs is None for arm in arms)
    assert sorted({r["steps"] for r in rows}) == [6, 12]


def test_halving_without_test_at_every_budget_evaluates_test_at_the_longest_only():
    """The depth study's setting: the same runs and train / val numbers, test left empty before the longest budget."""
    data = _data()
    models = dict(zip(SEEDS, _models("tanh"), strict=True))
    settings = {"budgets": [1, 2], "batch_size": 16, "eta": 2, "min_keep": 1, "eval_samples": 20}

    def rows(every: bool) -> list[dict]:
        start = study.starter(lambda seed: copy.deepcopy(models[seed]), "sgd", SETTINGS | {"n_train": 96})
        arms = [study.Arm({"c": c}, {seed: c * seed for seed in SEEDS}) for c in (0.01, 0.02)]
        return study.successive_halving(arms, start, data, settings, test_every_budget=every)

    full, lean = rows(True), rows(False)
    longest = max(r["steps"] for r in full)
    assert len(full) == len(lean)
    for f, l in zip(full, lean, strict=True):
        assert {k: v for k, v in f.items() if not k.startswith("test_")} == {k: v for k, v in l.items() if not k.startswith("test_")}
        if f["steps"] == longest:
            assert (l["test_loss"], l["test_acc"]) == (f["test_loss"], f["test_acc"])
        else:
            assert l["test_loss"] is None and l["test_acc"] is None and f["test_acc"] is not None


def _search(loss_of, diverges=lambda value: False):
    """A grid search whose arms' val loss is ``loss_of(value)`` (two seeds, one budget) without training anything."""
    trained = []

    def train(value, grid_pass):
        trained.append((value, grid_pass))
        return [{"lr": value, "epochs": 1.0, "seed": s, "grid_pass": grid_pass, "diverged": diverges(value),
                 "val_loss": math.nan if diverges(value) else loss_of(value)} for s in (1, 2)]

    return study.GridSearch("lr", train, 2.0), train, trained


def test_an_edge_selection_extends_the_grid_until_it_is_interior():
    search, train, trained = _search(lambda lr: abs(math.log2(lr) - 5))  # best lr 32, beyond the grid's top (8)
    values = [1.0, 2.0, 4.0, 8.0]
    rows = [r for v in values for r in train(v, "grid")]
    assert search.extend(rows, values, bound=5) == {"grid_edge": "none", "edge_reason": "interior"}
    assert [v for v, p in trained if p == "edge"] == [16.0, 32.0, 64.0] and study.grid_best(rows, "lr") == 32.0


def test_an_edge_selection_says_why_it_stays_there():
    search, train, _ = _search(lambda lr: -lr)  # always better higher
    rows = [r for v in (1.0, 2.0) for r in train(v, "grid")]
    assert search.extend(rows, [1.0, 2.0], bound=2) == {"grid_edge": "high", "edge_reason": "bound"}
    search, train, trained = _search(lambda lr: -lr, diverges=lambda lr: lr > 2)
    rows = [r for v in (1.0, 2.0) for r in train(v, "grid")]
    assert search.extend(rows, [1.0, 2.0], bound=2) == {"grid_edge": "high", "edge_reason": "next_diverges"}
    assert trained[-1] == (4.0, "edge")


def test_refinement_reaches_the_asked_resolution_between_the_neighbours():
    search, train, trained = _search(lambda lr: abs(math.log2(lr) - 1.3))
    values = [1.0, 2.0, 4.0]
    rows = [r for v in values for r in train(v, "grid")]
    resolution = search.refine(rows, values, points_per_octave=4)
    assert resolution == pytest.approx(math.log10(2) / 4)
    refined = sorted(v for v, p in trained if p == "refine")
    assert refined == pytest.approx([2 ** (1 + k / 4) for k in (-3, -2, -1, 1, 2, 3)])
    assert study.grid_best(rows, "lr") == pytest.approx(2 ** 1.25)
