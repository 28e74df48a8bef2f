"""``python -m initlab.lr_find``: the book's learning-rate range test (entry point :mod:`initlab.cli.lr_find`).

    python -m initlab.lr_find optim=sgd init=spectral

Book advice (docs/methods.md): watch the first iterations over a range of eps and pick eps_0
somewhat above the best-performing early value. Lightning's tuner runs the sweep (:func:`lr_range_test`).
Its finder records only a smoothed loss, debiased one step off: at step t = 1, 2, ... it
divides its running average by 1 - beta^(t+1) instead of 1 - beta^t, so its first point is about
half the true loss (1.17 for a loss of ln 10 = 2.30) and the curve seems to rise while the loss
falls. We invert its average exactly to get the per-step losses back, smooth them with the
correct bias correction, and suggest the lr where the smoothed loss falls fastest per decade
(book advice, docs/methods.md: pick eps_0 where the early loss improves most).
"""

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

import numpy as np
from matplotlib.figure import Figure

from initlab.pipeline.style import axes, finish, new_figure, save_figure

LIGHTNING_BETA = 0.98  # pytorch_lightning.tuner.lr_finder._LRCallback's smoothing (not configurable there)
BETA = 0.9  # our smoothing: averages ~2/(1 - beta) = 20 steps
DIVERGED = 4.0  # a loss above this x the lowest so far has diverged (Lightning's early-stop default)


def lightning_raw_losses(recorded: Sequence[float], beta: float = LIGHTNING_BETA) -> list[float]:
    """The per-step losses behind Lightning's record r_t = a_t / (1 - beta^(t+1)), a_t = beta a_(t-1) + (1 - beta) loss_t."""
    averages = [r * (1 - beta ** (t + 1)) for t, r in enumerate(recorded, 1)]
    return [(a - beta * previous) / (1 - beta) for a, previous in zip(averages, [0.0, *averages[:-1]], strict=True)]


def debiased_ema(values: Sequence[float], beta: float = BETA) -> np.ndarray:
    """Exponential moving average divided by 1 - beta^t (t = 1, 2, ...): a constant series stays constant from step 1."""
    smoothed, average = [], 0.0
    for t, value in enumerate(values, 1):
        average = beta * average + (1 - beta) * value
        smoothed.append(average / (1 - beta**t))
    return np.asarray(smoothed, dtype=float)


def ema_centres(count: int, beta: float = BETA) -> np.ndarray:
    """The step (0-based, fractional) each debiased EMA value is centred on: its t terms weigh step t-1-j by beta^j,
    whose mean j is beta/(1-beta) - t beta^t/(1-beta^t). Placing the value there removes the EMA's lag."""
    t = np.arange(1, count + 1, dtype=float)
    return t - 1 - (beta / (1 - beta) - t * beta**t / (1 - beta**t))


def divergence_step(losses: Sequence[float], threshold: float = DIVERGED) -> int:
    """The first step whose loss is not finite or above ``threshold`` x the lowest loss before it (len: none)."""
    lowest = math.inf
    for step, loss in enumerate(losses):
        if not math.isfinite(loss) or loss > threshold * lowest:
            return step
        lowest = min(lowest, loss)
    return len(losses)


def range_test_result(lrs: Sequence[float], recorded: Sequence[float], beta: float = BETA) -> dict[str, Any]:
    """lr_find.json: per step the lr and raw loss; up to the divergence, the smoothed loss at the lrs it is
    centred on; the lr of its steepest descent per decade before its minimum (the suggestion) and of its minimum."""
    raw = lightning_raw_losses(recorded)
    end = max(divergence_step(raw), 1)  # a blown-up loss would drag the smoothed curve up before the raw one rises
    smoothed = debiased_ema(raw[:end], beta)
    log_lrs = np.log(np.asarray(lrs[:end], dtype=float))
    smoothed_lrs = np.exp(np.interp(ema_centres(end, beta), np.arange(end), log_lrs))
    lowest = int(np.nanargmin(np.where(np.isfinite(smoothed), smoothed, np.nan)))
    slopes = np.gradient(smoothed[: lowest + 1], np.log(smoothed_lrs[: lowest + 1]))[:lowest] if lowest >= 2 else []
    steepest = int(np.argmin(slopes)) if len(slopes) else lowest  # interior points: the one-sided slope at the minimum is noise
    return {"lr": list(lrs), "loss": raw, "smoothed_lr": smoothed_lrs.tolist(), "smoothed_loss": smoothed.tolist(), "beta": beta,
            "suggested_lr": float(smoothed_lrs[steepest]), "lowest_loss_lr": float(smoothed_lrs[lowest])}


