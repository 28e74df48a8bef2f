"""Every figure function on small synthetic rows: it draws data on labelled axes and saves a PNG."""

import math

import numpy as np
import pytest

from initlab.pipeline import figures

INITS = ("spectral", "xavier_normal")


def _layers():
    return [{"init": init, "seed": seed, "layer": k, "jacobian_norm": 1.0 + 0.1 * k, "lambda_max": 2.0 ** k,
             "bound_as_written": 1.0, "bound_corrected": 10.0 ** k}
            for init in INITS for seed in (1, 2) for k in range(3)]


def _cases():
    rmt = [{"m": m, "n": n, "init": init, "trial": t, "ratio": 0.98} for m, n in ((64, 64), (256, 64)) for init in INITS for t in range(2)]
    flow = [{"activation": act, "init": init, "layer": k, "activation_var": 0.5 ** k, "gradient_var": 2.0 ** k}
            for act in ("tanh", "relu") for init in INITS for k in range(4)]
    deep = [{"case": case, "scale": scale, "trial": 0, "layer": k, "activation_norm": (scale or 1.0) ** k,
             "gradient_norm": (scale or 1.0) ** (10 - k)} for case, scale in (("1.5 I", 1.5), ("orthogonal", None)) for k in range(11)]
    symmetry = [{"init": init, "layer": layer, "step": s, "distance": d, "rank": 1, "loss": 2.0 / (s + 1)}
                for init, d in (("zeros", 0.0), ("spectral", 1.4)) for layer in (0, 1) for s in (0, 10, 20)]
    dead = [{"init": init, "bias": bias, "layer": k, "dead_fraction": 0.01 * k} for init in INITS for bias in ("zeros", "relu_0.1") for k in range(3)]
    curves = [{"init": init, "optim": optim, "epoch": e, "train_loss": 1.0 / (e + 1), "train_loss_std": 0.01, "val_acc": 0.9, "val_acc_std": 0.01}
              for init in INITS for optim in ("sgd", "adam") for e in range(3)]
    stability = [{"init": init, "factor": f, "lambda_0": 2.0, "final_over_initial": r}
                 for init in INITS for f, r in ((0.5, 0.1), (2.0, math.inf), (4.0, None))]
    eos = [{"factor": f, "lr": f / 2, "step": s, "lambda_max": lam, "two_over_lr": 4 / f}
           for f in (1.0, 1.9) for s, lam in ((0, 2.0), (5, None), (10, 3.0))]
    train_curvature = [{"init": "spectral", "optim": "sgd", "seed": 1, "step": s, "lambda_max": 2.0 + s, "two_over_lr": 20.0} for s in (0, 25)]
    paths = {"A": [[1.0, 0.0], [0.0, 100.0]], "minimizer": [0.0, 0.0],
             "paths": {"gd": [[1.0, 1.0], [0.5, -0.9], [0.1, 0.0]], "momentum": [[1.0, 1.0], [0.2, 0.1], [0.0, 0.0]]}}
    canyon_loss = [{"step": 0, "gd": 50.0, "momentum": 50.0}, {"step": 1, "gd": 10.0, "momentum": 1.0}, {"step": 2, "gd": 1.0, "momentum": None}]
    blocks = [{"activation": act, "state": state, "block": block, "rel_diff": 0.01}
              for act in ("relu", "tanh") for state in ("init", "trained") for block in (0, 1, "all")]
    density = [{"state": state, "series": init, "eigenvalue": x, "density": math.exp(-x * x) + 1e-8}
               for state in ("at init", "after training") for init in INITS for x in np.linspace(-2, 2, 20)]
    return {
        "rmt": (figures.plot_rmt, (rmt,)),
        "layers": (figures.plot_layer_curvature, (_layers(),)),
        "theorem2": (figures.plot_theorem2, (_layers(),)),
        "density": (figures.plot_hessian_density, (density,)),
        "flow": (figures.plot_variance_flow, (flow,)),
        "deep": (figures.plot_deep_linear, (deep,)),
        "symmetry": (figures.plot_symmetry, (symmetry,)),
        "elbow": (figures.plot_elbow, (np.random.default_rng(0).standard_cauchy(2000), dead, 0.01)),
        "curves": (figures.plot_training_curves, (curves,)),
        "stability": (figures.plot_lr_stability, (stability,)),
        "eos": (figures.plot_edge_of_stability, (eos, train_curvature)),
        "eos_demo_only": (figures.plot_edge_of_stability, (eos,)),
        "canyon": (figures.plot_canyon, (paths, canyon_loss)),
        "gauss_newton": (figures.plot_gauss_newton, (blocks,)),
    }


CASES = _cases()


@pytest.mark.parametrize("name", sorted(CASES))
def test_figure_draws_on_labelled_axes(name, tmp_path):
    function, args = CASES[name]
    fig = function(*args)
    axes = [ax for ax in fig.axes if ax.has_data()]
    assert axes, "nothing drawn"
    for ax in axes:
        assert ax.get_xlabel() and ax.get_ylabel(), f"unlabelled axes in {name}"
    fig.savefig(tmp_path / f"{name}.png")
    assert (tmp_path / f"{name}.png").stat().st_size > 5000


def test_every_figure_has_a_caption():
    assert all(title and caption for title, caption in figures.FIGURES.values())
