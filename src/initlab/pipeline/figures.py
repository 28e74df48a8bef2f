"""DVC stage ``figures``: every PNG of the report, and the rows behind each one.

    python -m initlab.pipeline.figures     # results/ -> reports/figures/*.png, reports/plots/*.csv

Every figure is one entry of :data:`FIGURES`: ``load`` reads its inputs under ``results/`` (None while
they are absent: the figure is skipped) and ``plot`` draws a ``matplotlib.figure.Figure`` from those
inputs alone, so it is tested on synthetic rows. The look (a colour per init and optimizer, legends,
coinciding series, a caption that states n and what bands mean) is :mod:`initlab.pipeline.style`;
intervals over seeds are the study's (``tables.interval_columns``: 95% Student t). The plotted rows
go to ``reports/plots/<name>.csv``; ``reports/figures.json`` lists title and caption for the report. Each saved figure
goes through :func:`initlab.pipeline.figure_checks.check_figure`; a defect (new data that makes labels overlap, a legend
cover points, a title contradict its series) is printed as a warning on stderr.
"""

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from initlab.pipeline import tables
from initlab.pipeline.common import load_params, parallel_map, read_csv, stage_parser, write_csv, write_json
from initlab.pipeline.figure_checks import check_figure, claim, trend
from initlab.pipeline.grid_edges import on_grid_edge
from initlab.pipeline.style import (axes, band, describe, dodge, finish, key_handle, log_ticks, n_text, new_figure, ordinal_style,
                                    save_figure, series_style, side_legend)
from initlab.pipeline.tables import Row, group_by

Data = dict[str, Any]
LINESTYLES = ("-", "--", ":", "-.")
INTERVAL = "95% t-interval over seeds"
LOG_INTERVAL = "95% t-interval of the log over seeds"


@dataclass(frozen=True)
class Entry:
    """How one figure is made: its inputs (None: not written yet, skip) and its drawing."""

    load: Callable[[Path, dict], Data | None]
    plot: Callable[[Data], Figure]


FIGURES: dict[str, Entry] = {}


def figure(name: str, load: Callable[[Path, dict], Data | None]):
    """Register the decorated ``plot`` as figure ``name`` (``reports/figures/<name>.png``)."""

    def register(plot: Callable[[Data], Figure]) -> Callable[[Data], Figure]:
        FIGURES[name] = Entry(load, plot)
        return plot

    return register


def demo(name: str, file: str) -> Callable[[Path, dict], Data]:
    """Loader of a demo's CSV (``rows``, all seeds of a per-seed demo) and its ``params.yaml`` settings."""

    def load(results: Path, params: dict) -> Data:
        settings = (params.get("demos", {}) | params.get("data_demos", {}))[name]
        return {"settings": settings, "rows": tables.load_demo_csv(results, name, file)}

    return load


def study(name: str) -> Callable[[Path, dict], Data | None]:
    """Loader of ``results/study/<name>.csv``; None until the study stage has written it."""

    def load(results: Path, params: dict) -> Data | None:
        path = Path(results) / "study" / f"{name}.csv"
        return {"rows": read_csv(path)} if path.exists() else None

    return load


def over_seeds(rows: Sequence[Row], keys: Sequence[str], column: str, log: bool = False, range_below: int = 0) -> list[Row]:
    """Per group of ``keys``: n, mean, low, high of ``column`` over its rows (seeds, trials); ``log``: of its log,
    mapped back (geometric mean; the interval of a positive quantity on a log axis stays positive). A group of fewer
    than ``range_below`` values gets the range of its values instead (a t-interval of two values is 12.7 half-ranges
    wide: it would fill the panel and say nothing)."""
    def value(row: Row) -> Any:
        return math.log(row[column]) if isinstance(row[column], (int, float)) and row[column] > 0 else None

    out = []
    for group, members in group_by(rows, *keys).items():
        values = [value(r) if log else r[column] for r in members]
        stats = tables.interval_columns(values)
        finite = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
        if 2 <= len(finite) < range_below:
            stats |= {"low": min(finite), "high": max(finite)}
        out.append(dict(zip(keys, group, strict=True)) | stats | ({k: math.exp(stats[k]) for k in ("mean", "low", "high")} if log else {}))
    return out


def yerr(rows: Sequence[Row], mean: str = "mean", low: str = "low", high: str = "high") -> np.ndarray:
    """Asymmetric error bars (2 x n) of interval rows; none where the interval is unbounded (a single value)."""
    m, lo, hi = (np.array([r[c] for r in rows], dtype=float) for c in (mean, low, high))
    error = np.array([m - lo, hi - m])
    return np.where(np.isfinite(error), error, 0.0)


def layer_names(rows: Sequence[Row], key: str = "layer") -> dict[Any, str]:
    """Weight-layer index -> the name the models give it (hidden1, ..., output): the table's ``name`` column where it has
    one, else by position (the last weight layer of a table covering all of them is the output)."""
    indices = sorted({r[key] for r in rows if isinstance(r[key], int)})
    named = {r[key]: r["name"] for r in rows if r.get("name")}
    return {k: named.get(k, "output" if k == indices[-1] else f"hidden{k + 1}") for k in indices}


def bands(ax: Any, rows: Sequence[Row], x: str, mean: str, low: str, high: str, *keys: str) -> None:
    """One line with its interval band per series of ``keys`` (init, then optimizer: colour, then line style)."""
    for values, group in group_by(rows, *keys).items():
        group = sorted(group, key=lambda r: r[x])
        style = series_style(values[0]) | ({"linestyle": series_style(values[1])["linestyle"]} if len(values) > 1 else {})
        band(ax, [r[x] for r in group], *([r[c] for r in group] for c in (mean, low, high)), " / ".join(map(str, values)), **style)


# ---------------------------------------------------------------- the study


DEPTH_GUIDES = {  # per quantity: axis label, and per reference line the per-layer gain g it draws as g^(L-1)
    "train_loss": ("train loss after the budget (nats)", {}),
    "lambda_max": ("lambda_max(H) at init", {}),
    "jacobian_norm_product": ("prod_k ||J^(k)|| at init", {"every ||J^(k)|| = 1": 1.0}),
    "variance_ratio": ("Var(u^(L)) / Var(u^(1)) at init", {"gain 1 per layer": 1.0, "gain 1/2 per layer: (1/2)^(L-1)": 0.5,
                                                          "gain 1/4 per layer: (1/4)^(L-1)": 0.25}),
}


