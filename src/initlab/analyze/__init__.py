"""``python -m initlab.analyze``: the curvature record of a model at init or from a checkpoint.

    python -m initlab.analyze data=digits model=mlp init=spectral
    python -m initlab.analyze ckpt_path=logs/train/runs/<time>/checkpoints/last.ckpt
    python -m initlab.analyze data=mnist_t10k num_samples=all device=auto dtype=float64

The app body (:func:`analyze`) builds data and model as train.py does (same seed -> same init),
loads the checkpoint's weights, moves the model to ``device`` and measures the Hessian of the
mean loss over ``num_samples`` training samples (``all``: the whole train split, in chunks of
``analysis.batch_size``) in ``dtype``. With ``ckpt_path`` the model, init and data are the
checkpoint's own (its run's resolved ``.hydra/config.yaml``); an explicit override that
contradicts them is refused. That folder may come from someone else: its config is read as data
(a bounded regular file) and the adopted config passes the same schema and ``_target_`` allowlist
as a typed one (:func:`initlab.config.validate_config`) before anything is built (the entry point adopts
it before its own validation, so the run dir's config files record it). Progress goes to stderr
(:mod:`initlab.analysis.progress`). It writes ``analysis.json`` (per layer and global curvature record),
``esd.json`` (spectral density); the entry point (:mod:`initlab.cli.analyze`, which imports this
module, never the reverse) adds ``metrics.json``.
"""

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict, read_write

DEVICES = ("cpu", "cuda", "auto")
DTYPES = ("float32", "float64")
CHECKPOINT_GROUPS = ("model", "init", "data")  # what a checkpoint's run fixes for its analysis
LOADING_KEYS = ("device", "pin_memory", "batch_size", "eval_batch_size", "seed")  # how data is served, not which
MAX_RUN_CONFIG_BYTES = 2**20  # a run's .hydra/*.yaml is a few KiB; anything larger is not one


def analysis_device(name: str) -> Any:
    """The torch device of ``device=cpu|cuda|auto`` (auto: CUDA when there is one)."""
    import torch

    from initlab.config import ConfigError

    if name not in DEVICES:
        raise ConfigError(f"device: got {name!r}, one of {', '.join(DEVICES)}")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: got 'cuda', needs a CUDA device and this machine has none (use device=cpu or auto)")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def analysis_dtype(name: str) -> Any:
    import torch

    from initlab.config import ConfigError

    if name not in DTYPES:
        raise ConfigError(f"dtype: got {name!r}, one of {', '.join(DTYPES)}")
    return getattr(torch, name)


def training_samples(datamodule: Any, num_samples: int | str, seed: int) -> tuple[Any, Any]:
    """``num_samples`` training samples chosen by ``seed`` (the whole split for ``all`` or more than it has)."""
    from initlab.config import ConfigError

    train = datamodule.train_data
    if num_samples == "all" or (isinstance(num_samples, int) and num_samples >= len(train.y)):
        return train.x, train.y
    if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples < 1:
        raise ConfigError(f"num_samples: got {num_samples!r}, a positive integer or 'all'")
    return datamodule.sample_batch(num_samples, seed=seed)


def run_config_path(ckpt_path: str | Path) -> Path:
    """``<run dir>/.hydra/config.yaml`` of ``<run dir>/checkpoints/<name>.ckpt``."""
    return Path(ckpt_path).resolve().parent.parent / ".hydra" / "config.yaml"


def overridden(overrides: list[str], group: str) -> list[str]:
    """The command-line overrides that set ``group`` or a key in it (``model=...``, ``model.widths=...``, ``+model.x=...``)."""
    return [o for o in overrides if o.lstrip("+~").split("=", 1)[0].split(".", 1)[0].split("@", 1)[0] == group]


def adopt_checkpoint_config(cfg: DictConfig, overrides: list[str]) -> dict[str, Any]:
    """Replace ``cfg``'s model, init and data by those of the checkpoint's run (read from its resolved config);
    ConfigError (one line) when the run's config is missing or an explicit override contradicts it.
    Returns what was adopted (for analysis.json): the config's path and the run's group choices."""
    from initlab.config import ConfigError
    from initlab.schema import problem

    path = run_config_path(cfg.ckpt_path)
    if not path.is_file():
        raise ConfigError(problem("ckpt_path", cfg.ckpt_path, f"needs its run's resolved config beside it ({path} is missing)"))
    run = read_run_yaml(cfg.ckpt_path, path)
    for group in CHECKPOINT_GROUPS:
        if group not in run:
            raise ConfigError(problem("ckpt_path", cfg.ckpt_path, f"its run config {path} has no {group!r}"))
        if group == "data":  # the analysis serves the run's data its own way (device, batch sizes)
            served = OmegaConf.to_container(cfg.data)
            for key in LOADING_KEYS:
                if key in served:
                    run.data[key] = served[key]
        mine = [o for o in overridden(overrides, group) if o.split("=", 1)[0].rsplit(".", 1)[-1] not in LOADING_KEYS]
        if mine and OmegaConf.to_container(cfg[group]) != OmegaConf.to_container(run[group]):
            raise ConfigError(problem(mine[0].split("=", 1)[0], mine[0].split("=", 1)[-1],
                                      f"contradicts the checkpoint's {group} ({path}); drop the override to analyse the checkpoint"))
    choices = run_choices(cfg.ckpt_path, path.with_name("hydra.yaml"))
    with read_write(cfg), open_dict(cfg):
        for group in CHECKPOINT_GROUPS:
            cfg[group] = run[group]
    return {"run_config": str(path), **{group: choices.get(group) for group in CHECKPOINT_GROUPS}}


