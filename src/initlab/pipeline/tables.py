"""Read what the stages wrote under ``results/`` into tidy rows, and summarize them.

Shared by ``study``, ``figures`` and ``report``. The summaries are pure functions on rows (tested
on synthetic rows); every mean and interval comes from :mod:`initlab.stats`.
"""

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from initlab.pipeline.common import read_csv, read_json
from initlab.stats import interval

Row = dict[str, Any]


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


# ---------------------------------------------------------------- demos (stages demos@<name>, data_demos@<name>)


def demo_file(results: str | Path, demo: str, name: str) -> Path:
    return Path(results) / "demos" / demo / name


def load_demo_csv(results: str | Path, demo: str, name: str) -> list[Row]:
    """A demo's table; for a ``per_seed`` demo the tables of all its ``seed-<s>/`` runs with a ``seed`` column."""
    path = demo_file(results, demo, name)
    if path.exists():
        return read_csv(path)
    runs = sorted(path.parent.glob(f"seed-*/{name}"), key=lambda p: int(p.parent.name.removeprefix("seed-")))
    return [{"seed": int(run.parent.name.removeprefix("seed-")), **row} for run in runs for row in read_csv(run)]


def load_demo_json(results: str | Path, demo: str, name: str) -> Any:
    return read_json(demo_file(results, demo, name))


# ---------------------------------------------------------------- the study (stages study@lr, study@depth)

SETTINGS = ("default", "best_lr", "curvature_lr")
# What one lr selection is made over (the seeds of one config at one budget): the key of ``best_lrs``.
SELECTION = ("init", "optim", "epochs", "activation")
# Columns the study writes once per grid search: where its selection sits on the (extended) grid (grid_edge: none |
# low | high), why it stops there (edge_reason: interior | next_diverges | bound), the lr resolution around the
# selection (lr_resolution, decades) and the selected lr / factor of a depth search (best_lr, c).
SEARCH_COLUMNS = ("grid_edge", "edge_reason", "lr_resolution", "best_lr", "c")


def interval_columns(values: Iterable[Any], prefix: str = "", method: str = "t") -> Row:
    """``<prefix>mean``, ``<prefix>low``, ``<prefix>high`` of the 95% interval over seeds (``n`` without prefix)."""
    iv = interval(values, method)
    return {"n": iv.n, f"{prefix}mean": iv.mean, f"{prefix}low": iv.low, f"{prefix}high": iv.high}


def metric_columns(group: Sequence[Row], *metrics: str) -> Row:
    """``n`` (finite values of the first metric: a diverged run's loss is nan) and the interval columns of every metric."""
    columns = [interval_columns((r[m] for r in group), f"{m}_") for m in metrics]
    return {"n": columns[0]["n"]} | {k: v for c in columns for k, v in c.items() if k != "n"}


def loss_or_inf(value: Any) -> float:
    """A loss to select on: a diverged run (nan, inf or missing) counts as inf."""
    return value if isinstance(value, float) and math.isfinite(value) else math.inf


def best_lrs(runs: Iterable[Row], select_on: str = "val_loss") -> dict[tuple, float]:
    """Per (init, optim, epochs, activation): the grid lr with the lowest mean ``select_on`` over seeds (diverged runs
    count as inf) among the lrs evaluated at that budget (``epochs`` / ``activation`` None in rows without them)."""
    grid = [r for r in runs if r["setting"] != "curvature"]
    return lowest(grid, SELECTION, select_on)


def lowest(rows: Iterable[Row], keys: Sequence[str], select_on: str = "val_loss") -> dict[tuple, float]:
    """Per group of ``keys``: the lr with the lowest mean ``select_on`` over its rows (seeds; diverged = inf)."""
    scores = {key: statistics.fmean(loss_or_inf(r[select_on]) for r in group)
              for key, group in group_by(rows, *keys, "lr").items()}
    best: dict[tuple, float] = {}
    for (*group, lr), score in scores.items():
        group = tuple(group)
        if group not in best or score < scores[(*group, best[group])]:
            best[group] = lr
    return best


def best_depth_lr(rows: Sequence[Row]) -> float:
    """The lr with the lowest mean val loss over seeds at the longest budget of one depth-study search."""
    top = max(r["epochs"] for r in rows)
    return lowest([r for r in rows if r["epochs"] == top], ())[()]


def setting_runs(runs: Sequence[Row]) -> list[Row]:
    """The runs of the three fair-comparison settings, labelled ``setting``: the config's default lr,
    the best grid lr (chosen on val at the same budget), lr = c / lambda_max(H_0)."""
    best = best_lrs(runs)
    labelled = {
        "default": [r for r in runs if r["setting"] != "curvature" and r["lr"] == r["default_lr"]],
        "best_lr": [r for r in runs if r["setting"] != "curvature" and r["lr"] == best[tuple(r.get(k) for k in SELECTION)]],
        "curvature_lr": [r for r in runs if r["setting"] == "curvature"],
    }
    return [r | {"setting": setting} for setting in SETTINGS for r in labelled[setting]]


def lr_grid_table(runs: Sequence[Row]) -> list[Row]:
    """Per activation, init, optimizer, grid lr and budget (epochs): val loss and accuracy, mean and 95% t-interval
    over seeds, with the search's ``grid_edge`` / ``edge_reason`` / ``lr_resolution`` (where the rows carry them)."""
    grid = [r for r in runs if r["setting"] != "curvature"]
    keys = ("activation", "init", "optim", "lr", "epochs")
    return [dict(zip(keys, key, strict=True)) | _search_columns(group) | metric_columns(group, "val_loss", "val_acc")
            for key, group in sorted(group_by(grid, *keys).items(), key=lambda item: tuple(map(str, item[0][:3])) + item[0][3:])]


def _search_columns(group: Sequence[Row]) -> Row:
    """The grid search's own columns of a group's rows (the same on every row of one search)."""
    return {k: group[0][k] for k in SEARCH_COLUMNS if group[0].get(k) is not None}


def lr_fairness_table(runs: Sequence[Row]) -> list[Row]:
    """Per activation, init, optimizer, setting and budget: the (median over seeds) lr, test loss and accuracy with
    95% t-intervals over seeds, and the search's edge columns."""
    keys = ("activation", "init", "optim", "setting", "epochs")
    return [dict(zip(keys, key, strict=True)) | {"lr": statistics.median(r["lr"] for r in group)}
            | _search_columns(group)
            | metric_columns(group, "test_loss", "test_acc")
            for key, group in group_by(setting_runs(runs), *keys).items()]


DEPTH_QUANTITIES = {"train_loss": "runs", "lambda_max": "at_init", "jacobian_norm_product": "at_init", "variance_ratio": "at_init"}


def depth_table(tables: dict[str, Sequence[Row]]) -> list[Row]:
    """Per init, activation, depth and quantity (train loss after the budget, at-init quantities): 95% t-interval over seeds."""
    rows = []
    for quantity, source in DEPTH_QUANTITIES.items():
        for (init, activation, depth), group in group_by(tables[source], "init", "activation", "depth").items():
            rows.append({"init": init, "activation": activation, "depth": depth, "quantity": quantity}
                        | interval_columns(r[quantity] for r in group) | _search_columns(group))
    return rows
