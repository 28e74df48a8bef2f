"""Bad input fails before training with a clear message; divergence, failures and kills lose nothing."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import initlab.optim  # noqa: F401  (registers the schedule classes as checkpoint-safe globals)
from initlab.config import PROJECT_ROOT
from initlab.training.run import run_training
from tests.conftest import FAST, run_cli

# Issue 13's commands as a user types them: overrides -> the start of the one line on stderr.
COMMANDS = {
    "limit_train below the init batch": (["data.limit_train=10", "init_batch_size=64"], "init_batch_size: got 64, must be <= 10"),
    "check_val_every_n_epoch=0": (["trainer.check_val_every_n_epoch=0"], "trainer.check_val_every_n_epoch: got 0"),
    "seed beyond 2^32-1": (["seed=4294967296"], "seed: got 4294967296"),
    "nan init value": (["init=constant", "init.value=nan"], "init.value: got nan"),
    "warm-up beyond the run": (["sched.warmup_steps=50", "debug=fast"], "sched.warmup_steps: got 50"),
    "output_marginals without head bias": (["init.bias=output_marginals", "model.bias=false", "init=lsuv"], "init.bias: got"),
    "2,000-character key": ([f"+{'k' * 2000}=1"], "unknown key"),
    "test=maybe": (["test=maybe"], "test: got 'maybe'"),
    "tags=5": (["tags=5"], "tags: got 5"),
    "zero train batches": (["trainer.limit_train_batches=0"], "trainer.limit_train_batches: got 0"),
    "zero val batches": (["trainer.limit_val_batches=0"], "trainer.limit_val_batches: got 0"),
    "negative log interval": (["trainer.log_every_n_steps=-1"], "trainer.log_every_n_steps: got -1"),
    "negative clip": (["trainer.gradient_clip_val=-1"], "trainer.gradient_clip_val: got -1"),
    "underflowing lr": (["optim.lr=1e-300"], "optim.lr: got 1e-300"),
    "null epochs": (["trainer.max_epochs=null"], "trainer.max_epochs: got None"),
    "+lr": (["+lr=0.1"], "lr: got 0.1, unknown key"),
    "+sed": (["+sed=3"], "sed: got 3, unknown key"),
    "+optimizer.lr": (["+optimizer.lr=0.1"], "optimizer: got"),
    "unknown group option": (["init=nope"], "init: got 'nope', must be one of"),
    "bad override syntax": (["optim.lr=="], "optim.lr: got '=', cannot be parsed"),
    "missing checkpoint": (["ckpt_path=/nonexistent/last.ckpt"], "ckpt_path"),
    "more CPU processes than cores": (["trainer=ddp", f"trainer.devices={(os.cpu_count() or 1) + 2}"], "trainer.devices: got"),
    **({"float16 on the CPU": (["trainer.precision=16-mixed"], "trainer.precision: got '16-mixed'"),
        "gpu without one": (["trainer=gpu"], "trainer.accelerator: got 'gpu'")} if not torch.cuda.is_available() else {}),
}


@pytest.mark.slow
@pytest.mark.parametrize(("overrides", "start"), COMMANDS.values(), ids=COMMANDS.keys())
def test_issue_13_commands_exit_2_with_one_clean_line(tmp_path, overrides, start):
    result = run_cli(["train.py", *overrides, "logger=none", f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and result.stderr.startswith("initlab: ") and start in result.stderr
    assert "Epoch 0" not in result.stdout


def test_a_bad_value_exits_2_in_seconds_before_lightning(tmp_path):
    start = time.perf_counter()
    result = run_cli(["train.py", "optim.lr=-1", "logger=none", f"paths.log_dir={tmp_path}"], cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    assert result.stderr == "initlab: optim.lr: got -1, must be 'auto' or a number >= 1e-12 and <= 1e+06\n"
    assert "CONFIG" not in result.stdout, "the config tree is printed only for a valid config"
    assert time.perf_counter() - start < 30  # about 1 s; generous for a loaded machine


def test_hydra_errors_exit_2_with_one_line(tmp_path):
    for overrides in (["init=nope"], ["+seed=3"], ["optim.lr=="]):
        result = run_cli(["train.py", *overrides, f"paths.log_dir={tmp_path}"], cwd=tmp_path, timeout=120)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr


def test_entry_points_run_from_sys_argv(tmp_path, monkeypatch):
    from hydra.core.global_hydra import GlobalHydra

    from initlab.cli import analyze, lr_find, train

    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    for module in (train, analyze, lr_find):
        monkeypatch.setattr(sys, "argv", ["initlab", "seed=-1", f"hydra.run.dir={tmp_path / module.__name__}"])
        with pytest.raises(SystemExit) as info:
            module.main()
        GlobalHydra.instance().clear()
        assert info.value.code == 2


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
    assert "loss" in records["0"]["error"]
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
    assert interrupted["status"] == "interrupted" and process.returncode == 128 + signal.SIGTERM
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


HOLD_LOCK = "import sys, time; from initlab.training.records import lock_run_dir; lock_run_dir(sys.argv[1]); print('held', flush=True); time.sleep(120)"


def _hold(folder: Path) -> subprocess.Popen:
    """Another process that holds ``folder``'s run-dir lock, as a running job would."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(folder)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_one_writer_per_run_dir_and_the_lock_dies_with_its_process(tmp_path):
    from initlab.training.records import RunDirBusy, lock_run_dir

    holder = _hold(tmp_path)
    with pytest.raises(RunDirBusy, match=f"pid {holder.pid}"):
        lock_run_dir(tmp_path)
    holder.kill()  # SIGKILL: no cleanup runs, the kernel drops the lock
    holder.wait()
    lock_run_dir(tmp_path)