def _depth_load(results: Path, params: dict) -> Data | None:
    """The depth table; its at-init quantities (positive, spanning decades) recomputed from the per-seed rows as a geometric
    mean with a t-interval of the log, so a band on the log axis stays positive (a linear interval reaches below 0)."""
    loaded = study("depth")(results, params)
    per_seed = Path(results) / "study" / "depth" / "at_init.csv"
    if loaded is None or not per_seed.exists():
        return loaded
    seeds = read_csv(per_seed)
    logged = [q for q in dict.fromkeys(r["quantity"] for r in loaded["rows"]) if seeds and q in seeds[0]]
    rows = [r for r in loaded["rows"] if r["quantity"] not in logged]
    rows += [r | {"quantity": q} for q in logged for r in over_seeds(seeds, ("init", "activation", "depth"), q, log=True, range_below=3)]
    return loaded | {"rows": rows, "log_quantities": logged}




@figure("depth", _depth_load)
def plot_depth(data: Data) -> Figure:
    """Every depth-study quantity vs depth (log-log), one line per init, one column per activation; every depth present in
    the table is a tick, a panel without rows is not drawn."""
    rows = [r for r in data["rows"] if isinstance(r.get("mean"), float) and r["mean"] > 0]
    quantities = list(dict.fromkeys(r["quantity"] for r in rows))
    activations = list(dict.fromkeys(r["activation"] for r in rows))
    depths = sorted({r["depth"] for r in rows})
    fig, grid = new_figure(len(quantities), len(activations), height=3.0, sharex=True)
    for row_axes, quantity in zip(grid, quantities, strict=True):
        ylabel, guides = DEPTH_GUIDES.get(quantity, (quantity, {}))
        for ax, activation in zip(row_axes, activations, strict=True):
            panel = [r | {"low": r["low"] if r["low"] > 0 else math.nan} for r in rows
                     if r["quantity"] == quantity and r["activation"] == activation]
            if not panel:
                ax.set_visible(False)
                continue
            bands(ax, panel, "depth", "mean", "low", "high", "init")
            flagged = [r for r in panel if on_grid_edge(r)]
            if flagged:
                ax.plot([r["depth"] for r in flagged], [r["mean"] for r in flagged], linestyle="", marker="o", markersize=11,
                        markerfacecolor="none", markeredgecolor="r", label="best lr on the grid's edge")
            for i, (label, gain) in enumerate(guides.items()):
                ax.plot(depths, [gain ** (d - 1) for d in depths], color="k", linestyle=LINESTYLES[i + 1], linewidth=0.8, label=label)
            ax.set_yscale("log")
            ax.set_xscale("log", base=2)
            ax.set_xticks(depths, [str(d) for d in depths])
            ax.xaxis.set_minor_formatter(NullFormatter())
            axes(ax, "depth L (hidden layers)", ylabel, f"{activation}: {quantity}", legend=False)
        shown = [ax for ax in row_axes if ax.get_visible()]
        if shown and guides:
            side_legend(shown[-1], extra=[key_handle(label, linestyle=LINESTYLES[i + 1], linewidth=0.8)
                                          for i, label in enumerate(guides)], series=False)
    inits = list(dict.fromkeys(r["init"] for r in rows))
    keys = [key_handle(i, **series_style(i)) for i in inits]
    if any(on_grid_edge(r) for r in rows):
        keys.append(key_handle("best lr on the grid's edge", linestyle="", marker="o", markersize=9, markerfacecolor="none",
                               markeredgecolor="r"))
    side_legend(next(ax for ax in grid[0][::-1] if ax.get_visible()), extra=keys, series=False)
    logged = data.get("log_quantities", [])
    lines = (f"lines: geometric mean, bands: {LOG_INTERVAL} for the at-init rows ({', '.join(logged)}; where only 2 seeds "
             f"were measured, as lambda_max, the band is their range); mean and {INTERVAL} for the "
             f"rest (a lower end below 0 not drawn on the log axis)" if logged else f"lines: mean, bands: {INTERVAL}")
    return finish(fig, "Depth study: trainability, sharpness and signal propagation vs depth",
                  f"{lines[0].upper() + lines[1:]}, {n_text([r['n'] for r in rows], 'seeds')} per point; train loss: each init at its "
                  f"best lr of the grid, the rest at init; black: the reference values the claims compare with"
                  + ("; red rings: best lr on the edge of the lr grid." if any(on_grid_edge(r) for r in rows) else "."))


def by_activation(rows: Sequence[Row]) -> list[tuple[str | None, list[Row]]]:
    """The rows per activation where the table has an ``activation`` column (one panel row each), else all in one group."""
    if not any("activation" in r for r in rows):
        return [(None, list(rows))]
    return [(activation, members) for (activation,), members in group_by(rows, "activation").items()]


def panel_title(activation: str | None, name: str) -> str:
    return name if activation is None else f"{activation}: {name}"


def optimizer_panels(rows: list[Row], **subplot_kw: Any) -> tuple[Figure, list[tuple[Any, str, list[Row]]]]:
    """One panel per optimizer (shared y) and, where the table has one, one row of panels per activation:
    ``(axes, panel title, its rows)`` each."""
    optimizers = list(dict.fromkeys(r["optim"] for r in rows))
    groups = by_activation(rows)
    fig, grid = new_figure(len(groups), len(optimizers), sharey=True, **subplot_kw)
    return fig, [(ax, panel_title(activation, optim), [r for r in subset if r["optim"] == optim])
                 for row_axes, (activation, subset) in zip(grid, groups, strict=True)
                 for ax, optim in zip(row_axes, optimizers, strict=True)]


def best_lr_text(best: dict[str, float]) -> str:
    """'best lr 0.316: every init' or 'best lr 0.001: spectral; 0.00178: xavier_normal, ...' (inits sharing an lr together)."""
    shared = group_by([{"init": init, "lr": f"{lr:.3g}"} for init, lr in best.items()], "lr")
    if len(shared) == 1:
        return f"best lr {next(iter(shared))[0]}: every init"
    return "best lr " + "; ".join(f"{lr}: {', '.join(r['init'] for r in members)}" for (lr,), members in shared.items())


