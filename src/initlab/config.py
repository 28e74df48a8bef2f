"""Config plumbing shared by the Hydra apps: the conf/ location, resolvers, validation.

Validation runs before any data is loaded or any model is built, so a typo or a bad value
fails in a second with one message naming the key, the bad value and what is allowed.
"""

import difflib
import inspect
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = PROJECT_ROOT / "conf"


class ConfigError(ValueError):
    """A config value that cannot work; raised before training starts."""


def register_resolvers() -> None:
    """``${project_root:}``: the checkout holding conf/, so paths work from any cwd."""
    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT))


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _positive_list(value: Any) -> bool:
    return isinstance(value, Sequence) and len(value) > 0 and all(_positive(v) and isinstance(v, int) for v in value)


# Range rules the constructors cannot all enforce themselves (torch accepts lr=0, Trainer accepts max_epochs=0).
RANGE_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "seed": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "an integer >= 0"),
    "init_batch_size": (_positive, "a positive integer"),
    "lr_auto_scale": (_positive, "a positive number"),
    "optim.lr": (lambda v: v == "auto" or _positive(v), "a positive number or 'auto'"),
    "trainer.max_epochs": (lambda v: isinstance(v, int) and v > 0, "a positive integer"),
    "data.batch_size": (_positive, "a positive integer"),
    "data.eval_batch_size": (_positive, "a positive integer"),
    "model.widths": (_positive_list, "a non-empty list of positive integers"),
    "model.width": (_positive, "a positive integer"),
    "model.depth": (lambda v: isinstance(v, int) and v >= 2, "an integer >= 2"),
    "model.hidden": (_positive, "a positive integer"),
    "model.channels": (_positive_list, "a non-empty list of positive integers"),
}

# Keys our code reads from a group node besides the target's own arguments.
EXTRA_KEYS: dict[str, set[str]] = {"model": {"compile"}}
NODE_GROUPS = ("data", "model", "init", "optim", "sched", "trainer", "analysis")


def _matches(value: Any, annotation: Any) -> bool:
    """Whether a config value fits a simple annotation; anything unusual counts as a match."""
    if annotation is inspect.Parameter.empty or annotation is Any:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(annotation))
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    if annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    if origin in (list, tuple, Sequence, typing.Sequence) or annotation in (list, tuple):
        return isinstance(value, (list, tuple, ListConfig))
    return True


def _target_nodes(node: Any, path: str) -> Iterator[tuple[str, DictConfig]]:
    """Every sub-node carrying a ``_target_`` with its dotted path."""
    if isinstance(node, DictConfig):
        if "_target_" in node:
            yield path, node
        for key in node:
            if not str(key).startswith("_"):
                yield from _target_nodes(node[key], f"{path}.{key}" if path else str(key))


def _check_target_node(path: str, node: DictConfig) -> list[str]:
    """Unknown keys and wrong types against the target's signature."""
    from hydra.utils import get_object

    target = node["_target_"]
    try:
        obj = get_object(target)
    except Exception as err:  # an unimportable target is itself the error
        return [f"{path}._target_: cannot import {target!r} ({err})"]
    try:
        signature = inspect.signature(obj)
        hints = typing.get_type_hints(obj.__init__ if inspect.isclass(obj) else obj)
    except (TypeError, ValueError, NameError):
        return []
    params = signature.parameters
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    allowed = set(params) | EXTRA_KEYS.get(path, set())
    problems = []
    for key in node:
        key = str(key)
        if key.startswith("_") or key in EXTRA_KEYS.get(path, set()):
            continue
        if key not in params:
            if not accepts_any:
                close = difflib.get_close_matches(key, sorted(allowed), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append(f"{path}.{key}: unknown key{hint}; valid keys: {sorted(allowed)}")
            continue
        value = OmegaConf.select(node, key, throw_on_missing=False)
        if isinstance(value, (DictConfig, ListConfig)):
            value = OmegaConf.to_container(value, resolve=True)
        if key in hints and not _matches(value, hints[key]):
            problems.append(f"{path}.{key}: got {value!r} ({type(value).__name__}), expected {_describe(hints[key])}")
    return problems


def _describe(annotation: Any) -> str:
    return annotation.__name__ if isinstance(annotation, type) else str(annotation).replace("typing.", "")


def validate_config(cfg: DictConfig, groups: Sequence[str] = NODE_GROUPS) -> None:
    """Raise one ConfigError listing every problem found in ``cfg`` (all keys resolved first)."""
    problems: list[str] = []
    try:
        OmegaConf.resolve(OmegaConf.create(OmegaConf.to_container(cfg, resolve=False)))
    except Exception as err:
        problems.append(f"cannot resolve config: {err}")
    for key, (rule, allowed) in RANGE_RULES.items():
        value = OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
        if isinstance(value, ListConfig):
            value = OmegaConf.to_container(value)
        if value is not None and not rule(value):
            problems.append(f"{key}: got {value!r}, must be {allowed}")
    problems += _shape_mismatches(cfg)
    for group in groups:
        node = cfg.get(group)
        if isinstance(node, DictConfig):
            for path, target_node in _target_nodes(node, group):
                if path == "optim" and target_node.get("lr") == "auto":
                    target_node = target_node.copy()
                    target_node.lr = 1.0
                problems += _check_target_node(path, target_node)
    if not problems:
        problems += _dry_build(cfg)
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))


