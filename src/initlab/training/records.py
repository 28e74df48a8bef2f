"""The files every run leaves in its output directory (contract in ARCHITECTURE.md)."""

import atexit
import csv
import json
import math
import os
from pathlib import Path
from typing import Any

from initlab.files import atomic_write, links_below, read_regular

LOCK_NAME = ".initlab.lock"
_held_locks: dict[str, int] = {}  # folder -> descriptor, open until the run ends (or the process, however it ends)

STATUSES = ("done", "diverged", "failed", "interrupted")
FINISHED = ("done", "diverged", "failed")  # a record of a run that ended; ``interrupted`` waits for its resume
# A record is a small JSON object: what a reader accepts from a folder someone handed over.
RECORD_MAX_BYTES = 1 << 20
RECORD_MAX_DEPTH = 32
MAX_INT_DIGITS = 30  # longer integers are read as inf (never an overflow later, never int's 4300-digit error)
# Where a run (or sweep) writes: no entry of these folders (relative to its dir) may be a symbolic link when it starts.
WRITTEN_FOLDERS = (".", ".hydra", "checkpoints")
SWEEP_MARKS = ("sweep.json", "multirun.yaml", "aggregate.md")  # a sweep ran in a folder holding one of these


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
    return atomic_write(path, json.dumps(json_safe(record), indent=2, sort_keys=False) + "\n")


def _bounded_int(text: str) -> int | float:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        return -math.inf if text.startswith("-") else math.inf
    return int(text)


def _depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value, walked without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, level)
            stack += [(child, level + 1) for child in (node.values() if isinstance(node, dict) else node)]
    return deepest


def read_json(path: str | Path, max_bytes: int = RECORD_MAX_BYTES, max_depth: int = RECORD_MAX_DEPTH) -> Any:
    """A JSON file someone may have handed over, as data: ``ValueError`` (one line) for anything but a regular file of
    at most ``max_bytes`` holding UTF-8 JSON nested at most ``max_depth`` deep. Huge numbers read as +-inf."""
    text = read_regular(path, max_bytes).decode("utf-8")
    try:
        value = json.loads(text, parse_int=_bounded_int)
    except RecursionError:
        raise ValueError(f"is nested deeper than {max_depth}") from None
    if _depth(value) > max_depth:
        raise ValueError(f"is nested deeper than {max_depth}")
    return value


def sweep_id(sweep_dir: str | Path) -> str | None:
    """The id in ``<sweep_dir>/sweep.json`` (written as a sweep starts; each job records it), None if there is none."""
    try:
        content = read_json(Path(sweep_dir) / "sweep.json")
    except (OSError, ValueError):
        return None
    return content.get("id") if isinstance(content, dict) and isinstance(content.get("id"), str) else None


def read_status(path: str | Path) -> str | None:
    """The ``status`` of a metrics.json, None if there is none; ``unreadable`` for a file that is not a record."""
    if not os.path.lexists(path):
        return None
    try:
        record = read_json(path)
    except (OSError, ValueError):
        return "unreadable"
    status = record.get("status") if isinstance(record, dict) else None
    return status if status in STATUSES else "unreadable"


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


class RunDirTaken(RuntimeError):
    """The run (or sweep) dir holds a finished run or an earlier sweep, and the user asked neither to resume nor to overwrite."""


