"""Startup: wall time of ``train.py --help``, ``--cfg job`` and of a fast run up to its first step.

    python benchmarks/startup.py             # ~2 min
    python benchmarks/startup.py --repeats 5

Each command runs as a fresh ``python`` subprocess from the repository root, ``--repeats`` times
round-robin; the medians are reported, wall and CPU (user + system: what the command itself
burnt, unaffected by other jobs holding the cores).
  --help        must stay light: ``train.py`` may import only hydra/omegaconf at the top (the
                script also lists the heavy packages ``python -X importtime train.py --help`` shows)
  --cfg job     composes and prints the config
  first step    ``python train.py debug=fast logger=none``, timed to the start and the end of the
                first training step by ``first_step_probe.FirstStepProbe``, added on the command
                line (``+callbacks.first_step_probe=...``, ``benchmarks/`` on PYTHONPATH); once as
                configured and once with the progress bar settings proposed in README.md
The ratio is the median wall time of ``--help`` over the 3 s goal (<= 1 meets it).
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from common import REPO_ROOT, machine_line, ratio_line, run_timed

GOAL_HELP_S = 3.0
# The progress-bar settings we propose for conf/callbacks/default.yaml (see train_throughput.py).
BAR_PROPOSAL = ("callbacks.progress_bar.refresh_rate=10", "callbacks.progress_bar.leave=false")
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


def first_step(tmp: Path, i: int, overrides: tuple[str, ...] = ()) -> dict[str, float]:
    """Seconds from launching ``train.py debug=fast logger=none`` to its fit start, first step start/end and exit."""
    import time

    probe = tmp / f"probe{i}-{len(overrides)}.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(BENCHMARKS), os.environ.get("PYTHONPATH")])))
    cmd = [
        sys.executable,
        "train.py",
        "debug=fast",
        "logger=none",
        f"hydra.run.dir={tmp / f'run{i}'}",
        "+callbacks.first_step_probe._target_=first_step_probe.FirstStepProbe",
        f"+callbacks.first_step_probe.path={probe}",
        *overrides,
    ]
    launched = time.time()
    timing, _ = run_timed(cmd, env=env)
    marks = json.loads(probe.read_text())
    return {
        "fit_start": marks["fit_start"] - launched,
        "first_step_start": marks["first_step_start"] - launched,
        "first_step_end": marks["first_step_end"] - launched,
        "exit": timing.wall,
        "cpu": timing.cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(machine_line())

    help_cmd = [sys.executable, "train.py", "--help"]
    cfg_cmd = [sys.executable, "train.py", "--cfg", "job"]
    results: dict[str, list] = {"help": [], "cfg": [], "first": [], "first_bar": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            results["help"].append(run_timed(help_cmd)[0])
            results["cfg"].append(run_timed(cfg_cmd)[0])
            results["first"].append(first_step(Path(tmp), i))
            results["first_bar"].append(first_step(Path(tmp), i, BAR_PROPOSAL))
    import_s = [run_timed([sys.executable, "-c", "import pytorch_lightning"])[0] for _ in range(args.repeats)]

    def med(values) -> float:
        return statistics.median(values)

    print(f"medians of {args.repeats} runs (wall / CPU seconds)")
    print(f"  python train.py --help            {med(t.wall for t in results['help']):6.2f} / {med(t.cpu for t in results['help']):5.2f}")
    print(f"  python train.py --cfg job         {med(t.wall for t in results['cfg']):6.2f} / {med(t.cpu for t in results['cfg']):5.2f}")
    print(f"  python -c 'import pytorch_lightning' {med(t.wall for t in import_s):4.2f} / {med(t.cpu for t in import_s):5.2f}  (reference)")
    print("  python train.py debug=fast logger=none, seconds after launch (default | bar refresh_rate=10 leave=false):")
    for key, label in [
        ("fit_start", "trainer.fit starts"),
        ("first_step_start", "first training step starts"),
        ("first_step_end", "first training step ends"),
        ("exit", "process exits"),
        ("cpu", "CPU seconds of the run"),
    ]:
        print(f"    {label:28s} {med(r[key] for r in results['first']):6.2f} | {med(r[key] for r in results['first_bar']):6.2f}")
    heavy = heavy_imports_of_help()
    print(f"  heavy packages imported by --help: {', '.join(heavy) if heavy else 'none'}")
    help_wall = med(t.wall for t in results["help"])
    print(ratio_line("startup", help_wall / GOAL_HELP_S, 1.0, higher_is_better=False) + f"  [--help {help_wall:.2f} s / {GOAL_HELP_S:g} s goal]")


if __name__ == "__main__":
    main()
