"""Training throughput: our ``ClassifierModule`` + Lightning ``Trainer`` vs a plain PyTorch loop.

    python benchmarks/train_throughput.py                # digits and mnist_t10k, ~2 min
    python benchmarks/train_throughput.py --data digits --rounds 9
    python benchmarks/train_throughput.py --diagnose     # + one arm per suspect, ~4 min

Both sides train the same MLP (64-256-256-10 on digits, 784-256-256-10 on mnist_t10k, relu)
with Adam (lr 1e-3) and the constant schedule stepped every step, on the same in-memory tensors
served by the datamodule's ``InMemoryLoader`` (same batches, batch size 128), for the same
number of steps (digits: 10 epochs = 100 steps, the default run; mnist_t10k: 2 epochs = 126).
"ours" is what ``python train.py logger=none`` builds: the Trainer of ``conf/trainer/cpu.yaml``
(deterministic, log every 10 steps) and the callbacks of ``conf/callbacks/default.yaml`` minus
the progress bar; "ours+bar" keeps the bar, rendering to an in-memory terminal. Validation is
off in both (the plain loop has none); the time of ``trainer.fit`` includes its setup and the
per-epoch checkpoints.

Ratio: samples/s of ours over the plain loop's, the median of per-round ratios (the arms run
round-robin in this process); ``epoch_time`` is its inverse for ours+bar, the default run's epoch
(goal <= 1.5). Taken on CPU time with one torch thread by default: on a shared
2-core machine two OpenMP threads stall on whichever is descheduled, and wall time counts the
other jobs; the "(wall)" column shows the wall ratio (``--clock wall --threads 2`` on an idle
machine). Goal >= 0.95. ``--diagnose`` adds, one change at a time:
  lightning-floor   a loss-only LightningModule in a bare Trainer: Lightning's own cost
  module            our ClassifierModule in that bare Trainer: what the module adds
  ours-no-ckpt      ours without the ModelCheckpoint callback
  ours-nondet       ours with trainer.deterministic=false
  ours-ckpt-link    ours with callbacks.model_checkpoint.save_last=link (one file write per epoch)
  ours+bar-r10      the bar with refresh_rate=10, leave=false
"""

import argparse
import io
import statistics
import tempfile
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.nn import functional as F

from common import (
    DATASETS,
    REPO_ROOT,
    Timing,
    datamodule,
    interleaved,
    machine_line,
    paired_ratio,
    quiet_lightning,
    ratio_line,
    timed,
)
from initlab.models import mlp
from initlab.optim import adam
from initlab.optim.schedules import constant
from initlab.training.module import ClassifierModule

GOAL = 0.95
BAR_GOAL = 0.98  # the bar (running loss + lr, read at most twice a second) must cost nothing measurable
EPOCH_TIME_GOAL = 1.5  # issue 22: a default run's epoch (bar included) takes at most 1.5x the plain loop's
SEED = 0
CONF = REPO_ROOT / "conf"


def build_model(input_shape: tuple[int, ...]) -> nn.Module:
    torch.manual_seed(SEED)
    return mlp(input_shape, 10, widths=(256, 256), activation="relu", bias=True)


def ours_trainer(output_dir: Path, epochs: int, progress_bar: bool, overrides: tuple[str, ...] = ()) -> pl.Trainer:
    """The Trainer and callbacks of ``trainer=cpu callbacks=default logger=none``, validation off.

    ``overrides`` are dotlist edits of that config (``trainer.deterministic=false``,
    ``callbacks.model_checkpoint=null`` to drop a callback), i.e. what a conf/ change would do.
    """
    cfg: DictConfig = OmegaConf.create(
        {
            "paths": {"output_dir": str(output_dir)},
            "trainer": OmegaConf.load(CONF / "trainer" / "cpu.yaml"),
            "callbacks": OmegaConf.load(CONF / "callbacks" / "default.yaml"),
        }
    )
    cfg.trainer.max_epochs = epochs
    cfg.trainer.limit_val_batches = 0
    cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
    bar = cfg.callbacks.pop("progress_bar")
    callbacks = [instantiate(node) for node in cfg.callbacks.values() if node is not None]
    if progress_bar:
        # Rendered as to a terminal, into memory: the cost of an interactive run, without the noise.
        callbacks.append(instantiate(bar, console_kwargs={"force_terminal": True, "file": io.StringIO()}))
    return instantiate(
        cfg.trainer, callbacks=callbacks, logger=False, enable_progress_bar=progress_bar, num_sanity_val_steps=0
    )


def bare_trainer(epochs: int) -> pl.Trainer:
    """Lightning with everything optional off: no callbacks, checkpoints, logger, bar, determinism."""
    return pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        deterministic=False,
        log_every_n_steps=10,
    )