@figure("lr_grid", study("lr_grid"))
def plot_lr_grid(data: Data) -> Figure:
    """Validation loss vs learning rate per init (colour) and budget (line style), one panel per optimizer (and activation
    where the table has one), the best lr (lowest mean at the longest budget) starred on each init's curve."""
    rows = data["rows"]
    finite = [r for r in rows if r.get("n") and isinstance(r.get("val_loss_mean"), float) and math.isfinite(r["val_loss_mean"])]
    budgets = sorted({r["epochs"] for r in rows})
    fig, panels = optimizer_panels(finite, width=6.0, height=4.2)
    for ax, title, subset in panels:
        for i, epochs in enumerate(reversed(budgets)):  # the longest budget solid; shorter ones (successive halving) dashed
            for (init,), group in group_by([r for r in subset if r["epochs"] == epochs], "init").items():
                group = sorted(group, key=lambda r: r["lr"])
                band(ax, [r["lr"] for r in group], *([r[c] for r in group] for c in ("val_loss_mean", "val_loss_low", "val_loss_high")),
                     init if i == 0 else "_nolegend_", **series_style(init) | {"linestyle": LINESTYLES[i % len(LINESTYLES)]})
        best = {init: min(group, key=lambda r: r["val_loss_mean"]) for (init,), group in
                group_by([r for r in subset if r["epochs"] == budgets[-1]], "init").items()}
        for size, (init, r) in zip(range(18, 0, -4), best.items()):  # largest first: stars on one spot stay visible, nested
            ax.plot(r["lr"], r["val_loss_mean"], marker="*", markersize=size, color=series_style(init)["color"], markeredgecolor="k",
                    markeredgewidth=0.6, linestyle="", label="_nolegend_", zorder=5)
        ax.set_xscale("log")
        ax.set_yscale("log")
        log_ticks(ax.xaxis)
        log_ticks(ax.yaxis)
        axes(ax, "learning rate", "validation loss", f"{title}\n{best_lr_text({i: r['lr'] for i, r in best.items()})}", legend=False)
    keys = [key_handle(f"{e:g} epochs", linestyle=LINESTYLES[i % len(LINESTYLES)]) for i, e in enumerate(reversed(budgets))]
    keys.append(key_handle(f"best lr at {budgets[-1]:g} epochs", marker="*", markersize=12, linestyle="", markerfacecolor="w"))
    side_legend(panels[len({r['optim'] for r in finite}) - 1][0], extra=keys)  # right of the top-right panel
    missing = len(rows) - len(finite)
    return finish(fig, "Learning-rate grid: validation loss vs lr",
                  f"Lines: mean, bands: {INTERVAL}, {n_text([r['n'] for r in finite], 'seeds')} per point; colour: the init, line "
                  f"style: the budget ({', '.join(f'{e:g}' for e in budgets)} epochs; successive halving takes only the best lrs of each "
                  f"budget to the next); stars: each init's best lr (lowest mean validation loss) at {budgets[-1]:g} epochs, nested "
                  f"where they coincide" + (f"; not drawn: {missing} (init, lr, budget) cells where every seed diverged." if missing
                                            else "."))


def _fairness_load(results: Path, params: dict) -> Data | None:
    loaded = study("lr_fairness")(results, params)
    low = claim_region(params, "spectral_vs_comparator")[0]
    return None if loaded is None else loaded | {"margin": None if low is None else abs(low)}


@figure("lr_fairness", _fairness_load)
def plot_lr_fairness(data: Data) -> Figure:
    """Test accuracy per init in the three lr settings (default, best of the grid, c / lambda_max), one panel per optimizer,
    at the longest budget (the budget figure shows the others)."""
    longest = max(r["epochs"] for r in data["rows"])
    rows = [r for r in data["rows"] if r["epochs"] == longest]
    settings = list(dict.fromkeys(r["setting"] for r in rows))
    inits = list(dict.fromkeys(r["init"] for r in rows))
    focus = [r for r in rows if r["setting"] != "curvature_lr"] or rows  # the settings the claims compare
    margin = data.get("margin") or 0.0
    bottom, top = min(r["test_acc_low"] for r in focus), max(r["test_acc_high"] for r in focus)
    pad = max(margin, 0.1 * (top - bottom))
    ylim = (bottom - pad, top + pad)
    fig, panels = optimizer_panels(rows)
    for ax, optim, subset in panels:
        ax.set_ylim(*ylim)
        for r in subset:  # points below the zoomed range: marked at its bottom edge with their value
            if r["test_acc_mean"] < ylim[0]:
                x = settings.index(r["setting"]) + dodge(inits.index(r["init"]), len(inits), 0.15)
                stagger = 9 * (inits.index(r["init"]) % 2)  # neighbouring labels on two heights: no overlap
                ax.annotate(f"{r['test_acc_mean']:.2f}", (x, ylim[0]), xytext=(0, 3 + stagger),
                            textcoords="offset points", fontsize=7,
                            ha="center", va="bottom", color=series_style(r["init"])["color"])
                ax.plot(x, ylim[0], marker="v", color=series_style(r["init"])["color"], linestyle="", clip_on=False)
        for i, init in enumerate(inits):
            group = sorted((r for r in subset if r["init"] == init), key=lambda r: settings.index(r["setting"]))
            x = np.array([settings.index(r["setting"]) for r in group]) + dodge(i, len(inits), 0.15)
            ax.errorbar(x, [r["test_acc_mean"] for r in group], yerr=yerr(group, "test_acc_mean", "test_acc_low", "test_acc_high"),
                        capsize=3, label=init, **series_style(init) | {"linestyle": ""})
            for xi, r in zip(x, group, strict=True):  # under the point; above it where the label would leave the panel
                below = r["test_acc_low"] - ylim[0] > 0.25 * (ylim[1] - ylim[0])
                ax.annotate(f"lr {r['lr']:.2g}", (xi, r["test_acc_low"] if below else r["test_acc_high"]), xytext=(0, -4 if below else 4),
                            textcoords="offset points", fontsize=7, rotation=90, ha="center", va="top" if below else "bottom")
        ax.set_xticks(range(len(settings)), [s.replace("_", " ") for s in settings])
        axes(ax, "lr setting", "test accuracy", optim, legend=False)
    side_legend(panels[-1][0])
    return finish(fig, "Fair lr comparison: test accuracy per init",
                  f"After {longest:g} epochs. Points: mean, error bars: {INTERVAL}, {n_text([r['n'] for r in rows], 'seeds')}; settings: the optimizer's default "
                  f"lr, the best lr of the grid (chosen on validation loss), lr = c / lambda_max(H_0); the lr under each point (above it near the bottom). y-range: "
                  f"the default and best-lr points with at least the non-inferiority margin ({margin:g}) as padding; triangles at the "
                  f"bottom edge: points below it, with their mean.")


# ---------------------------------------------------------------- random matrices and signal propagation


