"""Hydra callback: after a multirun, aggregate, name the objective in Optuna's results, count job statuses and exit
with the number of failed jobs."""

import logging
import secrets
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

# What hydra-optuna-sweeper writes into the sweep dir at the end (best_params, best_value).
OPTUNA_RESULTS = "optimization_results.yaml"


def sweep_statuses(sweep_dir: str | Path, sweep: str | None) -> Counter:
    """Status counts over the jobs of sweep ``sweep`` in ``sweep_dir`` (a job without a record counts as failed; another
    sweep's record, left by an ``overwrite=true`` sweep with fewer jobs, is not counted)."""
    from initlab.aggregate import read_record

    counts: Counter = Counter()
    for job_dir in sorted(p for p in Path(sweep_dir).iterdir() if p.is_dir() and not p.is_symlink() and p.name.isdigit()):
        record = read_record(job_dir / "metrics.json") if (job_dir / "metrics.json").exists() else {"status": "failed", "sweep": sweep}
        if sweep is None or record["sweep"] == sweep or record["status"] == "unreadable":
            counts["failed" if record["status"] == "unreadable" else record["status"]] += 1
    return counts


def start_sweep(sweep_dir: Path, resume: bool) -> str:
    """Write ``sweep.json`` with a fresh id (a resumed sweep keeps its own): each job records it, and the aggregate
    ranks only the jobs that carry it."""
    from initlab.training.records import sweep_id, write_json

    if resume and (kept := sweep_id(sweep_dir)):
        return kept
    sweep = secrets.token_hex(8)
    write_json(sweep_dir / "sweep.json", {"id": sweep})
    return sweep


def name_objective(results: Path) -> None:
    """Add to an Optuna sweeper's results the metric its ``best_value`` is (the sweep's objective, as in aggregate.md)."""
    if not results.is_file():
        return
    import yaml

    from initlab.aggregate import OBJECTIVE, direction

    from initlab.files import atomic_write

    content = yaml.safe_load(results.read_text()) or {}
    content["objective"] = f"{direction(OBJECTIVE)} {OBJECTIVE}"
    atomic_write(results, yaml.safe_dump(content, sort_keys=False))


def quiet_sweeper_logging() -> None:
    """Before the sweeper is imported: no INFO line per Alembic plugin (Optuna imports Alembic for its RDB storage; Hydra's
    root handler printed seven ``setup plugin alembic...`` lines), and Optuna's trial lines through Hydra's handler, with
    no colour codes, when stderr (where Optuna's own colour handler writes) is not a terminal."""
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if not sys.stderr.isatty():
        import optuna

        optuna.logging.disable_default_handler()
        optuna.logging.enable_propagation()


class SweepSummary(Callback):
    """Aggregate the sweep (aggregate.md/csv), print status counts; a sweep with failed jobs exits with that count (max 125)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        start_sweep(Path(config.hydra.sweep.dir), resume=config.get("ckpt_path") == "last")
        if "optuna" in str(OmegaConf.select(config, "hydra.sweeper._target_", default="")):
            quiet_sweeper_logging()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from initlab.training.records import sweep_id

        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        counts = sweep_statuses(sweep_dir, sweep_id(sweep_dir))
        from initlab.aggregate import aggregate

        try:
            print(aggregate(sweep_dir)["markdown"], flush=True)
        except (OSError, ValueError) as err:  # no job of this sweep left a record
            print(f"initlab.aggregate: {err}", flush=True)
        name_objective(sweep_dir / OPTUNA_RESULTS)
        summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        print(f"sweep {sweep_dir}: {summary}", flush=True)
        if counts["failed"]:
            sys.exit(min(counts["failed"], 125))