class LossOnly(pl.LightningModule):
    """The least a LightningModule can be: forward, cross-entropy, Adam + constant schedule."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def training_step(self, batch, batch_idx):
        inputs, targets = batch
        return F.cross_entropy(self.model(inputs), targets)

    def configure_optimizers(self):
        optimizer = adam(self.model.parameters())
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": constant(optimizer, 0), "interval": "step"}}


def plain_loop(dm, input_shape: tuple[int, ...], epochs: int) -> Timing:
    """Seconds for ``epochs`` epochs of the hand-written loop (deterministic mode off, as torch's default)."""
    torch.use_deterministic_algorithms(False)
    model = build_model(input_shape)
    optimizer = adam(model.parameters())
    scheduler = constant(optimizer, total_steps=0)
    loader = dm.train_dataloader()
    model.train()

    def run() -> None:
        for epoch in range(epochs):
            loader.sampler.set_epoch(epoch)
            for inputs, targets in loader:
                loss = F.cross_entropy(model(inputs), targets)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()

    return timed(run)


def lightning_fit(dm, module: pl.LightningModule, trainer: pl.Trainer, expected_steps: int) -> Timing:
    timing = timed(lambda: trainer.fit(module, datamodule=dm))
    if trainer.global_step != expected_steps:
        raise RuntimeError(f"Lightning ran {trainer.global_step} steps, expected {expected_steps}")
    return timing


# --diagnose: one change at a time, from bare Lightning up to ours, then the conf/ changes we propose.
NO_CHECKPOINT = ("callbacks.model_checkpoint=null", "trainer.enable_checkpointing=false")
DIAGNOSE_OURS = {
    "ours-no-ckpt": NO_CHECKPOINT,
    "ours-nondet": ("trainer.deterministic=false",),
    "ours-ckpt-link": ("callbacks.model_checkpoint.save_last=link",),
}
DIAGNOSE_BAR = {"ours+bar-r10": ("callbacks.progress_bar.refresh_rate=10", "callbacks.progress_bar.leave=false")}
DEFAULT_EPOCHS = {"digits": 10, "mnist_t10k": 2}


def bench_dataset(name: str, rounds: int, epochs: int, diagnose: bool, clock: str, tmp: Path) -> dict[str, tuple[float, float]]:
    """Per arm: (ratio to the plain loop on ``clock``, ratio on wall time)."""
    dm = datamodule(name, tmp / "data")
    input_shape = DATASETS[name]
    steps = epochs * len(dm.train_dataloader())
    samples = epochs * len(dm.train_data)

    def ours(progress_bar: bool, overrides: tuple[str, ...] = ()) -> Timing:
        module = ClassifierModule(build_model(input_shape), adam, constant)
        return lightning_fit(dm, module, ours_trainer(tmp / "run", epochs, progress_bar, overrides), steps)

    arms = {"plain": lambda: plain_loop(dm, input_shape, epochs)}
    if diagnose:
        arms |= {
            "lightning-floor": lambda: lightning_fit(dm, LossOnly(build_model(input_shape)), bare_trainer(epochs), steps),
            "module": lambda: lightning_fit(
                dm, ClassifierModule(build_model(input_shape), adam, constant), bare_trainer(epochs), steps
            ),
        }
    arms["ours"] = lambda: ours(False)
    if diagnose:
        arms |= {arm: (lambda o=o: ours(False, o)) for arm, o in DIAGNOSE_OURS.items()}
    arms["ours+bar"] = lambda: ours(True)
    if diagnose:
        arms |= {arm: (lambda o=o: ours(True, o)) for arm, o in DIAGNOSE_BAR.items()}
    timings = interleaved(arms, rounds)
    size = input_shape[0] * input_shape[1] * input_shape[2]
    print(f"\n{name}: MLP {size}-256-256-10, batch 128, {epochs} epochs = {steps} steps, {samples} samples, {rounds} rounds")
    print(f"  {'arm':16s} {'samples/s':>10s} {'ms/step':>8s} {'vs plain':>9s} {'(wall)':>7s} {'overhead ms/step':>17s}")
    plain = timings["plain"]
    ratios = {}
    for arm, times in timings.items():
        # samples/s ratio = inverse time ratio; CPU time unless --clock wall
        ratio = paired_ratio([getattr(t, clock) for t in plain], [getattr(t, clock) for t in times])
        wall_ratio = paired_ratio([t.wall for t in plain], [t.wall for t in times])
        ratios[arm] = (ratio, wall_ratio)
        seconds = statistics.median(getattr(t, clock) for t in times)
        overhead = statistics.median(getattr(t, clock) - getattr(p, clock) for t, p in zip(times, plain)) / steps
        print(f"  {arm:16s} {samples / seconds:10.0f} {seconds / steps * 1e3:8.3f} {ratio:9.3f} {wall_ratio:7.3f} {overhead * 1e3:17.3f}")
    ratios["bar"] = tuple(paired_ratio([getattr(t, c) for t in timings["ours"]], [getattr(t, c) for t in timings["ours+bar"]])
                          for c in (clock, "wall"))
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=["digits", "mnist_t10k"], choices=sorted(DATASETS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=None, help=f"epochs per fit (default {DEFAULT_EPOCHS})")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steady on a shared machine)")
    parser.add_argument("--clock", choices=["cpu", "wall"], default="cpu", help="time the ratio is taken on")
    parser.add_argument("--diagnose", action="store_true")
    args = parser.parse_args()
    quiet_lightning()
    torch.set_num_threads(args.threads)
    print(machine_line())
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.data:
            epochs = args.epochs or DEFAULT_EPOCHS[name]
            results[name] = bench_dataset(name, args.rounds, epochs, args.diagnose, args.clock, Path(tmp))
    print()
    for name, ratios in results.items():
        for arm in ("ours+bar", "ours"):
            ratio, wall = ratios[arm]
            label = f"train_throughput[{name}{', ours+bar' if arm == 'ours+bar' else ''}]"
            print(ratio_line(label, ratio, GOAL) + f"  [wall {wall:.3f}]")
        ratio, wall = ratios["bar"]
        print(ratio_line(f"train_throughput[{name}, bar vs no bar]", ratio, BAR_GOAL) + f"  [wall {wall:.3f}]")
        ratio, wall = ratios["ours+bar"]  # time per epoch is the inverse of samples/s
        print(ratio_line(f"epoch_time[{name}, ours+bar / plain]", 1 / ratio, EPOCH_TIME_GOAL, higher_is_better=False)
              + f"  [wall {1 / wall:.3f}]")
    worst = min(results, key=lambda n: results[n]["ours"][0])
    print(ratio_line("train_throughput", results[worst]["ours"][0], GOAL) + f"  [worst dataset: {worst}, no progress bar]")


if __name__ == "__main__":
    main()
