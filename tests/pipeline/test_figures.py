"""Every registered figure drawn from small synthetic inputs: labelled axes, the legend entries a reader
needs, n in the caption, one colour per init across figures, no defect figure_checks finds (overlapping text, legend over
data, small text, empty panel, invisible colour, a title word its data contradicts), and byte-identical PNGs from the same
rows; figure_checks itself fails on planted defects; the published results' figures pass (slow)."""

import math

import matplotlib.colors as mcolors
import numpy as np
import pytest
from matplotlib.figure import Figure

from initlab.config import PROJECT_ROOT
from initlab.pipeline import figure_checks, figures, style
from initlab.pipeline.common import load_params

INITS = ("spectral", "xavier_normal")


SEEDS = (1, 2, 3)
PARAMS = load_params(PROJECT_ROOT / "params.yaml")


def _settings(demo):
    """The demo's settings in the repo's params.yaml: the captions read their n from there."""
    return (PARAMS.get("demos", {}) | PARAMS.get("data_demos", {}))[demo]


def _interval(mean, spread=0.1):
    return {"n": len(SEEDS), "mean": mean, "low": mean * (1 - spread), "high": mean * (1 + spread)}


def _prefixed(prefix, mean):
    return {f"{prefix}{key}": value for key, value in _interval(mean).items() if key != "n"}