def read_run_yaml(ckpt_path: str, path: Path) -> DictConfig:
    """A run folder's YAML as data: a regular file of at most ``MAX_RUN_CONFIG_BYTES`` holding a mapping (ConfigError otherwise)."""
    from initlab.config import ConfigError
    from initlab.schema import problem

    if not path.is_file() or path.stat().st_size > MAX_RUN_CONFIG_BYTES:
        raise ConfigError(problem("ckpt_path", ckpt_path, f"its run config {path} must be a regular file of at most "
                                                          f"{MAX_RUN_CONFIG_BYTES} bytes"))
    try:
        loaded = OmegaConf.load(path)
    except Exception as err:  # YAML syntax, duplicate keys, odd types: the folder is not a run's
        raise ConfigError(problem("ckpt_path", ckpt_path, f"its run config {path} is not readable YAML "
                                                          f"({type(err).__name__})")) from None
    if not isinstance(loaded, DictConfig):
        raise ConfigError(problem("ckpt_path", ckpt_path, f"its run config {path} must be a mapping"))
    return loaded


def run_choices(ckpt_path: str, path: Path) -> dict[str, str | None]:
    """The run's group choices (``hydra.yaml``) for the record: names only, {} when the file is absent."""
    if not path.is_file():
        return {}
    choices = OmegaConf.select(read_run_yaml(ckpt_path, path), "hydra.runtime.choices", default=None)
    plain = OmegaConf.to_container(choices, resolve=False) if isinstance(choices, DictConfig) else {}
    return {group: value if isinstance(value, str) else None for group, value in plain.items()
            if group in CHECKPOINT_GROUPS}


def analyze(cfg: DictConfig, output_dir: Path, runtime: dict[str, Any]) -> dict[str, Any]:
    """Build data and model, load weights, analyse on ``cfg.device`` in ``cfg.dtype``, write the records.
    A checkpoint's adopted config is validated like a typed one before anything is built."""
    from hydra.utils import instantiate
    from torch.nn import functional as F

    from initlab.analysis import analyze_model
    from initlab.analysis.progress import Progress, reporting, stage
    from initlab.config import validate_config, validate_with_data
    from initlab.training.build import build_datamodule, build_model, load_model_weights, seed_everything
    from initlab.training.records import metrics_record, write_json

    device, dtype = analysis_device(cfg.device), analysis_dtype(cfg.dtype)
    adopted = adopt_checkpoint_config(cfg, runtime["overrides"]) if cfg.get("ckpt_path") else None
    if adopted is not None:
        validate_config(cfg, data_files=True)  # a handed-over run folder: schema and target allowlist first
    with reporting(Progress()):
        with stage("data and model" + (" (checkpoint weights)" if cfg.get("ckpt_path") else "")):
            seed_everything(cfg.seed)
            datamodule = build_datamodule(cfg)
            validate_with_data(cfg, datamodule, total_steps=0)
            model, _ = build_model(cfg, datamodule)
            if cfg.get("ckpt_path"):
                load_model_weights(model, cfg.ckpt_path)  # refuses a missing file or a hash mismatch (ConfigError)
            data = training_samples(datamodule, cfg.num_samples, cfg.seed)
        settings = instantiate(cfg.analysis)
        result = analyze_model(settings.problem(model.to(device), F.cross_entropy, data, dtype), settings)
    choices = adopted or {group: runtime["choices"].get(group) for group in CHECKPOINT_GROUPS}
    source = {"ckpt_path": cfg.get("ckpt_path"), **choices, "num_samples": len(data[1]), "device": str(device),
              "dtype": cfg.dtype, "activation": cfg.model.get("activation"),
              "config": {group: OmegaConf.to_container(cfg[group], resolve=True) for group in ("model", "init")}}
    write_json(output_dir / "analysis.json", {"source": source, **result["analysis"]})
    write_json(output_dir / "esd.json", result["esd"])
    summary = result["analysis"]["global"]
    headline = {key: summary.get(key) for key in
                ("lambda_max", "lambda_min", "trace", "trace_se", "lr_gamma_star", "lr_edge")}
    headline["lambda_max_residual"] = summary["top_residuals"][0]
    print("analysis: " + " ".join(f"{k}={v:.5g}" for k, v in headline.items() if isinstance(v, float))
          + f" samples={len(data[1])} ({output_dir})")
    return metrics_record("done", {}, analysis=headline, source=source)