def plot_range_test(result: dict[str, Any], optimizer: str | None = None) -> Figure:
    """Raw and smoothed loss against lr (log x), the suggestion and the lowest smoothed loss marked."""
    fig, ((ax,),) = new_figure(width=6.4, height=4.2)
    lrs, raw, smoothed_lrs, smoothed = (np.asarray(result[key], dtype=float) for key in ("lr", "loss", "smoothed_lr", "smoothed_loss"))
    ax.plot(lrs, raw, color="0.6", linewidth=0.8, marker=".", markersize=3, label="raw loss (one batch per step)")
    ax.plot(smoothed_lrs, smoothed, color="#0072B2", linewidth=2, label=f"smoothed (EMA, beta = {result['beta']:g}, debiased)")
    suggested = result["suggested_lr"]
    ax.axvline(suggested, color="#D55E00", linestyle="--", linewidth=1, label=f"suggested lr = {suggested:.3g} (steepest descent)")
    ax.plot(suggested, np.interp(np.log(suggested), np.log(smoothed_lrs), smoothed), marker="o", color="#D55E00", linestyle="")
    lowest = result["lowest_loss_lr"]
    ax.axvline(lowest, color="0.3", linestyle=":", linewidth=1, label=f"lowest smoothed loss at {lowest:.3g}")
    finite = raw[np.isfinite(raw)]
    if finite.size:
        ax.set_ylim(0.95 * finite.min(), 1.05 * min(finite.max(), 2 * finite[0]))  # the divergence tail would flatten the rest
    ax.set_xscale("log")
    axes(ax, "learning rate (one step each, increasing)", "training loss")
    return finish(fig, f"LR range test{f' ({optimizer})' if optimizer else ''}",
                  f"One run of n = {len(lrs)} steps, lr swept from {lrs[0]:.3g} to {lrs[-1]:.3g} (stopped early when the loss "
                  f"diverges); grey: the loss of each step's batch; blue: its exponential average divided by 1 - beta^t, each value drawn "
                  f"at the lr its steps are centred on (no lag), up to the first loss above {DIVERGED:g}x the lowest before it.")


def write_range_test(lrs: Sequence[float], recorded: Sequence[float], output_dir: Path, optimizer: str | None = None) -> dict[str, Any]:
    """Write lr_find.json and lr_find.png from Lightning's finder record (``finder.results``); return the result."""
    from initlab.training.records import write_json

    result = range_test_result(lrs, recorded) | {"optimizer": optimizer}
    write_json(Path(output_dir) / "lr_find.json", result)
    save_figure(plot_range_test(result, optimizer), Path(output_dir) / "lr_find.png")
    return result


def lr_range_test(cfg: DictConfig, output_dir: Path, runtime: dict[str, Any]) -> dict[str, Any]:
    """Run Lightning's LR finder on the configured model; write lr_find.json and lr_find.png."""
    import pytorch_lightning as pl
    from pytorch_lightning.tuner import Tuner

    from initlab.config import validate_with_data
    from initlab.training.build import build_datamodule, build_model, build_module, seed_everything
    from initlab.training.records import metrics_record

    settings = cfg.lr_find
    seed_everything(cfg.seed)
    datamodule = build_datamodule(cfg)
    validate_with_data(cfg, datamodule, total_steps=settings.num_steps)
    model, batch = build_model(cfg, datamodule)
    module, _ = build_module(cfg, model, batch)
    trainer = pl.Trainer(accelerator=cfg.trainer.accelerator, devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(output_dir), max_epochs=1000,
                         deterministic=cfg.trainer.get("deterministic", False))
    finder = Tuner(trainer).lr_find(module, datamodule=datamodule, min_lr=settings.min_lr, max_lr=settings.max_lr,
                                    num_training=settings.num_steps, mode=settings.mode,
                                    early_stop_threshold=settings.early_stop_threshold, update_attr=False)
    result = write_range_test(finder.results["lr"], finder.results["loss"], output_dir, runtime["choices"].get("optim"))
    print(f"lr_find: suggested lr = {result['suggested_lr']:.4g} (lowest smoothed loss at {result['lowest_loss_lr']:.4g}); "
          f"plot: {output_dir / 'lr_find.png'}")
    return metrics_record("done", {}, lr_find={k: result[k] for k in ("suggested_lr", "lowest_loss_lr")})
