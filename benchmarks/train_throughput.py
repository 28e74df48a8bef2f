"""Training throughput: our ``ClassifierModule`` + Lightning ``Trainer`` vs a plain PyTorch loop.

    python benchmarks/train_throughput.py                      # digits and mnist_t10k, ~2 min
    python benchmarks/train_throughput.py --data digits --rounds 9
    python benchmarks/train_throughput.py --diagnose           # also splits the gap into its parts

Both sides train the same MLP (784-256-256-10 on mnist_t10k, 64-256-256-10 on digits, relu) with
Adam (lr 1e-3) and the constant schedule stepped every step, on the same in-memory tensors
served by the datamodule's ``InMemoryLoader`` (same batches, batch size 128), for the same
number of steps (~200). "ours" is what ``python train.py`` builds: the Trainer from
``conf/trainer/cpu.yaml`` (deterministic, log every 10 steps) with the callbacks of
``conf/callbacks/default.yaml`` except the progress bar ("ours+bar" keeps it, rendering to an
in-memory terminal). Validation is switched off in both (the plain loop has none). Time is the
wall time of ``trainer.fit`` (setup and the per-epoch checkpoint included) vs the loop's.

The ratio is samples/s of ours over the plain loop's, the median of per-round ratios (arms run
round-robin in this one process). Goal >= 0.95. ``--diagnose`` adds:
  lightning-floor   a minimal LightningModule (loss only) in a bare Trainer: Lightning's own cost
  module            our ClassifierModule in that bare Trainer: what our module adds
  ours-nondet       ours with deterministic=false
"""

import argparse
import io
import statistics
import tempfile
from math import ceil
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.nn import functional as F

from common import DATASETS, REPO_ROOT, datamodule, interleaved, machine_line, paired_ratio, quiet_lightning, ratio_line, timed
from initlab.models import mlp
from initlab.optim import adam
from initlab.optim.schedules import constant
from initlab.training.module import ClassifierModule

GOAL = 0.95
SEED = 0
CONF = REPO_ROOT / "conf"


def build_model(input_shape: tuple[int, ...]) -> nn.Module:
    torch.manual_seed(SEED)
    return mlp(input_shape, 10, widths=(256, 256), activation="relu", bias=True)


def ours_trainer(output_dir: Path, epochs: int, progress_bar: bool, deterministic: bool = True) -> pl.Trainer:
    """The Trainer and callbacks of ``trainer=cpu callbacks=default logger=none``, validation off."""
    cfg: DictConfig = OmegaConf.create(
        {
            "paths": {"output_dir": str(output_dir)},
            "trainer": OmegaConf.load(CONF / "trainer" / "cpu.yaml"),
            "callbacks": OmegaConf.load(CONF / "callbacks" / "default.yaml"),
        }
    )
    cfg.trainer.max_epochs = epochs
    cfg.trainer.limit_val_batches = 0
    cfg.trainer.deterministic = deterministic
    bar = cfg.callbacks.pop("progress_bar")
    callbacks = [instantiate(node) for node in cfg.callbacks.values()]
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


def plain_loop(dm, input_shape: tuple[int, ...], epochs: int) -> float:
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


def lightning_fit(dm, module: pl.LightningModule, trainer: pl.Trainer, expected_steps: int) -> float:
    seconds = timed(lambda: trainer.fit(module, datamodule=dm))
    if trainer.global_step != expected_steps:
        raise RuntimeError(f"Lightning ran {trainer.global_step} steps, expected {expected_steps}")
    return seconds


def bench_dataset(name: str, rounds: int, target_steps: int, diagnose: bool, tmp: Path) -> dict[str, float]:
    dm = datamodule(name, tmp / "data")
    input_shape = DATASETS[name]
    steps_per_epoch = len(dm.train_dataloader())
    epochs = ceil(target_steps / steps_per_epoch)
    steps = epochs * steps_per_epoch
    samples = epochs * len(dm.train_data)

    arms = {
        "plain": lambda: plain_loop(dm, input_shape, epochs),
        "ours": lambda: lightning_fit(
            dm, ClassifierModule(build_model(input_shape), adam, constant), ours_trainer(tmp / "ours", epochs, False), steps
        ),
        "ours+bar": lambda: lightning_fit(
            dm, ClassifierModule(build_model(input_shape), adam, constant), ours_trainer(tmp / "bar", epochs, True), steps
        ),
    }
    if diagnose:
        arms |= {
            "lightning-floor": lambda: lightning_fit(dm, LossOnly(build_model(input_shape)), bare_trainer(epochs), steps),
            "module": lambda: lightning_fit(
                dm, ClassifierModule(build_model(input_shape), adam, constant), bare_trainer(epochs), steps
            ),
            "ours-nondet": lambda: lightning_fit(
                dm,
                ClassifierModule(build_model(input_shape), adam, constant),
                ours_trainer(tmp / "nondet", epochs, False, deterministic=False),
                steps,
            ),
        }
    seconds = interleaved(arms, rounds)
    print(f"\n{name}: MLP {'-'.join(map(str, [input_shape[0] * input_shape[1] * input_shape[2], 256, 256, 10]))}, "
          f"batch 128, {epochs} epochs = {steps} steps, {samples} samples, {rounds} rounds")
    plain = seconds["plain"]
    print(f"  {'arm':16s} {'samples/s':>10s} {'ms/step':>8s} {'vs plain':>9s} {'overhead ms/step':>17s}")
    ratios = {}
    for arm, times in seconds.items():
        ratios[arm] = paired_ratio(plain, times)  # samples/s ratio = inverse time ratio
        median_s = statistics.median(times)
        overhead = statistics.median(t - p for t, p in zip(times, plain)) / steps * 1e3
        print(f"  {arm:16s} {samples / median_s:10.0f} {median_s / steps * 1e3:8.3f} {ratios[arm]:9.3f} {overhead:17.3f}")
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=["digits", "mnist_t10k"], choices=sorted(DATASETS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=200, help="about this many optimizer steps per fit")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--diagnose", action="store_true")
    args = parser.parse_args()
    quiet_lightning()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(machine_line())
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.data:
            results[name] = bench_dataset(name, args.rounds, args.steps, args.diagnose, Path(tmp))
    print()
    for name, ratios in results.items():
        print(ratio_line(f"train_throughput[{name}, ours+bar]", ratios["ours+bar"], GOAL))
        print(ratio_line(f"train_throughput[{name}]", ratios["ours"], GOAL))
    worst = min(results, key=lambda n: results[n]["ours"])
    print(ratio_line("train_throughput", results[worst]["ours"], GOAL) + f"  [worst dataset: {worst}, no progress bar]")


if __name__ == "__main__":
    main()