@pytest.mark.parametrize("mode", ["run", "sweep"])
def test_a_second_writer_into_a_busy_run_or_sweep_dir_exits_2_at_once(tmp_path, mode):
    busy = tmp_path / "busy"
    holder = _hold(busy)
    try:
        args = ["-m", "seed=1,2", f"hydra.sweep.dir={busy}"] if mode == "sweep" else [f"hydra.run.dir={busy}"]
        result = run_cli(["train.py", *args, "logger=none", "debug=fast"], cwd=tmp_path, timeout=120)
    finally:
        holder.kill()
        holder.wait()
    key = "hydra.sweep.dir" if mode == "sweep" else "hydra.run.dir"
    assert result.returncode == 2 and result.stderr == f"initlab: {key}: got '{busy}', another initlab process (pid {holder.pid}) " \
                                                       "is writing there; wait for it to end or pick another dir\n"
    assert sorted(p.name for p in busy.iterdir()) == [".initlab.lock"], "the refused run wrote nothing there"


def _tmpfs(folder: Path, size: str, *options: str) -> bool:
    """Mount a small tmpfs at ``folder`` (root only); False where the machine does not allow it."""
    folder.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join([f"size={size}", *options]), "tmpfs", str(folder)],
                          capture_output=True).returncode == 0


def _umount(folder: Path) -> None:
    subprocess.run(["umount", str(folder)], capture_output=True)


def _leftovers(folder: Path) -> list[Path]:
    return [*folder.rglob("*.part"), *folder.rglob("*.tmp"), *folder.rglob("*.tmp[0-9]*")]


