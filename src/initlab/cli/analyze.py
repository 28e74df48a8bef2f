"""Hydra entry point of ``python -m initlab.analyze``: curvature of a model at init or from a checkpoint.

    python -m initlab.analyze data=digits model=mlp init=spectral
    python -m initlab.analyze ckpt_path=logs/train/runs/<time>/checkpoints/last.ckpt

Writes ``analysis.json`` (per layer and global curvature record), ``esd.json`` (Hessian spectral
density) and ``metrics.json`` (status and headline numbers) into the run dir.
"""

import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from initlab.config import CONFIG_DIR, ConfigError, register_resolvers

register_resolvers()


def analyze(cfg: DictConfig, output_dir: Path, runtime: dict[str, Any]) -> dict[str, Any]:
    """Build data and model as train.py does (same seed -> same init), load weights, measure."""
    from hydra.utils import instantiate
    from torch.nn import functional as F

    from initlab.training.build import build_datamodule, build_model, load_model_weights
    from initlab.training.records import metrics_record, write_json

    datamodule = build_datamodule(cfg)
    model, _ = build_model(cfg, datamodule)
    if cfg.get("ckpt_path"):
        if not Path(cfg.ckpt_path).is_file():
            raise ConfigError(f"ckpt_path: no checkpoint at {cfg.ckpt_path}")
        load_model_weights(model, cfg.ckpt_path)
    num_samples = min(int(cfg.num_samples), len(datamodule.train_data.y))
    inputs, targets = datamodule.sample_batch(num_samples, seed=cfg.seed)
    result = instantiate(cfg.analysis)(model, F.cross_entropy, inputs, targets)
    source = {"ckpt_path": cfg.get("ckpt_path"), "init": runtime["choices"].get("init"), "num_samples": num_samples}
    write_json(output_dir / "analysis.json", {"source": source, **result["analysis"]})
    write_json(output_dir / "esd.json", result["esd"])
    summary = result["analysis"]["global"]
    headline = {key: summary.get(key) for key in ("lambda_max", "lambda_min", "trace", "lr_gamma_star", "lr_edge")}
    print("analysis: " + " ".join(f"{k}={v:.5g}" for k, v in headline.items() if isinstance(v, float)) + f"  ({output_dir})")
    return metrics_record("done", {}, analysis=headline, source=source)


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="analyze")
def main(cfg: DictConfig) -> None:
    from initlab.cli.common import print_config_tree
    from initlab.training.run import run_job

    print_config_tree(cfg, save_dir=cfg.paths.output_dir)
    try:
        run_job(cfg, analyze)
    except ConfigError as err:
        print(f"initlab: {err}", file=sys.stderr)
        sys.exit(2)
