"""``TensorDataModule``: a dataset held as normalized in-memory tensors and batched by index."""

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import pytorch_lightning as pl
import torch
from torch import Tensor

from initlab.data.cache import PreparedData, files_sha256, load_prepared, save_prepared
from initlab.data.device import check_device_request, resolve_device
from initlab.data.loader import InMemoryLoader
from initlab.data.errors import CorruptDatasetError
from initlab.data.splits import TensorSplit, channel_stats, normalize

log = logging.getLogger(__name__)


class TensorDataModule(pl.LightningDataModule, ABC):
    """Loads a dataset once, normalizes it with train statistics and serves it from memory.

    Subclasses implement :meth:`load_raw`. ``prepare_data`` writes the normalized splits to
    :attr:`cache_path`; ``setup`` reads them from there when present (else builds them in memory),
    checks them against the declared ``input_shape``/``num_classes`` and moves them to ``device``.
    After ``setup``: ``train_data``, ``val_data``, ``test_data`` (:class:`TensorSplit`), the
    normalization ``mean``/``std`` (shape [C], on the CPU, to undo it) and ``data_device``.
    """

    name: ClassVar[str]

    def __init__(
        self,
        root: str,
        input_shape: Sequence[int],
        num_classes: int,
        batch_size: int = 128,
        eval_batch_size: int = 1024,
        seed: int = 0,
        limit_train: int | None = None,
        device: str = "cpu",
        pin_memory: bool = False,
    ) -> None:
        super().__init__()
        check_device_request(device)
        if limit_train is not None and limit_train < 1:
            raise ValueError(f"limit_train must be >= 1 or null, got {limit_train}")
        self.root = Path(root)
        self.input_shape = tuple(int(d) for d in input_shape)
        self.num_classes = int(num_classes)
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.seed, self.limit_train = seed, limit_train
        self.device_request, self.pin_memory = device, pin_memory
        self.train_data: TensorSplit | None = None
        self.val_data: TensorSplit | None = None
        self.test_data: TensorSplit | None = None
        self.mean: Tensor | None = None
        self.std: Tensor | None = None
        self.data_device: torch.device | None = None
        self._placed_for: torch.device | None = None

    @abstractmethod
    def load_raw(self) -> dict[str, TensorSplit]:
        """The ``train``/``val``/``test`` splits with pixels scaled to [0, 1], not yet normalized."""

    @property
    def cache_name(self) -> str:
        """The cache file's stem: the dataset name and every argument that changes the splits."""
        return f"{self.name}-seed{self.seed}"

    @property
    def cache_path(self) -> Path:
        """Where ``prepare_data`` writes the normalized splits: ``{root}/processed/{cache_name}.pt``."""
        return self.root / "processed" / f"{self.cache_name}.pt"

    def build(self) -> PreparedData:
        """Load the raw splits and normalize all three with the train split's per-channel stats."""
        raw = self.load_raw()
        mean, std = channel_stats(raw["train"].x)
        splits = {name: TensorSplit(normalize(s.x, mean, std), s.y) for name, s in raw.items()}
        return PreparedData(**splits, mean=mean, std=std)

    def source_files(self) -> list[Path]:
        """The files the splits are built from: their digest goes into the cache and is compared at every load, so a
        source changed after the cache was built is noticed. None for data bundled in a library (digits)."""
        return []

    def source_digest(self) -> str:
        return files_sha256([p for p in self.source_files() if p.is_file()])

    def materialize(self, path: str | Path) -> Path:
        """Build the prepared data and save it to ``path`` with its hashes; returns the path."""
        path = Path(path)
        save_prepared(self.build(), path, source=self.source_digest())
        return path

    def prepare_data(self) -> None:
        """Write the cache once (Lightning runs this on one process per node; DVC can call it too)."""
        if not self.cache_path.exists():
            self.materialize(self.cache_path)

    def setup(self, stage: str | None = None) -> None:
        """Load the splits once, then place them on the device.

        Placement is redone when a trainer with another root device attaches, because callers may
        run ``setup`` before ``trainer.fit`` (to build an init batch): "auto"/"cuda" then follow
        the trainer's device (each DDP rank its own GPU) once Lightning calls ``setup`` again.
        """
        if self.train_data is None:
            self._load()
        trainer_device = self._trainer_device()
        if self.data_device is None or trainer_device != self._placed_for:
            self._place(trainer_device)

    def _load(self) -> None:
        """Read the cache when present (else build in memory), check it and keep it on the CPU."""
        data = self._verified_cache() if self.cache_path.exists() else self.build()
        self.check_declared(data)
        train = data.train if self.limit_train is None else data.train.head(self.limit_train)
        self.train_data, self.val_data, self.test_data = train, data.val, data.test
        self.mean, self.std = data.mean, data.std

    def _verified_cache(self) -> PreparedData:
        """The cache if it proves whole and built from today's sources; else rebuilt from the sources (and rewritten)."""
        try:
            return load_prepared(self.cache_path, source=self.source_digest())
        except CorruptDatasetError as err:
            log.warning("%s; rebuilding it from the source data", err)
        data = self.build()
        try:
            save_prepared(data, self.cache_path, source=self.source_digest())
        except OSError as err:  # a read-only data dir: this run uses the rebuilt data, the next one rebuilds again
            log.warning("could not rewrite %s (%s)", self.cache_path, err)
        return data

    def _place(self, trainer_device: torch.device | None) -> None:
        splits = [self._require(s) for s in (self.train_data, self.val_data, self.test_data)]
        nbytes = sum(split.nbytes for split in splits)
        device = resolve_device(self.device_request, trainer_device, nbytes)
        self.train_data, self.val_data, self.test_data = (split.to(device) for split in splits)
        self.data_device, self._placed_for = device, trainer_device

    def check_declared(self, data: PreparedData) -> None:
        """Raise if the data disagrees with the config's ``input_shape``/``num_classes``.

        The model is built from those declared values, so this catches a dataset/model mismatch.
        """
        shape = tuple(data.train.x.shape[1:])
        if shape != self.input_shape:
            raise ValueError(
                f"{self.name}: the data has input shape {list(shape)} but the config declares "
                f"input_shape={list(self.input_shape)}"
            )
        num_classes = max(int(split.y.max()) for split in data.splits().values()) + 1
        if num_classes != self.num_classes:
            raise ValueError(
                f"{self.name}: the labels span {num_classes} classes but the config declares "
                f"num_classes={self.num_classes}"
            )

    def train_dataloader(self) -> InMemoryLoader:
        """Shuffled by (seed, epoch); under DDP each rank gets its own shard."""
        train = self._require(self.train_data)
        rank, world_size = self._shard()
        return InMemoryLoader(
            train.x,
            train.y,
            self.batch_size,
            shuffle=True,
            seed=self.seed,
            rank=rank,
            world_size=world_size,
            pin_memory=self.pin_memory,
        )

    def val_dataloader(self) -> InMemoryLoader:
        """In order and whole on every rank, so validation metrics are exact under DDP too."""
        return self._eval_loader(self._require(self.val_data))

    def test_dataloader(self) -> InMemoryLoader:
        """In order and whole on every rank, like validation."""
        return self._eval_loader(self._require(self.test_data))

    def sample_batch(self, n: int, seed: int = 0) -> tuple[Tensor, Tensor]:
        """``n`` train samples chosen by ``seed`` alone: data-aware inits and curvature probes
        see the same batch whatever the training order."""
        train = self._require(self.train_data)
        if not 0 < n <= len(train):
            raise ValueError(f"sample_batch: n must be in [1, {len(train)}], got {n}")
        idx = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:n]
        idx = idx.to(train.x.device)
        return train.x[idx], train.y[idx]

    def class_frequencies(self) -> Tensor:
        """The share of each class in the train split (shape [num_classes], sums to 1)."""
        y = self._require(self.train_data).y
        return torch.bincount(y, minlength=self.num_classes).float() / y.numel()

    def _eval_loader(self, split: TensorSplit) -> InMemoryLoader:
        return InMemoryLoader(split.x, split.y, self.eval_batch_size, pin_memory=self.pin_memory)

    def _require(self, split: TensorSplit | None) -> TensorSplit:
        if split is None:
            raise RuntimeError(f"{type(self).__name__}.setup() must run before the data is used")
        return split

    def _trainer_device(self) -> torch.device | None:
        return self.trainer.strategy.root_device if self.trainer is not None else None

    def _shard(self) -> tuple[int, int]:
        """(rank, world size) of the attached trainer; (0, 1) without one."""
        if self.trainer is None:
            return 0, 1
        return self.trainer.global_rank, self.trainer.world_size
