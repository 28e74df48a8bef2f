"""``Initializer``: the callable a ``conf/init/<name>.yaml`` instantiates to.

The YAML's keys are the scheme's name and its hyperparameters; the bias is its own group
(``init/bias=<name>``: a node ``{scheme, <its hyperparameters>}``). Defaults are the keyword-only
defaults of the registered functions; unknown keys and bad values raise ``ValueError`` at construction.
"""

import inspect
from collections.abc import Callable, Mapping
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
    "std": (lambda v: _number(v) and v >= 0, "a number >= 0"),
    "nonlinearity": (_gain_name, "a name accepted by torch.nn.init.calculate_gain (e.g. relu, tanh, linear)"),
    **dict.fromkeys(("gain", "tol", "power_tol", "eps", "lr"), (lambda v: _number(v) and v > 0, "a number > 0")),
    **dict.fromkeys(("k", "max_rescales", "power_iters", "steps"), (_positive_int, "an integer >= 1")),
}


def hyperparameters(rule: Callable[..., None]) -> dict[str, Any]:
    """The keyword-only parameters of a registered rule with their defaults."""
    params = inspect.signature(rule).parameters.values()
    return {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


def _choice(kind: str, name: str, valid: list[str]) -> str:
    if name not in valid:
        raise ValueError(f"unknown {kind} {name!r}; valid: {valid}")
    return name


def _settings(node: str, rules: list[Callable[..., None]], given: dict[str, Any], context: str) -> dict[str, Any]:
    """The registered defaults of ``rules`` updated by ``given``; unknown keys and bad values raise ValueError."""
    defaults: dict[str, Any] = {}
    for rule in rules:
        defaults |= hyperparameters(rule)
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(f"unknown {node} key(s) {unknown} for {context}; valid keys: {sorted(defaults)}")
    settings = defaults | given
    for key in sorted(settings.keys() & VALUE_RULES.keys()):
        rule, allowed = VALUE_RULES[key]
        if not rule(settings[key]):
            raise ValueError(f"{node}.{key}: got {settings[key]!r}, must be {allowed}")
    return settings


def _rule_name(rule: Callable[..., None]) -> str:
    """A callable scheme's name (a ``functools.partial``'s function): what ``init.json`` and reports show."""
    return getattr(getattr(rule, "func", rule), "__name__", type(rule).__name__)


def _bind(rule: Callable[..., None], settings: dict[str, Any]) -> Callable[..., None]:
    return partial(rule, **{key: settings[key] for key in hyperparameters(rule)})


def _on_model(model: nn.Module, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """The batch moved to the model's device, floating inputs cast to its dtype: data-aware inits run where the model lives."""
    weight = weight_layers(model)[0][1].weight
    inputs, targets = batch
    return inputs.to(weight.device, weight.dtype if inputs.is_floating_point() else inputs.dtype), targets.to(weight.device)


class Initializer:
    """``init(model, batch=None, class_freqs=None) -> model``: initialize every Linear/Conv layer in place.

    ``scheme`` is a ``WEIGHT_INITS`` name, or a ``DATA_AWARE_INITS`` name, which first applies
    its ``base`` weight scheme and then rescales the weights on ``batch`` = (inputs, targets),
    moved to the model's device and dtype. ``bias`` is the ``init/bias`` node
    (``{"scheme": <BIAS_INITS name>, <its hyperparameters>}``) or a bare ``BIAS_INITS`` name
    with default hyperparameters. ``params`` are the hyperparameters of the weight (or base)
    scheme and of the data-aware rescaling.
    """

    def __init__(self, scheme: str | Callable[..., None], bias: str | Mapping[str, Any] = "zeros", **params: Any) -> None:
        rule = scheme if callable(scheme) else None  # a rule of the registry's signature, e.g. a user's own (docs/bench.md)
        self.scheme = _rule_name(rule) if rule else _choice("init scheme", scheme, sorted(WEIGHT_INITS) + sorted(DATA_AWARE_INITS))
        bias_params = {"scheme": bias} if isinstance(bias, str) else dict(bias)  # a bare name: ``init.bias=constant``
        self.bias = _choice("bias scheme", bias_params.pop("scheme", None), sorted(BIAS_INITS))
        data_aware = None if rule else DATA_AWARE_INITS.get(scheme)
        given = dict(params)
        base = given.pop("base", data_aware.base) if data_aware else scheme
        weight_rule = rule or WEIGHT_INITS[_choice("base scheme", base, sorted(WEIGHT_INITS))]
        rules = [weight_rule, data_aware.rescale] if data_aware else [weight_rule]
        self.params = ({"base": base} if data_aware else {}) | _settings("init", rules, given, f"scheme {scheme!r}")
        self.bias_params = _settings("init.bias", [BIAS_INITS[self.bias]], bias_params, f"bias scheme {self.bias!r}")
        self._weight_init = _bind(weight_rule, self.params)
        self._bias_init = _bind(BIAS_INITS[self.bias], self.bias_params)
        self._rescale = _bind(data_aware.rescale, self.params) if data_aware else None

    def __call__(
        self, model: nn.Module, batch: tuple[Tensor, Tensor] | None = None, class_freqs: Tensor | None = None
    ) -> nn.Module:
        if self._rescale is not None and batch is None:
            raise ValueError(f"init scheme {self.scheme!r} is data-aware: pass batch=(inputs, targets)")
        self.base(model, class_freqs)
        if self._rescale is not None:
            self._rescale(model, _on_model(model, batch))
        return model

    def base(self, model: nn.Module, class_freqs: Tensor | None = None) -> nn.Module:
        """Only the weight (or base) scheme and the bias scheme: no data, cheap enough to check a config before a run."""
        layers = [layer for _, layer in weight_layers(model)]
        if not layers:
            raise ValueError(f"{type(model).__name__} has no Linear/Conv layer to initialize")
        with torch.no_grad():
            for layer in layers:
                self._weight_init(layer.weight, *fans(layer.weight))
            self._bias_init(BiasContext(layers, self._weight_init, class_freqs))
        return model

    def __repr__(self) -> str:
        settings = {"scheme": self.scheme, "bias": {"scheme": self.bias, **self.bias_params}, **self.params}
        return f"Initializer({', '.join(f'{key}={value!r}' for key, value in settings.items())})"
