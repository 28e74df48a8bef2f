"""``Initializer``: the callable a ``conf/init/<name>.yaml`` instantiates to.

The YAML's top-level keys are the scheme's name, the bias scheme's name and the
hyperparameters; the defaults are the keyword-only defaults of the registered functions.
Unknown keys and bad values raise ``ValueError`` at construction, before any training.
"""

import inspect
from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

from initlab.init.biases import BIAS_INITS, BiasContext
from initlab.init.data_aware import DATA_AWARE_INITS
from initlab.init.weights import WEIGHT_INITS, fans
from initlab.models import weight_layers


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _gain_name(value: Any) -> bool:
    try:
        nn.init.calculate_gain(value)
    except (ValueError, TypeError):
        return False
    return True


# What each hyperparameter must be, whichever scheme uses it.
VALUE_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "value": (_number, "a number"),
    "bias_value": (_number, "a number"),
    "std": (lambda v: _number(v) and v >= 0, "a number >= 0"),
    "bias_std": (lambda v: _number(v) and v >= 0, "a number >= 0"),
    "gain": (lambda v: _number(v) and v > 0, "a number > 0"),
    "k": (_positive_int, "an integer >= 1"),
    "nonlinearity": (_gain_name, "a name accepted by torch.nn.init.calculate_gain (e.g. relu, tanh, linear)"),
    "tol": (lambda v: _number(v) and v > 0, "a number > 0"),
    "power_tol": (lambda v: _number(v) and v > 0, "a number > 0"),
    "eps": (lambda v: _number(v) and v > 0, "a number > 0"),
    "lr": (lambda v: _number(v) and v > 0, "a number > 0"),
    "max_rescales": (_positive_int, "an integer >= 1"),
    "power_iters": (_positive_int, "an integer >= 1"),
    "steps": (_positive_int, "an integer >= 1"),
}


def hyperparameters(rule: Callable[..., None]) -> dict[str, Any]:
    """The keyword-only parameters of a registered rule with their defaults."""
    params = inspect.signature(rule).parameters.values()
    return {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


def _choice(kind: str, name: str, valid: list[str]) -> str:
    if name not in valid:
        raise ValueError(f"unknown {kind} {name!r}; valid: {valid}")
    return name


class Initializer:
    """``init(model, batch=None, class_freqs=None) -> model``: initialize every Linear/Conv layer in place.

    ``scheme`` is a ``WEIGHT_INITS`` name, or a ``DATA_AWARE_INITS`` name, which first applies
    its ``base`` weight scheme and then rescales the weights on ``batch`` = (inputs, targets).
    ``bias`` is a ``BIAS_INITS`` name. ``params`` are the hyperparameters of the weight (or
    base) scheme, of the data-aware rescaling, and of every bias scheme (so ``bias`` can be
    switched without adding keys).
    """

    def __init__(self, scheme: str, bias: str = "zeros", **params: Any) -> None:
        _choice("init scheme", scheme, sorted(WEIGHT_INITS) + sorted(DATA_AWARE_INITS))
        self.scheme = scheme
        self.bias = _choice("bias scheme", bias, sorted(BIAS_INITS))
        data_aware = DATA_AWARE_INITS.get(scheme)
        base = params.get("base", data_aware.base) if data_aware else scheme
        weight_rule = WEIGHT_INITS[_choice("base scheme", base, sorted(WEIGHT_INITS))]
        defaults = hyperparameters(weight_rule)
        for rule in BIAS_INITS.values():
            defaults |= hyperparameters(rule)
        if data_aware:
            defaults |= {"base": data_aware.base} | hyperparameters(data_aware.rescale)
        unknown = sorted(set(params) - set(defaults))
        if unknown:
            raise ValueError(f"unknown init key(s) {unknown} for scheme {scheme!r}; valid keys: {sorted(defaults)}")
        self.params = defaults | params
        for key in sorted(self.params.keys() & VALUE_RULES.keys()):
            rule, allowed = VALUE_RULES[key]
            if not rule(self.params[key]):
                raise ValueError(f"init.{key}: got {self.params[key]!r}, must be {allowed}")
        self._weight_init = self._bind(weight_rule)
        self._bias_init = self._bind(BIAS_INITS[bias])
        self._rescale = self._bind(data_aware.rescale) if data_aware else None

    def _bind(self, rule: Callable[..., None]) -> Callable[..., None]:
        return partial(rule, **{key: self.params[key] for key in hyperparameters(rule)})

    def __call__(
        self, model: nn.Module, batch: tuple[Tensor, Tensor] | None = None, class_freqs: Tensor | None = None
    ) -> nn.Module:
        layers = [layer for _, layer in weight_layers(model)]
        if not layers:
            raise ValueError(f"{type(model).__name__} has no Linear/Conv layer to initialize")
        if self._rescale is not None and batch is None:
            raise ValueError(f"init scheme {self.scheme!r} is data-aware: pass batch=(inputs, targets)")
        with torch.no_grad():
            for layer in layers:
                self._weight_init(layer.weight, *fans(layer.weight))
            self._bias_init(BiasContext(layers, self._weight_init, class_freqs))
        if self._rescale is not None:
            self._rescale(model, batch)
        return model

    def __repr__(self) -> str:
        settings = ", ".join(f"{key}={value!r}" for key, value in self.params.items())
        return f"Initializer(scheme={self.scheme!r}, bias={self.bias!r}, {settings})"