@figure("rmt_norms", demo("rmt", "norms.csv"))
def plot_rmt(data: Data) -> Figure:
    """||W|| / ((sqrt m + sqrt n) sigma) against sqrt m + sqrt n, square vs skewed shapes, per init."""
    shapes = [{"init": r["init"], "shape": f"{r['m']}x{r['n']}", "edge": math.sqrt(r["m"]) + math.sqrt(r["n"]), "square": r["m"] == r["n"],
               "ratio": r["ratio"]} for r in data["rows"]]
    stats = over_seeds(shapes, ("square", "init", "shape", "edge"), "ratio")
    inits = list(dict.fromkeys(r["init"] for r in stats))
    fig, ((ax,),) = new_figure(width=6.4, height=4.2)
    for (square, init), group in group_by(stats, "square", "init").items():
        group = sorted(group, key=lambda r: r["edge"])
        shift = 1 + dodge(inits.index(init), len(inits), 0.015)
        ax.errorbar([r["edge"] * shift for r in group], [r["mean"] for r in group], yerr=yerr(group), capsize=3,
                    label=f"{init}, {'square' if square else 'skewed'}", **series_style(init) | {"linestyle": "-" if square else "--"})
    for (shape, square), group in group_by(stats, "shape", "square").items():
        # square shapes labelled above their points, skewed ones below: no label sits on another
        ax.annotate(shape, (group[0]["edge"], max(r["high"] for r in group) if square else min(r["low"] for r in group)),
                    fontsize=7, ha="center", xytext=(0, 4 if square else -10), textcoords="offset points")
    ax.axhline(1.0, color="k", linewidth=0.8, linestyle=":", label="paper eq. (7): ratio 1")
    ax.set_xscale("log")
    log_ticks(ax.xaxis)
    ax.margins(y=0.15)
    axes(ax, "sqrt(m) + sqrt(n)", "||W||_2 / ((sqrt m + sqrt n) sigma)")
    return finish(fig, "Random-matrix norm check (paper Cor. 2, eq. 7)",
                  f"W drawn by the {', '.join(inits)} inits; solid: square shapes, dashed: skewed (labels m x n); points: mean, "
                  f"error bars: "
                  f"95% t-interval over independent draws, {n_text([r['n'] for r in stats], 'draws per shape and init')}; inits offset "
                  f"by 1.5% in x so their bars stay visible.")


@figure("variance_flow", demo("variance_flow", "layers.csv"))
def plot_variance_flow(data: Data) -> Figure:
    """Pre-activation and backpropagated-gradient variance per layer (mean and interval over seeds), per activation."""
    rows, settings = data["rows"], data["settings"]
    activations = list(dict.fromkeys(r["activation"] for r in rows))
    fig, grid = new_figure(len(activations), 2, height=3.4)
    counts = []
    for (forward, backward), activation in zip(grid, activations, strict=True):
        subset = [r for r in rows if r["activation"] == activation]
        for ax, column, ylabel, direction in ((forward, "preactivation_var", "Var(u^(k)), u^(k) = W^(k) z^(k-1) + b^(k)", "forward"),
                                               (backward, "gradient_var", "Var(dL/dz^(k)) (gradients)", "backward")):
            stats = over_seeds(subset, ("init", "layer"), column, log=True)
            counts += [r["n"] for r in stats]
            bands(ax, stats, "layer", "mean", "low", "high", "init")
            ax.set_yscale("log")
            names = layer_names(subset)
            ax.set_xticks(list(names), list(names.values()), rotation=45, fontsize=7)
            axes(ax, "weight layer", ylabel, f"{activation}: {direction}", legend=False)
    side_legend(grid[0][-1])
    return finish(fig, "Variance flow through a deep MLP",
                  f"Pre-activation variance Var(u^(k)) (the quantity of the variance claims) and backpropagated-gradient variance per "
                  f"layer at init, {settings['depth']} hidden layers of {settings['width']} units, over {settings['num_samples']} training "
                  f"samples; lines: geometric mean, bands: {LOG_INTERVAL}, {n_text(counts, 'seeds')}.")


@figure("deep_linear", demo("deep_linear", "norms.csv"))
def plot_deep_linear(data: Data) -> Figure:
    """Deep linear net: activation and gradient norm by layer for W = s I and random inits (geometric mean over draws)."""
    fig, ((left, right),) = new_figure(1, 2)
    scales = list(dict.fromkeys(r["case"] for r in data["rows"] if r.get("scale")))
    for (case,), group in group_by(data["rows"], "case").items():
        by_layer = group_by(group, "layer")
        layers = sorted(layer for (layer,) in by_layer)
        scale, depth = group[0].get("scale"), max(layers)
        style = ordinal_style(scales.index(case)) if scale else series_style(case)
        for ax, column in ((left, "activation_norm"), (right, "gradient_norm")):
            values = [tables.geometric_mean(r[column] for r in by_layer[(k,)]) for k in layers]
            if scale:
                anchor = values[1] if column == "activation_norm" else values[-1]
                power = [k - 1 if column == "activation_norm" else depth - k for k in layers]
                ax.plot(layers, [anchor * scale**p for p in power], color=style["color"], linewidth=6, alpha=0.4,
                        label=f"theory s = {scale:g}")
            ax.plot(layers, values, label=f"W = {case}" if scale else case, **style)
    for ax, ylabel, title in ((left, "mean ||z^(k)||", "Activations"), (right, "mean ||dL/dz^(k)||", "Backpropagated gradients")):
        ax.set_yscale("log")
        axes(ax, "layer k", ylabel, title, legend=False)
    side_legend(right)
    scale_of = {case: next(r["scale"] for r in data["rows"] if r["case"] == case) for case in scales}
    for case, scale in scale_of.items():  # the title's words, each checked on the activations of the W = s I case that shows it
        if scale != 1:
            claim(fig, "exploding" if scale > 1 else "vanishing", left, f"W = {case}")
    settings = data["settings"]
    scales_drawn = list(scale_of.values())
    words = [word for word, shown in (("exploding", any(s > 1 for s in scales_drawn)), ("vanishing", any(s < 1 for s in scales_drawn)))
             if shown]
    return finish(fig, f"{' and '.join(words).capitalize() or 'Norm-preserving'} signals in a deep linear net",
                  f"{settings['depth']} linear layers of width {settings['width']}: W = s I scales activations and gradients by s per "
                  f"layer (wide pale lines: theory s^(k-1) for activations, s^(L-k) for gradients, under the measured points they "
                  f"coincide with); orthogonal init preserves norms. Norms: mean "
                  f"over {settings['num_samples']} samples, geometric mean over n = {settings['trials']} draws per random init "
                  f"(W = s I: n = 1, deterministic).")


@figure("symmetry", demo("symmetry", "trace.csv"))
def plot_symmetry(data: Data) -> Figure:
    """Mean pairwise distance between hidden units' weight rows over SGD steps (colour: init, line style: layer), and the
    loss, per init; one legend outside the panels names each init with its final rank per layer."""
    fig, ((left, right),) = new_figure(1, 2)
    layers = {r["layer"]: r.get("name") or f"hidden{r['layer'] + 1}" for r in data["rows"]}
    ranks: dict[str, list[str]] = {}
    for (init, layer), group in group_by(data["rows"], "init", "layer").items():
        group = sorted(group, key=lambda r: r["step"])
        steps, style = [r["step"] for r in group], series_style(init)
        left.plot(steps, [r["distance"] for r in group], label=f"{init}, {layers[layer]}", **style | {"linestyle": LINESTYLES[layer % 4]})
        ranks.setdefault(init, []).append(f"{group[-1]['rank']}")
        if layer == min(layers):
            right.plot(steps, [r["loss"] for r in group], label=init, **style)
    axes(left, "SGD step", "mean pairwise row distance / mean row norm", "Hidden units' incoming weights", legend=False)
    axes(right, "SGD step", "training loss (cross-entropy)", "Training loss", legend=False)
    keys = [key_handle(f"{init}: final rank {' / '.join(r)}", **series_style(init)) for init, r in ranks.items()]
    keys += [key_handle(name, linestyle=LINESTYLES[layer % 4]) for layer, name in sorted(layers.items())]
    side_legend(right, extra=keys, series=False)
    settings = data["settings"]
    return finish(fig, "Zero / constant init never breaks symmetry",
                  f"n = 1 SGD run per init (seed {settings['seed']}, lr {settings['lr']}, batches of {settings['batch_size']}); distance "
                  f"between hidden units' incoming weight rows relative to their mean norm (0: identical units) and the loss on the "
                  f"training split; final rank of each layer's weight matrix ({' / '.join(layers[k] for k in sorted(layers))}) in the "
                  f"legend. Hollow markers: a series drawn on top of another.")