def lock_run_dir(folder: str | Path) -> None:
    """Hold ``<folder>/.initlab.lock`` until :func:`release_run_dir` (or the process ends): one writer per run (or sweep) dir.

    An advisory ``flock`` that the kernel releases when the process ends, however it ends (a
    SIGKILL leaves no stale lock). A second process raises :class:`RunDirBusy` naming the holder.
    The file is removed when the holder lets go, still locked; a process that opened it just before
    finds it unlinked after its own ``flock`` and locks the new file instead, so there is never a
    second writer.
    """
    import fcntl

    folder = Path(folder).absolute()
    if str(folder) in _held_locks:
        return
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    while True:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(descriptor, 32).decode(errors="replace").strip() or "?"
            os.close(descriptor)
            raise RunDirBusy(f"another initlab process (pid {holder}) is writing there; wait for it to end or pick another dir") from None
        if _same_file(descriptor, path):
            break
        os.close(descriptor)  # the previous holder removed the file as it let go: lock the one there now
    os.ftruncate(descriptor, 0)
    os.write(descriptor, str(os.getpid()).encode())
    if not _held_locks:
        atexit.register(release_all)
    _held_locks[str(folder)] = descriptor


def _same_file(descriptor: int, path: Path) -> bool:
    try:
        on_disk = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    mine = os.fstat(descriptor)
    return (mine.st_dev, mine.st_ino) == (on_disk.st_dev, on_disk.st_ino)


def release_run_dir(folder: str | Path) -> None:
    """Let go of ``folder``'s lock and remove its file (a clean exit leaves no ``.initlab.lock``)."""
    descriptor = _held_locks.pop(str(Path(folder).absolute()), None)
    if descriptor is None:
        return
    try:
        os.unlink(Path(folder).absolute() / LOCK_NAME)  # still locked here: see lock_run_dir
    except OSError:
        pass
    os.close(descriptor)


def release_all() -> None:
    for folder in list(_held_locks):
        release_run_dir(folder)


def holds(folder: str | Path) -> bool:
    """Whether this process holds ``folder``'s lock (so it may write a record there)."""
    return str(Path(folder).absolute()) in _held_locks


def check_run_dir(folder: str | Path, sweep: bool, resume: bool, overwrite: bool) -> None:
    """Refuse a dir where the run (or sweep) would write through a link, or over a finished run or an earlier sweep.

    ``resume`` (``ckpt_path=last``) and ``overwrite`` (``overwrite=true``) allow the latter; links are never allowed.
    Reads only small regular files: a planted FIFO or device cannot make it hang.
    """
    folder = Path(folder)
    if links := links_below(folder, WRITTEN_FOLDERS):
        raise RunDirTaken(f"{links[0]} is a symbolic link; a run writes only regular files inside its own dir")
    if resume or overwrite or not folder.is_dir():
        return
    if sweep:
        earlier = [m for m in SWEEP_MARKS if os.path.lexists(folder / m)] or \
                  [f"{job.name}/metrics.json" for job in sorted(folder.iterdir()) if os.path.lexists(job / "metrics.json")]
        if earlier:
            raise RunDirTaken(f"holds an earlier sweep ({earlier[0]}); resume it with ckpt_path=last, or overwrite=true, "
                              "or pick another hydra.sweep.dir")
        return
    status = read_status(folder / "metrics.json")
    if status is not None and status != "interrupted":
        raise RunDirTaken(f"holds a finished run (metrics.json: {status}); resume it with ckpt_path=last, or overwrite=true, "
                          "or pick another hydra.run.dir")


def split_metrics(metrics: dict[str, Any]) -> dict[str, dict[str, float]]:
    """``{"train/loss": x, ...}`` -> ``{"train": {"loss": x}, ...}``."""
    nested: dict[str, dict[str, float]] = {"train": {}, "val": {}, "test": {}}
    for key, value in metrics.items():
        stage, _, name = key.partition("/")
        if stage in nested and name:
            nested[stage][name] = float(value)
    return nested


def interrupted_record(output_dir: str | Path, reason: str) -> dict[str, Any]:
    """The record of a run stopped by a signal, with the one command that continues it (from a checkpoint, or afresh)."""
    return metrics_record("interrupted", {}, error=f"{reason}; resume with ckpt_path=last hydra.run.dir={output_dir}")


def metrics_record(status: str, metrics: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The ``metrics.json`` record: status, per-stage metrics, then run facts."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
    return {"status": status, **split_metrics(metrics), **extra}
