"""SIGTERM/SIGINT: exit code 128 + signal, `status: interrupted`, a hashed interrupted.ckpt."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from initlab.config import PROJECT_ROOT
from initlab.training.signals import Interrupted, interruptible, received, settle, signal_of


def test_a_signal_outside_fit_raises_interrupted_and_handlers_are_restored():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted) as caught, interruptible():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    assert signal_of(caught.value) == signal.SIGTERM and signal.getsignal(signal.SIGTERM) is before
    assert signal_of(ValueError()) is None and signal_of(KeyboardInterrupt()) == signal.SIGINT


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_training_exits_128_plus_signal_with_interrupted_status(tmp_path, signum):
    env = {k: v for k, v in os.environ.items() if k != "WANDB_MODE"} | {"OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(PROJECT_ROOT / "train.py"), "logger=none", "trainer.max_epochs=1000",
               "callbacks.progress_bar.refresh_rate=0", f"paths.log_dir={tmp_path}"]
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob("train/runs/*/history.csv")) and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signum, stderr[-3000:]
    (run_dir,) = tmp_path.glob("train/runs/*")
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "interrupted" and "ckpt_path=last" in record["error"]
    assert (run_dir / "checkpoints" / "interrupted.ckpt.sha256").is_file()
    assert "Traceback" not in stderr


def test_a_signal_inside_deferred_is_raised_once_the_block_ends():
    from initlab.training.signals import deferred

    finished = False
    with pytest.raises(Interrupted) as caught, interruptible():
        with deferred():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)
            finished = True  # the save went on to its end
    assert finished and caught.value.signum == signal.SIGINT


def test_a_swallowed_signal_still_ends_the_run_interrupted(compose_cfg):
    """The issue's mid-save case: the interrupt is raised where a finalizer discards it; the run must not end done."""
    from initlab.training.run import run_job

    cfg = compose_cfg([])

    def body(cfg, output_dir, runtime):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except Interrupted:
            pass  # what fsspec's file finalizer did
        return {"status": "done", "train": {}, "val": {}, "test": {}}

    with pytest.raises(SystemExit) as exit_info:
        run_job(cfg, body)
    assert exit_info.value.code == 128 + signal.SIGINT
    record = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    assert record["status"] == "interrupted"


# Hooks for the subprocess tests: they widen a moment (a save, the test loop, the start) so a signal lands inside it.
# Each marks the moment with a file the test waits for, then sleeps there.
HOOK = """
import sys, time
from pathlib import Path
moment, marker = sys.argv[1], Path(sys.argv[2])
def mark_and_wait():
    marker.write_text("now"); time.sleep(20)
if moment == "save":
    from pytorch_lightning.plugins.io.torch_plugin import TorchCheckpointIO
    original_save = TorchCheckpointIO.save_checkpoint
    def save(self, checkpoint, path, storage_options=None):
        original_save(self, checkpoint, path, storage_options)
        if str(path).endswith("last.ckpt.part"):
            mark_and_wait()   # the .part file is written, not yet verified nor renamed
    TorchCheckpointIO.save_checkpoint = save
elif moment == "test":
    import pytorch_lightning as pl
    original_test = pl.Trainer.test
    def test(self, *args, **kwargs):
        mark_and_wait()
        return original_test(self, *args, **kwargs)
    pl.Trainer.test = test
elif moment == "startup":
    import initlab.config as config
    original_validate = config.validate_config
    def validate(*args, **kwargs):
        mark_and_wait()
        return original_validate(*args, **kwargs)
    config.validate_config = validate
    import initlab.cli.common as common
    common.validate_config = validate
sys.argv = ["train.py", *sys.argv[3:]]
from initlab.cli.train import main
main()
"""


def _run_until(tmp_path: Path, moment: str, signum: int, *overrides: str) -> tuple[subprocess.CompletedProcess, Path]:
    run_dir, marker = tmp_path / "run", tmp_path / f"{moment}.marker"
    env = {k: v for k, v in os.environ.items() if k != "WANDB_MODE"} | {"OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-c", HOOK, moment, str(marker), "logger=none", "trainer.max_epochs=2", "seed=7",
               f"hydra.run.dir={run_dir}", *overrides]
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "the hook never reached its moment"
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr), run_dir


@pytest.mark.slow
@pytest.mark.parametrize(("moment", "signum"), [("startup", signal.SIGTERM), ("startup", signal.SIGINT), ("save", signal.SIGINT),
                                                ("save", signal.SIGTERM), ("test", signal.SIGTERM)])
def test_a_signal_at_any_moment_ends_interrupted_with_a_record(tmp_path, moment, signum):
    result, run_dir = _run_until(tmp_path, moment, signum)
    assert result.returncode == 128 + signum, result.stderr[-3000:]
    assert "Traceback" not in result.stdout + result.stderr
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "interrupted"
    assert not list(run_dir.rglob("*.part")) and not list(run_dir.rglob("*.tmp"))
    if moment == "save":  # the interrupt waited for the save: the checkpoint is whole and verifies
        from initlab.training.checkpoints import verified_checkpoint

        verified_checkpoint(run_dir / "checkpoints" / "last.ckpt")


