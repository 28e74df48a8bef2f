"""Startup: a short run's CPU time against a bare Lightning script doing the same fit, and the light commands.

    python benchmarks/startup.py             # ~2 min
    python benchmarks/startup.py --repeats 5

Each command runs as a fresh ``python`` subprocess from the repository root, ``--repeats`` times
round-robin; medians are reported, wall and CPU (user + system: what the command itself burnt,
unaffected by other jobs holding the cores).
  --help        must stay light: ``train.py`` may import only hydra/omegaconf at the top (the
                script also lists the heavy packages ``python -X importtime train.py --help`` shows)
  config error  ``train.py optim.lr=0``: refused before torch is imported
  ours          ``python train.py debug=fast logger=none`` (1 epoch of 5 batches on digits); its own
                ``wall_s`` (the task) against the process's time shows what start-up costs
  bare          ``benchmarks/bare_lightning_fit.py``: the same data, model, optimizer and fit in a plain
                Lightning script (no Hydra, checks, records, checkpoint or bar)
The ratio is ours / bare in CPU seconds, the median of per-round ratios (goal <= 2: initlab's
start-up and records may cost at most as much again as Lightning's own).
"""

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from common import machine_line, paired_ratio, ratio_line, run_timed

GOAL = 2.0  # issue 22: ours / bare Lightning, CPU seconds
HEAVY = ("torch", "pytorch_lightning", "lightning", "lightning_fabric", "torchvision", "torchmetrics", "wandb", "sklearn", "scipy")
BENCHMARKS = Path(__file__).resolve().parent


def heavy_imports_of_help() -> list[str]:
    """Top-level packages from ``HEAVY`` that ``train.py --help`` imports (from ``-X importtime``)."""
    _, output = run_timed([sys.executable, "-X", "importtime", "train.py", "--help"])
    found = set()
    for line in output.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name.split(".")[0] in HEAVY:
                found.add(name.split(".")[0])
    return sorted(found)


def short_run(tmp: Path, i: int) -> dict[str, float]:
    """Wall and CPU seconds of ``train.py debug=fast logger=none``, and the seconds its task took (``wall_s`` of
    metrics.json: data, model, fit, test and records; the rest is start-up: imports, Hydra, checks)."""
    run_dir = tmp / f"run{i}"
    timing, _ = run_timed([sys.executable, "train.py", "debug=fast", "logger=none", f"hydra.run.dir={run_dir}"])
    return {"exit": timing.wall, "cpu": timing.cpu, "task": json.loads((run_dir / "metrics.json").read_text())["wall_s"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(machine_line())

    help_cmd = [sys.executable, "train.py", "--help"]
    error_cmd = [sys.executable, "train.py", "optim.lr=0"]
    bare_cmd = [sys.executable, str(BENCHMARKS / "bare_lightning_fit.py")]
    results: dict[str, list] = {"help": [], "error": [], "first": [], "bare": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            results["help"].append(run_timed(help_cmd)[0])
            results["error"].append(run_timed(error_cmd, check=False)[0])
            results["first"].append(short_run(Path(tmp), i))
            results["bare"].append(run_timed(bare_cmd)[0])
    import_s = [run_timed([sys.executable, "-c", "import pytorch_lightning"])[0] for _ in range(args.repeats)]

    def med(values) -> float:
        return statistics.median(values)

    print(f"medians of {args.repeats} runs (wall / CPU seconds)")
    for key, label in [("help", "python train.py --help"), ("error", "python train.py optim.lr=0 (refused)"),
                       ("bare", "benchmarks/bare_lightning_fit.py")]:
        print(f"  {label:40s} {med(t.wall for t in results[key]):6.2f} / {med(t.cpu for t in results[key]):5.2f}")
    print(f"  {'python -c import pytorch_lightning':40s} {med(t.wall for t in import_s):6.2f} / {med(t.cpu for t in import_s):5.2f}"
          "  (reference)")
    print("  python train.py debug=fast logger=none:")
    for key, label in [("task", "its task (metrics.json wall_s)"), ("exit", "process wall"), ("cpu", "process CPU")]:
        print(f"    {label:28s} {med(r[key] for r in results['first']):6.2f}")
    heavy = heavy_imports_of_help()
    print(f"  heavy packages imported by --help: {', '.join(heavy) if heavy else 'none'}")
    ratio = paired_ratio([r["cpu"] for r in results["first"]], [t.cpu for t in results["bare"]])
    print(ratio_line("startup", ratio, GOAL, higher_is_better=False) + "  [CPU: train.py debug=fast logger=none / bare Lightning fit]")


if __name__ == "__main__":
    main()