# name -> (inputs, legend entries that must be there)
SYNTHETIC = {
    "depth": ({"rows": [{"init": init, "activation": act, "depth": d, "quantity": q} | _interval(v * (1 + 2 * (init == "spectral")))
                        for init in INITS for act in ("tanh", "relu") for d in (2, 4, 8)
                        for q, v in (("train_loss", 0.1 * d), ("jacobian_norm_product", 1.3),
                                     ("variance_ratio", 0.6 ** (d - 1)))]},
              [*INITS, "gain 1/2 per layer: (1/2)^(L-1)", "every ||J^(k)|| = 1"]),
    "lr_grid": ({"rows": [{"init": init, "optim": optim, "lr": lr, "epochs": epochs, "n": 3}
                          | _prefixed("val_loss_", (math.log10(lr) + 2 + (init == "spectral")) ** 2 + 0.1 / epochs)
                          | _prefixed("val_acc_", 0.9) for init in INITS for optim in ("sgd", "adam") for epochs in (1.0, 10.0)
                          for lr in ((1e-4, 1e-3, 1e-2, 1e-1) if epochs == 1 else (1e-3, 1e-2))]},  # halving: 2 lrs go on
                ["spectral", "xavier_normal", "10 epochs", "1 epochs", "best lr at 10 epochs"]),
    "lr_fairness": ({"rows": [{"init": init, "optim": optim, "setting": setting, "epochs": epochs, "lr": 0.1, "n": 3}
                              | _prefixed("test_acc_", acc * epochs / 10) | _prefixed("test_loss_", 1 - acc)
                              for init, acc in (("spectral", 0.9), ("xavier_normal", 0.8)) for optim in ("sgd", "adam")
                              for setting in ("default", "best_lr", "curvature_lr") for epochs in (1.0, 10.0)]},
                    list(INITS)),
    "budgets": ({"rows": [{"init": init, "optim": optim, "setting": setting, "epochs": epochs, "lr": 0.1, "n": 3}
                          | _prefixed("test_acc_", acc * (1 - 0.1 / epochs)) | _prefixed("test_loss_", 1 - acc)
                          for init, acc in (("spectral", 0.9), ("xavier_normal", 0.8)) for optim in ("sgd", "adam")
                          for setting in ("default", "best_lr", "curvature_lr") for epochs in (1.0, 3.0, 10.0)],
                 "depth": [{"init": init, "activation": act, "depth": 16, "epochs": epochs} | _interval(2.0 / epochs)
                           for init in INITS for act in ("tanh", "relu") for epochs in (1.0, 3.0, 10.0)]},
                list(INITS)),
    "hessian_spectrum": ({"settings": PARAMS["spectra"],
                          "summary": [{"init": init, "state": state, "lr": 0.3, "lambda_max": 5.0, "lambda_min": -1.0, "trace": 80.0,
                                       "trace_se": 2.0} for init in INITS for state in ("init", "trained")],
                          "rows": [{"init": init, "state": state, "eigenvalue": t, "density": math.exp(-t * t) / (1 + (state == "init"))}
                                   for init in INITS for state in ("init", "trained") for t in np.linspace(-1, 5, 30)]},
                         ["init: lambda_max 5, lambda_min -1\ntrace 80 +- 2", "trained: lambda_max 5, lambda_min -1\ntrace 80 +- 2"]),
    "sharpening": ({"settings": PARAMS["spectra"],
                    "rows": [{"init": init, "lr": 0.3, "step": s, "lambda_max": 2.0 + s / 10, "two_over_lr": 2 / 0.3}
                             for init in INITS for s in (0, 27, 54)]},
                   ["spectral (lr 0.3)", "2 / lr = 6.67 (every init)"]),
    "rmt_norms": ({"rows": [{"m": m, "n": n, "init": init, "trial": t, "ratio": 0.98 + 0.01 * t}
                            for m, n in ((64, 64), (256, 64)) for init in ("spectral", "spectral_uniform") for t in range(2)]},
                  ["spectral, square", "spectral_uniform, skewed", "paper eq. (7): ratio 1"]),
    "variance_flow": ({"settings": _settings("variance_flow"), "rows": [
        {"seed": seed, "activation": act, "init": init, "layer": k, "preactivation_var": (0.5 + (init == "spectral")) ** k * seed,
         "activation_var": 0.3 ** k, "gradient_var": (2.0 + (init == "spectral")) ** k}
        for seed in SEEDS for act in ("tanh", "relu") for init in INITS for k in range(4)]}, list(INITS)),
    "deep_linear": ({"settings": _settings("deep_linear"), "rows": [
        {"case": case, "scale": scale, "trial": 0, "layer": k, "activation_norm": (scale or 1.0) ** k,
         "gradient_norm": (scale or 1.0) ** (10 - k)}
        for case, scale in (("1.5 I", 1.5), ("orthogonal", None)) for k in range(11)]},
        ["theory s = 1.5", "W = 1.5 I", "orthogonal"]),
    "symmetry": ({"settings": _settings("symmetry"), "rows": [
        {"init": init, "layer": layer, "step": s, "distance": d, "rank": 1, "loss": 2.0 / (s + 1) + d}
        for init, d in (("zeros", 0.0), ("constant", 0.0), ("spectral", 1.4)) for layer in (0, 1) for s in (0, 10, 20)]},
        ["zeros: final rank 1 / 1", "constant: final rank 1 / 1", "hidden1", "hidden2"]),
    "relu_elbow": ({"settings": _settings("variance_flow"), "elbows": np.random.default_rng(0).standard_cauchy(2000).tolist(), "ks": 0.01,
                    "rows": [{"seed": seed, "init": init, "bias": bias, "layer": k, "dead_fraction": 0.01 * k * seed * (bias == "zeros"),
                              "inactive_fraction": 0.5 - 0.02 * (k + 1) * (bias == "relu_0.1")}
                             for seed in SEEDS for init in INITS for bias in ("zeros", "relu_0.1") for k in range(3)]},
                   ["standard Cauchy pdf", "-b/w, n = 2000 samples", "identical: spectral, xavier_normal"]),
    "gauss_newton": ({"settings": _settings("curvature"), "rows": [
        {"seed": seed, "activation": act, "state": state, "block": block,
         "rel_diff": 0.0 if act == "relu" and block != "all" else 0.01 * seed}
        for seed in SEEDS for act in ("relu", "tanh") for state in ("init", "trained") for block in (0, 1, "all")]},
        ["init", "trained"]),
    "lr_stability": ({"settings": _settings("lr_stability"), "rows": [
        {"seed": seed, "init": init, "factor": f, "lambda_0": 2.0 + seed, "loss_0": 2.3, "max_loss": 2.3 * r * (1 + (init == "spectral"))}
        for seed in SEEDS for init in INITS for f, r in ((0.5, 0.1 * seed), (2.0, math.inf), (4.0, math.nan))],
        "region": (0.7071, 1.4142)},
        ["spectral", "xavier_normal", "lr = 1/lambda_0 (paper gamma*)", "region of the gamma* rows: c* in [0.707, 1.41]"]),
    "edge_of_stability": ({"settings": _settings("edge_of_stability"), "rows": [
        {"seed": seed, "init": "spectral", "factor": f, "lr": f / (2 + seed), "step": s, "lambda_max": lam and lam * (2 + seed),
         "two_over_lr": 2 * (2 + seed) / f} for seed in SEEDS for f in (1.0, 1.9) for s, lam in ((0, 1.0), (5, None), (10, 1.5 * f))]},
        ["lr = 1.9 / lambda_0", "lr = 1 / lambda_0", "stability limit lambda_max = 2/lr"]),
    "canyon": ({"settings": _settings("canyon"),
                "paths": {"A": [[1.0, 0.0], [0.0, 100.0]], "minimizer": [0.0, 0.0],
                          "paths": {"gd": [[1.0, 1.0], [0.5, -0.9], [0.1, 0.0]], "momentum": [[1.0, 1.0], [0.2, 0.1], [0.0, 0.0]]}},
                "rows": [{"step": 0, "gd": 50.0, "momentum": 50.0}, {"step": 1, "gd": 10.0, "momentum": 1.0},
                         {"step": 2, "gd": 1.0, "momentum": None}]},
               ["minimizer x*", "gd (2 steps)", "momentum"]),
}