@pytest.mark.slow
def test_full_disk_fails_in_one_line_leaves_no_partial_file_and_no_stale_record(tmp_path):
    disk = tmp_path / "disk"
    if not _tmpfs(disk, "20m"):
        pytest.skip("cannot mount a tmpfs here (test_checkpoint_write_refused_by_the_disk covers it with a patched write)")
    try:
        run_dir = disk / "run"
        ok = run_cli(["train.py", "logger=none", "debug=fast", f"hydra.run.dir={run_dir}", f"paths.data_dir={tmp_path / 'data'}"],
                     cwd=tmp_path, timeout=300)
        assert ok.returncode == 0, ok.stderr[-2000:]
        assert json.loads((run_dir / "metrics.json").read_text())["status"] == "done"
        filler = disk / "filler"
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True)  # until the disk is full
        filler.write_bytes(filler.read_bytes()[: -256 * 1024])  # leave 256 kB: the run starts, its checkpoint does not fit
        resumed = run_cli(["train.py", "logger=none", "debug=fast", "trainer.max_epochs=2", "ckpt_path=last",
                           f"hydra.run.dir={run_dir}", f"paths.data_dir={tmp_path / 'data'}"], cwd=tmp_path, timeout=300)
        assert resumed.returncode == 1, resumed.stderr[-2000:]
        assert "Traceback" not in resumed.stdout + resumed.stderr
        lines = [line for line in resumed.stderr.splitlines() if line.startswith("initlab: ")]
        assert len(lines) == 1 and "No space left on device" in lines[0]
        assert not _leftovers(run_dir)
        record = run_dir / "metrics.json"
        assert not record.exists() or json.loads(record.read_text())["status"] == "failed", "a stale 'done' survived"
    finally:
        _umount(disk)


@pytest.mark.slow
def test_read_only_run_dir_exits_2_in_one_line(tmp_path):
    disk = tmp_path / "ro"
    if not _tmpfs(disk, "1m", "ro"):
        pytest.skip("cannot mount a read-only tmpfs here")
    try:
        for args in ([f"hydra.run.dir={disk / 'run'}"], [f"paths.log_dir={disk}"]):
            result = run_cli(["train.py", *args, "logger=none", "debug=fast"], cwd=tmp_path, timeout=120)
            assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr[-2000:]
            assert result.stderr.startswith("initlab: ") and "writable" in result.stderr
    finally:
        _umount(disk)


def test_checkpoint_write_refused_by_the_disk(compose_cfg, monkeypatch):
    """Where no tmpfs can be mounted: the checkpoint write fails half-way with ENOSPC (patched), the run is failed, cleanly."""
    import errno

    from pytorch_lightning.plugins.io.torch_plugin import TorchCheckpointIO

    def full_disk(self, checkpoint, path, storage_options=None):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(b"PK\x03\x04 the first bytes")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(TorchCheckpointIO, "save_checkpoint", full_disk)
    cfg = compose_cfg([*FAST])
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True)
    (output_dir / "metrics.json").write_text('{"status": "done"}')  # an earlier attempt's record
    with pytest.raises(OSError, match="No space left"):
        run_training(cfg)
    record = json.loads((output_dir / "metrics.json").read_text())
    assert record["status"] == "failed" and "No space left on device" in record["error"]
    assert not _leftovers(output_dir)


def test_a_disk_error_is_one_line():
    import errno

    from initlab.cli.common import disk_error

    line = str(disk_error(OSError(errno.EROFS, "Read-only file system", "/x/run/metrics.json")))
    assert line == "/x/run/metrics.json: got 'Read-only file system', needs a writable folder with free space (paths.log_dir, hydra.run.dir)"
    assert disk_error(OSError(errno.ENOENT, "No such file")) is None


def test_a_lock_is_removed_when_released_and_the_dir_can_be_locked_again(tmp_path):
    from initlab.training.records import LOCK_NAME, holds, lock_run_dir, release_run_dir

    lock_run_dir(tmp_path)
    assert (tmp_path / LOCK_NAME).is_file() and holds(tmp_path)
    release_run_dir(tmp_path)
    assert not (tmp_path / LOCK_NAME).exists() and not holds(tmp_path)
    holder = _hold(tmp_path)  # another process takes it: the removed file was no lock of anyone's
    try:
        from initlab.training.records import RunDirBusy

        with pytest.raises(RunDirBusy):
            lock_run_dir(tmp_path)
    finally:
        holder.kill()
        holder.wait()


def _record(folder: Path, status: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps({"status": status}))
    return folder


@pytest.mark.parametrize(("status", "refused"), [("done", True), ("diverged", True), ("failed", True), ("interrupted", False),
                                                 (None, False)])
