"""The files every run leaves in its output directory (contract in ARCHITECTURE.md)."""

import csv
import json
import math
import os
from pathlib import Path
from typing import Any

LOCK_NAME = ".initlab.lock"
_held_locks: dict[str, int] = {}  # folder -> descriptor, open for the life of the process

STATUSES = ("done", "diverged", "failed", "interrupted")


def json_safe(value: Any) -> Any:
    """Plain JSON types: tensors -> numbers, NaN/inf -> their string, containers recursively."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_json(path: str | Path, record: Any) -> Path:
    """Write ``record`` atomically (tmp file + rename), so no reader ever sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        tmp.write_text(json.dumps(json_safe(record), indent=2, sort_keys=False) + "\n")
        tmp.replace(path)
    except BaseException:  # a full or read-only disk: no .tmp left behind
        tmp.unlink(missing_ok=True)
        raise
    return path


def last_csv_row(path: str | Path) -> dict[str, str]:
    """The last row of a CSV file (history.csv), empty if there is none."""
    path = Path(path)
    if not path.is_file():
        return {}
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return rows[-1] if rows else {}


class RunDirBusy(RuntimeError):
    """Another live process writes into the run dir."""


def lock_run_dir(folder: str | Path) -> None:
    """Hold ``<folder>/.initlab.lock`` for the rest of this process: one writer per run (or sweep) dir.

    An advisory ``flock`` that the kernel releases when the process ends, however it ends (a
    SIGKILL leaves no stale lock). A second process raises :class:`RunDirBusy` naming the holder.
    """
    import fcntl

    folder = Path(folder).absolute()
    if str(folder) in _held_locks:
        return
    folder.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(descriptor, 32).decode(errors="replace").strip() or "?"
        os.close(descriptor)
        raise RunDirBusy(f"another initlab process (pid {holder}) is writing there; wait for it to end or pick another dir") from None
    os.ftruncate(descriptor, 0)
    os.write(descriptor, str(os.getpid()).encode())
    _held_locks[str(folder)] = descriptor


def split_metrics(metrics: dict[str, Any]) -> dict[str, dict[str, float]]:
    """``{"train/loss": x, ...}`` -> ``{"train": {"loss": x}, ...}``."""
    nested: dict[str, dict[str, float]] = {"train": {}, "val": {}, "test": {}}
    for key, value in metrics.items():
        stage, _, name = key.partition("/")
        if stage in nested and name:
            nested[stage][name] = float(value)
    return nested


def metrics_record(status: str, metrics: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The ``metrics.json`` record: status, per-stage metrics, then run facts."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
    return {"status": status, **split_metrics(metrics), **extra}
