"""Loading and summarizing the stages' outputs (tidy rows), on synthetic run folders."""

import json
import math

import pytest

from initlab.pipeline import analysis_tables, tables
from initlab.pipeline.common import read_csv, write_csv


def test_mean_std_skips_missing_and_non_finite():
    assert tables.mean_std([1.0, 3.0, None, math.nan]) == (2.0, pytest.approx(math.sqrt(2)), 2)
    assert tables.mean_std([5.0]) == (5.0, 0.0, 1)
    assert math.isnan(tables.mean_std([])[0])
    assert tables.geometric_mean([1.0, 4.0, -1.0]) == pytest.approx(2.0)


def test_summarize_groups_and_keeps_order():
    rows = [{"a": "x", "n": 7, "v": 1.0}, {"a": "y", "n": 7, "v": 5.0}, {"a": "x", "n": 7, "v": 3.0}]
    summary = tables.summarize(rows, ("a", "n"), ("v",))
    assert summary[0]["n"] == 7
    assert [r["a"] for r in summary] == ["x", "y"]
    assert summary[0]["v"] == 2.0 and summary[0]["count"] == 2 and summary[1]["v_std"] == 0.0


def test_csv_roundtrip_parses_numbers(tmp_path):
    path = write_csv(tmp_path / "t.csv", [{"a": 1, "b": 0.5, "c": "x"}, {"a": 2, "b": None, "c": "nan", "d": float("inf")}])
    rows = read_csv(path)
    assert rows[0] == {"a": 1, "b": 0.5, "c": "x", "d": None}
    assert rows[1]["b"] is None and math.isinf(rows[1]["d"]) and math.isnan(rows[1]["c"])


def _write_run(root, init, optim, seed, acc, status="done", stds=(0.04, 0.03)):
    run = root / tables.run_key(init, optim, seed)
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text("model:\n  activation: tanh\n")
    (run / "metrics.json").write_text(json.dumps({"status": status, "train": {"loss": 0.1}, "test": {"acc": acc, "loss": 0.2}}))
    write_csv(run / "history.csv", [{"epoch": e, "train/loss": 1.0 / (e + 1), "val/loss": 1.0, "val/acc": acc, "train/acc": acc} for e in range(3)])
    (run / "init.json").write_text(json.dumps([{"name": "1", "fan_in": 256, "fan_out": 256, "weight_std": stds[0]},
                                               {"name": "3", "fan_in": 256, "fan_out": 10, "weight_std": stds[1]}]))


def test_training_runs_curves_and_outcome(tmp_path):
    _write_run(tmp_path, "spectral", "sgd", 1, 0.9, stds=(0.03125, 0.0513))
    _write_run(tmp_path, "spectral", "sgd", 2, 0.8, status="diverged", stds=(0.03125, 0.0513))
    _write_run(tmp_path, "xavier_normal", "sgd", 1, 0.95, stds=(0.0625, 0.0857))
    _write_run(tmp_path, "xavier_normal", "sgd", 2, 0.97, stds=(0.0625, 0.0857))
    runs = tables.load_training_runs(tmp_path, ["spectral", "xavier_normal"], ["sgd"], [1, 2])
    assert runs[0]["config"]["model"]["activation"] == "tanh"
    curves = tables.training_curves(runs)
    assert len(curves) == 6 and curves[0]["count"] == 2
    outcome = {r["init"]: r for r in tables.outcome_table(runs)}
    assert outcome["spectral"]["done"] == 1 and outcome["spectral"]["diverged"] == 1
    assert outcome["spectral"]["test_acc"] == pytest.approx(0.9)
    assert outcome["xavier_normal"]["test_acc"] == pytest.approx(0.96)
    ratios = tables.init_sigma_ratios(runs)
    assert ratios[0]["measured_ratio"] == pytest.approx(0.5) and ratios[0]["formula_ratio"] == pytest.approx(0.5)
    assert ratios[1]["formula_ratio"] == pytest.approx(math.sqrt(266) / (math.sqrt(2) * (16 + math.sqrt(10))))


def test_analysis_layer_rows_accept_wrapped_and_flat_records(tmp_path):
    layers = [{"name": "1", "lambda_max": 2.0, "jacobian_norm": 1.0}, {"name": "3", "lambda_max": 0.5, "jacobian_norm": 0.9}]
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "analysis.json").write_text(json.dumps({"source": {}, "layers": layers, "global": {"lambda_max": 3.0}}))
    (tmp_path / "wrapped").mkdir()
    (tmp_path / "wrapped" / "analysis.json").write_text(json.dumps({"analysis": {"layers": layers, "global": {"lambda_max": 3.0}}}))
    for name in ("flat", "wrapped"):
        rows = analysis_tables.layer_rows(analysis_tables.analysis_record(tmp_path / name), init="spectral")
        assert [r["layer"] for r in rows] == [0, 1] and rows[1]["lambda_max"] == 0.5 and rows[0]["init"] == "spectral"
        assert rows[0]["ratio_corrected"] is None
    (tmp_path / "flat" / "esd.json").write_text(json.dumps({"grid": [0.0, 1.0], "density": [0.0, 2.0]}))
    density = analysis_tables.density_rows(tmp_path / "flat", state="at init", series="spectral")
    assert density[0]["density"] == 1e-8 and density[1] == {"state": "at init", "series": "spectral", "eigenvalue": 1.0, "density": 2.0}
