"""Config checks of the Hydra apps: every bad input is one ``ConfigError`` line before anything runs.

``validate_config`` runs right after composition, cheapest check first, and raises on the first
problem: the schema's key, value and cross-key rules (no torch import, so a typo fails in about
a second), then each target's signature and the machine's devices, then a dry build of data
module, model, init, optimizer and schedule (their constructors check the rest).
``validate_with_data`` checks what needs the loaded dataset. Hydra's own composition errors
become the same one line through ``hydra_error``.
"""

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from initlab import schema
from initlab.locations import CONFIG_DIR, PROJECT_ROOT

__all__ = ["CONFIG_DIR", "PROJECT_ROOT", "ConfigError", "hydra_error", "register_resolvers", "validate_config", "validate_with_data"]

MAX_MESSAGE = 400
# More steps than any run takes: the dry build checks schedules whose run length is not known yet.
DRY_TOTAL_STEPS = 2**31 - 1


class ConfigError(ValueError):
    """A config value that cannot work: one line naming the key, the value and what is allowed."""

    def __init__(self, message: str) -> None:
        line = " ".join(str(message).split())
        super().__init__(line if len(line) <= MAX_MESSAGE else line[: MAX_MESSAGE - 3] + "...")


def register_resolvers() -> None:
    """``${project_root:}``: the folder holding conf/ (or the cwd), so paths work from any cwd."""
    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT))


def hydra_error(err: Exception) -> ConfigError:
    """A Hydra/OmegaConf composition error as one line (valid choices for a group)."""
    missing = re.search(r"Could not find '(.+?)'", str(err))
    if missing and getattr(err, "options", None):
        group, _, option = missing.group(1).rpartition("/")
        return ConfigError(schema.problem(group, option, f"must be one of {sorted(err.options)}"))
    cause = f" ({str(err.__cause__).splitlines()[0]})" if isinstance(err.__cause__, OmegaConfBaseException) else ""
    return ConfigError(f"{str(err).split('See https://')[0]}{cause}".replace("full_key:", "key:"))


def _data_choice(cfg: DictConfig) -> str:
    """The data option's name (``digits``), for messages about the dataset."""
    from hydra.core.hydra_config import HydraConfig

    choices = HydraConfig.get().runtime.choices if HydraConfig.initialized() else OmegaConf.select(cfg, "hydra.runtime.choices", default={})
    return str(choices.get("data") or OmegaConf.select(cfg, "data._target_", default="data")).rpartition(".")[2]


