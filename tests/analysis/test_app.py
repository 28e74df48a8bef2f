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


def trained_run(compose_cfg, overrides: list[str]) -> Path:
    """A short real training run whose run dir holds what Hydra writes (``.hydra/config.yaml``, ``hydra.yaml``)."""
    from omegaconf import OmegaConf

    from initlab.training.run import run_training
    from tests.conftest import FAST

    cfg = compose_cfg([*FAST, "trainer.limit_train_batches=2", *overrides])
    run_training(cfg)
    run_dir = Path(cfg.paths.output_dir)
    (run_dir / ".hydra").mkdir()
    resolved = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])
    OmegaConf.save(resolved, run_dir / ".hydra" / "config.yaml")
    OmegaConf.save({"hydra": cfg.hydra}, run_dir / ".hydra" / "hydra.yaml")
    return run_dir / "checkpoints" / "last.ckpt"


def test_a_checkpoint_is_analysed_with_its_own_model_init_and_data(compose_cfg, tmp_path: Path, capfd) -> None:
    # issue 21 item 6: a tanh / xavier_normal run analysed without overrides used to be rebuilt as the
    # default ReLU model and recorded as init "spectral"
    ckpt = trained_run(compose_cfg, ["model.activation=tanh", "model.widths=[16]", "init=xavier_normal"])
    analysis_dir = tmp_path / "analysis"
    analysis_dir.mkdir()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("analyze", overrides=[*SMALL[1:], f"ckpt_path={ckpt}", f"paths.data_dir={tmp_path / 'data'}"])
    GlobalHydra.instance().clear()
    capfd.readouterr()
    analyze(cfg, analysis_dir, {"choices": {"init": "spectral", "model": "mlp", "data": "digits"},
                                "overrides": [f"ckpt_path={ckpt}"]})
    progress = [line for line in capfd.readouterr().err.splitlines() if line.startswith("analyze: ")]
    assert [line.split(":")[1].strip() for line in progress] == [  # not a TTY: one line per quantity, in order
        "data and model (checkpoint weights)", "full Hessian", "layer blocks", "per layer"]
    source = json.loads((analysis_dir / "analysis.json").read_text())["source"]
    assert source["init"] == "xavier_normal" and source["activation"] == "tanh"
    assert source["config"]["model"]["widths"] == [16] and "xavier" in str(source["config"]["init"])
    assert source["run_config"] == str(ckpt.resolve().parent.parent / ".hydra" / "config.yaml")
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        contradicting = compose("analyze", overrides=[*SMALL[1:], f"ckpt_path={ckpt}", "model.activation=relu"])
    GlobalHydra.instance().clear()
    with pytest.raises(ConfigError, match=r"^model.activation: got 'relu', contradicts the checkpoint's model"):
        analyze(contradicting, analysis_dir, {"choices": {}, "overrides": [f"ckpt_path={ckpt}", "model.activation=relu"]})
    (ckpt.parent.parent / ".hydra" / "config.yaml").unlink()
    with pytest.raises(ConfigError, match="needs its run's resolved config beside it"):
        analyze(cfg, analysis_dir, {"choices": {}, "overrides": [f"ckpt_path={ckpt}"]})


def test_analyze_imports_point_one_way() -> None:
    """``cli/analyze.py`` imports the app body; the body never imports ``initlab.cli`` (issue 22, item 9).
    ``python -m initlab.analyze`` runs the package's ``__main__``, the one module that names the entry point."""
    import ast

    import initlab.analyze

    def imported(path: Path) -> set[str]:
        nodes = ast.walk(ast.parse(path.read_text()))
        return {n.module for n in nodes if isinstance(n, ast.ImportFrom) and n.module} | \
            {a.name for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Import) for a in n.names}

    package = Path(initlab.analyze.__file__).parent
    assert not {m for m in imported(package / "__init__.py") if m.startswith("initlab.cli")}
    assert "initlab.analyze" in imported(package.parent / "cli" / "analyze.py")
    assert "initlab.cli.analyze" in imported(package / "__main__.py")