def _elbow_load(results: Path, params: dict) -> Data:
    return demo("variance_flow", "dead_relu.csv")(results, params) | {
        "elbows": [r["elbow"] for r in tables.load_demo_csv(results, "elbow", "elbows.csv")],
        "ks": tables.load_demo_json(results, "elbow", "summary.json")["ks_cauchy"]}


def identical_series(series: dict[str, list[float]]) -> list[list[str]]:
    """Names of series grouped by equal values (within float rounding), in first-seen order: one line per group."""
    groups: list[list[str]] = []
    for name, values in series.items():
        match = next((g for g in groups if np.allclose(series[g[0]], values, rtol=1e-9, atol=1e-12, equal_nan=True)), None)
        (match.append(name) if match else groups.append([name]))
    return groups


@figure("relu_elbow", _elbow_load)
def plot_elbow(data: Data, limit: float = 10.0) -> Figure:
    """Histogram of c = -b/w (w, b ~ N(0,1)) against the standard Cauchy pdf; per layer by init, one panel per bias (error
    bars, inits side by side), the share of (unit, sample) pairs where the ReLU is inactive: the bias claim's measure
    ("saturating the ReLU", params.yaml report); tables without it show units dead on every sample. Inits with
    identical fractions are one black line, not several on top."""
    biases = list(dict.fromkeys(r["bias"] for r in data["rows"]))
    fig, grid = new_figure(1, 1 + len(biases), width=4.6)
    left, panels = grid[0][0], grid[0][1:]
    c = np.asarray(data["elbows"], dtype=float)
    counts, edges = np.histogram(c, bins=np.linspace(-limit, limit, 81))
    left.bar(edges[:-1], counts / (len(c) * np.diff(edges)), width=np.diff(edges), align="edge", color="0.6",
             label=f"-b/w, n = {len(c)} samples")
    grid_x = np.linspace(-limit, limit, 400)
    left.plot(grid_x, 1.0 / (np.pi * (1.0 + grid_x**2)), "k-", label="standard Cauchy pdf")
    left.plot(grid_x, np.exp(-grid_x**2 / 2) / np.sqrt(2 * np.pi), "r:", label="standard normal pdf")
    left.set_ylim(top=0.55)  # room above the peak for the legend
    axes(left, "elbow c = -b/w", "density", f"ReLU elbow (KS distance to Cauchy {data['ks']:.4f})", loc="upper left")
    per_sample = all("inactive_fraction" in r for r in data["rows"])
    quantity, short = (("inactive_fraction", "inactive (unit, sample) pairs") if per_sample else ("dead_fraction", "dead units"))
    stats = over_seeds(data["rows"], ("init", "bias", "layer"), quantity)
    names = layer_names(data["rows"])
    for ax in panels[1:]:
        ax.sharey(panels[0])  # one y range: the biases compare at a glance
    for ax, bias in zip(panels, biases, strict=True):
        by_init = {init: sorted(g, key=lambda r: r["layer"])
                   for (init,), g in group_by([r for r in stats if r["bias"] == bias], "init").items()}
        groups = identical_series({init: [r["mean"] for r in g] for init, g in by_init.items()})
        for i, members in enumerate(groups):
            group = by_init[members[0]]
            style = series_style(members[0]) if len(members) == 1 else {"color": "k", "marker": "o", "linestyle": "-"}
            label = members[0] if len(members) == 1 else f"identical: {', '.join(members)}"
            x = np.array([r["layer"] for r in group]) + dodge(i, len(groups), 0.12)
            ax.errorbar(x, [r["mean"] for r in group], yerr=yerr(group), capsize=2, markersize=4, label=label, **style)
        ax.set_xticks(list(names), list(names.values()), rotation=45, fontsize=7)
        ax.set_ylim(bottom=0)
        axes(ax, "hidden layer (ReLU)", f"fraction of {short} at init", f"Inactive ReLUs, bias {bias}", legend=False)
    side_legend(panels[-1], *panels[:-1])
    measured = (f"share of (unit, sample) pairs where the ReLU is inactive over {data['settings']['num_samples']} training samples "
                f"(the bias claim's measure)" if per_sample else
                f"fraction of ReLU units inactive on every one of {data['settings']['num_samples']} training samples")
    return finish(fig, "ReLU elbow is Cauchy; inactive ReLUs by init and bias",
                  f"Left: histogram of -b/w for w, b ~ N(0,1) (n = {len(c)} samples, range +-{limit:g} shown) with the standard Cauchy "
                  f"density (and the normal for contrast). Middle and right: {measured}, one panel per bias init; points: mean, error bars: {INTERVAL}, "
                  f"{n_text([r['n'] for r in stats], 'seeds')}, inits side by side; 'identical': inits whose fractions agree to float "
                  f"rounding (zero bias: whether a unit is dead does not depend on the weights' scale), drawn once in black.")


# ---------------------------------------------------------------- curvature and optimization


def claim_region(params: dict, check: str) -> tuple[float | None, float | None]:
    """The region of the first ``params.yaml`` report claim with this ``check`` (the margin a figure shows); (None, None) if none."""
    spec = next((s for s in params.get("report", {}).get("claims", []) if s["check"] == check and "region" in s), None)
    return tuple(spec["region"]) if spec else (None, None)


def _curvature_load(results: Path, params: dict) -> Data:
    return demo("curvature", "blocks.csv")(results, params) | {"margin": claim_region(params, "rem2_gauss_newton_gap")[1]}


