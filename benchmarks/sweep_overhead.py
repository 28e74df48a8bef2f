"""Sweep overhead: wall time of a 12-job multirun vs the training time its jobs record.

    python benchmarks/sweep_overhead.py                  # basic and joblib launchers, ~1.5 min
    python benchmarks/sweep_overhead.py --threads 1 --launchers basic joblib basic+bar-r10 joblib+bar-r10

Runs ``python train.py -m init=xavier_normal,kaiming_normal,spectral optim=sgd,adam seed=0,1
trainer.max_epochs=1 logger=none paths.log_dir=<tmp>`` (digits, default callbacks) once per
launcher: Hydra's basic launcher (jobs one after another in one process) and
``hydra/launcher=joblib hydra.launcher.n_jobs=2`` (two worker processes), and "+bar-r10" with
the progress bar settings proposed in README.md (refresh_rate=10, leave=false). Each job's
``metrics.json`` holds ``wall_s``, the job's own time from config validation to its test
metrics (the first job of each process includes importing torch and Lightning, done in the run
body). The ratio is the sweep's wall time over the sum of its jobs' ``wall_s`` (1.0: no
overhead; below 1: jobs overlapped); the per-job overhead is the difference divided by 12.
The sweep's CPU seconds (all its processes) are shown too: the machine is shared. ``--threads``
sets the sweep's OMP_NUM_THREADS (torch threads per job); 1 suits these small models on 2 cores.
"""

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from common import machine_line, ratio_line, run_timed

SWEEP = [
    "-m",
    "init=xavier_normal,kaiming_normal,spectral",
    "optim=sgd,adam",
    "seed=0,1",
    "trainer.max_epochs=1",
    "logger=none",
]
JOBS = 12
# The progress-bar settings we propose for conf/callbacks/default.yaml (see README.md).
BAR_PROPOSAL = ["callbacks.progress_bar.refresh_rate=10", "callbacks.progress_bar.leave=false"]
LAUNCHERS = {
    "basic": [],
    "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
    "basic+bar-r10": BAR_PROPOSAL,
    "joblib+bar-r10": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *BAR_PROPOSAL],
}


def run_sweep(launcher: str, log_dir: Path, threads: int | None) -> dict[str, float]:
    cmd = [sys.executable, "train.py", *SWEEP, f"paths.log_dir={log_dir}", *LAUNCHERS[launcher]]
    env = None if threads is None else dict(os.environ, OMP_NUM_THREADS=str(threads))
    timing, _ = run_timed(cmd, env=env)
    records = [json.loads(p.read_text()) for p in log_dir.rglob("metrics.json")]
    if len(records) != JOBS or any(r["status"] != "done" for r in records):
        raise RuntimeError(f"{launcher}: expected {JOBS} done jobs, got {[r['status'] for r in records]}")
    jobs_s = sum(r["wall_s"] for r in records)
    return {"wall": timing.wall, "cpu": timing.cpu, "jobs": jobs_s, "ratio": timing.wall / jobs_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--launchers", nargs="+", default=["basic", "joblib"], choices=list(LAUNCHERS))
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS of the sweep (default: inherited)")
    args = parser.parse_args()
    print(machine_line() + f"; sweep OMP_NUM_THREADS={args.threads or os.environ.get('OMP_NUM_THREADS', 'unset')}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for launcher in args.launchers:
            results[launcher] = run_sweep(launcher, Path(tmp) / launcher, args.threads)
    print(f"{JOBS}-job sweep: {' '.join(SWEEP)}")
    print(f"  {'launcher':15s} {'sweep wall s':>12s} {'sweep CPU s':>11s} {'sum job wall_s':>14s} {'wall/jobs':>9s} {'overhead s/job':>14s}")
    for launcher, r in results.items():
        overhead = (r["wall"] - r["jobs"]) / JOBS
        print(f"  {launcher:15s} {r['wall']:12.1f} {r['cpu']:11.1f} {r['jobs']:14.1f} {r['ratio']:9.2f} {overhead:14.2f}")
    if "basic" in results and "joblib" in results:
        print(f"  joblib n_jobs=2 vs basic: {results['basic']['wall'] / results['joblib']['wall']:.2f}x sweep wall speedup")
    for launcher, r in results.items():
        print(ratio_line(f"sweep_overhead[{launcher}]", r["ratio"], None, higher_is_better=False))
    best = min(results, key=lambda name: results[name]["wall"])
    print(ratio_line("sweep_overhead", results["basic" if "basic" in results else best]["ratio"], None, higher_is_better=False)
          + f"  [basic launcher; fastest sweep: {best}]")


if __name__ == "__main__":
    main()
