"""GPU smoke test: the CUDA paths of training and analysis, one PASS/FAIL line each.

    python benchmarks/gpu_smoke.py            # SKIP (exit 0) without a CUDA device

With CUDA it runs, each as its own subprocess with debug=fast-style overrides: training with the
curvature callback, ``optim.lr=auto``, ``init=jacobian_calibrated`` on GPU-resident data,
bf16 mixed precision, the analyze app on the GPU (float32 and a float64 copy), and one full
epoch of the MLP on mnist_t10k (its time is printed). A check passes when the command exits 0
and its ``metrics.json`` says ``done``. Exit code: the number of failed checks.
"""

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO_ROOT  # noqa: E402

TRAIN = [sys.executable, "train.py", "trainer=gpu", "logger=none"]
FAST = ["debug=fast"]
ANALYZE = [sys.executable, "-m", "initlab.analyze", "device=cuda", "num_samples=512", "analysis.slq_steps=16",
           "analysis.trace_probes=8", "analysis.k_top=1", "analysis.tol=1e-3"]

CHECKS: dict[str, list[str]] = {
    "train_curvature_callback": TRAIN + FAST + ["callbacks=curvature", "callbacks.curvature.every_n_steps=2"],
    "optim_lr_auto": TRAIN + FAST + ["optim=sgd", "optim.lr=auto"],
    "init_jacobian_calibrated_data_cuda": TRAIN + FAST + ["init=jacobian_calibrated", "data.device=cuda"],
    "precision_bf16_mixed": TRAIN + FAST + ["trainer.precision=bf16-mixed", "callbacks=curvature"],
    "analyze_cuda_float32": ANALYZE,
    "analyze_cuda_float64_num_samples_all": ANALYZE[:4] + ["num_samples=all", "dtype=float64"] + ANALYZE[5:],
    "mnist_t10k_mlp_epoch": TRAIN + ["data=mnist_t10k", "data.device=cuda", "trainer.max_epochs=1", "test=false"],
}


def run_check(name: str, command: list[str], root: Path) -> tuple[bool, str, float]:
    """(passed, reason, wall seconds) of one command run from the repository root."""
    run_dir = root / name
    start = time.perf_counter()
    proc = subprocess.run([*command, f"hydra.run.dir={run_dir}"], cwd=REPO_ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines() or ["no output"]
        return False, f"exit {proc.returncode}: {lines[-1][:300]}", seconds
    metrics = run_dir / "metrics.json"
    status = json.loads(metrics.read_text()).get("status") if metrics.is_file() else "no metrics.json"
    return status == "done", f"status {status}", seconds


def main() -> int:
    import torch

    if not torch.cuda.is_available():
        print("SKIP gpu_smoke: no CUDA device")
        return 0
    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    failures = 0
    with tempfile.TemporaryDirectory(prefix="gpu_smoke_") as tmp:
        for name, command in CHECKS.items():
            passed, reason, seconds = run_check(name, command, Path(tmp))
            failures += not passed
            print(f"PASS {name} ({seconds:.1f} s)" if passed else f"FAIL {name}: {reason}", flush=True)
            if name == "mnist_t10k_mlp_epoch" and passed:
                print(f"TIME mnist_t10k MLP epoch (process wall, incl. start-up) = {seconds:.1f} s")
    return failures


if __name__ == "__main__":
    sys.exit(main())