@figure("gauss_newton", _curvature_load)
def plot_gauss_newton(data: Data, exact: float = 1e-6) -> Figure:
    """Relative gap |lambda_max(H) - lambda_max(GN)| / lambda_max(H) per layer block and state, per activation;
    exact zeros (ReLU blocks, paper Remark 1) are marked so they do not read as missing bars."""
    gaps = [r | {"block": str(r["block"]), "gap": 100 * r["rel_diff"]} for r in data["rows"]]
    stats = over_seeds(gaps, ("activation", "state", "block"), "gap")
    activations = list(dict.fromkeys(r["activation"] for r in stats))
    fig, grid = new_figure(1, len(activations), sharey=True)
    for ax, activation in zip(grid[0], activations, strict=True):
        subset = [r for r in stats if r["activation"] == activation]
        blocks = list(dict.fromkeys(r["block"] for r in subset))
        states = list(dict.fromkeys(r["state"] for r in subset))
        width = 0.8 / len(states)
        for i, state in enumerate(states):
            cells = [next(r for r in subset if r["state"] == state and r["block"] == b) for b in blocks]
            x = np.arange(len(blocks)) + i * width
            color = ordinal_style(i)["color"]
            ax.bar(x, [r["mean"] for r in cells], width, yerr=yerr(cells), capsize=2, color=color, label=state)
            for xi in x[np.array([r["high"] for r in cells], dtype=float) <= 100 * exact]:
                ax.plot(xi, 0.0, linestyle="", marker="o", markersize=7, markerfacecolor="white", markeredgecolor=color, clip_on=False)
                ax.annotate("0 (exact)", (xi, 0), xytext=(0, 6), textcoords="offset points", rotation=90, ha="center", va="bottom",
                            fontsize=7)
        names = {str(k): name for k, name in layer_names([{"layer": int(b)} for b in blocks if b != "all"]).items()}
        ax.set_xticks(np.arange(len(blocks)) + width * (len(states) - 1) / 2, [names.get(b, b) for b in blocks])
        if activation != "relu" and data.get("margin") is not None:
            ax.axhline(100 * data["margin"], color="k", linestyle="--", linewidth=0.8, label=f"margin {100 * data['margin']:g}%")
        axes(ax, "parameter block", "|lambda_H - lambda_GN| / lambda_H (%)", f"{activation}: Hessian vs Gauss-Newton", legend=False)
        ax.set_ylim(bottom=0)  # a gap is >= 0: the interval's lower end is cut there
    side_legend(grid[0][-1])
    settings = data["settings"]
    return finish(fig, "Hessian vs Gauss-Newton per layer block",
                  f"Relative gap between lambda_max of the Hessian and of the Gauss-Newton matrix per layer block and for the whole "
                  f"network: "
                  f"at init, after {settings['train_steps']} GD steps and with weights scaled x{settings['far_scale']} ({settings['init']} "
                  f"init, {settings['num_samples']} samples); bars: mean, error bars: {INTERVAL} (cut at 0), "
                  f"{n_text([r['n'] for r in stats], 'seeds')}. Circles '0 (exact)': every seed below {100 * exact:g}% (ReLU blocks: "
                  f"H = GN, paper Remark 1)" + (f"; dashed: the {100 * data['margin']:g}% margin of the Remark 2 rows." if data.get("margin")
                                                 is not None else "."))


def _stability_load(results: Path, params: dict) -> Data:
    return demo("lr_stability", "runs.csv")(results, params) | {"region": claim_region(params, "gamma_star_empirical")}


def peak_over_start(row: Row, cap: float) -> float:
    """The largest full-batch loss after step 0 over the initial loss (<= 1: the loss never rose above its start), capped;
    a diverged run (inf / nan) counts as the cap."""
    peak = row.get("max_loss_after_start", row.get("max_loss"))
    ratio = peak / row["loss_0"] if isinstance(peak, float) and isinstance(row.get("loss_0"), float) and row["loss_0"] > 0 else math.inf
    return min(ratio, cap) if math.isfinite(ratio) else cap


@figure("lr_stability", _stability_load)
def plot_lr_stability(data: Data, cap: float = 1e3) -> Figure:
    """Peak loss over the initial loss of short full-batch GD runs vs lr * lambda_0, per init (the gamma* rows' quantity:
    a run is safe when it stays at or below 1), with 1/lambda, 2/lambda and the rows' region marked."""
    stats = over_seeds([r | {"ratio": peak_over_start(r, cap)} for r in data["rows"]], ("init", "factor"), "ratio", log=True)
    fig, ((ax,),) = new_figure(width=6.4, height=4.2)
    bands(ax, stats, "factor", "mean", "low", "high", "init")
    low, high = data.get("region", (None, None))
    if low is not None and high is not None:
        ax.axvspan(low, high, color="0.85", zorder=0, label=f"region of the gamma* rows: c* in [{low:.3g}, {high:.3g}]")
    ax.axvline(1.0, color="k", linestyle="--", linewidth=0.8, label="lr = 1/lambda_0 (paper gamma*)")
    ax.axvline(2.0, color="r", linestyle="--", linewidth=0.8, label="lr = 2/lambda_0 (quadratic GD limit)")
    ax.axhline(1.0, color="grey", linestyle=":", linewidth=0.8, label="peak = initial loss")
    ax.set_xscale("log")
    ax.set_yscale("log")
    axes(ax, "c = lr * lambda_max(H at init)", f"largest loss of the run / initial loss (capped at {cap:g})")
    settings = data["settings"]
    return finish(fig, "Largest step that never raises the loss vs curvature at init",
                  f"Full-batch GD, {settings['steps']} steps with lr = c / lambda_0 on {settings['num_samples']} training samples; lines: "
                  f"geometric mean, bands: {LOG_INTERVAL}, {n_text([r['n'] for r in stats], 'seeds')} (lambda_0 measured per seed); at or "
                  f"below the dotted line the loss never rose above its start; diverged runs (inf / nan) count as the cap {cap:g}.")


@figure("edge_of_stability", demo("edge_of_stability", "trace.csv"))
def plot_edge_of_stability(data: Data) -> Figure:
    """lambda_max * lr / 2 along full-batch GD (the claim's quantity: 1 is the stability limit), per lr factor."""
    measured = [r | {"relative": r["lambda_max"] * r["lr"] / 2} for r in data["rows"] if r["lambda_max"] is not None]
    stats = over_seeds(measured, ("factor", "step"), "relative", log=True)
    fig, ((ax,),) = new_figure(width=6.4, height=4.2)
    for i, ((factor,), group) in enumerate(group_by(stats, "factor").items()):
        group = sorted(group, key=lambda r: r["step"])
        band(ax, [r["step"] for r in group], [r["mean"] for r in group], [r["low"] for r in group], [r["high"] for r in group],
             f"lr = {factor:g} / lambda_0", **ordinal_style(i))
    ax.axhline(1.0, color="k", linestyle="--", linewidth=0.8, label="stability limit lambda_max = 2/lr")
    ax.set_yscale("log")
    axes(ax, "GD step", "lambda_max(H) * lr / 2")
    settings = data["settings"]
    return finish(fig, "Sharpness vs 2/lr along gradient descent",
                  f"Full-batch GD ({settings['init']} init, {settings['num_samples']} samples) with lr = c / lambda_0, lambda_max measured "
                  f"every {settings['every']} steps; lines: geometric mean, bands: {LOG_INTERVAL}, {n_text([r['n'] for r in stats], 'seeds')}.")


