"""``python -m initlab.analyze``: the curvature record of a model at init or from a checkpoint.

    python -m initlab.analyze data=digits model=mlp init=spectral
    python -m initlab.analyze ckpt_path=logs/train/runs/<time>/checkpoints/last.ckpt
    python -m initlab.analyze data=mnist_t10k num_samples=all device=auto dtype=float64

The app body (:func:`analyze`) builds data and model as train.py does (same seed -> same init),
loads the checkpoint's weights, moves the model to ``device`` and measures the Hessian of the
mean loss over ``num_samples`` training samples (``all``: the whole train split, in chunks of
``analysis.batch_size``) in ``dtype``. It writes ``analysis.json`` (per layer and global
curvature record), ``esd.json`` (spectral density); the entry point adds ``metrics.json``.
"""

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

DEVICES = ("cpu", "cuda", "auto")
DTYPES = ("float32", "float64")


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


def analyze(cfg: DictConfig, output_dir: Path, runtime: dict[str, Any]) -> dict[str, Any]:
    """Build data and model, load weights, analyse on ``cfg.device`` in ``cfg.dtype``, write the records."""
    from hydra.utils import instantiate
    from torch.nn import functional as F

    from initlab.analysis import analyze_model
    from initlab.config import validate_with_data
    from initlab.training.build import build_datamodule, build_model, load_model_weights, seed_everything
    from initlab.training.records import metrics_record, write_json

    device, dtype = analysis_device(cfg.device), analysis_dtype(cfg.dtype)
    seed_everything(cfg.seed)
    datamodule = build_datamodule(cfg)
    validate_with_data(cfg, datamodule, total_steps=0)
    model, _ = build_model(cfg, datamodule)
    if cfg.get("ckpt_path"):
        load_model_weights(model, cfg.ckpt_path)  # refuses a missing file or a hash mismatch (ConfigError)
    data = training_samples(datamodule, cfg.num_samples, cfg.seed)
    settings = instantiate(cfg.analysis)
    result = analyze_model(settings.problem(model.to(device), F.cross_entropy, data, dtype), settings)
    source = {"ckpt_path": cfg.get("ckpt_path"), "init": runtime["choices"].get("init"), "num_samples": len(data[1]),
              "device": str(device), "dtype": cfg.dtype}
    write_json(output_dir / "analysis.json", {"source": source, **result["analysis"]})
    write_json(output_dir / "esd.json", result["esd"])
    summary = result["analysis"]["global"]
    headline = {key: summary.get(key) for key in
                ("lambda_max", "lambda_min", "trace", "lr_gamma_star", "lr_edge")}
    headline["lambda_max_residual"] = summary["top_residuals"][0]
    print("analysis: " + " ".join(f"{k}={v:.5g}" for k, v in headline.items() if isinstance(v, float))
          + f" samples={len(data[1])} ({output_dir})")
    return metrics_record("done", {}, analysis=headline, source=source)


if __name__ == "__main__":
    from initlab.cli.analyze import main

    main()
