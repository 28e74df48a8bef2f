"""What the DVC stages share: ``params.yaml``, the Hydra configs, the prepared data, table I/O.

Stages read ``params.yaml`` (the pipeline-level knobs) and the files earlier stages wrote under
``results/``; model, init and data settings come from ``conf/`` through Hydra's compose API, so
an in-process demo builds exactly the model ``python train.py experiment=pipeline`` trains.
"""

import argparse
import csv
import functools
import gzip
import io
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any


from initlab.training.records import json_safe, write_json

__all__ = [
    "build_model",
    "compose_config",
    "conf_node",
    "data_path",
    "lambda_max",
    "load_data",
    "load_params",
    "load_train_batch",
    "make_initializer",
    "make_optimizer",
    "parallel_map",
    "pipeline_activation",
    "read_csv",
    "read_json",
    "stage_device",
    "stage_parser",
    "write_csv",
    "write_json",
]

PARAMS_FILE = "params.yaml"
# The Hydra overlay (conf/experiment/pipeline.yaml) that fixes the pipeline's model.
EXPERIMENT = "pipeline"


def load_params(path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    """The pipeline knobs: ``params.yaml`` as plain Python data, checked (one line and exit 2 on a bad value)."""
    from initlab.pipeline.params_schema import check_params

    return check_params(path)


def stage_parser(description: str | None) -> argparse.ArgumentParser:
    """The arguments every stage takes: ``--params`` and ``--results`` (where earlier stages wrote)."""
    parser = argparse.ArgumentParser(description=(description or "").split("\n\n")[0])
    parser.add_argument("--params", default=PARAMS_FILE, help="pipeline knobs (default: params.yaml)")
    parser.add_argument("--results", default="results", help="root of the stages' outputs (default: results)")
    return parser


def data_path(results: str | Path, data: str) -> Path:
    """Where ``prepare`` writes the normalized tensors of ``data``: gzip of ``save_prepared``'s file (MNIST t10k:
    2.6 MB instead of 31 MB, small enough for the in-repo DVC remote, so a ``dvc pull`` completes the workspace)."""
    return Path(results) / "data" / f"{data}.pt.gz"


def load_data(path: str | Path, device=None):
    """The prepared data at ``path`` (:func:`data_path`), every split on ``device`` (default: the CPU)."""
    import dataclasses

    from initlab.data.cache import load_prepared

    with gzip.open(path, "rb") as handle:
        buffer = io.BytesIO(handle.read())
    buffer.name = str(path)  # named in load_prepared's errors
    data = load_prepared(buffer)
    if device is None:
        return data
    return dataclasses.replace(data, **{name: split.to(device) for name, split in data.splits().items()})


def stage_device(name: str):
    """``params.yaml`` ``device`` (cpu | cuda | auto: cuda when present) as a torch device; a bad value ends the
    stage with one line ``initlab: device: got ..., ...`` and exit 2, before any work."""
    from initlab.analyze import analysis_device
    from initlab.config import ConfigError

    try:
        return analysis_device(name)
    except ConfigError as error:
        print(f"initlab: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def compose_config(overrides: Sequence[str], config_name: str = "train"):
    """Compose ``conf/<config_name>.yaml`` with ``overrides`` (Hydra's compose API, no run dir, no logging)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from initlab.config import CONFIG_DIR, register_resolvers

    register_resolvers()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            return compose(config_name, overrides=list(overrides))
    finally:
        GlobalHydra.instance().clear()


@functools.cache
def _model_config(data: str, overrides: tuple[str, ...]):
    """The composed model node (composing costs ~0.5 s: done once per model shape)."""
    return compose_config([f"data={data}", f"experiment={EXPERIMENT}", *overrides]).model


def pipeline_activation(data: str) -> str:
    """The activation of the pipeline's model (``conf/experiment/pipeline.yaml``): the spectra stage's net."""
    return str(_model_config(data, ()).activation)


def build_model(data: str, overrides: Sequence[str] = ()):
    """The pipeline's model (``experiment=pipeline``) for ``data``, with extra model ``overrides``; not initialized."""
    from initlab.models import instantiate_model

    return instantiate_model(_model_config(data, tuple(overrides)))


@functools.cache
def conf_node(group: str, name: str) -> dict[str, Any]:
    """``conf/<group>/<name>.yaml`` composed by Hydra (its defaults list applied), as plain data."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(compose_config([f"{group}={name}"])[group], resolve=True)


def make_initializer(name: str, **settings: Any):
    """The callable ``conf/init/<name>.yaml`` instantiates to, with ``settings`` overriding its keys."""
    from hydra.utils import instantiate

    return instantiate(conf_node("init", name) | settings)


def make_optimizer(name: str, parameters, **settings: Any):
    """The optimizer of ``conf/optim/<name>.yaml`` over ``parameters``, with ``settings`` (e.g. lr) overriding its keys."""
    from hydra.utils import instantiate

    return instantiate(conf_node("optim", name) | settings)(parameters)


def lambda_max(model, batch, tol: float, **problem: Any) -> float:
    """lambda_max of the mean cross-entropy's curvature over ``batch`` (one chunk: the graph is built once);
    ``problem``: ``kind`` ("hessian" or "gauss_newton"), ``params`` (a layer block), ... of ``CurvatureProblem``."""
    from torch.nn import functional as F

    from initlab.analysis import CurvatureProblem, top_eigenvalue

    return top_eigenvalue(CurvatureProblem(model, F.cross_entropy, tuple(batch), batch_size=len(batch[1]), **problem), tol=tol)


def load_train_batch(path: str | Path, n: int | None = None, seed: int = 0, device=None):
    """``n`` samples of the prepared train split (all when ``n`` is None), chosen by ``seed``, on ``device``."""
    return sample_train_batch(load_data(path, device).train, n, seed)


def sample_train_batch(train, n: int | None = None, seed: int = 0):
    """``n`` samples of a train split (all when ``n`` is None), chosen by ``seed`` (the same on every device)."""
    import torch

    if n is None or n >= len(train.y):
        return train.x, train.y
    idx = torch.randperm(len(train.y), generator=torch.Generator().manual_seed(seed), device="cpu")[:n].to(train.y.device)
    return train.x[idx], train.y[idx]


def parallel_map(function, tasks: Sequence, workers: int, cost: Callable[[Any], float] | None = None) -> list:
    """``[function(task) for task in tasks]``, in ``workers`` spawned processes when more than one (results in task
    order; every task seeds itself, so the output does not depend on ``workers`` or on the order tasks run in).
    ``cost``: a task's relative cost; the costliest start first (longest-processing-time order), so the stage does
    not end on one long task while the other workers idle."""
    if workers <= 1 or len(tasks) <= 1:
        return [function(task) for task in tasks]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    order = sorted(range(len(tasks)), key=lambda i: -cost(tasks[i])) if cost else range(len(tasks))
    with ProcessPoolExecutor(min(workers, len(tasks)), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {i: pool.submit(function, tasks[i]) for i in order}
        return [futures[i].result() for i in range(len(tasks))]


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def write_csv(path: str | Path, rows: Iterable[dict[str, Any]]) -> Path:
    """Rows of dicts to CSV (columns: the union of keys, in first-seen order); parents created."""
    rows = [json_safe(row) for row in rows]
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def read_csv(path: str | Path) -> list[dict[str, Any]]:
    """CSV rows with numbers parsed (empty cells -> None)."""

    def parse(value: str) -> Any:
        if value == "":
            return None
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number

    with Path(path).open(newline="") as handle:
        return [{key: parse(value) for key, value in row.items()} for row in csv.DictReader(handle)]
