"""The stages' fan-out: results in task order whatever order the tasks ran in, costliest tasks first, and a demo stage's
files the same with one worker or two."""

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from initlab.pipeline.common import parallel_map
from initlab.pipeline.prepare import prepare


def started(task: int) -> tuple[int, float, int]:
    """The task, when it started (the system-wide monotonic clock) and in which process; it takes a moment."""
    start = time.monotonic()
    time.sleep(0.3)
    return task, start, os.getpid()


def test_parallel_map_returns_task_order_and_starts_the_costliest_first():
    tasks = list(range(6))
    results = parallel_map(started, tasks, workers=2, cost=lambda task: task)  # task 5 is the costliest
    assert [task for task, _, _ in results] == tasks
    start = {task: when for task, when, _ in results}
    assert max(start[5], start[4]) < min(start[1], start[0])  # the two costliest ran before the two cheapest
    assert len({pid for _, _, pid in results}) == 2 and os.getpid() not in {pid for _, _, pid in results}


def digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_demo_stage_writes_the_same_files_with_one_worker_or_two(tmp_path):
    params = yaml.safe_load(Path("params.yaml").read_text()) | {"data": "digits", "seeds": [1, 2], "device": "cpu"}
    params["data_demos"]["lr_stability"] |= {"factors": [0.5, 1.0, 4.0], "steps": 3, "num_samples": 32, "tol": 1e-2}
    params["data_demos"]["symmetry"] |= {"steps": 2, "every": 1, "batch_size": 16}
    outputs = {}
    for workers in (1, 2):
        root = tmp_path / f"workers-{workers}"
        prepare("digits", 1, root)
        (root / "params.yaml").write_text(yaml.safe_dump(params | {"workers": workers}))
        # the command dvc.yaml runs: its workers are spawned from a package's __main__, which they cannot import by name
        subprocess.run([sys.executable, "-m", "initlab.pipeline.demos", "--params", str(root / "params.yaml"), "--results", str(root),
                        "lr_stability", "symmetry"], check=True, capture_output=True, env=os.environ | {"OMP_NUM_THREADS": "1"})
        outputs[workers] = digests(root / "demos")
    assert {"lr_stability/seed-1", "lr_stability/seed-2"} <= {str(Path(f).parent) for f in outputs[2]}
    assert outputs[1] == outputs[2]