def _shape_mismatches(cfg: DictConfig) -> list[str]:
    """The model must be built for the dataset's input shape and class count."""
    problems = []
    for key in ("input_shape", "num_classes"):
        model_value = OmegaConf.select(cfg, f"model.{key}", default=None)
        data_value = OmegaConf.select(cfg, f"data.{key}", default=None)
        if model_value is not None and data_value is not None and model_value != data_value:
            problems.append(f"model.{key}: got {_plain(model_value)!r}, but data={_choice(cfg, 'data')} has {_plain(data_value)!r}")
    return problems


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value) if isinstance(value, (DictConfig, ListConfig)) else value


def _choice(cfg: DictConfig, group: str) -> str:
    return str(OmegaConf.select(cfg, f"hydra.runtime.choices.{group}", default=group))


def _dry_build(cfg: DictConfig) -> list[str]:
    """Build model, init, optimizer and schedule once (no data): their constructors check values."""
    from hydra.utils import instantiate

    if not isinstance(cfg.get("model"), DictConfig):
        return []
    from initlab.training.build import instantiate_model

    try:
        model = instantiate_model(cfg.model)
    except Exception as err:
        return [f"model: {_reason(err)}"]
    problems = []
    if isinstance(cfg.get("init"), DictConfig):
        try:
            _apply_init_to_noise(instantiate(cfg.init), model, cfg)
        except Exception as err:
            problems.append(f"init: {_reason(err)}")
    if isinstance(cfg.get("optim"), DictConfig) and isinstance(cfg.get("sched"), DictConfig):
        optim_cfg = cfg.optim.copy()
        if optim_cfg.get("lr") == "auto":
            optim_cfg.lr = 1.0
        try:
            optimizer = instantiate(optim_cfg)(model.parameters())
            instantiate(cfg.sched)(optimizer, total_steps=100)
        except Exception as err:
            problems.append(f"optim/sched: {_reason(err)}")
    return problems


def _apply_init_to_noise(init: Callable[..., Any], model: Any, cfg: DictConfig) -> None:
    """Run the init on a batch of noise: catches e.g. ``init.bias=output_marginals`` on a head without bias.

    Data-aware schemes are only constructed here: their rescaling loops are real work.
    """
    import torch

    from initlab.init import DATA_AWARE_INITS

    if init.scheme in DATA_AWARE_INITS:
        return

    num_classes = int(cfg.data.num_classes)
    inputs = torch.randn(16, *cfg.data.input_shape, generator=torch.Generator().manual_seed(0))
    targets = torch.arange(16) % num_classes
    init(model, batch=(inputs, targets), class_freqs=torch.full((num_classes,), 1.0 / num_classes))


def _reason(err: Exception) -> str:
    """The innermost message (Hydra wraps constructor errors in InstantiationException)."""
    while err.__cause__ is not None:
        err = err.__cause__
    return f"{err}"
