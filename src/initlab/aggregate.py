"""Aggregate a sweep: ``python -m initlab.aggregate <multirun dir> [--metric val/loss]``.

Reads every ``metrics.json`` below the directory and writes ``aggregate.csv`` (one row per run)
and ``aggregate.md`` (mean +- std over seeds per configuration, status counts, best configuration
by the sweep's objective).
"""

import argparse
import csv
import io
import os
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from initlab.files import atomic_write
from initlab.stats import mean_std
from initlab.training.records import STATUSES, read_json, sweep_id

IGNORED_OVERRIDE_PREFIXES = ("seed=", "paths.", "hydra.", "logger", "callbacks", "overwrite=", "ckpt_path=")
METRIC_COLUMNS = ("train/loss", "train/acc", "val/loss", "val/acc", "test/loss", "test/acc")
# The one objective of a sweep: what train.py returns to a sweeper (Optuna minimizes it: conf/hparams_search/optuna.yaml,
# direction) and what aggregate.md ranks configurations by. Val, never test: selection must not see the test split.
OBJECTIVE = "val/loss"
# A folder of runs is data someone may have handed over: bounded walk, bounded records.
MAX_DEPTH = 6
MAX_RECORDS = 100_000
MAX_OVERRIDES = 256
MAX_OVERRIDE_CHARS = 1_000
NONFINITE = ("nan", "inf", "-inf")  # how a run writes a non-finite metric (records.json_safe)
MAX_METRIC = 1e300  # beyond float32 and float64 losses alike; means and stds of such numbers cannot overflow


def direction(metric: str) -> str:
    """``maximize`` for accuracies, ``minimize`` for losses."""
    return "maximize" if metric.endswith("acc") else "minimize"


def record_paths(root: Path) -> list[Path]:
    """Every ``metrics.json`` below ``root``, links never followed, at most ``MAX_DEPTH`` folders down."""
    found = []
    for folder, subfolders, files in os.walk(root, followlinks=False):
        if len(Path(folder).relative_to(root).parts) >= MAX_DEPTH:
            subfolders.clear()
        subfolders.sort()
        if "metrics.json" in files or "metrics.json" in subfolders:
            found.append(Path(folder) / "metrics.json")
            if len(found) > MAX_RECORDS:
                raise ValueError(f"more than {MAX_RECORDS} metrics.json below {root}")
    return sorted(found)


def collect_runs(root: Path, sweep: str | None = None) -> tuple[list[dict[str, Any]], int]:
    """One flat row per run: its dir, configuration (overrides without the seed), seed, status, metrics; and how many
    records were left out as another sweep's (``sweep``: the id in ``sweep.json``; None takes every record)."""
    rows, others = [], 0
    for path in record_paths(root):
        record = read_record(path)
        if sweep is not None and record.get("sweep") != sweep and record["status"] != "unreadable":
            others += 1
            continue
        rows.append({"run": str(path.parent.relative_to(root)), **record})
    return rows, others


def read_record(path: Path) -> dict[str, Any]:
    """The row fields of a run's record; ``status: unreadable`` (with the reason) for anything that is not a record a run
    writes: not a regular file, too large or deep, not JSON, wrong types, numbers where no run writes them. One bad
    file must not hide the sweep's other runs, nor pass for a run."""
    try:
        return _row_fields(read_json(path))
    except (OSError, UnicodeDecodeError, ValueError, TypeError) as err:
        return {"config": "-", "seed": None, "status": "unreadable", "reason": str(err)[:200], "sweep": None,
                **dict.fromkeys(METRIC_COLUMNS)}


def _row_fields(record: Any) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise TypeError("is not a JSON object")
    if record.get("status") not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}")
    overrides = record.get("overrides", [])
    if not isinstance(overrides, list) or len(overrides) > MAX_OVERRIDES or \
            not all(isinstance(o, str) and len(o) <= MAX_OVERRIDE_CHARS for o in overrides):
        raise TypeError(f"overrides must be a list of at most {MAX_OVERRIDES} strings of at most {MAX_OVERRIDE_CHARS} characters")
    seed = record.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise TypeError("seed must be an integer")
    sweep = record.get("sweep")
    row = {"config": " ".join(o for o in overrides if not o.startswith(IGNORED_OVERRIDE_PREFIXES)) or "defaults",
           "seed": seed, "status": record["status"], "sweep": sweep if isinstance(sweep, str) else None}
    for column in METRIC_COLUMNS:
        stage, name = column.split("/")
        metrics = {} if record.get(stage) is None else record[stage]
        if not isinstance(metrics, dict):
            raise TypeError(f"{stage} must be an object")
        row[column] = metric_value(metrics.get(name), column)
    return row


def metric_value(value: Any, column: str) -> float | None:
    """A metric, None for a missing or non-finite one written as a run writes it (``"nan"``); ``ValueError`` for
    anything else (a bare 1e999 or 10**400, a list, a bool): no run writes those."""
    if value is None or value in NONFINITE:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) <= MAX_METRIC:
        return float(value)
    raise ValueError(f"{column} must be a number of magnitude <= {MAX_METRIC:g}, got {str(value)[:40]!r}")


