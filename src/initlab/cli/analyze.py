"""Entry point of ``python -m initlab.analyze`` / ``initlab-analyze``: the body is :func:`initlab.analyze.analyze`.

    python -m initlab.analyze data=digits model=mlp init=spectral
    python -m initlab.analyze ckpt_path=logs/train/runs/<time>/checkpoints/last.ckpt
"""

from typing import Any

from omegaconf import DictConfig

from initlab.analyze import analyze
from initlab.cli.common import make_main


def run(cfg: DictConfig) -> dict[str, Any] | None:
    """Analyse as a job: metrics.json is written whatever happens."""
    from initlab.training.run import run_job

    return run_job(cfg, analyze)


main = make_main("analyze", run)

if __name__ == "__main__":
    main()
