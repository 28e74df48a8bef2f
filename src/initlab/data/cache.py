"""The prepared dataset (normalized splits + the train statistics), saved once and reloaded by every run.

A cache is trusted only as far as it proves itself: it carries the sha256 of its own tensors and the
digest of the source files it was built from, and :func:`load_prepared` checks both, so a flipped bit,
a truncated or empty file, or sources changed since are a :class:`CorruptDatasetError` (the data
module then rebuilds the cache) instead of silently used numbers.
"""

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import torch
from torch import Tensor

from initlab.data.errors import CorruptDatasetError
from initlab.data.splits import TensorSplit

SPLIT_NAMES = ("train", "val", "test")
CONTENT_KEY, SOURCE_KEY = "content_sha256", "source_sha256"


@dataclass(frozen=True)
class PreparedData:
    """Normalized train/val/test splits and the per-channel train ``mean``/``std`` used (shape [C])."""

    train: TensorSplit
    val: TensorSplit
    test: TensorSplit
    mean: Tensor
    std: Tensor

    def splits(self) -> dict[str, TensorSplit]:
        """The three splits by name."""
        return {name: getattr(self, name) for name in SPLIT_NAMES}


def tensors_sha256(state: dict[str, Any]) -> str:
    """sha256 over the tensors of ``state`` (names, dtypes, shapes and bytes, in name order)."""
    digest = hashlib.sha256()
    for name in sorted(k for k, v in state.items() if isinstance(v, Tensor)):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{list(tensor.shape)};".encode())
        digest.update(memoryview(tensor.reshape(-1).view(torch.uint8).numpy()))
    return digest.hexdigest()


def files_sha256(paths: list[Path]) -> str:
    """One digest of the source files' names and bytes ("" when the data has no files of its own, e.g. bundled)."""
    if not paths:
        return ""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as handle:
            digest.update(f"{path.name}:{hashlib.file_digest(handle, 'sha256').hexdigest()};".encode())
    return digest.hexdigest()


def save_prepared(data: PreparedData, path: Path, source: str = "") -> None:
    """Write ``data`` to ``path`` atomically with its own sha256 and its ``source`` digest; a killed run or a full disk
    never leaves a half-written cache or a temporary file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = {"mean": data.mean, "std": data.std}
    for name, split in data.splits().items():
        state[f"{name}_x"], state[f"{name}_y"] = split.x, split.y
    state |= {CONTENT_KEY: tensors_sha256(state), SOURCE_KEY: source}
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_prepared(path: Path | IO[bytes], source: str | None = None) -> PreparedData:
    """Read what :func:`save_prepared` wrote (tensors only, loaded with ``weights_only``), checked whole.

    ``source``: the digest of the source files now; a cache built from other sources is stale.
    Raises :class:`CorruptDatasetError` naming the file for an unreadable, incomplete, altered or
    stale cache.
    """
    name = str(path) if isinstance(path, str | Path) else getattr(path, "name", "prepared data")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        raise CorruptDatasetError(f"{name}: unreadable prepared-data cache (empty, truncated or not a cache: {reason})") from None
    keys = [f"{split}_{part}" for split in SPLIT_NAMES for part in "xy"] + ["mean", "std", CONTENT_KEY]
    missing = [k for k in keys if not isinstance(state, dict) or k not in state]
    if missing:
        raise CorruptDatasetError(f"{name}: prepared-data cache lacks {missing} (written by an older initlab or another program)")
    if tensors_sha256(state) != state[CONTENT_KEY]:
        raise CorruptDatasetError(f"{name}: prepared-data cache does not match its own sha256 (changed on disk)")
    if source is not None and state.get(SOURCE_KEY, "") != source:
        raise CorruptDatasetError(f"{name}: prepared-data cache was built from other source files than the ones there now")
    splits = {split: TensorSplit(state[f"{split}_x"], state[f"{split}_y"]) for split in SPLIT_NAMES}
    return PreparedData(**splits, mean=state["mean"], std=state["std"])