def code(text: str) -> str:
    """``text`` as one literal markdown code span that stays inside its table cell and line: control characters shown
    as escapes (a newline cannot start a row), ``|`` escaped (it cannot start a cell), fenced by more backticks than
    it holds in a row (a backtick cannot end the span)."""
    visible = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text).replace("|", "\\|")
    fence = "`" * (max((len(run) for run in re.findall("`+", visible)), default=0) + 1)
    pad = " " if visible[:1] in ("`", " ") or visible[-1:] in ("`", " ") else ""
    return f"{fence}{pad}{visible}{pad}{fence}"


def summarize(rows: list[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """Mean, std and count of every metric per configuration, over its finished runs (seeds)."""
    by_config: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_config[row["config"]].append(row)
    summary = []
    for config, runs in by_config.items():
        done = [r for r in runs if r["status"] == "done"]
        entry: dict[str, Any] = {"config": config, "runs": len(runs), "done": len(done)}
        for column in METRIC_COLUMNS:
            mean, std, n = mean_std(r[column] for r in done)
            entry[column] = (mean, std, n) if n else None
        summary.append(entry)
    sign = -1.0 if direction(metric) == "maximize" else 1.0
    return sorted(summary, key=lambda e: (e[metric] is None, sign * e[metric][0] if e[metric] else 0.0))


def show(cell: tuple[float, float, int] | None) -> str:
    """mean +- sample std over n runs; a single run has no spread, so it says n = 1 instead."""
    if cell is None:
        return "-"
    mean, std, n = cell
    return f"{mean:.4f} (n = 1)" if n == 1 else f"{mean:.4f} +- {std:.4f}"


def render_markdown(rows: list[dict[str, Any]], summary: list[dict[str, Any]], metric: str, others: int = 0) -> str:
    statuses = Counter(r["status"] for r in rows)
    lines = [f"# Sweep summary ({len(rows)} runs: " + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())) + ")", ""]
    if others:
        lines += [f"{others} records of other sweeps in this folder are left out (sweep.json names this sweep).", ""]
    if statuses["unreadable"]:
        unreadable = [f"{code(r['run'][:200])}: {code(r['reason'])}" for r in rows if r["status"] == "unreadable"]
        more = f"; and {len(unreadable) - 10} more" if len(unreadable) > 10 else ""
        lines += ["Unreadable records (not counted): " + "; ".join(unreadable[:10]) + more, ""]
    if summary and summary[0][metric] is not None:
        extreme = "highest" if direction(metric) == "maximize" else "lowest"
        named = f" (the sweep's objective: Optuna {direction(metric)}s the same)" if metric == OBJECTIVE else ""
        lines += [f"Best configuration by {extreme} mean {metric}{named}: {code(summary[0]['config'])}, "
                  f"{metric} = {show(summary[0][metric])}", ""]
    lines += ["Cells: mean +- sample standard deviation over the done runs of a configuration (its seeds).", ""]
    lines += ["| configuration | done/runs | " + " | ".join(METRIC_COLUMNS) + " |", "|---|---|" + "---|" * len(METRIC_COLUMNS)]
    for entry in summary:
        cells = [show(entry[c]) for c in METRIC_COLUMNS]
        lines.append(f"| {code(entry['config'])} | {entry['done']}/{entry['runs']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def aggregate(root: str | Path, metric: str = OBJECTIVE) -> dict[str, Any]:
    """Write ``aggregate.csv`` and ``aggregate.md`` into ``root``; returns the summary."""
    root = Path(root)
    if root.is_symlink() or not root.is_dir():
        raise FileNotFoundError(f"not a sweep directory (a folder, not a link): {root}")
    if metric not in METRIC_COLUMNS:
        raise ValueError(f"metric must be one of {METRIC_COLUMNS}, got {metric!r}")
    rows, others = collect_runs(root, sweep_id(root))
    if not rows:
        raise FileNotFoundError(f"no metrics.json below {root}" + (" from its sweep" if others else ""))
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=["run", "config", "seed", "status", *METRIC_COLUMNS], extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(root / "aggregate.csv", table.getvalue())
    summary = summarize([r for r in rows if r["status"] != "unreadable"], metric)
    markdown = render_markdown(rows, summary, metric, others)
    atomic_write(root / "aggregate.md", markdown)
    return {"rows": rows, "summary": summary, "markdown": markdown, "statuses": dict(Counter(r["status"] for r in rows))}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m initlab.aggregate", description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="a multirun directory (or any folder of runs)")
    parser.add_argument("--metric", default=OBJECTIVE, choices=METRIC_COLUMNS,
                        help=f"metric that picks the best configuration (default: the sweep's objective, {OBJECTIVE})")
    args = parser.parse_args(argv)
    try:
        result = aggregate(args.sweep_dir, args.metric)
    except (OSError, ValueError) as err:
        parser.exit(2, f"initlab.aggregate: {err}\n")
    print(result["markdown"], end="")


if __name__ == "__main__":
    main()
