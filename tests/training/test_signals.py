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
from initlab.training.signals import Interrupted, interruptible, signal_of


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
