"""Data path: our in-memory ``InMemoryLoader`` vs torchvision's per-sample Dataset + DataLoader.

    python benchmarks/data_path.py                 # ~1 min
    python benchmarks/data_path.py --rounds 9 --workers 0 2

Both serve one shuffled epoch of normalized MNIST t10k images as [128, 1, 28, 28] float32
batches with int64 labels:
  ours         the mnist_t10k datamodule's train loader: the 7,000 train images normalized once
               in memory, each batch gathered by index (``InMemoryLoader``)
  torchvision  a ``VisionDataset`` over the same uint8 image array doing what
               ``torchvision.datasets.MNIST`` does per sample (PIL image -> ``ToTensor`` ->
               ``Normalize``), batched by ``torch.utils.data.DataLoader(shuffle=True)``; one arm
               per ``--workers`` value (workers persistent, started before timing)
The ratio is ours samples/s over a torchvision arm's, the median of per-round ratios of wall
time (the worker arms work in other processes), against the arm that comes closest. Goal >= 10.
"""

import argparse
import statistics
import tempfile
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torchvision import transforms
from torchvision.datasets import VisionDataset

from common import Timing, datamodule, interleaved, machine_line, mnist_t10k_path, paired_ratio, ratio_line, timed
from initlab.data.idx import read_idx_pair
from initlab.data.mnist_t10k import IMAGES_FILE, LABELS_FILE

GOAL = 10.0
BATCH_SIZE = 128


class PerSampleImages(VisionDataset):
    """Images held as a uint8 [N, H, W] array, turned into a PIL image and transformed one at a time."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform) -> None:
        super().__init__(root=None, transform=transform)
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        from PIL import Image

        image = Image.fromarray(self.images[index].numpy(), mode="L")
        return self.transform(image), int(self.labels[index])


def iterate(loader) -> int:
    """Consume one epoch; returns the samples seen (touching each batch so nothing is lazy)."""
    seen = 0
    for inputs, targets in loader:
        seen += targets.shape[0]
        assert inputs.shape[1:] == (1, 28, 28) and inputs.dtype == torch.float32
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader num_workers, one arm each")
    args = parser.parse_args()
    print(machine_line())

    with tempfile.TemporaryDirectory() as tmp:
        dm = datamodule("mnist_t10k", Path(tmp) / "data", batch_size=BATCH_SIZE)
        ours_loader = dm.train_dataloader()
        path = mnist_t10k_path()
        images, labels = read_idx_pair(path / IMAGES_FILE, path / LABELS_FILE)
        mean, std = float(dm.mean[0]), float(dm.std[0])
        dataset = PerSampleImages(images, labels, transforms.Compose([transforms.ToTensor(), transforms.Normalize((mean,), (std,))]))
        tv_loaders = {
            f"torchvision w{n}": DataLoader(
                dataset, batch_size=BATCH_SIZE, shuffle=True, num_workers=n, persistent_workers=n > 0
            )
            for n in args.workers
        }
        samples = {"ours": len(dm.train_data)} | {name: len(dataset) for name in tv_loaders}

        def ours() -> Timing:
            ours_loader.sampler.set_epoch(ours_loader.sampler.epoch + 1)
            return timed(lambda: iterate(ours_loader))

        arms = {"ours": ours} | {name: (lambda loader=loader: timed(lambda: iterate(loader))) for name, loader in tv_loaders.items()}
        timings = interleaved(arms, args.rounds)

    # Wall time: the worker arms do their work in other processes.
    rates = {name: [samples[name] / t.wall for t in times] for name, times in timings.items()}
    print(f"one shuffled epoch, batch {BATCH_SIZE}, {args.rounds} rounds (median)")
    print(f"  {'arm':16s} {'samples':>8s} {'samples/s':>12s} {'ms/epoch':>9s}")
    for name, times in timings.items():
        wall_ms = statistics.median(t.wall for t in times) * 1e3
        print(f"  {name:16s} {samples[name]:8d} {statistics.median(rates[name]):12.0f} {wall_ms:9.1f}")
    ratios = {name: paired_ratio(rates["ours"], rates[name]) for name in tv_loaders}
    for name, value in ratios.items():
        print(f"  ours / {name}: {value:.1f}x")
    closest = min(ratios, key=ratios.get)
    print(ratio_line("data_path", ratios[closest], GOAL) + f"  [vs {closest}, the closest torchvision arm]")


if __name__ == "__main__":
    main()
