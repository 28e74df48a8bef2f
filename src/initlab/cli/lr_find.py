"""Hydra entry point of ``python -m initlab.lr_find``: the book's learning-rate range test.

    python -m initlab.lr_find optim=sgd init=spectral

Book advice (docs/methods.md): watch the first iterations over a range of eps and pick eps_0
somewhat above the best-performing early value. Lightning's tuner runs the sweep; initlab.lr_find
recovers the raw losses, smooths them without bias or lag and suggests the lr of steepest descent.
"""

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from initlab.cli.common import make_main
from initlab.config import validate_with_data


def lr_range_test(cfg: DictConfig, output_dir: Path, runtime: dict[str, Any]) -> dict[str, Any]:
    """Run Lightning's LR finder on the configured model; write lr_find.json and lr_find.png."""
    import pytorch_lightning as pl
    from pytorch_lightning.tuner import Tuner

    from initlab.lr_find import write_range_test
    from initlab.training.build import build_datamodule, build_model, build_module, seed_everything
    from initlab.training.records import metrics_record

    settings = cfg.lr_find
    seed_everything(cfg.seed)
    datamodule = build_datamodule(cfg)
    validate_with_data(cfg, datamodule, total_steps=settings.num_steps)
    model, batch = build_model(cfg, datamodule)
    module, _ = build_module(cfg, model, batch)
    trainer = pl.Trainer(accelerator=cfg.trainer.accelerator, devices=1, logger=False, enable_checkpointing=False,
                         default_root_dir=str(output_dir), max_epochs=1000, deterministic=cfg.trainer.get("deterministic", False))
    finder = Tuner(trainer).lr_find(module, datamodule=datamodule, min_lr=settings.min_lr, max_lr=settings.max_lr,
                                    num_training=settings.num_steps, mode=settings.mode,
                                    early_stop_threshold=settings.early_stop_threshold, update_attr=False)
    result = write_range_test(finder.results["lr"], finder.results["loss"], output_dir, runtime["choices"].get("optim"))
    print(f"lr_find: suggested lr = {result['suggested_lr']:.4g} (lowest smoothed loss at {result['lowest_loss_lr']:.4g}); "
          f"plot: {output_dir / 'lr_find.png'}")
    return metrics_record("done", {}, lr_find={k: result[k] for k in ("suggested_lr", "lowest_loss_lr")})


def run(cfg: DictConfig) -> dict[str, Any] | None:
    """Run ``lr_range_test`` as a job: metrics.json is written whatever happens."""
    from initlab.training.run import run_job

    return run_job(cfg, lr_range_test)


main = make_main("lr_find", run)

if __name__ == "__main__":
    main()
