"""Time to the one-line error: wall seconds of ``python -m initlab.cli.train <attack>`` until it exits 2, over the
composed-config attack set (tests/cli/attacks.py), as subprocesses; prints median and p90 (goal: p90 <= 3 s).

    python benchmarks/error_latency.py [--rounds 3]
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.cli.attacks import ATTACKS, MARKER  # noqa: E402

GOAL_P90_S = 3.0


def time_to_error(attack, folder: Path) -> tuple[float, float, bool]:
    """(wall seconds, CPU seconds of the process, whether it ended as one line with exit 2 and no marker); the CPU
    time is what a quiet machine's wall time would be, near enough, on a shared one."""
    env = os.environ | {"PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}", "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "initlab.cli.train", *attack.prepare(folder), f"paths.log_dir={folder}/logs"]
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    result = subprocess.run(args, cwd=folder, env=env, capture_output=True, text=True)
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu, result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1 and not (folder / MARKER).exists()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="runs of the whole attack set")
    rounds = parser.parse_args().rounds
    print(f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f} attacks={len(ATTACKS)} rounds={rounds}")
    walls, cpus, clean = [], [], 0
    for _ in range(rounds):
        for attack in ATTACKS:
            with tempfile.TemporaryDirectory() as folder:
                wall, cpu, ok = time_to_error(attack, Path(folder))
            walls.append(wall)
            cpus.append(cpu)
            clean += ok
            print(f"{attack.name:26s} wall {wall:5.2f} s cpu {cpu:5.2f} s {'one line, exit 2' if ok else 'NOT CLEAN'}", flush=True)
    p90 = statistics.quantiles(walls, n=10)[-1]
    print(f"wall: median {statistics.median(walls):.2f} s, p90 {p90:.2f} s; cpu: median {statistics.median(cpus):.2f} s, "
          f"p90 {statistics.quantiles(cpus, n=10)[-1]:.2f} s; clean {clean}/{len(walls)}")
    print(f"RATIO error_latency_p90_over_goal = {p90 / GOAL_P90_S:.2f} (goal <= 1: {'met' if p90 <= GOAL_P90_S else 'NOT met'})")


if __name__ == "__main__":
    main()
