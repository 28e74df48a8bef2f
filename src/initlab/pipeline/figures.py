"""DVC stage ``figures``: every PNG of the report, and the small CSV tables behind ``dvc plots``.

    python -m initlab.pipeline.figures     # results/ -> reports/figures/*.png, reports/plots/*.csv

Each ``plot_*`` function takes tidy rows (see :mod:`initlab.pipeline.tables`) and returns a
``matplotlib.figure.Figure`` with labelled axes (Agg backend, no global pyplot state), so it
can be tested on synthetic rows. ``reports/figures.json`` lists every figure with its title and
caption for the report (kept beside the folder, so that ``dvc plots`` finds only images in it).
"""

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from initlab.pipeline import tables  # noqa: E402
from initlab.pipeline.common import load_params, stage_parser, write_csv, write_json  # noqa: E402
from initlab.pipeline.tables import Row, group_by, summarize  # noqa: E402

LINESTYLES = ("-", "--", ":", "-.")


def _colors(names: Sequence[str]) -> dict[str, Any]:
    cmap = matplotlib.colormaps["tab10"]
    return {name: cmap(i % 10) for i, name in enumerate(dict.fromkeys(names))}


def _label(ax, x: str, y: str, title: str | None = None) -> None:
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)


def _finite(values: Sequence[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


# ---------------------------------------------------------------- random matrices, Jacobians, Hessian blocks


def plot_rmt(rows: Sequence[Row]) -> Figure:
    """||W|| / ((sqrt m + sqrt n) sigma) against sqrt m + sqrt n, square vs skewed shapes, per init."""
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    stats = summarize(rows, ("m", "n", "init"), ("ratio",))
    markers = {init: marker for init, marker in zip(dict.fromkeys(r["init"] for r in stats), "osD^v")}
    for (square, init), group in group_by(({**r, "square": r["m"] == r["n"]} for r in stats), "square", "init").items():
        group = sorted(group, key=lambda r: math.sqrt(r["m"]) + math.sqrt(r["n"]))
        x = [math.sqrt(r["m"]) + math.sqrt(r["n"]) for r in group]
        ax.errorbar(x, [r["ratio"] for r in group], yerr=[r["ratio_std"] for r in group], marker=markers[init],
                    linestyle="-" if square else "--", capsize=3,
                    label=f"{init}, {'square' if square else 'skewed'}")
        for r, xi in zip(group, x, strict=True):
            ax.annotate(f"{r['m']}x{r['n']}", (xi, r["ratio"]), fontsize=6, xytext=(2, -8), textcoords="offset points")
    ax.axhline(1.0, color="k", linewidth=0.8, linestyle=":")
    ax.set_xscale("log")
    _label(ax, "sqrt(m) + sqrt(n)", "||W||_2 / ((sqrt m + sqrt n) sigma)", "Random-matrix norm vs paper eq. (7)")
    ax.legend(fontsize=7)
    return fig


def plot_layer_curvature(rows: Sequence[Row]) -> Figure:
    """Per weight layer at init: ||J^(k)|| and lambda_max of the block H_w(k), mean +- std over seeds, per init."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    axes = fig.subplots(1, 2)
    stats = summarize(rows, ("init", "layer"), ("jacobian_norm", "lambda_max"))
    colors = _colors([r["init"] for r in stats])
    for (init,), group in group_by(stats, "init").items():
        group = sorted(group, key=lambda r: r["layer"])
        layers = [r["layer"] for r in group]
        for ax, column in zip(axes, ("jacobian_norm", "lambda_max"), strict=True):
            ax.errorbar(layers, [r[column] for r in group], yerr=[r[f"{column}_std"] for r in group], marker="o",
                        capsize=3, color=colors[init], label=init)
    axes[0].axhline(1.0, color="k", linewidth=0.8, linestyle=":", label="paper Cor. 1 target")
    _label(axes[0], "weight layer k", "||J^(k)||_2 (mean over samples)", "Layer Jacobian norm at init")
    _label(axes[1], "weight layer k", "lambda_max(H_w(k))", "Block Hessian norm at init")
    axes[1].set_yscale("log")
    for ax in axes:
        ax.legend(fontsize=7)
        ax.set_xticks(sorted({r["layer"] for r in stats}))
    return fig


def plot_theorem2(rows: Sequence[Row]) -> Figure:
    """Measured lambda_max(H_w(k)) vs the Theorem-2 bound as written and corrected, per layer and init."""
    inits = list(dict.fromkeys(r["init"] for r in rows))
    fig = Figure(figsize=(3.6 * max(len(inits), 1), 3.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, max(len(inits), 1), sharey=True))
    columns = (("lambda_max", "measured lambda_max", "o-"), ("bound_as_written", "bound as written (eq. 6)", "s--"),
               ("bound_corrected", "corrected bound", "^:"))
    for ax, init in zip(axes, inits, strict=False):
        stats = sorted(summarize([r for r in rows if r["init"] == init], ("layer",), [c for c, _, _ in columns]),
                       key=lambda r: r["layer"])
        layers = [r["layer"] for r in stats]
        for column, label, style in columns:
            ax.plot(layers, [r[column] for r in stats], style, label=label)
        ax.set_yscale("log")
        ax.set_xticks(layers)
        _label(ax, "weight layer k", "||H_w(k)|| and bounds", init)
    axes[0].legend(fontsize=7)
    return fig


def plot_hessian_density(rows: Sequence[Row]) -> Figure:
    """Hessian spectral density (SLQ) at init and after training, one curve per init (and optimizer)."""
    states = list(dict.fromkeys(r["state"] for r in rows))
    fig = Figure(figsize=(5 * max(len(states), 1), 3.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, max(len(states), 1)))
    colors = _colors([r["series"] for r in rows])
    for ax, state in zip(axes, states, strict=False):
        for (series,), group in group_by([r for r in rows if r["state"] == state], "series").items():
            group = sorted(group, key=lambda r: r["eigenvalue"])
            ax.plot([r["eigenvalue"] for r in group], [r["density"] for r in group], color=colors[series], label=series)
        ax.set_yscale("log")
        _label(ax, "Hessian eigenvalue", "spectral density", f"Hessian spectrum: {state}")
        ax.legend(fontsize=6)
    return fig


# ---------------------------------------------------------------- signal propagation


def plot_variance_flow(rows: Sequence[Row]) -> Figure:
    """Activation and backpropagated-gradient variance per layer, one row of panels per activation."""
    activations = list(dict.fromkeys(r["activation"] for r in rows))
    fig = Figure(figsize=(10, 3.4 * max(len(activations), 1)), layout="constrained")
    axes = np.atleast_2d(fig.subplots(max(len(activations), 1), 2))
    colors = _colors([r["init"] for r in rows])
    for row_axes, activation in zip(axes, activations, strict=False):
        for (init,), group in group_by([r for r in rows if r["activation"] == activation], "init").items():
            group = sorted(group, key=lambda r: r["layer"])
            layers = [r["layer"] for r in group]
            row_axes[0].plot(layers, [r["activation_var"] for r in group], "o-", color=colors[init], label=init)
            row_axes[1].plot(layers, [r["gradient_var"] for r in group], "o-", color=colors[init], label=init)
        _label(row_axes[0], "layer k", "Var(z^(k)) (activations)", f"{activation}: forward")
        _label(row_axes[1], "layer k", "Var(dL/dz^(k)) (gradients)", f"{activation}: backward")
        for ax in row_axes:
            ax.set_yscale("log")
            ax.legend(fontsize=7)
    return fig


def plot_deep_linear(rows: Sequence[Row]) -> Figure:
    """Deep linear net: activation and gradient norm by layer for W = s I and random inits (geometric mean over trials)."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    axes = fig.subplots(1, 2)
    colors = _colors([r["case"] for r in rows])
    for (case,), group in group_by(rows, "case").items():
        by_layer = group_by(group, "layer")
        layers = sorted(layer for (layer,) in by_layer)
        for ax, column in zip(axes, ("activation_norm", "gradient_norm"), strict=True):
            values = [tables.geometric_mean(r[column] for r in by_layer[(k,)]) for k in layers]
            ax.plot(layers, values, "o-", color=colors[case], label=f"W = {case}" if group[0].get("scale") else case)
            scale = group[0].get("scale")
            if scale:
                depth = max(layers)
                anchor = values[1] if column == "activation_norm" else values[-1]
                reference = [anchor * scale ** (k - 1) if column == "activation_norm" else anchor * scale ** (depth - k)
                             for k in layers]
                ax.plot(layers, reference, ":", color=colors[case], linewidth=0.8)
    _label(axes[0], "layer k", "mean ||z^(k)||", "Activations (dotted: s^k)")
    _label(axes[1], "layer k", "mean ||dL/dz^(k)||", "Backpropagated gradients (dotted: s^(L-k))")
    for ax in axes:
        ax.set_yscale("log")
        ax.legend(fontsize=7)
    return fig


def plot_symmetry(rows: Sequence[Row]) -> Figure:
    """Mean pairwise distance between hidden units' weight rows over SGD steps, and the loss, per init."""
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    axes = fig.subplots(1, 2)
    colors = _colors([r["init"] for r in rows])
    for (init, layer), group in group_by(rows, "init", "layer").items():
        group = sorted(group, key=lambda r: r["step"])
        steps = [r["step"] for r in group]
        rank = group[-1]["rank"]
        axes[0].plot(steps, [r["distance"] for r in group], LINESTYLES[layer % 4], color=colors[init],
                     label=f"{init}, hidden layer {layer} (rank {rank})")
        if layer == 0:
            axes[1].plot(steps, [r["loss"] for r in group], color=colors[init], label=init)
    _label(axes[0], "SGD step", "mean pairwise row distance / mean row norm", "Hidden units' incoming weights")
    _label(axes[1], "SGD step", "training loss (cross-entropy)", "Training loss")
    for ax in axes:
        ax.legend(fontsize=7)
    return fig


def plot_elbow(elbows: Sequence[float], dead_rows: Sequence[Row], ks: float | None = None, limit: float = 10.0) -> Figure:
    """Histogram of c = -b/w (w, b ~ N(0,1)) against the standard Cauchy pdf; dead-ReLU fraction by init."""
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    axes = fig.subplots(1, 2)
    c = np.asarray(elbows, dtype=float)
    bins = np.linspace(-limit, limit, 81)
    counts, edges = np.histogram(c, bins=bins)
    axes[0].bar(edges[:-1], counts / (len(c) * np.diff(edges)), width=np.diff(edges), align="edge", alpha=0.5,
                label=f"-b/w, {len(c)} samples")
    grid = np.linspace(-limit, limit, 400)
    axes[0].plot(grid, 1.0 / (np.pi * (1.0 + grid**2)), "k-", label="standard Cauchy pdf")
    axes[0].plot(grid, np.exp(-grid**2 / 2) / np.sqrt(2 * np.pi), "r:", label="standard normal pdf")
    _label(axes[0], "elbow c = -b/w", "density", "ReLU elbow" + (f" (KS distance {ks:.4f})" if ks is not None else ""))
    axes[0].legend(fontsize=7)
    colors = _colors([r["init"] for r in dead_rows])
    for (init, bias), group in group_by(dead_rows, "init", "bias").items():
        group = sorted(group, key=lambda r: r["layer"])
        axes[1].plot([r["layer"] for r in group], [r["dead_fraction"] for r in group], "o" + ("-" if bias == "zeros" else "--"),
                     color=colors[init], label=f"{init}, bias {bias}")
    _label(axes[1], "hidden layer k (ReLU)", "fraction of dead units at init", "Dead ReLUs by init")
    if dead_rows:
        axes[1].legend(fontsize=6)
    return fig


# ---------------------------------------------------------------- training


def plot_training_curves(curves: Sequence[Row]) -> Figure:
    """Train loss and validation accuracy per epoch, mean +- std over seeds, per init x optimizer."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    axes = fig.subplots(1, 2)
    colors = _colors([r["init"] for r in curves])
    styles = {optim: LINESTYLES[i % 4] for i, optim in enumerate(dict.fromkeys(r["optim"] for r in curves))}
    for (init, optim), group in group_by(curves, "init", "optim").items():
        group = sorted(group, key=lambda r: r["epoch"])
        epochs = np.array([r["epoch"] for r in group]) + 1
        for ax, column in zip(axes, ("train_loss", "val_acc"), strict=True):
            mean, std = _finite([r[column] for r in group]), _finite([r[f"{column}_std"] for r in group])
            ax.plot(epochs, mean, styles[optim], color=colors[init], label=f"{init} / {optim}")
            ax.fill_between(epochs, mean - std, mean + std, color=colors[init], alpha=0.15)
    _label(axes[0], "epoch", "training loss (cross-entropy)", "Training loss (mean +- std over seeds)")
    _label(axes[1], "epoch", "validation accuracy", "Validation accuracy (mean +- std over seeds)")
    axes[0].set_yscale("log")
    for ax in axes:
        ax.legend(fontsize=7)
    return fig


def plot_lr_stability(rows: Sequence[Row]) -> Figure:
    """Final / initial loss of short full-batch GD runs vs lr * lambda_0, per init, with 1/lambda and 2/lambda marked."""
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    colors = _colors([r["init"] for r in rows])
    for (init,), group in group_by(rows, "init").items():
        group = sorted(group, key=lambda r: r["factor"])
        ratios = [r["final_over_initial"] if r["final_over_initial"] is not None else np.nan for r in group]
        ratios = [min(v, 1e3) if math.isfinite(v) else 1e3 for v in ratios]
        ax.plot([r["factor"] for r in group], ratios, "o-", color=colors[init],
                label=f"{init} (lambda_0 = {group[0]['lambda_0']:.3g})")
    ax.axvline(1.0, color="k", linestyle="--", linewidth=0.8, label="lr = 1/lambda_0 (paper gamma*)")
    ax.axvline(2.0, color="r", linestyle="--", linewidth=0.8, label="lr = 2/lambda_0 (quadratic GD limit)")
    ax.axhline(1.0, color="grey", linestyle=":", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    _label(ax, "lr * lambda_max(H at init)", "final loss / initial loss (capped at 1e3)", "Max stable learning rate (full-batch GD)")
    ax.legend(fontsize=7)
    return fig


def plot_edge_of_stability(demo_rows: Sequence[Row], train_rows: Sequence[Row] = ()) -> Figure:
    """lambda_max along GD vs 2/lr (demo), and along the SGD training runs (curvature callback) when logged."""
    panels = 2 if train_rows else 1
    fig = Figure(figsize=(5.2 * panels, 4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, panels))
    colors = _colors([f"{r['factor']:g}" for r in demo_rows])
    for (factor,), group in group_by(demo_rows, "factor").items():
        group = sorted((r for r in group if r["lambda_max"] is not None), key=lambda r: r["step"])
        color = colors[f"{factor:g}"]
        axes[0].plot([r["step"] for r in group], [r["lambda_max"] for r in group], "o-", color=color,
                     label=f"lr = {factor:g}/lambda_0")
        axes[0].axhline(group[0]["two_over_lr"], color=color, linestyle="--", linewidth=0.8, label=f"2/lr (lr = {factor:g}/lambda_0)")
    _label(axes[0], "GD step", "lambda_max(H)", "Full-batch GD: sharpness vs 2/lr")
    axes[0].legend(fontsize=7)
    if train_rows:
        train_colors = _colors([r["init"] for r in train_rows])
        for (init, optim, seed), group in group_by(train_rows, "init", "optim", "seed").items():
            group = sorted(group, key=lambda r: r["step"])
            axes[1].plot([r["step"] for r in group], [r["lambda_max"] for r in group], LINESTYLES[seed % 4 if isinstance(seed, int) else 0],
                         color=train_colors[init], label=f"{init} / {optim} / seed {seed}")
        edge = train_rows[0]["two_over_lr"]
        if edge is not None:
            axes[1].axhline(edge, color="k", linestyle="--", linewidth=0.8, label=f"2/lr = {edge:.3g}")
        _label(axes[1], "SGD step", "lambda_max(H) on a fixed batch", "Training runs (curvature callback)")
        axes[1].legend(fontsize=6)
    return fig


def plot_canyon(paths: dict, loss_rows: Sequence[Row]) -> Figure:
    """Momentum vs GD on an ill-conditioned quadratic: paths over the loss contours, and loss vs step."""
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    axes = fig.subplots(1, 2)
    a, minimizer = np.asarray(paths["A"]), np.asarray(paths["minimizer"])
    all_points = np.concatenate([np.asarray(p) for p in paths["paths"].values()])
    low, high = all_points.min(axis=0), all_points.max(axis=0)
    pad = 0.15 * (high - low).max()
    xs = np.linspace(low[0] - pad, high[0] + pad, 200)
    ys = np.linspace(low[1] - pad, high[1] + pad, 200)
    grid = np.stack(np.meshgrid(xs, ys), axis=-1) - minimizer
    values = 0.5 * np.einsum("...i,ij,...j->...", grid, a, grid)
    path_losses = [r[name] for r in loss_rows for name in paths["paths"] if r.get(name) is not None]
    top = max(path_losses) if path_losses else values.max()
    axes[0].contour(xs, ys, values, levels=np.geomspace(top * 1e-4, top, 12), colors="0.55", linewidths=0.6)
    for name, path in paths["paths"].items():
        path = np.asarray(path)
        axes[0].plot(path[:, 0], path[:, 1], ".-", markersize=2, linewidth=0.8, label=f"{name} ({len(path) - 1} steps)")
    axes[0].plot(*minimizer, "k*", markersize=10)
    axes[0].set_aspect("equal")
    _label(axes[0], "x_1", "x_2", "Paths on the loss contours")
    axes[0].legend(fontsize=7)
    for name in paths["paths"]:
        steps = [r["step"] for r in loss_rows if r.get(name) is not None]
        axes[1].plot(steps, [r[name] for r in loss_rows if r.get(name) is not None], label=name)
    axes[1].set_yscale("log")
    _label(axes[1], "step", "loss f(x) - f(x*)", "Convergence")
    axes[1].legend(fontsize=7)
    return fig


def plot_gauss_newton(rows: Sequence[Row]) -> Figure:
    """Relative gap |lambda_max(H) - lambda_max(GN)| / lambda_max(H) per layer block and state, per activation."""
    activations = list(dict.fromkeys(r["activation"] for r in rows))
    fig = Figure(figsize=(5 * max(len(activations), 1), 3.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, max(len(activations), 1), sharey=True))
    for ax, activation in zip(axes, activations, strict=False):
        subset = [r for r in rows if r["activation"] == activation]
        blocks = list(dict.fromkeys(str(r["block"]) for r in subset))
        states = list(dict.fromkeys(r["state"] for r in subset))
        width = 0.8 / max(len(states), 1)
        for i, state in enumerate(states):
            gaps = {str(r["block"]): 100 * r["rel_diff"] for r in subset if r["state"] == state}
            ax.bar(np.arange(len(blocks)) + i * width, [gaps.get(b, np.nan) for b in blocks], width, label=state)
        ax.set_xticks(np.arange(len(blocks)) + width * (len(states) - 1) / 2, [f"layer {b}" if b != "all" else "all" for b in blocks])
        _label(ax, "parameter block", "|lambda_H - lambda_GN| / lambda_H (%)", f"{activation}: Hessian vs Gauss-Newton")
        ax.legend(fontsize=7)
    return fig


# ---------------------------------------------------------------- stage


FIGURES: dict[str, tuple[str, str]] = {
    "rmt_norms": ("Random-matrix norm check (paper Cor. 2, eq. 7)",
                  "||W||_2 / ((sqrt m + sqrt n) sigma) for W drawn by the spectral inits (normal and uniform), square and "
                  "skewed shapes from 64 to 2048, mean +- std over trials; 1 = the paper's prediction."),
    "layer_curvature": ("Per-layer Jacobian norm and block Hessian at init",
                        "||J^(k)|| (mean over samples) and lambda_max of the block H_w(k) for every weight layer of the "
                        "pipeline's model at initialization, mean +- std over seeds, per init scheme."),
    "theorem2": ("Theorem 2: bound vs measurement",
                 "Measured lambda_max(H_w(k)) against the bound of paper eq. (6) as written and the corrected bound "
                 "(squared Jacobian products, input norm and loss curvature included), per layer, at init."),
    "variance_flow": ("Variance flow through a deep MLP",
                      "Variance of the activations z^(k) and of the backpropagated gradients dL/dz^(k) per layer at init, "
                      "for tanh and ReLU, per init scheme."),
    "deep_linear": ("Exploding and vanishing signals in a deep linear net",
                    "10 linear layers of width 2: W = 1.5 I and 0.5 I grow / shrink activations and gradients like s^k; "
                    "orthogonal init preserves norms; the paper's spectral sigma on 2x2 layers vanishes."),
    "symmetry": ("Zero / constant init never breaks symmetry",
                 "Mean pairwise distance between hidden units' incoming weight rows (relative) during SGD, with the "
                 "final numerical rank of W in the legend, and the training loss."),
    "relu_elbow": ("ReLU elbow is Cauchy; dead ReLUs by init",
                   "Left: histogram of -b/w for w, b ~ N(0,1) with the standard Cauchy density (and the normal for contrast). "
                   "Right: fraction of ReLU units inactive on every sample of a batch at init, per layer, init and bias scheme."),
    "training_curves": ("Training curves per init x optimizer",
                        "Training loss and validation accuracy per epoch, mean +- std over seeds."),
    "lr_stability": ("Max stable learning rate vs curvature at init",
                     "Final/initial loss of short full-batch GD runs against lr * lambda_max(H_0); dashed: the paper's "
                     "gamma* = 1/lambda and the quadratic-model limit 2/lambda."),
    "hessian_density": ("Hessian spectral density at init and after training",
                        "Stochastic Lanczos quadrature estimate of the Hessian eigenvalue density per init (and optimizer)."),
    "edge_of_stability": ("Sharpness vs 2/lr",
                          "lambda_max of the Hessian along full-batch GD for two learning rates, with their 2/lr limits; "
                          "right: lambda_max logged during the SGD training runs."),
    "canyon": ("Momentum vs gradient descent on an ill-conditioned quadratic",
               "Best-tuned GD and heavy-ball momentum on a 2-D quadratic with condition number 100: paths and loss."),
    "gauss_newton": ("Hessian vs Gauss-Newton per layer block",
                     "Relative gap between lambda_max of the Hessian and of the Gauss-Newton matrix, per layer block and for "
                     "the whole network, at init, after GD training and with weights scaled far from init."),
}


def series(row: Row, *keys: str) -> str:
    return "/".join(str(row[key]) for key in keys)


def build(results: Path, params: dict) -> dict[str, tuple[Figure, list[Row]]]:
    """Every figure with the tidy table registered for ``dvc plots`` (rows with a ``series`` column)."""
    from initlab.pipeline import analysis_tables

    inits, optimizers, seeds = params["inits"], params["optimizers"], params["seeds"]
    out: dict[str, tuple[Figure, list[Row]]] = {}

    rmt = tables.load_demo_csv(results, "rmt", "norms.csv")
    rmt_table = [{"series": f"{r['init']}/{'square' if r['m'] == r['n'] else 'skewed'}", **r}
                 for r in summarize(rmt, ("m", "n", "init"), ("ratio",))]
    for r in rmt_table:
        r["sqrt_m_plus_sqrt_n"] = math.sqrt(r["m"]) + math.sqrt(r["n"])
    out["rmt_norms"] = (plot_rmt(rmt), sorted(rmt_table, key=lambda r: (r["series"], r["sqrt_m_plus_sqrt_n"])))

    layers = analysis_tables.load_layer_rows(results / "init_analysis", inits, seeds)
    out["layer_curvature"] = (plot_layer_curvature(layers),
                              [{"series": r["init"], **r} for r in summarize(layers, ("init", "layer"), ("jacobian_norm", "lambda_max"))])
    out["theorem2"] = (plot_theorem2(layers),
                       [{"series": r["init"], **r} for r in summarize(layers, ("init", "layer"), ("lambda_max", "ratio_as_written", "ratio_corrected"))])
    density = analysis_tables.load_density_rows(results, inits, optimizers, seeds)
    out["hessian_density"] = (plot_hessian_density(density), [{**r, "series": f"{r['state']}/{r['series']}"} for r in density])

    flow = tables.load_demo_csv(results, "variance_flow", "layers.csv")
    out["variance_flow"] = (plot_variance_flow(flow), [{"series": series(r, "activation", "init"), **r} for r in flow])
    deep = tables.load_demo_csv(results, "deep_linear", "norms.csv")
    deep_table = [{"series": case, "layer": layer, **{c: tables.geometric_mean(r[c] for r in group) for c in ("activation_norm", "gradient_norm")}}
                  for (case, layer), group in group_by(deep, "case", "layer").items()]
    out["deep_linear"] = (plot_deep_linear(deep), deep_table)
    symmetry = tables.load_demo_csv(results, "symmetry", "trace.csv")
    out["symmetry"] = (plot_symmetry(symmetry), [{"series": series(r, "init", "layer"), **r} for r in symmetry])
    elbows = [r["elbow"] for r in tables.load_demo_csv(results, "elbow", "elbows.csv")]
    ks = tables.load_demo_json(results, "elbow", "summary.json")["ks_cauchy"]
    dead = tables.load_demo_csv(results, "variance_flow", "dead_relu.csv")
    out["relu_elbow"] = (plot_elbow(elbows, dead, ks), [{"series": series(r, "init", "bias"), **r} for r in dead])

    runs = tables.load_training_runs(results / "train", inits, optimizers, seeds)
    curves = tables.training_curves(runs)
    out["training_curves"] = (plot_training_curves(curves), [{"series": series(r, "init", "optim"), **r} for r in curves])
    stability = tables.load_demo_csv(results, "lr_stability", "runs.csv")
    out["lr_stability"] = (plot_lr_stability(stability), [{"series": r["init"], **r} for r in stability])
    eos = tables.load_demo_csv(results, "edge_of_stability", "trace.csv")
    train_curvature = [r for r in tables.curvature_traces(runs) if r["optim"] == "sgd"]
    out["edge_of_stability"] = (plot_edge_of_stability(eos, train_curvature),
                                [{"series": f"lr={r['factor']:g}/lambda_0", **r} for r in eos if r["lambda_max"] is not None])
    canyon_loss = tables.load_demo_csv(results, "canyon", "loss.csv")
    out["canyon"] = (plot_canyon(tables.load_demo_json(results, "canyon", "paths.json"), canyon_loss),
                     [{"series": name, "step": r["step"], "loss": r[name]} for r in canyon_loss for name in ("gd", "momentum")
                      if r.get(name) is not None])
    blocks = tables.load_demo_csv(results, "curvature", "blocks.csv")
    out["gauss_newton"] = (plot_gauss_newton(blocks), [{"series": series(r, "activation", "state"), **r} for r in blocks])
    return out


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", default="reports", help="report folder (default: reports)")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    figures_dir, plots_dir = Path(args.out) / "figures", Path(args.out) / "plots"
    figures_dir.mkdir(parents=True, exist_ok=True)
    index = []
    for name, (figure, table) in build(Path(args.results), params).items():
        title, caption = FIGURES[name]
        figure.suptitle(title, fontsize=11)
        figure.savefig(figures_dir / f"{name}.png", dpi=110)
        write_csv(plots_dir / f"{name}.csv", table)
        index.append({"name": name, "file": f"figures/{name}.png", "table": f"plots/{name}.csv", "title": title, "caption": caption})
        print(f"figures: {figures_dir / name}.png", flush=True)
    write_json(Path(args.out) / "figures.json", index)


if __name__ == "__main__":
    main()
