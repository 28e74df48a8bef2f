"""conf/init: one YAML per registry entry, each instantiates and initializes real models; bad configs fail early."""

from pathlib import Path

import hydra
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import InstantiationException
from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf

from initlab.locations import CONFIG_DIR
from initlab.init import BIAS_INITS, DATA_AWARE_INITS, WEIGHT_INITS, Initializer
from initlab.init.initializer import VALUE_RULES, hyperparameters
from initlab.models import cnn, mlp, weight_layers

INIT_DIR = CONFIG_DIR / "init"
YAMLS = sorted(INIT_DIR.glob("*.yaml"))
BIAS_YAMLS = sorted((INIT_DIR / "bias").glob("*.yaml"))
FREQS = torch.tensor([0.1, 0.2, 0.3, 0.4])


def _models() -> list[torch.nn.Sequential]:
    return [mlp((1, 6, 6), 4, widths=(16, 16)), cnn((1, 8, 8), 4, channels=(4,), hidden=16)]


def _batch(shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(16, *shape), torch.randint(0, 4, (16,))


def _compose(name: str, overrides: list[str] = ()) -> DictConfig:
    """The ``init`` node of ``conf/init/<name>.yaml`` composed with its defaults list, as Hydra builds it for a run."""
    with initialize_config_dir(config_dir=str(INIT_DIR), version_base="1.3"):
        return compose(name, overrides=list(overrides))


def _instantiate(name: str, overrides: list[str] = ()) -> Initializer:
    return hydra.utils.instantiate(_compose(name, overrides))


def test_every_scheme_has_a_yaml_and_every_yaml_a_scheme() -> None:
    assert {path.stem for path in YAMLS} == set(WEIGHT_INITS) | set(DATA_AWARE_INITS)


def test_every_bias_scheme_has_a_yaml_and_every_yaml_a_bias_scheme() -> None:
    assert {path.stem for path in BIAS_YAMLS} == set(BIAS_INITS)


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: p.stem)
def test_yaml_lists_every_key_with_the_library_default(path: Path) -> None:
    cfg = OmegaConf.to_container(_compose(path.stem))
    assert get_object(cfg.pop("_target_")) is Initializer
    assert cfg.pop("scheme") == path.stem
    assert cfg.pop("bias") == {"scheme": "zeros"}
    assert cfg == Initializer(path.stem).params


@pytest.mark.parametrize("path", BIAS_YAMLS, ids=lambda p: p.stem)
def test_bias_yaml_holds_only_its_own_keys_with_the_library_default(path: Path) -> None:
    cfg = OmegaConf.to_container(OmegaConf.load(path))
    assert cfg.pop("scheme") == path.stem
    assert cfg == hyperparameters(BIAS_INITS[path.stem]) == Initializer("spectral", bias=path.stem).bias_params


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: p.stem)
def test_yaml_instantiates_and_initializes_an_mlp_and_a_cnn(path: Path) -> None:
    init = _instantiate(path.stem)
    for model, shape in zip(_models(), [(1, 6, 6), (1, 8, 8)], strict=True):
        before = [layer.weight.detach().clone() for _, layer in weight_layers(model)]
        assert init(model, batch=_batch(shape), class_freqs=FREQS) is model
        for start, (_, layer) in zip(before, weight_layers(model), strict=True):
            assert torch.isfinite(layer.weight).all() and not torch.equal(start, layer.weight)


@pytest.mark.parametrize("bias", sorted(BIAS_INITS))
@pytest.mark.parametrize("name", ["spectral", "lsuv"])
def test_bias_group_override_works(name: str, bias: str) -> None:
    init = _instantiate(name, [f"bias={bias}"] + (["bias.value=0.3"] if bias == "constant" else []))
    model = mlp((8,), 4, widths=(16,))
    init(model, batch=_batch((8,)), class_freqs=FREQS)
    expected_output_bias = {"constant": torch.full((4,), 0.3), "zeros": torch.zeros(4), "relu_0.1": torch.zeros(4)}
    if bias in expected_output_bias:
        torch.testing.assert_close(model[3].bias.detach(), expected_output_bias[bias])
    if bias == "output_marginals":
        torch.testing.assert_close(torch.softmax(model[3].bias.detach(), 0), FREQS)


