"""Hydra entry point of ``python -m initlab.lr_find``: the book's learning-rate range test.

    python -m initlab.lr_find optim=sgd init=spectral

Book advice (METHODS.md §4): watch the first iterations over a range of eps and pick eps_0
somewhat above the best-performing early value. Lightning's tuner runs the sweep; we keep its
steepest-descent suggestion and also report the lr of the lowest smoothed loss.
"""

import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from initlab.config import CONFIG_DIR, ConfigError, register_resolvers

register_resolvers()


def lr_range_test(cfg: DictConfig, output_dir: Path, runtime: dict[str, Any]) -> dict[str, Any]:
    """Run Lightning's LR finder on the configured model; write lr_find.json and lr_find.png."""
    import matplotlib

    matplotlib.use("Agg")
    import pytorch_lightning as pl
    from pytorch_lightning.tuner import Tuner

    from initlab.training.build import build_datamodule, build_model, build_module
    from initlab.training.records import metrics_record, write_json

    settings = cfg.lr_find
    datamodule = build_datamodule(cfg)
    model, batch = build_model(cfg, datamodule)
    module, _ = build_module(cfg, model, batch)
    trainer = pl.Trainer(accelerator=cfg.trainer.accelerator, devices=1, logger=False, enable_checkpointing=False,
                         default_root_dir=str(output_dir), max_epochs=1000, deterministic=cfg.trainer.get("deterministic", False))
    finder = Tuner(trainer).lr_find(module, datamodule=datamodule, min_lr=settings.min_lr, max_lr=settings.max_lr,
                                    num_training=settings.num_steps, mode=settings.mode,
                                    early_stop_threshold=settings.early_stop_threshold, update_attr=False)
    lrs, losses = finder.results["lr"], finder.results["loss"]
    skip = min(10, len(losses) // 2)  # the smoothed loss is biased over the first steps (Lightning skips 10 too)
    best_index = min(range(skip, len(losses)), key=losses.__getitem__)
    result = {"lr": lrs, "loss": losses, "suggested_lr": finder.suggestion(), "lowest_loss_lr": lrs[best_index],
              "optimizer": runtime["choices"].get("optim")}
    write_json(output_dir / "lr_find.json", result)
    figure = finder.plot(suggest=True)
    figure.axes[0].set_title(f"LR range test ({result['optimizer']}): suggested lr = {result['suggested_lr']:.3g}")
    figure.savefig(output_dir / "lr_find.png", dpi=120)
    print(f"lr_find: suggested lr = {result['suggested_lr']:.4g} (lowest smoothed loss at {result['lowest_loss_lr']:.4g}); "
          f"plot: {output_dir / 'lr_find.png'}")
    return metrics_record("done", {}, lr_find={k: result[k] for k in ("suggested_lr", "lowest_loss_lr")})


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="lr_find")
def main(cfg: DictConfig) -> None:
    from initlab.training.run import run_job

    try:
        run_job(cfg, lr_range_test)
    except ConfigError as err:
        print(f"initlab: {err}", file=sys.stderr)
        sys.exit(2)