def _legend_texts(fig: Figure) -> list[str]:
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend()] + fig.legends
    return [text.get_text() for legend in legends for text in legend.get_texts()]


def test_every_registered_figure_has_synthetic_inputs():
    assert set(SYNTHETIC) == set(figures.FIGURES)


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_figure_labels_legend_caption_colours_and_stable_bytes(name, tmp_path):
    data, legend = SYNTHETIC[name]
    fig = figures.FIGURES[name].plot(data)
    drawn = [ax for ax in fig.axes if ax.has_data()]
    assert drawn, "nothing drawn"
    for ax in drawn:
        assert ax.get_xlabel() and ax.get_ylabel(), f"unlabelled axes in {name}"
    missing = [entry for entry in legend if entry not in _legend_texts(fig)]
    assert not missing, f"{name}: legend lacks {missing}; has {_legend_texts(fig)}"
    title, caption = style.describe(fig)
    assert title and "n = " in caption, f"{name}: the caption must state n: {caption!r}"
    for line in (line for ax in fig.axes for line in ax.get_lines()):  # one colour per init in every figure
        init = line.get_label().split(",")[0].split(" ")[0]
        if init in INITS and line.get_linewidth() < 3:
            assert mcolors.same_color(line.get_color(), style.series_style(init)["color"]), f"{name}: {line.get_label()}"
    first = style.save_figure(fig, tmp_path / "a.png", dpi=40)
    assert figure_checks.check_figure(fig) == [], name  # after saving: a draw before savefig shifts the layout's bytes
    second = style.save_figure(figures.FIGURES[name].plot(data), tmp_path / "b.png", dpi=40)
    assert first.stat().st_size > 2000 and first.read_bytes() == second.read_bytes()


def test_variance_flow_plots_the_preactivation_variance():
    fig = figures.FIGURES["variance_flow"].plot(SYNTHETIC["variance_flow"][0])
    forward = fig.axes[0]
    assert "Var(u^(k))" in forward.get_ylabel()
    assert np.allclose(forward.get_lines()[0].get_ydata(), [6 ** (1 / 3) * 1.5 ** k for k in range(4)])  # geometric mean, seeds 1-3


