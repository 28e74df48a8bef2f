"""Entry point of ``python -m initlab.lr_find`` / ``initlab-lr-find``: the body is :func:`initlab.lr_find.lr_range_test`.

    python -m initlab.lr_find optim=sgd init=spectral
"""

from typing import Any

from omegaconf import DictConfig

from initlab.cli.common import make_main


def run(cfg: DictConfig) -> dict[str, Any] | None:
    """Run ``lr_range_test`` as a job: metrics.json is written whatever happens (numpy, matplotlib and Lightning load
    only once the config passed)."""
    from initlab.lr_find import lr_range_test
    from initlab.training.run import run_job

    return run_job(cfg, lr_range_test)


main = make_main("lr_find", run)

if __name__ == "__main__":
    main()
