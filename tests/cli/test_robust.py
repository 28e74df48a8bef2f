"""Bad input fails before training with a clear message; divergence, failures and kills lose nothing."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import initlab.optim  # noqa: F401  (registers the schedule classes as checkpoint-safe globals)
from initlab.config import PROJECT_ROOT, ConfigError
from initlab.training.run import run_training
from tests.conftest import FAST, run_cli

BAD_INPUTS = {
    "negative lr": (["optim.lr=-0.1"], "optim.lr: got -0.1"),
    "zero lr": (["optim.lr=0"], "optim.lr: got 0"),
    "lr of wrong type": (["optim.lr=fast"], "optim.lr: got 'fast'"),
    "zero epochs": (["trainer.max_epochs=0"], "trainer.max_epochs: got 0"),
    "fractional epochs": (["trainer.max_epochs=1.5"], "trainer.max_epochs: got 1.5"),
    "zero width": (["model.widths=[0,16]"], "model.widths: got [0, 16]"),
    "negative batch size": (["data.batch_size=-5"], "data.batch_size: got -5"),
    "unknown activation": (["model.activation=swish"], "unknown activation 'swish'"),
    "typo in model key": (["+model.widht=3"], "model.widht: unknown key (did you mean 'widths'?)"),
    "typo in trainer key": (["+trainer.max_epoch=3"], "trainer.max_epoch: unknown key (did you mean 'max_epochs'?)"),
    "typo in init key": (["+init.sdt=0.1"], "unknown init key(s) ['sdt']"),
    "bool for int": (["model.widths=[true]"], "model.widths"),
    "momentum out of range": (["optim=momentum", "optim.alpha=1.5"], "alpha must be in [0.0, 1.0)"),
    "bad schedule value": (["sched=linear_decay", "sched.end_factor=-1"], "end_factor"),
    "negative seed": (["seed=-1"], "seed: got -1"),
    "output_marginals without a head bias": (["model=deep_linear", "init.bias=output_marginals"], "needs an output layer with a bias"),
    "cnn too deep for 8x8 inputs": (["model=cnn", "model.channels=[4,4,4,4]"], "too small for 4 pooling stages"),
    "dataset/model shape mismatch": (["model.input_shape=[1,28,28]"], "input_shape"),
    "missing checkpoint": (["ckpt_path=/nonexistent/last.ckpt"], "no checkpoint at /nonexistent/last.ckpt"),
}


@pytest.mark.parametrize("overrides, message", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_fails_before_training_with_a_clear_message(compose_cfg, overrides, message):
    cfg = compose_cfg([*FAST, *overrides])
    with pytest.raises((ConfigError, ValueError)) as info:
        run_training(cfg)
    assert message in str(info.value)
    run_dir = Path(cfg.paths.output_dir)
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "failed" and message in record["error"]
    assert not (run_dir / "checkpoints").exists()


def test_bad_input_exits_nonzero_from_the_command_line(tmp_path):
    result = run_cli(["train.py", "optim.lr=-1", "logger=none", f"paths.log_dir={tmp_path}"], cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    assert "optim.lr: got -1, must be a positive number or 'auto'" in result.stderr
    assert "Epoch 0" not in result.stdout


def test_corrupt_idx_file_is_named(tmp_path, compose_cfg):
    folder = tmp_path / "mnist-t10k"
    folder.mkdir()
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip either")
    cfg = compose_cfg([*FAST, "data=mnist_t10k", f"data.path={folder}", f"paths.data_dir={tmp_path / 'data'}"])
    with pytest.raises(Exception, match="t10k-images-idx3-ubyte.gz"):
        run_training(cfg)


def test_sweep_survives_divergence_and_failure_and_counts_failures(tmp_path):
    result = run_cli(
        ["train.py", "-m", "optim=sgd", "optim.lr=1e4,0.1,-1", "debug=fast", "logger=none", f"paths.log_dir={tmp_path}"],
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    records = {p.parent.name: json.loads(p.read_text()) for p in tmp_path.glob("train/multiruns/*/*/metrics.json")}
    assert [records[job]["status"] for job in ("0", "1", "2")] == ["diverged", "done", "failed"]
    assert records["0"]["diverged_step"] >= 1 and "loss" in records["0"]["error"]
    assert "optim.lr: got -1" in records["2"]["error"]
    assert "1 diverged, 1 done, 1 failed" in result.stdout
    assert list(tmp_path.glob("train/multiruns/*/aggregate.md"))


def _train_command(run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, str(PROJECT_ROOT / "train.py"), "trainer.max_epochs=4", "logger=none", "seed=7",
            "data.batch_size=32", f"hydra.run.dir={run_dir}", *extra]


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_metrics(tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    subprocess.run(_train_command(straight), check=True, capture_output=True, timeout=600)
    process = subprocess.Popen(_train_command(killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history = killed / "history.csv"
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        if history.exists() and len(history.read_text().splitlines()) >= 2:
            process.send_signal(signal.SIGTERM)
            break
        time.sleep(0.05)
    process.wait(timeout=120)
    interrupted = json.loads((killed / "metrics.json").read_text())
    assert interrupted["status"] == "failed" and "interrupted" in interrupted["error"]
    assert (killed / "checkpoints" / "interrupted.ckpt").is_file()
    epoch_of_last = torch.load(killed / "checkpoints" / "last.ckpt", weights_only=True)["epoch"]
    assert epoch_of_last < 3, "the run finished before it was killed; nothing was resumed"
    subprocess.run(_train_command(killed, "ckpt_path=last"), check=True, capture_output=True, timeout=600)
    resumed, reference = (json.loads((d / "metrics.json").read_text()) for d in (killed, straight))
    assert resumed["status"] == "done" and resumed["epochs"] == reference["epochs"] == 4
    for stage in ("train", "val", "test"):
        assert resumed[stage] == reference[stage]


def test_wandb_offline_by_default_and_never_blocks(tmp_path):
    result = run_cli(["train.py", "debug=fast", "logger=wandb", f"paths.log_dir={tmp_path}"], cwd=tmp_path, timeout=180,
                     env={"WANDB_BASE_URL": "http://127.0.0.1:9"})
    assert result.returncode == 0, result.stderr[-2000:]
    (record,) = [json.loads(p.read_text()) for p in tmp_path.glob("train/runs/*/metrics.json")]
    assert record["status"] == "done"
    assert len(list(tmp_path.glob("train/runs/*/wandb/offline-run-*"))) == 1


def test_joblib_launcher_runs_two_jobs_in_parallel(tmp_path):
    result = run_cli(["train.py", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "init=xavier_normal,spectral",
                      "debug=fast", "logger=none", f"paths.log_dir={tmp_path}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    statuses = [json.loads(p.read_text())["status"] for p in tmp_path.glob("train/multiruns/*/*/metrics.json")]
    assert statuses == ["done", "done"]


def test_submitit_slurm_launcher_composes(compose_cfg):
    cfg = compose_cfg(["hydra/launcher=submitit_slurm", "hydra.launcher.partition=gpu", "hydra.launcher.gpus_per_node=4",
                       "hydra.launcher.timeout_min=120", "trainer=ddp", "trainer.devices=4"])
    launcher = cfg.hydra.launcher
    assert "submitit" in launcher._target_ and "Slurm" in launcher._target_
    assert (launcher.partition, launcher.gpus_per_node, launcher.timeout_min) == ("gpu", 4, 120)
    assert cfg.trainer.strategy == "ddp" and cfg.trainer.devices == 4


def test_optuna_search_composes_over_lr_and_init_scale(compose_cfg):
    cfg = compose_cfg(["hparams_search=optuna"])
    assert "optuna" in cfg.hydra.sweeper._target_.lower()
    assert set(cfg.hydra.sweeper.params) == {"optim.lr", "init.std"}
    assert cfg.init.scheme == "normal"


@pytest.mark.slow
def test_optuna_search_runs(tmp_path):
    result = run_cli(["train.py", "hparams_search=optuna", "hydra.sweeper.n_trials=3", "hydra.sweeper.sampler.n_startup_trials=2",
                      "debug=fast", f"paths.log_dir={tmp_path}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(list(tmp_path.glob("train/multiruns/*/optimization_results.yaml"))) == 1


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path):
    result = run_cli(["train.py", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.max_epochs=2",
                      "logger=none", f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["status"] == "done" and record["epochs"] == 2
    assert record["steps"] == 2 * 5  # 1,257 train samples / 2 ranks / batch 128 -> 5 steps per epoch
    assert record["val"]["acc"] > 0.5
