"""The other Hydra apps on the same config groups: analyze, lr_find, and curvature tracking in train."""

import ast
import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from initlab.aggregate import OBJECTIVE, aggregate, direction
from initlab.cli.analyze import analyze
from initlab.lr_find import lr_range_test
from initlab.cli.sweep import name_objective
from initlab.training.run import run_job, run_training
from tests.conftest import FAST

SRC = Path(__file__).resolve().parents[2] / "src" / "initlab"


def test_analyze_writes_analysis_and_esd_at_init_and_from_a_checkpoint(compose_cfg, tmp_path):
    from tests.analysis.test_app import trained_run

    ckpt = trained_run(compose_cfg, [])
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


@pytest.mark.slow
def test_analyze_reports_progress_and_records_the_checkpoints_config(compose_cfg, tmp_path):
    # issue 28 item 1: a tanh / jacobian_calibrated checkpoint's analysis said relu / spectral in its run dir,
    # and printed nothing for minutes; stderr here is not a TTY: one line per quantity
    from omegaconf import OmegaConf

    from tests.analysis.test_app import trained_run
    from tests.conftest import run_cli

    ckpt = trained_run(compose_cfg, ["model.activation=tanh", "model.widths=[16]", "init=jacobian_calibrated"])
    run_dir = tmp_path / "analysis"
    result = run_cli(["-m", "initlab.analyze", f"ckpt_path={ckpt}", f"hydra.run.dir={run_dir}", "num_samples=128",
                      "analysis.k_top=1", "analysis.slq_probes=2", "analysis.slq_steps=8", "analysis.grid=50"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    for quantity in ("data and model (checkpoint weights)", "full Hessian", "layer blocks", "per layer"):
        assert sum(line.startswith(f"analyze: {quantity}") for line in lines) == 1, lines
    assert any("Hessian-vector products (planned <=" in line for line in lines)
    recorded = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    assert recorded.model.activation == "tanh" and recorded.init.scheme == "jacobian_calibrated"
    assert recorded.model.widths == [16] and recorded.ckpt_path == str(ckpt)
    tree = (run_dir / "config_tree.log").read_text()
    assert "activation: tanh" in tree and "scheme: jacobian_calibrated" in tree and "relu" not in tree
    analysis = json.loads((run_dir / "analysis.json").read_text())
    assert analysis["source"]["activation"] == "tanh" and analysis["source"]["init"] == "jacobian_calibrated"
    assert analysis["global"]["trace_method"] == "hessian_backprop_exact" and "trace_estimate_slq" not in analysis["global"]


def test_a_planted_target_in_a_checkpoints_run_config_is_refused(compose_cfg, tmp_path):
    # issue 27 item 2: a run folder someone hands over is data; its config passes the schema and the
    # _target_ allowlist before anything is built (one line, exit 2, the payload never runs)
    from omegaconf import OmegaConf

    from initlab.analyze import adopt_checkpoint_config
    from initlab.config import ConfigError
    from tests.analysis.test_app import trained_run
    from tests.conftest import run_cli

    ckpt = trained_run(compose_cfg, ["model.widths=[16]"])
    marker = tmp_path / "pwned"
    config = ckpt.parent.parent / ".hydra" / "config.yaml"
    original = yaml.safe_load(config.read_text())
    payloads = {"os.system": {"_target_": "os.system", "_args_": [f"touch {marker}"]},
                "subprocess.run": {**original["model"], "head": {"_target_": "subprocess.run", "args": ["touch", str(marker)]}}}
    for name, model in payloads.items():
        config.write_text(yaml.safe_dump({**original, "model": model}))
        result = run_cli(["-m", "initlab.analyze", f"ckpt_path={ckpt}", f"hydra.run.dir={tmp_path / name}"], cwd=tmp_path)
        assert result.returncode == 2 and not marker.exists(), result.stderr
        assert result.stderr.count("\n") == 1 and f"got '{name}'" in result.stderr, result.stderr
    config.write_text("model: [unclosed\n")
    cfg = OmegaConf.create({"ckpt_path": str(ckpt)})
    with pytest.raises(ConfigError, match="is not readable YAML"):
        adopt_checkpoint_config(cfg, [])


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


def _sweep(root: Path, runs: list[tuple[str, int, float, float]]) -> Path:
    """A sweep folder of metrics.json records: (override, seed, val loss, val acc) per job."""
    for job, (override, seed, loss, acc) in enumerate(runs):
        record = {"status": "done", "seed": seed, "overrides": [override, f"seed={seed}"],
                  "train": {}, "val": {"loss": loss, "acc": acc}, "test": {}}
        (root / str(job)).mkdir(parents=True)
        (root / str(job) / "metrics.json").write_text(json.dumps(record))
    return root


def test_aggregate_ranks_by_the_objective_and_says_n_for_a_single_run(tmp_path):
    # optim.lr=0.1 has the higher val accuracy but the higher mean val loss: the objective (val loss) picks 0.01
    sweep = _sweep(tmp_path, [("optim.lr=0.1", 0, 0.50, 0.95), ("optim.lr=0.1", 1, 0.70, 0.93), ("optim.lr=0.01", 0, 0.40, 0.90)])
    markdown = aggregate(sweep)["markdown"]
    assert OBJECTIVE == "val/loss" and direction(OBJECTIVE) == "minimize"
    assert ("Best configuration by lowest mean val/loss (the sweep's objective: Optuna minimizes the same): `optim.lr=0.01`, "
            "val/loss = 0.4000 (n = 1)") in markdown
    assert "0.4000 (n = 1)" in markdown and "+- 0.0000" not in markdown
    two_seeds = f"0.6000 +- {math.sqrt(((0.5 - 0.6) ** 2 + (0.7 - 0.6) ** 2) / (2 - 1)):.4f}"  # sample std, n - 1 = 1
    assert two_seeds in markdown


def test_aggregate_counts_malformed_records_as_unreadable_and_keeps_the_other_runs(tmp_path):
    sweep = _sweep(tmp_path, [("optim.lr=0.1", 0, 0.50, 0.95)])
    for job, text in {"list": "[1, 2]", "null_val": json.dumps({"status": "done", "val": None}), "cut": '{"status": "do'}.items():
        (sweep / job).mkdir()
        (sweep / job / "metrics.json").write_text(text)
    result = aggregate(sweep)
    statuses = {row["run"]: row["status"] for row in result["rows"]}
    assert statuses == {"0": "done", "list": "unreadable", "null_val": "done", "cut": "unreadable"}
    assert "`optim.lr=0.1`, val/loss = 0.5000 (n = 1)" in result["markdown"]


def test_optuna_optimizes_the_objective_and_its_results_name_it(compose_cfg, tmp_path):
    cfg = compose_cfg(["hparams_search=optuna"])
    assert cfg.hydra.sweeper.direction == direction(OBJECTIVE)
    results = tmp_path / "optimization_results.yaml"
    results.write_text("name: optuna\nbest_params:\n  optim.lr: 0.01\nbest_value: 0.4\n")
    name_objective(results)
    assert yaml.safe_load(results.read_text()) == {"name": "optuna", "best_params": {"optim.lr": 0.01}, "best_value": 0.4,
                                                   "objective": f"minimize {OBJECTIVE}"}


def test_train_returns_the_objective(compose_cfg):
    cfg = compose_cfg(FAST)
    returned = run_training(cfg)
    record = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    stage, name = OBJECTIVE.split("/")
    assert returned == record[stage][name]


def test_a_run_from_another_folder_writes_under_that_folder(tmp_path):
    """The console script of this (editable) install, run where there is no conf/: logs/ and data/ land in the cwd."""
    script = Path(sys.executable).parent / "initlab-train"
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "initlab.train"]
    env = {**os.environ, "WANDB_SILENT": "true", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([*command, "debug=fast", "logger=none"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    runs = list(tmp_path.glob("logs/train/runs/*/metrics.json"))
    assert len(runs) == 1 and str(runs[0].parent) in result.stdout.splitlines()[-1]
    assert (tmp_path / "data" / "processed").is_dir()


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_lr_find_imports_point_one_way():
    """``cli/lr_find.py`` imports the app; the app never imports ``initlab.cli`` (issue 22, item 10): only its
    ``__main__``, the ``python -m`` script nothing imports, calls the entry point."""
    assert "initlab.lr_find" in _imported_modules(SRC / "cli" / "lr_find.py")
    assert not {m for m in _imported_modules(SRC / "lr_find" / "__init__.py") if m.startswith("initlab.cli")}
