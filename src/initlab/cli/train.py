"""Entry point of ``python train.py`` / ``initlab-train``: one training run, or one job of a ``-m`` sweep.

Heavy imports happen inside the task, so ``--help`` and a rejected config take about a second.
"""

from omegaconf import DictConfig

from initlab.cli.common import make_main


def train(cfg: DictConfig) -> float | None:
    """Train one model; returns the sweep objective, ``initlab.aggregate.OBJECTIVE`` (what Optuna optimizes)."""
    from initlab.training.run import run_training

    return run_training(cfg)


main = make_main("train", train)

if __name__ == "__main__":
    main()