@pytest.mark.parametrize(
    ("override", "value"), [("init/bias=constant", 0.01), ("init.bias=constant", 0.01), ("init/bias=constant", 0.5)]
)
def test_bias_selected_from_the_run_config(override: str, value: float) -> None:
    """``init/bias=<name>`` picks the group option; the old ``init.bias=<name>`` still works with its defaults."""
    GlobalHydra.instance().clear()
    extra = [] if value == 0.01 else [f"init.bias.value={value}"]
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(overrides=["+init=lsuv", override, *extra])
    GlobalHydra.instance().clear()
    init = hydra.utils.instantiate(cfg.init)
    assert (init.scheme, init.bias, init.bias_params) == ("lsuv", "constant", {"value": value})


def test_every_hyperparameter_has_a_value_rule() -> None:
    rules = [*WEIGHT_INITS.values(), *BIAS_INITS.values(), *(entry.rescale for entry in DATA_AWARE_INITS.values())]
    assert set().union(*(hyperparameters(rule) for rule in rules)) <= set(VALUE_RULES)


@pytest.mark.parametrize(
    ("name", "overrides", "message"),
    [
        ("normal", ["+sdt=0.1"], r"unknown init key\(s\) \['sdt'\] for scheme 'normal'; valid keys: .*'std'"),
        ("spectral", ["+std=0.1"], r"unknown init key\(s\) \['std'\] for scheme 'spectral'"),
        ("normal", ["std=-0.1"], r"init.std: got -0.1, must be a number >= 0"),
        ("sparse", ["k=0"], r"init.k: got 0, must be an integer >= 1"),
        ("sparse", ["k=2.5"], r"init.k: got 2.5, must be an integer >= 1"),
        ("orthogonal", ["gain=-1"], r"init.gain: got -1, must be a number > 0"),
        ("kaiming_normal", ["nonlinearity=relux"], r"init.nonlinearity: got 'relux'"),
        ("spectral", ["bias=small_random", "bias.std=-1"], r"init.bias.std: got -1, must be a number >= 0"),
        ("spectral", ["+bias.value=0.3"], r"unknown init.bias key\(s\) \['value'\] for bias scheme 'zeros'; valid keys: \[\]"),
        ("lsuv", ["tol=0"], r"init.tol: got 0, must be a number > 0"),
        ("metainit", ["steps=0"], r"init.steps: got 0"),
        ("spectral", ["scheme=spectal"], r"unknown init scheme 'spectal'; valid: \[.*'spectral'"),
        ("spectral", ["bias.scheme=relu"], r"unknown bias scheme 'relu'; valid: \[.*'relu_0.1'"),
        ("jacobian_calibrated", ["base=jacobian_calibrated"], r"unknown base scheme 'jacobian_calibrated'; valid: \["),
    ],
)
def test_bad_config_fails_at_construction_with_a_clear_message(name: str, overrides: list[str], message: str) -> None:
    with pytest.raises(InstantiationException, match=message):
        _instantiate(name, overrides)


def test_typo_override_is_refused_by_hydra_already() -> None:
    with pytest.raises(Exception, match="sdt"):
        _compose("normal", ["sdt=0.1"])


def test_base_hyperparameters_follow_the_base_scheme() -> None:
    init = _instantiate("jacobian_calibrated", ["base=normal", "+std=0.2"])
    assert init.params["std"] == 0.2
    with pytest.raises(ValueError, match=r"unknown init key\(s\) \['gain'\]"):
        Initializer("jacobian_calibrated", base="normal", gain=2.0)