def test_coinciding_series_are_marked_and_distinct_ones_are_not():
    fig, ((ax,),) = style.new_figure()
    ax.plot([0, 1, 2], [1.0, 2.0, 3.0], label="a", marker="o")
    ax.plot([0, 1, 2], [1.0, 2.0, 3.0 + 1e-9], label="b", marker="o")
    ax.plot([0, 1, 2], [1.0, 2.5, 3.0], label="c", marker="o")
    assert style.mark_coinciding(ax) == [("b", "a")]
    assert ax.get_lines()[1].get_label() == "b (= a)" and ax.get_lines()[1].get_markerfacecolor() == "none"
    assert ax.get_lines()[2].get_label() == "c"


def test_gauss_newton_marks_exact_zero_bars():
    fig = figures.FIGURES["gauss_newton"].plot(SYNTHETIC["gauss_newton"][0])
    relu, tanh = fig.axes
    assert sum(text.get_text() == "0 (exact)" for text in relu.texts) == 4  # 2 layer blocks x 2 states
    assert not any(text.get_text() == "0 (exact)" for text in tanh.texts)


def test_canyon_has_equal_axes_and_the_minimizer_in_the_legend():
    fig = figures.FIGURES["canyon"].plot(SYNTHETIC["canyon"][0])
    assert fig.axes[0].get_aspect() == 1.0


def test_study_figures_are_skipped_until_their_csv_exists(tmp_path):
    assert figures.FIGURES["depth"].load(tmp_path, {}) is None
    (tmp_path / "study").mkdir()
    (tmp_path / "study" / "lr_grid.csv").write_text("init,optim,lr,n,val_loss_mean\nspectral,sgd,0.1,3,0.5\n")
    assert figures.FIGURES["lr_grid"].load(tmp_path, {})["rows"] == [
        {"init": "spectral", "optim": "sgd", "lr": 0.1, "n": 3, "val_loss_mean": 0.5}]


def test_series_style_is_fixed_per_name_and_distinct_per_init():
    assert style.series_style("spectral").items() >= style.SERIES_STYLE["spectral"].items()
    assert style.series_style("gd") == style.series_style("sgd")
    colours = [style.SERIES_STYLE[name]["color"] for name in ("xavier_normal", "kaiming_normal", "spectral", "orthogonal", "lecun")]
    assert len(set(colours)) == len(colours)


def test_a_wide_band_does_not_squash_its_line():
    fig, ((ax,),) = style.new_figure()
    style.band(ax, [0, 1, 2], [1.0, 2.0, 3.0], [-1e6, 1.5, -math.inf], [1e6, 2.5, math.inf], "x")
    low, high = ax.get_ylim()
    assert -1.0 < low < 1.0 and 3.0 < high < 5.0


def test_layers_are_named_as_the_models_name_them():
    fig = figures.FIGURES["gauss_newton"].plot(SYNTHETIC["gauss_newton"][0] | {"margin": 0.05})
    ticks = [t.get_text() for t in fig.axes[1].get_xticklabels()]
    assert ticks == ["hidden1", "output", "all"]
    assert any(line.get_label() == "margin 5%" for line in fig.axes[1].get_lines())
    rows = [{"layer": k, "name": f"hidden{k + 1}"} for k in range(3)]
    assert figures.layer_names(rows) == {0: "hidden1", 1: "hidden2", 2: "hidden3"}
    assert figures.layer_names([{"layer": k} for k in range(3)]) == {0: "hidden1", 1: "hidden2", 2: "output"}


def test_lr_fairness_zooms_to_the_claims_settings_and_marks_points_below():
    rows = [{"init": init, "optim": "sgd", "setting": setting, "epochs": 10, "lr": 0.1, "n": 3}
            | _prefixed("test_acc_", 0.13 if setting == "curvature_lr" and init == "spectral" else acc) | _prefixed("test_loss_", 0.3)
            for init, acc in (("spectral", 0.91), ("xavier_normal", 0.92)) for setting in ("default", "best_lr", "curvature_lr")]
    for r in rows:
        r["test_acc_low"], r["test_acc_high"] = r["test_acc_mean"] - 0.005, r["test_acc_mean"] + 0.005
    fig = figures.FIGURES["lr_fairness"].plot({"rows": rows, "margin": 0.01})
    low, high = fig.axes[0].get_ylim()
    assert 0.89 < low < 0.9 and 0.925 < high < 0.94  # the 0.01 margin is a visible fraction of the axis
    assert any(text.get_text() == "0.13" for text in fig.axes[0].texts)


