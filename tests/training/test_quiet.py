"""Quiet, informative runs: no third-party warning, ours always; the progress bar shows the training loss."""

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from initlab.config import PROJECT_ROOT
from initlab.training.noise import quiet_third_party


@pytest.mark.parametrize(("module", "category", "shown"), [
    ("pytorch_lightning.utilities._pytree", DeprecationWarning, False),
    ("torch.jit._script", FutureWarning, False),
    ("wandb.sdk.wandb_settings", DeprecationWarning, False),
    ("initlab.training.build", DeprecationWarning, True),
    ("initlab.init.weights", FutureWarning, True),
    ("initlab.data.base", UserWarning, True),
])
def test_third_party_noise_is_filtered_and_ours_never(module, category, shown):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_third_party()
        warnings.warn_explicit("some message", category, filename=f"{module}.py", lineno=1, module=module)
    assert bool(caught) is shown


def _train(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``python train.py`` as a user runs it: no WANDB_* variables set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")} | {"OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(PROJECT_ROOT / "train.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


# Lightning's accelerator and stop INFO lines, and the config tree's root: none of them in a default run's output.
LIGHTNING_AND_TREE = ("GPU available", "TPU available", "`Trainer.fit` stopped", "CONFIG")


def _warning_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "warn" in line.lower() or "Tip:" in line or "deprecat" in line.lower()]


def test_default_run_prints_no_third_party_warning_and_shows_the_loss(tmp_path):
    result = _train(["debug=fast", f"paths.log_dir={tmp_path}"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stderr + result.stdout
    assert _warning_lines(output) == []
    assert [marker for marker in LIGHTNING_AND_TREE if marker in output] == []
    bar = [line for line in result.stdout.splitlines() if line.startswith("Epoch ")]
    assert bar and all(" loss: " in line and " lr: " in line for line in bar), bar  # one line: lr does not wrap in a log
    assert "v_num" not in result.stdout
    assert "CONFIG" in next(tmp_path.glob("train/runs/*/config_tree.log")).read_text()  # written, not printed


def test_print_config_prints_the_tree(tmp_path):
    result = _train(["debug=fast", "logger=none", "print_config=true", "trainer.limit_train_batches=1", f"paths.log_dir={tmp_path}"],
                    tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines()[0] == "CONFIG" and "print_config" in result.stdout


@pytest.mark.slow
def test_default_run_with_wandb_offline_is_quiet(tmp_path):
    result = _train(["trainer.max_epochs=2", f"paths.log_dir={tmp_path}"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert _warning_lines(result.stderr + result.stdout) == [] and result.stderr.strip() == ""
    assert list(tmp_path.glob("train/runs/*/wandb/offline-run-*"))