@pytest.mark.slow
def test_resume_after_a_signal_during_test_matches_an_uninterrupted_run(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "WANDB_MODE"} | {"OMP_NUM_THREADS": "1"}
    base = [sys.executable, str(PROJECT_ROOT / "train.py"), "logger=none", "trainer.max_epochs=2", "seed=7"]
    subprocess.run([*base, f"hydra.run.dir={tmp_path / 'straight'}"], check=True, capture_output=True, env=env, timeout=600)
    result, run_dir = _run_until(tmp_path, "test", signal.SIGTERM)
    assert result.returncode == 128 + signal.SIGTERM
    subprocess.run([*base, "ckpt_path=last", f"hydra.run.dir={run_dir}"], check=True, capture_output=True, env=env, timeout=600)
    resumed, straight = (json.loads((d / "metrics.json").read_text()) for d in (run_dir, tmp_path / "straight"))
    assert resumed["status"] == "done" and resumed["epochs"] == straight["epochs"] == 2
    for stage in ("train", "val", "test"):
        assert resumed[stage] == straight[stage], stage


def test_once_the_record_is_final_a_late_signal_changes_nothing(compose_cfg):
    """The issue's 143-beside-done: after run_job sealed ``done``, a SIGTERM neither raises nor turns the exit code."""
    from initlab.training.run import run_job

    cfg = compose_cfg([])
    with interruptible():
        record = run_job(cfg, lambda cfg, output_dir, runtime: {"status": "done", "train": {}, "val": {}, "test": {}})
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.2)
        assert received() is None
    assert record["status"] == json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())["status"] == "done"
    with pytest.raises(Interrupted), interruptible():  # a new block listens again
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)


def test_a_second_signal_while_the_interrupted_record_is_written_cannot_cut_it():
    with interruptible():
        settle()
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)
    assert received() is None


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_documented_resume_works_after_a_signal_at_start_up(tmp_path, signum):
    """Stopped before anything was saved: the record says how to resume, and that command starts the run cleanly."""
    result, run_dir = _run_until(tmp_path, "startup", signum, "debug=fast")
    assert result.returncode == 128 + signum, result.stderr[-3000:]
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "interrupted" and f"ckpt_path=last hydra.run.dir={run_dir}" in record["error"]
    env = {k: v for k, v in os.environ.items() if k != "WANDB_MODE"} | {"OMP_NUM_THREADS": "1"}
    resumed = subprocess.run([sys.executable, str(PROJECT_ROOT / "train.py"), "logger=none", "trainer.max_epochs=2", "seed=7",
                              "debug=fast", "ckpt_path=last", f"hydra.run.dir={run_dir}"], capture_output=True, text=True,
                             env=env, timeout=600, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    said = [line for line in (resumed.stdout + resumed.stderr).splitlines() if "starting it over" in line]
    assert len(said) == 1 and "Traceback" not in resumed.stdout + resumed.stderr
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "done"
    assert not (run_dir / ".initlab.lock").exists()


SIGNAL_DELAYS_S = (0.3, 1.0, 1.6, 2.4, 4.0, 7.0, 12.0, 20.0)


@pytest.mark.slow
def test_fuzz_signal_timings_every_record_agrees_with_its_exit_code_and_resumes(tmp_path):
    """SIGTERM/SIGINT at a spread of moments (imports, composition, start-up, first epoch, test, after the record):
    a record whenever the run dir exists, its status agreeing with the exit code, and the documented resume ends done."""
    env = {k: v for k, v in os.environ.items() if k != "WANDB_MODE"} | {"OMP_NUM_THREADS": "1"}
    counts = {"cases": 0, "tracebacks": 0, "hangs": 0, "disagreements": 0, "resume_failures": 0}
    for index, delay in enumerate(SIGNAL_DELAYS_S):
        signum = (signal.SIGTERM, signal.SIGINT)[index % 2]
        run_dir = tmp_path / f"run{index}"
        base = [sys.executable, str(PROJECT_ROOT / "train.py"), "logger=none", "debug=fast", "trainer.max_epochs=3",
                "trainer.limit_train_batches=null", f"hydra.run.dir={run_dir}"]
        process = subprocess.Popen(base, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        process.send_signal(signum)
        try:
            stdout, stderr = process.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            process.kill()
            counts["hangs"] += 1
            continue
        counts["cases"] += 1
        counts["tracebacks"] += "Traceback" in stdout + stderr
        record = run_dir / "metrics.json"
        status = json.loads(record.read_text())["status"] if record.exists() else None
        # before Python's handlers exist (imports) the signal's default action ends it: nothing started, no dir
        agrees = (process.returncode, status) in ((0, "done"), (128 + signum, "interrupted")) or \
            (process.returncode in (128 + signum, -signum) and status is None and not run_dir.exists())
        counts["disagreements"] += not agrees
        print(f"signal {signum} at {delay} s: exit {process.returncode}, record {status}")
        if status == "interrupted":
            resumed = subprocess.run([*base, "ckpt_path=last"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
            counts["resume_failures"] += resumed.returncode != 0 or json.loads(record.read_text())["status"] != "done"
    print(counts)
    assert counts == {"cases": len(SIGNAL_DELAYS_S), "tracebacks": 0, "hangs": 0, "disagreements": 0, "resume_failures": 0}
