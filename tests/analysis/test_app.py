"""The analyze app body (``initlab.analyze.analyze``): dataset-level analysis, device and dtype choices."""

import json
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from initlab.analyze import analysis_device, analysis_dtype, analyze
from initlab.config import CONFIG_DIR, ConfigError, register_resolvers

register_resolvers()
SMALL = ["model.widths=[16]", "analysis.k_top=1", "analysis.tol=1e-3", "analysis.trace_probes=4",
         "analysis.slq_probes=2", "analysis.slq_steps=8", "analysis.grid=50"]


def run_app(tmp_path: Path, overrides: list[str]) -> dict:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("analyze", overrides=[*SMALL, f"paths.data_dir={tmp_path / 'data'}", *overrides])
    GlobalHydra.instance().clear()
    record = analyze(cfg, tmp_path, {"choices": {"init": "spectral"}})
    return record | {"analysis": json.loads((tmp_path / "analysis.json").read_text())}


def test_num_samples_all_analyses_the_whole_train_split_in_chunks(tmp_path: Path) -> None:
    result = run_app(tmp_path, ["num_samples=all", "analysis.batch_size=500", "dtype=float64"])
    analysis = result["analysis"]
    assert result["status"] == "done" and analysis["source"]["num_samples"] == analysis["settings"]["num_samples"]
    assert analysis["settings"]["num_samples"] > 1000 and analysis["settings"]["batch_size"] == 500
    assert analysis["settings"]["dtype"] == "float64" and analysis["source"]["device"] == "cpu"
    assert analysis["global"]["lambda_max"] > 0 and analysis["global"]["top_residuals"][0] <= 1e-3
    assert (tmp_path / "esd.json").is_file()


def test_device_and_dtype_choices() -> None:
    assert analysis_device("cpu") == torch.device("cpu")
    assert analysis_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert analysis_dtype("float64") is torch.float64
    with pytest.raises(ConfigError, match="device: got 'tpu'"):
        analysis_device("tpu")
    with pytest.raises(ConfigError, match="dtype: got 'float16'"):
        analysis_dtype("float16")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="needs a CUDA device"):
            analysis_device("cuda")