# ---------------------------------------------------------------- figure_checks on planted defects


def _clean_figure():
    fig, ((ax,),) = style.new_figure()
    ax.plot([1, 2, 3], [1.0, 2.0, 3.0], label="rising", color="#0072B2", marker="o")
    style.axes(ax, "x", "y", "panel", legend=False)
    style.side_legend(ax)
    return fig, ax


def test_a_clean_figure_has_no_defects():
    assert figure_checks.check_figure(_clean_figure()[0]) == []


def test_planted_overlapping_text_fails():
    fig, ax = _clean_figure()
    ax.annotate("planted label", (2, 2), fontsize=9)
    ax.annotate("planted label too", (2, 2), fontsize=9)
    defects = figure_checks.check_figure(fig)
    assert any(d.startswith("overlapping_text") and "planted label" in d for d in defects), defects


def test_planted_overlapping_tick_labels_fail():
    fig, ax = _clean_figure()
    ax.set_xticks([1, 1.1, 1.2], ["a long tick label", "another long label", "a third long label"])
    assert any("x tick label" in d for d in figure_checks.check_figure(fig))


def test_legend_over_data_small_text_light_colour_and_empty_panel_fail():
    fig, grid = style.new_figure(1, 2)
    ax, empty = grid[0]
    ax.plot(np.linspace(0, 1, 50), np.linspace(0, 1, 50), color="#F0E442", label="pale yellow line")  # contrast 1.3 on white
    ax.legend(loc="center", fontsize=6)
    empty.plot([0, 1], [math.nan, math.nan], label="all nan")
    rules = {d.split(":")[0] for d in figure_checks.check_figure(fig)}
    assert {"legend_over_data", "small_text", "too_light", "empty_panel"} <= rules


def test_a_title_word_its_series_contradicts_fails():
    fig, ax = _clean_figure()
    fig.suptitle("Progressive sharpening")
    assert any("no series is claimed" in d for d in figure_checks.check_figure(fig))  # an unchecked trend word
    ax.plot([1, 2, 3], [30.0, 10.0, 3.0], label="falling")
    figure_checks.claim(fig, "sharpening", ax, "falling")
    assert any("'falling' falls" in d for d in figure_checks.check_figure(fig))
    fig, ax = _clean_figure()
    fig.suptitle("Progressive sharpening")
    figure_checks.claim(fig, "sharpening", ax, "rising")
    assert figure_checks.check_figure(fig) == []


def test_sharpening_title_says_what_its_series_do():
    data = SYNTHETIC["sharpening"][0]
    falling = data | {"rows": [r | {"lambda_max": 20.0 / (1 + r["step"])} for r in data["rows"]]}
    fig = figures.FIGURES["sharpening"].plot(falling)
    assert "falls" in fig.get_suptitle() and "sharpening" not in fig.get_suptitle().lower()
    assert figure_checks.check_figure(fig) == []
    assert "sharpening" in figures.FIGURES["sharpening"].plot(data).get_suptitle().lower()  # rising: progressive sharpening


def test_lr_study_with_an_activation_column_gets_a_row_per_activation():
    rows = [r | {"activation": act} for act in ("tanh", "relu") for r in SYNTHETIC["lr_grid"][0]["rows"]]
    fig = figures.FIGURES["lr_grid"].plot({"rows": rows})
    assert sorted(ax.get_title().split("\n")[0] for ax in fig.axes) == ["relu: adam", "relu: sgd", "tanh: adam", "tanh: sgd"]
    assert figure_checks.check_figure(fig) == []
    rows = [r | {"activation": act} for act in ("tanh", "relu") for r in SYNTHETIC["lr_fairness"][0]["rows"]]
    fig = figures.FIGURES["lr_fairness"].plot({"rows": rows})
    assert sorted(ax.get_title() for ax in fig.axes) == ["relu: adam", "relu: sgd", "tanh: adam", "tanh: sgd"]


