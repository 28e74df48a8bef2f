"""Read what the stages wrote under ``results/`` into tidy rows, and summarize them.

Shared by ``figures`` and ``report``: every loader takes the results root and the params lists,
so runs left over from an earlier ``params.yaml`` are never mixed in. The summaries are pure
functions on rows (tested on synthetic rows).
"""

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from initlab.pipeline.common import read_csv, read_json

Row = dict[str, Any]


def run_key(*parts: Any) -> str:
    """A DVC matrix item's ``${key}``: its values joined by '-' (e.g. ``spectral-sgd-1``)."""
    return "-".join(str(part) for part in parts)


def mean_std(values: Iterable[float | None]) -> tuple[float, float, int]:
    """(mean, sample std, count) of the finite values; (nan, nan, 0) when there are none; std 0 for one value."""
    finite = [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not finite:
        return math.nan, math.nan, 0
    return statistics.fmean(finite), statistics.stdev(finite) if len(finite) > 1 else 0.0, len(finite)


def geometric_mean(values: Iterable[float]) -> float:
    """exp(mean(log v)) over the positive values (nan when there are none)."""
    logs = [math.log(v) for v in values if isinstance(v, (int, float)) and v > 0]
    return math.exp(statistics.fmean(logs)) if logs else math.nan


def group_by(rows: Iterable[Row], *keys: str) -> dict[tuple, list[Row]]:
    """Rows grouped by the values of ``keys`` (insertion order kept)."""
    groups: dict[tuple, list[Row]] = defaultdict(list)
    for row in rows:
        groups[tuple(row.get(key) for key in keys)].append(row)
    return dict(groups)


def summarize(rows: Iterable[Row], keys: Sequence[str], columns: Sequence[str]) -> list[Row]:
    """Per group of ``keys``: mean and std (``<column>_std``) of every column, and the group size ``count``."""
    out = []
    for group, members in group_by(rows, *keys).items():
        entry: Row = dict(zip(keys, group, strict=True)) | {"count": len(members)}
        for column in columns:
            mean, std, _ = mean_std(row.get(column) for row in members)
            entry[column], entry[f"{column}_std"] = mean, std
        out.append(entry)
    return out


# ---------------------------------------------------------------- training runs (stage train)


def load_training_runs(root: str | Path, inits: Sequence[str], optimizers: Sequence[str], seeds: Sequence[int]) -> list[Row]:
    """One row per run dir ``<root>/<init>-<optim>-<seed>``: status, metrics, per-epoch history,
    curvature log (``curvature.csv``, when the curvature callback ran), init report and the
    resolved config Hydra saved (``.hydra/config.yaml``)."""
    runs = []
    for init in inits:
        for optim in optimizers:
            for seed in seeds:
                run_dir = Path(root) / run_key(init, optim, seed)
                metrics = read_json(run_dir / "metrics.json")
                runs.append({
                    "init": init, "optim": optim, "seed": seed, "dir": str(run_dir),
                    "status": metrics.get("status", "failed"), "metrics": metrics,
                    "history": read_csv(run_dir / "history.csv") if (run_dir / "history.csv").exists() else [],
                    "curvature": read_csv(run_dir / "curvature.csv") if (run_dir / "curvature.csv").exists() else [],
                    "init_report": read_json(run_dir / "init.json") if (run_dir / "init.json").exists() else [],
                    "config": yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text()),
                })
    return runs


def training_curves(runs: Iterable[Row]) -> list[Row]:
    """Per init, optimizer and epoch: mean and std over seeds of train/val loss and val accuracy."""
    rows = [
        {"init": run["init"], "optim": run["optim"], "epoch": h["epoch"], "train_loss": h.get("train/loss"),
         "val_loss": h.get("val/loss"), "val_acc": h.get("val/acc"), "train_acc": h.get("train/acc")}
        for run in runs for h in run["history"]
    ]
    curves = summarize(rows, ("init", "optim", "epoch"), ("train_loss", "val_loss", "val_acc", "train_acc"))
    return sorted(curves, key=lambda r: (r["init"], r["optim"], r["epoch"]))


def metric(run: Row, split: str, name: str) -> float | None:
    """A final metric of a run (``test``/``acc`` ...) as a float, None when absent or not a number."""
    value = run["metrics"].get(split, {}).get(name)
    return float(value) if isinstance(value, (int, float)) else None


def outcome_table(runs: Iterable[Row]) -> list[Row]:
    """Per init x optimizer: runs, how many finished / diverged, test accuracy and loss (mean, std over seeds)."""
    table = []
    for (init, optim), members in group_by(runs, "init", "optim").items():
        done = [r for r in members if r["status"] == "done"]
        acc = mean_std(metric(r, "test", "acc") for r in done)
        loss = mean_std(metric(r, "test", "loss") for r in done)
        train_loss = mean_std(metric(r, "train", "loss") for r in done)
        table.append({
            "init": init, "optim": optim, "runs": len(members), "done": len(done),
            "diverged": sum(r["status"] == "diverged" for r in members),
            "failed": sum(r["status"] == "failed" for r in members),
            "test_acc": acc[0], "test_acc_std": acc[1], "test_loss": loss[0], "test_loss_std": loss[1],
            "train_loss": train_loss[0],
        })
    return table


def init_sigma_ratios(runs: Iterable[Row], numerator: str = "spectral", denominator: str = "xavier_normal") -> list[Row]:
    """Per layer: the measured weight std of ``numerator``'s init over ``denominator``'s (same layer shapes),
    next to the formula ratio sqrt(fan_in + fan_out) / (sqrt 2 (sqrt fan_in + sqrt fan_out))."""
    reports: dict[str, list[list[Row]]] = defaultdict(list)
    for run in runs:
        if run["init_report"]:
            reports[run["init"]].append(run["init_report"])
    if not reports.get(numerator) or not reports.get(denominator):
        return []
    rows = []
    for k, layer in enumerate(reports[numerator][0]):
        fan_in, fan_out = layer["fan_in"], layer["fan_out"]
        top = statistics.fmean(report[k]["weight_std"] for report in reports[numerator])
        bottom = statistics.fmean(report[k]["weight_std"] for report in reports[denominator])
        rows.append({
            "layer": k, "name": layer["name"], "fan_in": fan_in, "fan_out": fan_out, "measured_ratio": top / bottom,
            "formula_ratio": math.sqrt(fan_in + fan_out) / (math.sqrt(2) * (math.sqrt(fan_in) + math.sqrt(fan_out))),
        })
    return rows


def curvature_traces(runs: Iterable[Row]) -> list[Row]:
    """lambda_max logged by the curvature callback over the training steps, one row per (run, step)."""
    return [
        {"init": run["init"], "optim": run["optim"], "seed": run["seed"], "step": row["step"],
         "lambda_max": row.get("lambda_max"), "two_over_lr": row.get("edge_2_over_lr"), "lr": row.get("lr")}
        for run in runs for row in run["curvature"]
    ]


# ---------------------------------------------------------------- demos


def demo_file(results: str | Path, demo: str, name: str) -> Path:
    return Path(results) / "demos" / demo / name


def load_demo_csv(results: str | Path, demo: str, name: str) -> list[Row]:
    return read_csv(demo_file(results, demo, name))


def load_demo_json(results: str | Path, demo: str, name: str) -> Any:
    return read_json(demo_file(results, demo, name))
