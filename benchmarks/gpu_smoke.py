"""GPU smoke test: the CUDA paths of training and analysis, one PASS/FAIL line each.

    python benchmarks/gpu_smoke.py            # SKIP (exit 0) without a CUDA device

With CUDA it runs, each as its own subprocess with debug=fast-style overrides: training with the
curvature callback, ``optim.lr=auto``, ``init=jacobian_calibrated`` on GPU-resident data,
bf16 mixed precision, the analyze app on the GPU (float32 and a float64 copy), and one full
epoch of the MLP on mnist_t10k (its time is printed). A check passes when the command exits 0
and its ``metrics.json`` says ``done``. Last, a tiny grid of the pipeline's lr study runs in-process on
CUDA and on the CPU and must agree (``study_cuda_vs_cpu``). Exit code: the number of failed checks.
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


def study_cuda_vs_cpu(root: Path, rel: float = 1e-3) -> tuple[bool, str, float]:
    """A tiny lr-study grid (``initlab.pipeline.study.lr_study``: digits, 2 seeds, 2 SGD lrs, budgets 1 and 2 epochs) on
    CUDA and on the CPU: the same lrs selected, every val loss and lambda_max within a relative ``rel`` (float32 kernels
    differ in rounding, not in the computation)."""
    from initlab.pipeline import study
    from initlab.pipeline.prepare import prepare

    settings = {"budgets": [1, 2], "batch_size": 64, "eval_samples": 256, "curvature_samples": 256, "init_samples": 32, "tol": 1e-4,
                "curvature_c": 1.0, "lr_grid": {"sgd": [0.1, 0.3]}, "eta": 2, "min_keep": 1, "diverge_factor": 10}
    params = {"data": "digits", "seeds": [1, 2], "inits": ["spectral", "xavier_normal"], "optimizers": ["sgd"]}
    start = time.perf_counter()
    path = prepare("digits", 1, root / "study")
    runs = {device: study.lr_study(settings, params, study.StageContext(path, device, workers=1))["lr/budgets"] for device in ("cuda", "cpu")}
    def key(row: dict) -> tuple:  # a grid run is its lr; a curvature run's lr = c / lambda_max is itself compared
        return (*(row[k] for k in ("init", "optim", "setting", "seed", "epochs")), row["lr"] if row["setting"] != "curvature" else None)

    cuda = {key(r): r for r in runs["cuda"]}
    if set(cuda) != {key(r) for r in runs["cpu"]}:
        return False, "CUDA ran other lrs or budgets than the CPU (a different selection)", time.perf_counter() - start
    worst = max(abs(cuda[key(r)][column] - r[column]) / abs(r[column]) for r in runs["cpu"] for column in ("val_loss", "lambda_max", "lr"))
    return worst <= rel, f"largest relative difference {worst:.2e} (allowed {rel:g})", time.perf_counter() - start


def curvature_engine() -> tuple[bool, str]:
    """(passed, reason) of the in-process GPU curvature check (see the module docstring)."""
    import torch
    from torch.nn import functional as F

    from initlab.analysis import CurvatureProblem, DatasetOperator, curvature_record
    from initlab.models import mlp

    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(2048, 784, generator=generator), torch.randint(0, 10, (2048,), generator=generator)
    torch.manual_seed(0)
    model = mlp([784], 10, (256, 256), "relu").cuda()
    operator = DatasetOperator(CurvatureProblem(model, F.cross_entropy, (x, y), batch_size=1024))
    syncs = [0]
    names = ("item", "__bool__", "tolist")
    originals = {name: getattr(torch.Tensor, name) for name in names}

    def counted(name: str):  # noqa: ANN202
        def call(tensor, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            syncs[0] += 1
            return originals[name](tensor, *args, **kwargs)
        return call

    torch.cuda.synchronize()
    start = time.perf_counter()
    try:
        for name in names:
            setattr(torch.Tensor, name, counted(name))
        record = curvature_record(operator, k=1, which="top", tol=1e-3)
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    reference = curvature_record(CurvatureProblem(model, F.cross_entropy, (x, y), dtype=torch.float64), tol=1e-8)
    checks = record.steps // (4 * record.settings["block_size"]) + 1
    readout = 6 + len(operator.param_sizes)  # tolist/item of the finished record (one per parameter: layer_share)
    print(f"TIME curvature engine: {record.n_products / seconds:.1f} products/s, {syncs[0]} host syncs "
          f"({record.n_products} products, {checks} checks), graphs on device "
          f"{operator.settings['cached_chunk_graphs']}/{operator.settings['chunks']}")
    error = abs(record.lambda_max - reference.lambda_max) / reference.lambda_max
    passed = (operator.settings["cached_chunk_graphs"] == operator.settings["chunks"] == 2 and error <= 1e-3
              and record.converged and syncs[0] <= checks + readout)
    return passed, f"lambda_max error {error:.1e}, syncs {syncs[0]}, converged {record.converged}"


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
        passed, reason, seconds = study_cuda_vs_cpu(Path(tmp))
        failures += not passed
        print(f"PASS study_grid_cuda_vs_cpu ({seconds:.1f} s, {reason})" if passed else f"FAIL study_grid_cuda_vs_cpu: {reason}", flush=True)
    return failures


if __name__ == "__main__":
    sys.exit(main())
