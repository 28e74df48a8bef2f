"""Aggregate a sweep: ``python -m initlab.aggregate <multirun dir> [--metric val/loss]``.

Reads every ``metrics.json`` below the directory and writes ``aggregate.csv`` (one row per run)
and ``aggregate.md`` (mean +- std over seeds per configuration, status counts, best configuration
by the sweep's objective).
"""

import argparse
import csv
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from initlab.stats import mean_std

IGNORED_OVERRIDE_PREFIXES = ("seed=", "paths.", "hydra.", "logger", "callbacks")
METRIC_COLUMNS = ("train/loss", "train/acc", "val/loss", "val/acc", "test/loss", "test/acc")
# The one objective of a sweep: what train.py returns to a sweeper (Optuna minimizes it: conf/hparams_search/optuna.yaml,
# direction) and what aggregate.md ranks configurations by. Val, never test: selection must not see the test split.
OBJECTIVE = "val/loss"


def direction(metric: str) -> str:
    """``maximize`` for accuracies, ``minimize`` for losses."""
    return "maximize" if metric.endswith("acc") else "minimize"


def collect_runs(root: Path) -> list[dict[str, Any]]:
    """One flat row per run: its dir, configuration (overrides without the seed), seed, status, metrics."""
    rows = []
    for path in sorted(root.rglob("metrics.json")):
        record = read_record(path)
        overrides = record.get("overrides", [])
        overrides = [o for o in overrides if isinstance(o, str)] if isinstance(overrides, list) else []
        overrides = [o for o in overrides if not o.startswith(IGNORED_OVERRIDE_PREFIXES)]
        row = {"run": str(path.parent.relative_to(root)), "config": " ".join(overrides) or "defaults",
               "seed": record.get("seed"), "status": record.get("status", "failed")}
        for column in METRIC_COLUMNS:
            stage, name = column.split("/")
            metrics = record.get(stage)
            value = metrics.get(name) if isinstance(metrics, dict) else None
            row[column] = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        rows.append(row)
    return rows


def read_record(path: Path) -> dict[str, Any]:
    """The run's record, or ``{"status": "unreadable"}`` for a file that is not a JSON object (a crash mid-write,
    a hand edit): one bad file must not hide the sweep's other runs."""
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return {"status": "unreadable"}
    return record if isinstance(record, dict) else {"status": "unreadable"}


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


def render_markdown(rows: list[dict[str, Any]], summary: list[dict[str, Any]], metric: str) -> str:
    statuses = Counter(r["status"] for r in rows)
    lines = [f"# Sweep summary ({len(rows)} runs: " + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())) + ")", ""]
    if summary and summary[0][metric] is not None:
        extreme = "highest" if direction(metric) == "maximize" else "lowest"
        named = f" (the sweep's objective: Optuna {direction(metric)}s the same)" if metric == OBJECTIVE else ""
        lines += [f"Best configuration by {extreme} mean {metric}{named}: `{summary[0]['config']}`, {metric} = {show(summary[0][metric])}", ""]
    lines += ["Cells: mean +- sample standard deviation over the done runs of a configuration (its seeds).", ""]
    lines += ["| configuration | done/runs | " + " | ".join(METRIC_COLUMNS) + " |", "|---|---|" + "---|" * len(METRIC_COLUMNS)]
    for entry in summary:
        cells = [show(entry[c]) for c in METRIC_COLUMNS]
        lines.append(f"| `{entry['config']}` | {entry['done']}/{entry['runs']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def aggregate(root: str | Path, metric: str = OBJECTIVE) -> dict[str, Any]:
    """Write ``aggregate.csv`` and ``aggregate.md`` into ``root``; returns the summary."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no such sweep directory: {root}")
    if metric not in METRIC_COLUMNS:
        raise ValueError(f"metric must be one of {METRIC_COLUMNS}, got {metric!r}")
    rows = collect_runs(root)
    if not rows:
        raise FileNotFoundError(f"no metrics.json below {root}")
    with (root / "aggregate.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    summary = summarize(rows, metric)
    markdown = render_markdown(rows, summary, metric)
    (root / "aggregate.md").write_text(markdown)
    return {"rows": rows, "summary": summary, "markdown": markdown, "statuses": dict(Counter(r["status"] for r in rows))}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m initlab.aggregate", description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="a multirun directory (or any folder of runs)")
    parser.add_argument("--metric", default=OBJECTIVE, choices=METRIC_COLUMNS,
                        help=f"metric that picks the best configuration (default: the sweep's objective, {OBJECTIVE})")
    args = parser.parse_args(argv)
    try:
        result = aggregate(args.sweep_dir, args.metric)
    except (FileNotFoundError, ValueError) as err:
        parser.exit(2, f"initlab.aggregate: {err}\n")
    print(result["markdown"], end="")


if __name__ == "__main__":
    main()
