"""The other Hydra apps on the same config groups: analyze, lr_find, and curvature tracking in train."""

import csv
import json
from pathlib import Path

import pytest

from initlab.cli.analyze import analyze
from initlab.cli.lr_find import lr_range_test
from initlab.training.run import run_job, run_training
from tests.conftest import FAST


def test_analyze_writes_analysis_and_esd_at_init_and_from_a_checkpoint(compose_cfg, tmp_path):
    train_cfg = compose_cfg([*FAST, "trainer.limit_train_batches=2"])
    run_training(train_cfg)
    ckpt = Path(train_cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    results = []
    for extra in ([], [f"ckpt_path={ckpt}"]):
        cfg = compose_cfg(["num_samples=256", "analysis.trace_probes=10", "analysis.slq_probes=2", "analysis.slq_steps=20",
                           *extra], config_name="analyze")
        record = run_job(cfg, analyze)
        run_dir = Path(cfg.paths.output_dir)
        analysis = json.loads((run_dir / "analysis.json").read_text())
        esd = json.loads((run_dir / "esd.json").read_text())
        assert record["status"] == "done" and analysis["source"]["num_samples"] == 256
        assert [layer["name"] for layer in analysis["layers"]] == ["hidden1", "hidden2", "output"]
        top = analysis["global"]["top_eigenvalues"]
        assert top == sorted(top, reverse=True) and analysis["global"]["lambda_min"] < 0 < top[0]
        assert analysis["global"]["lr_edge"] == pytest.approx(2 / top[0])
        assert len(esd["grid"]) == len(esd["density"])
        results.append(analysis["global"]["lambda_max"])
    assert results[0] != results[1], "the checkpoint's weights were not loaded"


def test_curvature_callback_logs_lambda_max_over_steps(compose_cfg):
    cfg = compose_cfg([*FAST, "callbacks=curvature", "callbacks.curvature.every_n_steps=2",
                       "callbacks.curvature.num_samples=128", "callbacks.curvature.per_layer=true"])
    run_training(cfg)
    with (Path(cfg.paths.output_dir) / "curvature.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == [0, 2, 4]
    assert all(float(r["lambda_max"]) > 0 and float(r["eos_ratio"]) == pytest.approx(float(r["lambda_max"]) * float(r["lr"]) / 2)
               for r in rows)
    assert {"lambda_max_hidden1", "lambda_max_hidden2", "lambda_max_output"} <= set(rows[0])
    assert all(float(r["lambda_max_output"]) <= float(r["lambda_max"]) * (1 + 1e-3) for r in rows)  # a block is inside the full range


def test_lr_auto_sets_lr_to_inverse_lambda_max(compose_cfg):
    cfg = compose_cfg([*FAST, "optim=sgd", "optim.lr=auto", "lr_auto_scale=0.5"])
    run_training(cfg)
    record = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    measured = record["lr_auto"]
    assert record["status"] == "done" and measured["lambda_max"] > 0
    assert measured["lr"] == pytest.approx(0.5 / measured["lambda_max"])
    assert record["train"]["lr"] == pytest.approx(measured["lr"])


def test_lr_find_suggests_a_learning_rate_inside_the_range(compose_cfg):
    cfg = compose_cfg(["optim=sgd", "lr_find.num_steps=30", "lr_find.min_lr=1e-4", "lr_find.max_lr=1.0"], config_name="lr_find")
    record = run_job(cfg, lr_range_test)
    result = json.loads((Path(cfg.paths.output_dir) / "lr_find.json").read_text())
    assert record["status"] == "done"
    assert 1e-4 <= result["suggested_lr"] <= 1.0 and len(result["lr"]) == len(result["loss"]) <= 30
    assert (Path(cfg.paths.output_dir) / "lr_find.png").stat().st_size > 1000
