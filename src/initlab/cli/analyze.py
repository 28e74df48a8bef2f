"""Entry point of ``python -m initlab.analyze`` / ``initlab-analyze``: the body is :func:`initlab.analyze.analyze`.

    python -m initlab.analyze data=digits model=mlp init=spectral
    python -m initlab.analyze ckpt_path=logs/train/runs/<time>/checkpoints/last.ckpt

With ``ckpt_path`` the checkpoint's model, init and data are adopted before the config is validated
(schema, ``_target_`` allowlist, the checkpoint's fit), so ``config_tree.log`` and the run's
``<hydra.output_subdir>/config.yaml`` record the analysed model, not the app defaults.
"""

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from initlab.analyze import adopt_checkpoint_config, analyze
from initlab.cli.common import make_main


def adopt_run_config(cfg: DictConfig) -> None:
    """A checkpoint's own model, init and data in place of the app defaults (read as data, nothing built)."""
    from hydra.core.hydra_config import HydraConfig

    if cfg.get("ckpt_path"):
        adopt_checkpoint_config(cfg, list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else [])


def record_run_config(cfg: DictConfig, output_dir: Path) -> None:
    """Replace the config Hydra saved before the checkpoint was read by the validated, adopted one."""
    from hydra.core.hydra_config import HydraConfig

    subdir = HydraConfig.get().output_subdir if HydraConfig.initialized() else None
    if subdir is None:
        return
    path = output_dir / subdir / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(OmegaConf.to_yaml(cfg))
        tmp.replace(path)  # a rename: never writes through a link planted at the path
    finally:
        tmp.unlink(missing_ok=True)


def run(cfg: DictConfig) -> dict[str, Any] | None:
    """Analyse as a job: metrics.json is written whatever happens."""
    from initlab.training.run import run_job

    if cfg.get("ckpt_path"):
        record_run_config(cfg, Path(cfg.paths.output_dir))
    return run_job(cfg, analyze)


main = make_main("analyze", run, adopt=adopt_run_config)

if __name__ == "__main__":
    main()