DRAW_KEYS = ("draw", "seed", "trial")  # a column that numbers independent random draws of a demo, where it has several


def _canyon_load(results: Path, params: dict) -> Data:
    return demo("canyon", "loss.csv")(results, params) | {"paths": tables.load_demo_json(results, "canyon", "paths.json")}


@figure("canyon", _canyon_load)
def plot_canyon(data: Data) -> Figure:
    """Momentum vs GD on an ill-conditioned quadratic: paths over the loss contours (equal axes), and loss vs step."""
    paths, loss_rows = data["paths"], data["rows"]
    fig, ((left, right),) = new_figure(1, 2, height=4.2)
    a, minimizer = np.asarray(paths["A"]), np.asarray(paths["minimizer"])
    points = np.concatenate([np.asarray(p) for p in paths["paths"].values()] + [minimizer[None]])
    centre, half = (points.min(axis=0) + points.max(axis=0)) / 2, 0.6 * (points.max(axis=0) - points.min(axis=0)).max()
    xs, ys = (np.linspace(c - half, c + half, 200) for c in centre)  # a square window: equal axes show the true shape
    grid = np.stack(np.meshgrid(xs, ys), axis=-1) - minimizer
    values = 0.5 * np.einsum("...i,ij,...j->...", grid, a, grid)
    losses = [r[name] for r in loss_rows for name in paths["paths"] if r.get(name) is not None]
    top = max(losses) if losses else values.max()
    left.contour(xs, ys, values, levels=np.geomspace(top * 1e-4, top, 12), colors="0.6", linewidths=0.6)
    for name, path in paths["paths"].items():
        path = np.asarray(path)
        left.plot(path[:, 0], path[:, 1], label=f"{name} ({len(path) - 1} steps)",
                  **series_style(name) | {"markersize": 2, "linewidth": 0.8})
    left.plot(*minimizer, "k*", markersize=12, linestyle="", label="minimizer x*")
    left.set_aspect("equal")
    axes(left, "x_1", "x_2", "Paths on the loss contours (equal axes)")
    draw = next((key for key in DRAW_KEYS if any(key in r for r in loss_rows)), None)
    counts = []
    for name in paths["paths"]:
        kept = [r for r in loss_rows if isinstance(r.get(name), float) and r[name] > 0]
        if draw:  # several random draws (starting points): geometric mean and log interval per step
            stats = sorted(over_seeds(kept, ("step",), name, log=True), key=lambda r: r["step"])
            counts += [r["n"] for r in stats]
            band(right, [r["step"] for r in stats], *([r[c] for r in stats] for c in ("mean", "low", "high")), name,
                 **series_style(name) | {"marker": ""})
        else:
            right.plot([r["step"] for r in kept], [r[name] for r in kept], label=name, **series_style(name) | {"marker": ""})
    right.set_yscale("log")
    axes(right, "step", "loss f(x) - f(x*)", "Convergence")
    settings = data["settings"]
    runs = (f"lines: geometric mean over random draws ({draw}), bands: {LOG_INTERVAL}, {n_text(counts, 'draws')}; paths: as drawn"
            if draw else "n = 1 deterministic run each, nothing to band")
    return finish(fig, "Momentum vs gradient descent on an ill-conditioned quadratic",
                  f"Best-tuned GD and heavy-ball momentum ({runs}; the fastest of a grid of "
                  f"{settings['num_lrs']} learning rates x momenta {settings['alphas']}) on a 2-D quadratic with condition number "
                  f"{settings['condition']}; grey: loss contours.")


# ---------------------------------------------------------------- budgets and Hessian spectra


def _budget_load(results: Path, params: dict) -> Data | None:
    """The lr study's test accuracy per setting and budget, and the depth study's train loss per budget (best lr)."""
    fairness, depth = Path(results) / "study" / "lr_fairness.csv", Path(results) / "study" / "depth" / "budgets.csv"
    if not fairness.exists() or not depth.exists():
        return None
    trained = [r for r in read_csv(depth) if r["lr"] == r["best_lr"]]
    return {"rows": read_csv(fairness), "depth": over_seeds(trained, ("activation", "depth", "init", "epochs"), "train_loss", log=True)}


@figure("budgets", _budget_load)
def plot_budgets(data: Data) -> Figure:
    """Each training claim's quantity against the budget: test accuracy per init, optimizer and lr setting (lr study);
    train loss per init at the deepest trained depth (depth study, each init at its selected lr)."""
    rows, depth = data["rows"], data["depth"]
    settings = list(dict.fromkeys(r["setting"] for r in rows))
    lr_rows = [(panel_title(activation, optim), [r for r in subset if r["optim"] == optim]) for activation, subset in by_activation(rows)
               for optim in dict.fromkeys(r["optim"] for r in subset)]
    activations = list(dict.fromkeys(r["activation"] for r in depth))
    fig, grid = new_figure(len(lr_rows) + 1, max(len(settings), len(activations)), height=3.0)
    for row_axes, (title, subset) in zip(grid, lr_rows, strict=False):
        for ax, setting in zip(row_axes, settings, strict=False):
            bands(ax, [r for r in subset if r["setting"] == setting], "epochs", "test_acc_mean", "test_acc_low", "test_acc_high", "init")
            ax.set_xscale("log")
            log_ticks(ax.xaxis)
            axes(ax, "budget (epochs)", "test accuracy", f"{title}: {setting.replace('_', ' ')}", legend=False)
    deepest = max(r["depth"] for r in depth)
    for ax, activation in zip(grid[-1], activations, strict=False):
        bands(ax, [r for r in depth if r["activation"] == activation and r["depth"] == deepest], "epochs", "mean", "low", "high", "init")
        ax.set_xscale("log")
        ax.set_yscale("log")
        log_ticks(ax.xaxis)
        axes(ax, "budget (epochs)", "train loss (nats)", f"depth {deepest}, {activation}: selected lr", legend=False)
    for ax in grid[-1][len(activations):]:
        ax.set_visible(False)
    side_legend(grid[0][-1])
    return finish(fig, "Training claims against the budget",
                  f"Top rows: test accuracy of the lr study per optimizer and lr setting (lines: mean, bands: {INTERVAL}); bottom row: "
                  f"the depth study's train loss at {deepest} hidden layers, each init at the lr selected on validation loss at the "
                  f"longest budget (earlier budgets of the same runs; lines: geometric mean, bands: {LOG_INTERVAL}); "
                  f"{n_text([r['n'] for r in rows + depth], 'seeds')}.")


