"""Hydra callback: after a multirun, count job statuses and exit with the number of failed jobs."""

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


def sweep_statuses(sweep_dir: str | Path) -> Counter:
    """Status counts over the sweep's ``*/metrics.json`` (a job without one counts as failed)."""
    counts: Counter = Counter()
    for job_dir in sorted(p for p in Path(sweep_dir).iterdir() if p.is_dir() and p.name.isdigit()):
        record = job_dir / "metrics.json"
        counts[json.loads(record.read_text()).get("status", "failed") if record.exists() else "failed"] += 1
    return counts


class SweepSummary(Callback):
    """Aggregate the sweep (aggregate.md/csv), print status counts; a sweep with failed jobs exits with that count (max 125)."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        counts = sweep_statuses(sweep_dir)
        if any(sweep_dir.rglob("metrics.json")):
            from initlab.aggregate import aggregate

            print(aggregate(sweep_dir)["markdown"], flush=True)
        summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        print(f"sweep {sweep_dir}: {summary}", flush=True)
        if counts["failed"]:
            sys.exit(min(counts["failed"], 125))
