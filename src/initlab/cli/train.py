"""Hydra entry point of ``python train.py`` (heavy imports happen inside, so ``--help`` is fast)."""

import sys

import hydra
from omegaconf import DictConfig

from initlab.config import CONFIG_DIR, ConfigError, register_resolvers

register_resolvers()


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Train one model (or one job of a ``-m`` sweep); returns the final val loss for sweepers."""
    from initlab.cli.common import print_config_tree
    from initlab.training.run import run_training

    print_config_tree(cfg, save_dir=cfg.paths.output_dir)
    try:
        return run_training(cfg)
    except ConfigError as err:
        print(f"initlab: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