def test_depth_shows_every_trained_depth_and_hides_a_panel_without_rows():
    rows = [r | {"grid_edge": "high" if r["depth"] == 8 else "none"} for r in SYNTHETIC["depth"][0]["rows"]
            if not (r["quantity"] == "train_loss" and r["activation"] == "relu")]
    fig = figures.FIGURES["depth"].plot({"rows": rows})
    assert any(line.get_label() == "best lr on the grid's edge" for ax in fig.axes for line in ax.get_lines())
    tanh_loss = next(ax for ax in fig.axes if ax.get_title() == "tanh: train_loss")
    assert sorted({x for line in tanh_loss.get_lines() for x in line.get_xdata()}) == [2, 4, 8]
    assert not any(ax.get_visible() and ax.get_title() == "relu: train_loss" for ax in fig.axes)
    assert figure_checks.check_figure(fig) == []


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(figures.FIGURES))
def test_the_published_results_figures_pass_the_checks(name):
    """Every figure of the pipeline drawn from results/ (after `dvc pull`) as the figures stage draws it."""
    if not (PROJECT_ROOT / "results" / "demos").exists():
        pytest.skip("results/ not pulled (dvc pull)")
    data = figures.FIGURES[name].load(PROJECT_ROOT / "results", PARAMS)
    if data is None:
        pytest.skip(f"{name}: its inputs are not in results/")
    assert figure_checks.check_figure(figures.FIGURES[name].plot(data)) == []


def test_canyon_with_random_draws_bands_the_loss_over_draws():
    data = SYNTHETIC["canyon"][0]
    rows = [{"draw": d, "step": s, "gd": 50.0 / (1 + s) * (1 + 0.1 * d), "momentum": 50.0 / (1 + s) ** 2 * (1 + 0.1 * d)}
            for d in range(3) for s in range(4)]
    fig = figures.FIGURES["canyon"].plot(data | {"rows": rows})
    right = fig.axes[1]
    assert len(right.get_lines()) == 2 and right.collections  # one line per method, with its band
    assert "n = 3 draws" in style.describe(fig)[1]
    assert figure_checks.check_figure(fig) == []


def test_relu_panels_show_the_bias_claims_measure_and_fall_back_to_dead_units():
    """The bias claim reads the per-sample inactive share (params.yaml report): the figure shows the same quantity."""
    rows = SYNTHETIC["relu_elbow"][0]["rows"]
    labels = lambda fig: {ax.get_ylabel() for ax in fig.axes[1:] if ax.get_visible()}  # noqa: E731
    assert labels(figures.FIGURES["relu_elbow"].plot(SYNTHETIC["relu_elbow"][0])) == {"fraction of inactive (unit, sample) pairs at init"}
    legacy = SYNTHETIC["relu_elbow"][0] | {"rows": [{k: v for k, v in r.items() if k != "inactive_fraction"} for r in rows]}
    assert labels(figures.FIGURES["relu_elbow"].plot(legacy)) == {"fraction of dead units at init"}


def test_a_band_of_two_seeds_is_their_range_not_a_t_interval():
    rows = [{"g": "a", "x": 1.0}, {"g": "a", "x": 100.0}, {"g": "b", "x": 2.0}, {"g": "b", "x": 3.0}, {"g": "b", "x": 4.0}]
    two, three = sorted(figures.over_seeds(rows, ("g",), "x", log=True, range_below=3), key=lambda r: r["g"])
    assert (two["low"], two["high"]) == pytest.approx((1.0, 100.0)) and two["mean"] == pytest.approx(10.0)
    assert three["low"] < 2.0 and three["high"] > 4.0  # three seeds: the t-interval of the log, wider than their range
