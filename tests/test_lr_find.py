"""The LR range test's numbers: raw losses recovered from Lightning's own smoothing code, a smoothed curve
without the start-up artefact of issue 16, and a suggestion at the known steepest point of a synthetic curve."""

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from pytorch_lightning.tuner.lr_finder import _LRCallback

from initlab import lr_find
from initlab.pipeline import style


def _lightning_record(losses):
    """What Lightning's finder stores for these per-step losses: its callback run step by step (global_step = t after step t)."""
    callback = _LRCallback(num_training=len(losses), early_stop_threshold=None)
    trainer = SimpleNamespace(fit_loop=SimpleNamespace(batch_idx=0), accumulate_grad_batches=1, should_stop=False,
                              strategy=SimpleNamespace(broadcast=lambda value: value))
    for t, loss in enumerate(losses, 1):
        trainer.global_step = t
        callback.on_train_batch_end(trainer, None, {"loss": torch.tensor(loss, dtype=torch.float64)}, None, t - 1)
    return callback.losses


def _sweep(count=200, low=1e-6, high=10.0):
    return np.geomspace(low, high, count)


def _loss_curve(lrs, steepest=1e-2, width=0.4, noise=0.02, seed=0):
    """ln 10 falling to 0.3 along a logistic in log10 lr (steepest at ``steepest``), blowing up past lr = 1."""
    x = (np.log10(lrs) - np.log10(steepest)) / width
    clean = 2.3 - 2.0 / (1 + np.exp(-x)) + np.where(lrs > 1, (np.log10(lrs)) ** 2 * 20, 0.0)
    return clean + noise * np.random.default_rng(seed).standard_normal(len(lrs))


def test_raw_losses_are_recovered_from_lightnings_record():
    losses = [2.3, 2.1, 2.25, 1.7, 1.2, 5.0, 0.4]
    assert lr_find.lightning_raw_losses(_lightning_record(losses)) == pytest.approx(losses, rel=1e-9)


def test_a_constant_loss_stays_constant_where_lightning_starts_at_half():
    record = _lightning_record([2.3] * 50)
    assert record[0] == pytest.approx(2.3 * 0.02 / (1 - 0.98**2))  # ~1.16: the artefact of issue 16
    result = lr_find.range_test_result(list(_sweep(50)), record)
    assert result["smoothed_loss"] == pytest.approx([2.3] * 50, rel=1e-9)


def test_debiased_ema_matches_the_weighted_mean_of_the_steps_so_far():
    values = np.random.default_rng(1).standard_normal(30)
    beta = 0.9
    expected = [np.average(values[:t][::-1], weights=beta ** np.arange(t)) for t in range(1, 31)]
    assert lr_find.debiased_ema(values, beta) == pytest.approx(expected, rel=1e-9)


def test_ema_centres_are_the_mean_position_of_the_averaged_steps():
    beta, t = 0.9, np.arange(1, 41)
    expected = [np.average(np.arange(n)[::-1], weights=beta ** np.arange(n)) for n in t]
    assert lr_find.ema_centres(40, beta) == pytest.approx(expected, rel=1e-9)


def test_a_blow_up_does_not_raise_the_smoothed_curve_before_the_raw_loss_rises():
    raw = [2.3] * 100 + [50.0, 1e6, 1e12]
    result = lr_find.range_test_result(list(_sweep(103)), _lightning_record(raw))
    assert result["smoothed_loss"] == pytest.approx([2.3] * 100, rel=1e-6)
    assert lr_find.divergence_step([2.0, 1.0, 3.9, 4.1, 1.0]) == 3 and lr_find.divergence_step([1.0, math.nan]) == 1


@pytest.mark.parametrize("steepest", [1e-3, 1e-2, 3e-2])
def test_suggestion_is_the_known_steepest_point_of_a_synthetic_curve(steepest):
    lrs = _sweep()
    result = lr_find.range_test_result(list(lrs), _lightning_record(_loss_curve(lrs, steepest)))
    assert abs(math.log10(result["suggested_lr"] / steepest)) < 0.15  # within 4 of 200 steps (7 decades)
    assert 1e-1 <= result["lowest_loss_lr"] <= 1.0  # the plateau before the blow-up past lr = 1


def test_plot_and_files_show_raw_smoothed_and_the_suggestion(tmp_path):
    lrs = _sweep(60)
    result = lr_find.write_range_test(list(lrs), _lightning_record(_loss_curve(lrs)), tmp_path, optimizer="sgd")
    written = json.loads((tmp_path / "lr_find.json").read_text())
    assert written["suggested_lr"] == pytest.approx(result["suggested_lr"]) and len(written["loss"]) == 60
    assert (tmp_path / "lr_find.png").stat().st_size > 5000
    fig = lr_find.plot_range_test(result, "sgd")
    labels = [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
    assert labels[0].startswith("raw loss") and labels[1].startswith("smoothed") and "suggested lr" in labels[2]
    assert fig.axes[0].get_xscale() == "log" and "n = 60" in style.describe(fig)[1]