def _spectra_load(results: Path, params: dict) -> Data | None:
    folder = Path(results) / "spectra"
    if not (folder / "density.csv").exists():
        return None
    return {"rows": read_csv(folder / "density.csv"), "summary": read_csv(folder / "spectra.csv"), "settings": params["spectra"]}


@figure("hessian_spectrum", _spectra_load)
def plot_hessian_spectrum(data: Data, floor: float = 1e-7) -> Figure:
    """The Hessian's eigenvalue density per init (one panel each, one shared eigenvalue range), at init and after training,
    log density (PyHessian's view); each panel's summary numbers in a legend below it, off the data."""
    summary = {(r["init"], r["state"]): r for r in data["summary"]}
    inits = list(dict.fromkeys(r["init"] for r in data["rows"]))
    fig, grid = new_figure(1, len(inits), sharex=True, sharey=True, height=4.6)
    for ax, init in zip(grid[0], inits, strict=True):
        for i, ((state,), group) in enumerate(group_by([r for r in data["rows"] if r["init"] == init], "state").items()):
            s = summary[(init, state)]
            label = (f"{state}: lambda_max {s['lambda_max']:.3g}, lambda_min {s['lambda_min']:.3g}\n"
                     f"trace {s['trace']:.3g} +- {s['trace_se']:.2g}")
            ax.plot([r["eigenvalue"] for r in group], [max(r["density"], floor) for r in group], label=label,
                    **series_style(init) | {"linestyle": LINESTYLES[i], "marker": ""})
        ax.set_yscale("log")
        ax.set_ylim(bottom=floor)
        axes(ax, "eigenvalue", "density (log)", f"{init} (lr {summary[(init, 'init')]['lr']:.3g})", loc="upper center",
             bbox_to_anchor=(0.5, -0.2), ncol=1)
    settings = data["settings"]
    return finish(fig, "Hessian eigenvalue density at init and after training",
                  f"Stochastic Lanczos quadrature of the Hessian of the mean loss over {settings['samples']} training samples "
                  f"({settings['density_probes']} probes x {settings['density_steps']} Lanczos steps, Gaussian broadening; densities "
                  f"below {floor:g} drawn at {floor:g}); solid: at init, dashed: after training with {settings['optim']} at the init's "
                  f"best lr of the lr study for its longest budget (seed {settings['seed']}, n = 1 run per init). lambda_max / lambda_min "
                  f"certified to a relative residual {settings['tol']:g}; trace: Hutchinson, +- its standard error.")


def _sharpness_load(results: Path, params: dict) -> Data | None:
    path = Path(results) / "spectra" / "sharpness.csv"
    return {"rows": read_csv(path), "settings": params["spectra"]} if path.exists() else None


TREND_WORDS = {1: "rises", -1: "falls", 0: "stays flat"}  # what a series' first-to-last change is called (figure_checks.trend)


@figure("sharpening", _sharpness_load)
def plot_sharpening(data: Data) -> Figure:
    """lambda_max(H) along training per init against its stability edge 2/lr; the title states the trend the series show
    (rises: progressive sharpening, falls, stays flat), computed from them and checked by figure_checks."""
    rows = data["rows"]
    fig, ((ax,),) = new_figure(width=7.0, height=4.4)
    series = {init: sorted(group, key=lambda r: r["step"]) for (init,), group in group_by(rows, "init").items()}
    for init, group in series.items():
        ax.plot([r["step"] for r in group], [r["lambda_max"] for r in group], label=f"{init} (lr {group[0]['lr']:.3g})",
                **series_style(init) | {"markersize": 3})
    for (edge,), owners in group_by([{"edge": g[0]["two_over_lr"], "init": i} for i, g in series.items()], "edge").items():
        shared = len(owners) == len(series) > 1  # one edge for every init (same lr): one black line, not several on top
        ax.axhline(edge, color="k" if shared else series_style(owners[0]["init"])["color"], linestyle="--", linewidth=0.9,
                   label=f"2 / lr = {edge:.3g} ({'every init' if shared else owners[0]['init']})")
    ax.set_yscale("log")
    log_ticks(ax.yaxis)
    trends = {init: trend([r["lambda_max"] for r in group]) for init, group in series.items()}
    ratios = [group[0]["lambda_max"] / group[-1]["lambda_max"] for group in series.values()]
    common = set(trends.values())
    if common == {-1}:
        title = f"Sharpness falls along training: final lambda_max {min(ratios):.3g}-{max(ratios):.3g}x below its start (vs 2/lr)"
    elif common == {1}:
        title = "Progressive sharpening: lambda_max rises along training (vs 2/lr)"
    else:
        title = "lambda_max along training vs 2/lr: " + ", ".join(f"{i} {TREND_WORDS[t]}" for i, t in trends.items())
    axes(ax, "SGD step", "lambda_max(H)", legend=False)
    side_legend(ax)
    for init, direction in trends.items():
        for word in ({1: ("sharpening", "rises"), -1: ("falls",)}.get(direction, ())):
            if word in title:
                claim(fig, word, ax, f"{init} (lr {series[init][0]['lr']:.3g})")
    settings = data["settings"]
    return finish(fig, title,
                  f"lambda_max of the Hessian of the mean loss over {settings['samples']} training samples every {settings['every']} "
                  f"steps of minibatch {settings['optim']} at each init's best lr (seed {settings['seed']}, n = 1 run per init); dashed: "
                  f"the stability edge 2/lr of gradient descent on the quadratic model.")


# ---------------------------------------------------------------- stage


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", default="reports", help="report folder (default: reports)")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    tasks = [(name, Path(args.results), Path(args.out), params) for name in FIGURES]
    index = parallel_map(draw, tasks, params.get("workers", 1))
    write_json(Path(args.out) / "figures.json", [entry for entry in index if entry is not None])


def draw(task: tuple[str, Path, Path, dict]) -> Row | None:
    """One figure: drawn from its inputs, saved, checked, its data table written; its index entry (None while its
    inputs are not written yet). Figures are independent, so the stage draws them in ``workers`` processes."""
    name, results, out, params = task
    data = FIGURES[name].load(results, params)
    if data is None:
        print(f"figures: {name} skipped (its inputs are not written yet)", flush=True)
        return None
    drawn = FIGURES[name].plot(data)
    title, caption = describe(drawn)
    save_figure(drawn, out / "figures" / f"{name}.png")
    for defect in check_figure(drawn):  # after saving: the PNG's bytes do not depend on the check
        print(f"figures: warning: {name}: {defect}", file=sys.stderr, flush=True)
    write_csv(out / "plots" / f"{name}.csv", data["rows"])
    print(f"figures: {out / 'figures' / name}.png", flush=True)
    return {"name": name, "file": f"figures/{name}.png", "table": f"plots/{name}.csv", "title": title, "caption": caption}


if __name__ == "__main__":
    main()