def test_a_finished_run_dir_is_refused_unless_resumed_or_overwritten(tmp_path, status, refused):
    from initlab.training.records import RunDirTaken, check_run_dir

    run = _record(tmp_path / "run", status) if status else tmp_path / "run"
    if refused:
        with pytest.raises(RunDirTaken, match=f"finished run \\(metrics.json: {status}\\)"):
            check_run_dir(run, sweep=False, resume=False, overwrite=False)
    else:
        check_run_dir(run, sweep=False, resume=False, overwrite=False)
    check_run_dir(run, sweep=False, resume=True, overwrite=False)
    check_run_dir(run, sweep=False, resume=False, overwrite=True)


@pytest.mark.parametrize("planted", ["metrics.json", "checkpoints", ".hydra", "train.log", "fifo"])
def test_links_and_planted_files_in_a_run_dir_are_refused_even_with_overwrite(tmp_path, planted):
    from initlab.training.records import RunDirTaken, check_run_dir

    run = tmp_path / "run"
    run.mkdir()
    if planted == "fifo":  # a FIFO record must not make the check hang: it is unreadable, so refused
        os.mkfifo(run / "metrics.json")
        with pytest.raises(RunDirTaken, match="unreadable"):
            check_run_dir(run, sweep=False, resume=False, overwrite=False)
        return
    (run / planted).symlink_to(tmp_path / "elsewhere")
    for resume, overwrite in ((False, False), (True, False), (False, True)):
        with pytest.raises(RunDirTaken, match="symbolic link"):
            check_run_dir(run, sweep=False, resume=resume, overwrite=overwrite)


@pytest.mark.parametrize("mark", ["sweep.json", "multirun.yaml", "aggregate.md", "0/metrics.json"])
def test_an_earlier_sweep_is_refused_unless_resumed_or_overwritten(tmp_path, mark):
    from initlab.training.records import RunDirTaken, check_run_dir

    (tmp_path / mark).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / mark).write_text("{}")
    with pytest.raises(RunDirTaken, match="earlier sweep"):
        check_run_dir(tmp_path, sweep=True, resume=False, overwrite=False)
    check_run_dir(tmp_path, sweep=True, resume=True, overwrite=False)
    check_run_dir(tmp_path, sweep=True, resume=False, overwrite=True)


@pytest.mark.parametrize("mode", ["run", "sweep", "link"])
def test_the_entry_point_refuses_a_taken_dir_in_one_line_before_writing(tmp_path, mode):
    taken = tmp_path / "taken"
    if mode == "sweep":
        (taken / "0").mkdir(parents=True)
        (taken / "sweep.json").write_text('{"id": "earlier"}')
        args = ["-m", "seed=1,2", f"hydra.sweep.dir={taken}"]
    else:
        _record(taken, "done")
        if mode == "link":
            (taken / "config_tree.log").symlink_to(tmp_path / "victim")
        args = [f"hydra.run.dir={taken}", *(["overwrite=true"] if mode == "link" else [])]
    before = sorted(p.name for p in taken.iterdir())
    result = run_cli(["train.py", *args, "logger=none", "debug=fast"], cwd=tmp_path, timeout=120)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and result.stderr.startswith("initlab: hydra."), result.stderr
    assert ("earlier sweep" if mode == "sweep" else "symbolic link" if mode == "link" else "finished run") in result.stderr
    assert sorted(p.name for p in taken.iterdir()) == before, "the refused run wrote there (or left its lock)"
    assert not (tmp_path / "victim").exists()


def test_overwrite_true_reruns_a_finished_dir_and_a_clean_exit_leaves_no_lock(tmp_path, monkeypatch):
    from hydra.core.global_hydra import GlobalHydra

    from initlab.cli import train

    run = _record(tmp_path / "run", "done")
    monkeypatch.setattr(sys, "argv", ["train.py", "logger=none", "debug=fast", "overwrite=true", f"hydra.run.dir={run}"])
    try:
        train.main()
    finally:
        GlobalHydra.instance().clear()
    record = json.loads((run / "metrics.json").read_text())
    assert record["status"] == "done" and record["steps"] > 0
    assert not list(run.rglob(".initlab.lock")) and not _leftovers(run)
