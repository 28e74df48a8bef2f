"""The files every run leaves in its output directory (contract in ARCHITECTURE.md)."""

import json
import math
from pathlib import Path
from typing import Any

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
    tmp.write_text(json.dumps(json_safe(record), indent=2, sort_keys=False) + "\n")
    tmp.replace(path)
    return path


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
