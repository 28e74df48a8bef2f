"""``python -m initlab.pipeline.timed <stage> <command ...>``: run a stage's command, record its wall time.

DVC outputs must be byte-stable, so wall times live in ``reports/timings.md``, an untracked file
(gitignored, no DVC output) that the report's footer points to: one row per stage, rewritten
when that stage succeeds. The command's exit code is passed through.
"""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from initlab.pipeline.params_schema import check_params

TIMINGS = Path("reports/timings.md")
JIT_NOTICE = "ignore:`torch.jit.script` is deprecated:FutureWarning"
ROW = re.compile(r"^\| (?P<stage>[^|]+) \| (?P<seconds>[0-9.]+) \|$")


def record(path: Path, stage: str, seconds: float) -> None:
    """Set ``stage``'s row of the timings table at ``path`` (other rows kept, sorted by stage)."""
    rows = {m["stage"].strip(): m["seconds"] for line in (path.read_text().splitlines() if path.exists() else [])
            if (m := ROW.match(line))}
    rows[stage] = f"{seconds:.1f}"
    lines = ["# Wall time of the last successful run of each DVC stage (seconds; untracked)", "",
             "| stage | seconds |", "|---|---|", *(f"| {name} | {value} |" for name, value in sorted(rows.items()))]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Check params.yaml before the stage starts (values never reach a shell unchecked: dvc.yaml templates none
    into a command), then run the stage with ``threads`` as its OMP_NUM_THREADS."""
    stage, *command = sys.argv[1:] if argv is None else argv
    params = check_params()
    start = time.perf_counter()
    env = {**os.environ, "OMP_NUM_THREADS": str(params["threads"]),
           # torch's forward-mode AD (our JVPs) scripts a helper on first use and warns about its own deprecated API
           "PYTHONWARNINGS": ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), JIT_NOTICE]))}
    code = subprocess.call(command, env=env)
    if code == 0:  # a foreach stage (bench@<init>) under its own name: DVC's address of it
        record(TIMINGS, os.environ.get("DVC_STAGE", stage).rsplit(":", 1)[-1], time.perf_counter() - start)
    return code


if __name__ == "__main__":
    sys.exit(main())
