"""The spectra stage measures what ``python -m initlab.analyze`` measures: on the same model and samples its
lambda_max, lambda_min and trace agree with the analyze app's to the solver tolerance (and the trace to its
standard error); its tables and the lr it trains at come from the lr study's val selection."""

import json
import math

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from initlab.analyze import analyze
from initlab.config import CONFIG_DIR, register_resolvers
from initlab.pipeline import spectra, study
from initlab.pipeline.common import load_data, write_csv
from initlab.pipeline.prepare import prepare

SEED = 1
SETTINGS = {"seed": SEED, "optim": "sgd", "samples": 100_000, "chunk": 500, "tol": 1e-3, "trace_probes": 10, "density_probes": 2,
            "density_steps": 20, "grid": 50, "probe_seed": 0, "every": 10}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    return prepare("digits", SEED, root)


def analyze_app(tmp_path) -> dict:
    """``python -m initlab.analyze data=digits experiment=pipeline init=spectral seed=1 num_samples=all`` with the spectra
    stage's solver settings (the app body, as the CLI runs it)."""
    register_resolvers()
    GlobalHydra.instance().clear()
    overrides = ["data=digits", "experiment=pipeline", "init=spectral", f"seed={SEED}", "num_samples=all", f"paths.data_dir={tmp_path}",
                 f"analysis.tol={SETTINGS['tol']}", f"analysis.trace_probes={SETTINGS['trace_probes']}", "analysis.k_top=1",
                 f"analysis.slq_probes={SETTINGS['density_probes']}", f"analysis.slq_steps={SETTINGS['density_steps']}",
                 f"analysis.grid={SETTINGS['grid']}", f"analysis.batch_size={SETTINGS['chunk']}", f"analysis.seed={SETTINGS['probe_seed']}"]
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("analyze", overrides=overrides)
    GlobalHydra.instance().clear()
    analyze(cfg, tmp_path, {"choices": {"init": "spectral"}})
    return json.loads((tmp_path / "analysis.json").read_text())


@pytest.mark.slow
def test_spectrum_at_init_agrees_with_the_analyze_app(prepared, tmp_path):
    app = analyze_app(tmp_path)
    data = load_data(prepared)
    batch = (data.train.x, data.train.y)
    model = study.initialized("spectral", SEED, batch, (), "digits")
    assert app["source"]["num_samples"] == len(batch[1])
    # the same model: the app's per-layer weight statistics are those of the stage's model
    for layer, (name, module) in zip(app["layers"], [(n, m) for n, m in model.named_modules() if hasattr(m, "weight")], strict=True):
        assert layer["name"] == name and layer["weight_std"] == pytest.approx(module.weight.detach().double().std().item(), rel=1e-6)
    record = spectra.summary(spectra.spectrum(model, batch, SETTINGS))
    g = app["global"]
    scale = abs(g["lambda_max"])
    assert record["converged"] and record["residual_top"] <= SETTINGS["tol"]
    assert abs(record["lambda_max"] - g["lambda_max"]) <= 2 * SETTINGS["tol"] * scale
    assert abs(record["lambda_min"] - g["lambda_min"]) <= 2 * SETTINGS["tol"] * scale
    assert abs(record["trace"] - g["trace"]) <= 3 * math.hypot(record["trace_se"], g["trace_se"]) + 1e-6 * abs(g["trace"])


def test_the_stage_trains_each_init_at_the_lr_studys_best_val_lr(tmp_path):
    rows = [{"init": init, "optim": optim, "setting": "grid", "seed": seed, "lr": lr, "epochs": 10.0,
             "val_loss": 1.0 + abs(lr - best) + 0.01 * seed, "test_loss": 0.1 if lr != best else 9.0}
            for init, best in (("spectral", 1.0), ("xavier_normal", 0.1)) for optim in ("sgd", "adam") for lr in (0.1, 1.0)
            for seed in (1, 2)]
    write_csv(tmp_path / "study" / "lr" / "runs.csv", rows)
    assert spectra.best_lrs(tmp_path, "sgd") == {"spectral": 1.0, "xavier_normal": 0.1}