def _plain(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config without Hydra's node; a key that does not resolve raises ConfigError."""
    node = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]) if "hydra" in cfg else cfg
    try:
        return OmegaConf.to_container(node, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as err:
        raise ConfigError(schema.problem(err.full_key, "???", "must be given a value")) from None
    except OmegaConfBaseException as err:
        raise ConfigError(f"{getattr(err, 'full_key', '') or 'config'}: cannot be resolved: {str(err).splitlines()[0]}") from None


def _raise_first(problems: Iterable[str]) -> None:
    first = next(iter(problems), None)
    if first is not None:
        raise ConfigError(first)


def _problems(cfg: DictConfig, plain: dict[str, Any]) -> Iterator[str]:
    """Every problem, cheapest check first; consumed lazily, so a typo never imports torch."""
    yield from schema.key_problems(plain)
    yield from schema.value_problems(plain)
    yield from schema.cross_problems(plain, _data_choice(cfg))
    for path, node in schema.target_nodes(plain):
        yield from schema.signature_problems(path, node)
    yield from schema.device_problems(plain)
    yield from _build_problems(cfg)


def validate_config(cfg: DictConfig) -> None:
    """Raise ConfigError on the first problem of ``cfg``."""
    _raise_first(_problems(cfg, _plain(cfg)))


def _build_problems(cfg: DictConfig) -> list[str]:
    """Construct data module (nothing loaded), model, init on noise, optimizer and schedule once."""
    parts = _build_steps(cfg)
    built: dict[str, Any] = {}
    for group, build in parts.items():
        if group in cfg:
            try:
                built[group] = build(built)
            except Exception as err:
                return [f"{group}: {_reason(err)}"]
    return []


def _build_steps(cfg: DictConfig) -> dict[str, Callable[[dict[str, Any]], Any]]:
    import torch
    from hydra.utils import instantiate

    from initlab.init import DATA_AWARE_INITS
    from initlab.models import instantiate_model

    def init(built: dict[str, Any]) -> Any:
        initializer = instantiate(cfg.init)
        if initializer.scheme not in DATA_AWARE_INITS:  # their rescaling loops are real work
            classes = int(cfg.data.num_classes)
            inputs = torch.randn(8, *cfg.data.input_shape, generator=torch.Generator().manual_seed(0))
            initializer(built["model"], batch=(inputs, torch.arange(8) % classes), class_freqs=torch.full((classes,), 1.0 / classes))
        return initializer

    def optimizer(built: dict[str, Any]) -> Any:
        lr = {"lr": 1.0} if cfg.optim.get("lr") == "auto" else {}
        return instantiate(cfg.optim, **lr)(built["model"].parameters())

    return {
        "data": lambda built: instantiate(cfg.data),
        "model": lambda built: instantiate_model(cfg.model),
        "init": init,
        "optim": optimizer,
        "sched": lambda built: instantiate(cfg.sched)(built["optim"], total_steps=DRY_TOTAL_STEPS),
    }


def _reason(err: BaseException) -> str:
    """The innermost message (Hydra wraps constructor errors in InstantiationException)."""
    while err.__cause__ is not None:
        err = err.__cause__
    return str(err)


def validate_with_data(cfg: DictConfig, datamodule: Any, total_steps: int) -> None:
    """What needs the loaded data: init batch vs train size, model vs dataset shapes, schedule vs run length."""
    import torch
    from hydra.utils import instantiate

    choice = _data_choice(cfg)
    train_size = len(datamodule.train_data.y)
    limit = f" with data.limit_train={cfg.data.limit_train}" if cfg.data.get("limit_train") else ""
    problems = []
    if cfg.init_batch_size > train_size:
        allowed = f"must be <= {train_size}: data={choice}{limit} has {train_size} training samples"
        problems.append(schema.problem("init_batch_size", cfg.init_batch_size, allowed))
    for key, what in schema.DATA_FACTS.items():
        actual = getattr(datamodule, key)
        actual = list(actual) if isinstance(actual, tuple) else actual
        model_value = OmegaConf.select(cfg, f"model.{key}")
        model_value = OmegaConf.to_object(model_value) if OmegaConf.is_config(model_value) else model_value
        if model_value is not None and model_value != actual:
            problems.append(schema.problem(f"model.{key}", model_value, f"but data={choice} has {what.format(actual)}"))
    for stage in ("train", "val", "test"):
        fraction = OmegaConf.select(cfg, f"trainer.limit_{stage}_batches")
        batches = len(getattr(datamodule, f"{stage}_dataloader")()) if isinstance(fraction, float) else 0
        if isinstance(fraction, float) and int(fraction * batches) < 1:
            allowed = f"keeps no batch: data={choice} has {batches} {stage} batches (use null or a count)"
            problems.append(schema.problem(f"trainer.limit_{stage}_batches", fraction, allowed))
    warmup = cfg.sched.get("warmup_steps", 0) if "sched" in cfg else 0
    if warmup and warmup >= total_steps:
        problems.append(schema.problem("sched.warmup_steps", warmup, f"must be < the run's {total_steps} optimizer steps"))
    _raise_first(problems)
    if "sched" in cfg:
        optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        try:
            instantiate(cfg.sched)(optimizer, total_steps=total_steps)
        except Exception as err:
            raise ConfigError(f"sched: {_reason(err)} (the run has {total_steps} optimizer steps)") from None
