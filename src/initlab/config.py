"""Config checks of the Hydra apps: every bad input is one ``ConfigError`` line before anything runs.

``check_composed`` runs on every config Hydra composes for the apps (and on any config read from a
file, such as a checkpoint's run folder) before any of it is used: resolvers, every ``_target_`` by
exact module path, Hydra's own node. ``validate_config`` runs right after composition, cheapest
check first, and raises on the first problem: the schema's key, value and cross-key rules (no
torch import, so a typo fails in about a second), then each target's signature and the machine's devices, then a dry build of data
module, model, init, optimizer and schedule (their constructors check the rest).
``validate_with_data`` checks what needs the loaded dataset. Hydra's own composition errors
become the same one line through ``hydra_error``.
"""

import difflib
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from initlab import schema
from initlab.errors import ConfigError
from initlab.locations import CONFIG_DIR, PROJECT_ROOT

__all__ = ["CONFIG_DIR", "PROJECT_ROOT", "ConfigError", "check_composed", "check_overrides", "composed_problems", "hydra_error", "register_resolvers", "validate_config",
           "validate_with_data"]

log = logging.getLogger(__name__)
# More steps than any run takes: the dry build checks schedules whose run length is not known yet.
DRY_TOTAL_STEPS = 2**31 - 1


def register_resolvers() -> None:
    """``${project_root:}``: the folder holding conf/ (or the cwd), so paths work from any cwd."""
    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT))


# Hydra's composition errors -> (key, value, what is allowed) of the one-line form.
HYDRA_MESSAGES = (
    (re.compile(r"Could not override '(?P<key>[^']+)'\.\s+To append to your config use \+(?P=key)=(?P<value>.*?)\s*$", re.M),
     "unknown key{hint} (an existing key is set without '+', a new one with '+': +{key}=...)"),
    (re.compile(r"Could not append to config\. An item is already at '(?P<key>[^']+)'"),
     "already in the config: set it without '+' ({key}=...)"),
    (re.compile(r"Could not (?:override|delete|append to) '(?P<key>[^']+)'"), "is not a key or group of this config"),
)


def hydra_error(err: Exception) -> ConfigError:
    """A Hydra/OmegaConf composition error as one line, in the ``<key>: got <value>, <allowed>`` form where it names a key."""
    missing = re.search(r"Could not find '(.+?)'", str(err))
    if missing and getattr(err, "options", None):
        group, _, option = missing.group(1).rpartition("/")
        return ConfigError(schema.problem(group, option, f"must be one of {sorted(err.options)}"))
    for pattern, allowed in HYDRA_MESSAGES:
        if found := pattern.search(str(err)):
            value = found.groupdict().get("value")
            value = f"+{found['key']}=..." if value is None else value
            return ConfigError(schema.problem(found["key"], value, allowed.format(hint=_key_hint(found["key"]), **found.groupdict())))
    cause = f" ({str(err.__cause__).splitlines()[0]})" if isinstance(err.__cause__, OmegaConfBaseException) else ""
    return ConfigError(f"{str(err).split('See https://')[0]}{cause}".replace("full_key:", "key:"))


def _key_hint(key: str) -> str:
    """`` (did you mean 'model.widths'?)`` for a mistyped key: the closest key of the group's option files, those of
    the option chosen on the command line first (``model.widht`` -> ``model.widths`` for the default mlp)."""
    import sys

    group, _, name = key.partition(".")
    folder = CONFIG_DIR / group
    if not name or "." in name or not folder.is_dir():
        return ""
    chosen = [a.partition("=")[2] for a in sys.argv[1:] if a.partition("=")[0] == group] or [_default_option(group)]
    keys = {f.stem: [k for k in OmegaConf.load(f) if isinstance(k, str) and not k.startswith("_")] for f in sorted(folder.glob("*.yaml"))}
    having = [option for option, names in keys.items() if name in names]
    if having:
        return f" (a key of {group}={'/'.join(having)}, not of {group}={chosen[0]})"
    for option in sorted(keys, key=lambda o: o not in chosen):
        if close := difflib.get_close_matches(name, keys[option], n=1):
            return f" (did you mean '{group}.{close[0]}'?)"
    return ""


def _default_option(group: str) -> str:
    """The option the root config ``train.yaml`` picks for ``group``."""
    defaults = OmegaConf.load(CONFIG_DIR / "train.yaml").get("defaults", [])
    return next((str(d[group]) for d in defaults if isinstance(d, DictConfig) and group in d), "")


def _choice(cfg: DictConfig, group: str) -> str:
    """The option chosen for ``group`` (``digits``, ``momentum``), for messages about it."""
    from hydra.core.hydra_config import HydraConfig

    choices = HydraConfig.get().runtime.choices if HydraConfig.initialized() else OmegaConf.select(cfg, "hydra.runtime.choices", default={})
    return str(choices.get(group) or OmegaConf.select(cfg, f"{group}._target_", default=group)).rpartition(".")[2]


def _data_choice(cfg: DictConfig) -> str:
    """The data option's name (``digits``), for messages about the dataset."""
    return _choice(cfg, "data")


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


# Config groups whose option may be a list (several composed at once); every other group takes one option.
LIST_GROUPS = ("logger",)


def _nest(key: str, value: Any) -> dict[str, Any]:
    for part in reversed(key.split(".")):
        value = {part: value}
    return value


def _group_options(key: str, config_dirs: list[Path]) -> list[str] | None:
    """The options of config group ``key`` (e.g. ``init/bias``), None when ``key`` is not a group."""
    folders = [d / key for d in config_dirs if (d / key).is_dir()]
    return sorted({p.stem for f in folders for p in f.glob("*.yaml")}) if folders else None


def _override_problems(override: Any, multirun: bool, config_dirs: list[Path]) -> Iterator[str]:
    """What is wrong with one parsed override, judged on its text: no config is composed, nothing is imported."""
    key = override.key_or_group
    if key in REFUSED_KEYS:
        yield schema.problem(key, override.input_line.partition("=")[2], REFUSED_KEYS[key])
        return
    if override.is_delete() or override.package:
        return
    if not key:
        yield schema.problem("override", override.input_line, "must be key=value with a non-empty key")
        return
    try:
        values = list(override.sweep_iterator()) if override.is_sweep_override() else [override.value()]
    except Exception:  # a glob over a group's options: Hydra expands it itself
        return
    if override.is_sweep_override() and multirun and not values:
        yield schema.problem(key, override.input_line.partition("=")[2], "is a sweep with no values")
    options = _group_options(key, config_dirs)
    for value in values:
        if options is None:
            yield from schema.target_problems(_nest(key, value))
            # A sweep's values are checked per job (a bad one fails its job, the others run), an interpolation once
            # resolved, ??? once composed.
            if not override.is_sweep_override() and "${" not in str(value) and value != "???":
                yield from schema.value_problems(_nest(key, value))
        elif not (isinstance(value, str) or (key in LIST_GROUPS and isinstance(value, list) and all(isinstance(v, str) for v in value))):
            several = f" (only {', '.join(LIST_GROUPS)} composes a list of options)" if isinstance(value, list) else ""
            yield schema.problem(key, value, f"must be one option of {options}{several}")
        elif not all(schema.is_option(v) for v in (value if isinstance(value, list) else [value])):
            yield schema.problem(key, value, schema.OPTION_ALLOWED)
        elif isinstance(value, list) and len(set(value)) < len(value):
            yield schema.problem(key, value, f"names an option twice: each of {options} at most once")


# Hydra's command-line flags that load something from outside conf/ and --config-dir: (flag, attribute, why refused).
REFUSED_FLAGS = (
    ("--experimental-rerun", "experimental_rerun", "unpickles a file (code); rerun with the overrides in <run dir>/.hydra/overrides.yaml"),
    ("--config-path", "config_path", "loads the root config from another folder; add configs with --config-dir"),
)
# Keys of Hydra's node no override may set.
REFUSED_KEYS = {"hydra.searchpath": "must be empty: configs come only from conf/ and --config-dir"}


def _flag_problems(known: Any) -> Iterator[str]:
    for flag, attribute, why in REFUSED_FLAGS:
        if getattr(known, attribute, None) is not None:
            yield schema.problem(flag, getattr(known, attribute), why)
    if known.config_name is not None and not schema.NAME[0](known.config_name):
        yield schema.problem("--config-name", known.config_name, "must be a root config's name in conf/ (train, analyze, lr_find)")


def check_overrides(args: list[str]) -> None:
    """Check the command line before Hydra composes it, makes the run dir, sets up logging or instantiates callbacks.

    Judged on the text, so in well under a second: Hydra's syntax, ``_target_`` values against the
    allowlist (``hydra.callbacks`` included, which Hydra instantiates before the composed config
    reaches any check), group options (one name; a list only where several compose), sweeps that
    expand to nothing, and the schema's rules for every key set to a plain value (``hydra.run.dir``,
    ``task_name``, log levels, ...).
    """
    from hydra._internal.utils import get_args_parser
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    known, _ = get_args_parser().parse_known_args(args)
    _raise_first(_flag_problems(known))
    parser, parsed = OverridesParser.create(), []
    for text in known.overrides:
        key, _, value = text.partition("=")
        if value and len(key.lstrip("+~")) > schema.MAX_NAME:
            raise ConfigError(schema.problem(key.lstrip("+~"), value, f"unknown key (keys are at most {schema.MAX_NAME} characters)"))
        try:
            parsed += parser.parse_overrides([text])
        except OverrideParseException as err:
            reason = " ".join(str(err).split("See https://")[0].split())
            raise ConfigError(schema.problem(key or "override", value, f"cannot be parsed: {reason} (quote values with special characters)")) from None
    config_dirs = [CONFIG_DIR, *([Path(known.config_dir)] if known.config_dir else [])]
    _raise_first(p for o in parsed for p in _override_problems(o, bool(known.multirun), config_dirs))


# Where a run dir stands while a composed config's file paths are checked (Hydra sets the real one later).
RUN_DIR_STAND_IN = "/initlab-run-dir"
# Files Hydra writes into the run dir: the handlers' log files and the saved config's folder.
HYDRA_FILES = ("hydra.output_subdir",)


def _hydra_files(cfg: DictConfig) -> dict[str, Any]:
    """The files Hydra will write, resolved with the run dir standing in as :data:`RUN_DIR_STAND_IN`; a value that
    does not resolve is kept as its text (and refused)."""
    copy = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    copy.hydra.runtime.output_dir = RUN_DIR_STAND_IN
    keys = [*HYDRA_FILES, *(f"hydra.{log}.handlers.{name}.filename" for log in ("job_logging", "hydra_logging")
                            for name, handler in (OmegaConf.select(copy, f"hydra.{log}.handlers", default=None) or {}).items()
                            if isinstance(handler, DictConfig) and "filename" in handler)]
    files = {}
    for key in keys:
        try:
            files[key] = OmegaConf.select(copy, key, throw_on_resolution_failure=True)
        except OmegaConfBaseException:
            files[key] = OmegaConf.select(copy, key, throw_on_resolution_failure=False)
    return files


def _source_problems(sources: Any, config_dirs: Iterable[Path]) -> list[str]:
    """Config files from a folder only from conf/ and ``--config-dir`` (installed packages' configs are code, trusted)."""
    allowed = {str(Path(d).resolve()) for d in config_dirs}
    return [schema.problem("config source", source.get("path"), "configs come only from conf/ and --config-dir")
            for source in sources or [] if source.get("schema") == "file" and str(Path(source.get("path", "")).resolve()) not in allowed]


def composed_problems(cfg: DictConfig, config_dirs: Iterable[Path] = (CONFIG_DIR,)) -> Iterator[str]:
    """What a composed config must pass before Hydra or initlab uses any of it, on the unresolved tree: resolvers,
    every ``_target_`` anywhere (Hydra's own node included) by exact module path, then Hydra's node (search path,
    config sources, group options, logging, environment, the files it writes) and its targets' imported objects."""
    raw = OmegaConf.to_container(cfg, resolve=False)
    yield from schema.resolver_problems(raw)
    yield from schema.target_problems(raw)
    hydra = raw.get("hydra")
    if not isinstance(hydra, dict):
        return
    yield from schema.hydra_problems(hydra)
    yield from _source_problems((hydra.get("runtime") or {}).get("config_sources"), config_dirs)
    yield from schema.confined_problems(_hydra_files(cfg), RUN_DIR_STAND_IN)
    for path, node in schema.target_nodes(hydra, "hydra"):
        if (reason := schema.defined_where_named(node["_target_"])) is not None:
            yield schema.problem(f"{path}._target_", node["_target_"], reason)


def check_composed(cfg: DictConfig, config_dirs: Iterable[Path] = (CONFIG_DIR,)) -> None:
    """Raise ConfigError on the first problem :func:`composed_problems` finds. Every config Hydra composes for the apps
    passes here (:mod:`initlab.cli.common`); so must any config read from a file (a checkpoint's run folder)."""
    _raise_first(composed_problems(cfg, config_dirs))


def _problems(cfg: DictConfig, plain: dict[str, Any], data_files: bool = False) -> Iterator[str]:
    """Every problem, cheapest check first; consumed lazily, so a typo never imports torch, and no target is
    imported before all of them passed the allowlist."""
    yield from schema.target_problems(plain)
    yield from schema.key_problems(plain)
    yield from schema.value_problems(plain)
    yield from schema.cross_problems(plain, _data_choice(cfg))
    yield from _dataset_fact_problems(plain, _data_choice(cfg))
    for path, node in schema.target_nodes(plain):
        yield from schema.signature_problems(path, node)
    yield from schema.device_problems(plain)
    if data_files:
        yield from _data_file_problems(plain, _data_choice(cfg))
    for path, node in schema.target_nodes(plain):  # imports them (torch too): right before the dry build instantiates them
        if (reason := schema.defined_where_named(node["_target_"])) is not None:
            yield schema.problem(f"{path}._target_", node["_target_"], reason)
    _floats_where_declared(cfg, plain)
    yield from _build_problems(cfg)


def validate_config(cfg: DictConfig, data_files: bool = False) -> None:
    """Raise ConfigError on the first problem of ``cfg``; an integer where a target declares a float becomes that float.
    ``data_files``: also check that the dataset's files are there or can be downloaded now (what the apps do).
    The composed checks (:func:`check_composed`) run first, on the unresolved tree, then all others on the resolved one."""
    check_composed(cfg)
    _raise_first(_problems(cfg, _plain(cfg), data_files))


def _data_file_problems(plain: dict[str, Any], data_choice: str) -> list[str]:
    """A downloadable dataset whose files are missing and cannot be fetched (download=false, no network), in
    seconds and without torch: before this, a run imported Lightning and waited on torchvision's download retries."""
    from initlab.data.sources import availability_problem

    reason = availability_problem(data_choice, plain.get("data") or {})
    return [f"data: {reason}"] if reason else []


def _dataset_fact_problems(plain: dict[str, Any], data_choice: str) -> list[str]:
    """``data.input_shape`` / ``data.num_classes`` are facts of the dataset (as its shipped option says), not settings."""
    option = CONFIG_DIR / "data" / f"{data_choice}.yaml"
    data = plain.get("data") if isinstance(plain.get("data"), dict) else {}
    shipped = OmegaConf.load(option) if option.is_file() else OmegaConf.create()
    problems = []
    for key, what in schema.DATA_FACTS.items():
        if key not in shipped or OmegaConf.is_interpolation(shipped, key) or key not in data:
            continue
        fact = OmegaConf.to_object(shipped[key]) if OmegaConf.is_config(shipped[key]) else shipped[key]
        if data[key] != fact:
            allowed = f"is a fact of the dataset, not a setting: data={data_choice} has {what.format(fact)}"
            problems.append(schema.problem(f"data.{key}", data[key], allowed))
    return problems


def _floats_where_declared(cfg: DictConfig, plain: dict[str, Any]) -> None:
    """An integer given where the target's signature says ``float`` becomes that float (``optim.rho1=0``: torch's
    Adam refuses betas that mix an int and a float)."""
    for path, node in schema.target_nodes(plain):
        params, _ = schema.parameters(node["_target_"])
        parent = OmegaConf.select(cfg, path)
        for key, value in node.items():
            if schema.is_int(value) and schema.wants_float(params.get(key)) and not OmegaConf.is_interpolation(parent, key):
                parent[key] = float(value)


def _build_problems(cfg: DictConfig) -> list[str]:
    """Construct model, init on noise, optimizer, schedule, the checkpoint's fit and the data module (nothing loaded)
    once; the data module last, since its class imports Lightning (seconds)."""
    parts = _build_steps(cfg)
    built: dict[str, Any] = {}
    for group, build in parts.items():
        if group in cfg:
            try:
                built[group] = build(built)
            except ConfigError as err:
                return [str(err)]
            except Exception as err:
                return [schema.problem(group, _choice(cfg, group), _reason(err))]
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
        from initlab.training.build import optimizer_node

        lr = {"lr": 1.0} if cfg.optim.get("lr") == "auto" else {}
        return instantiate(optimizer_node(cfg.optim), **lr)(built["model"].parameters())

    def checkpoint(built: dict[str, Any]) -> Path | None:
        from initlab.training.checkpoints import check_fit, resume_path

        path = resume_path(cfg.ckpt_path, Path(cfg.paths.output_dir))
        if path is not None:
            check_fit(path, built["model"], built.get("optim"))
        return path

    def analysis(built: dict[str, Any]) -> None:
        count = sum(p.numel() for p in built["model"].parameters())
        if cfg.analysis.get("k_top", 1) >= count:
            raise ConfigError(schema.problem("analysis.k_top", cfg.analysis.k_top, f"must be < the model's {count} parameters"))

    return {
        "model": lambda built: instantiate_model(cfg.model),
        "init": init,
        "optim": optimizer,
        "sched": lambda built: instantiate(cfg.sched)(built["optim"], total_steps=DRY_TOTAL_STEPS),
        "ckpt_path": checkpoint,
        "analysis": analysis,
        "data": lambda built: instantiate(cfg.data),
    }


def _reason(err: BaseException) -> str:
    """The innermost message (Hydra wraps constructor errors in InstantiationException)."""
    while err.__cause__ is not None:
        err = err.__cause__
    return str(err)


def _given(key: str) -> bool:
    """Whether the command line set ``key`` (rather than the config's default)."""
    from hydra.core.hydra_config import HydraConfig

    overrides = HydraConfig.get().overrides.task if HydraConfig.initialized() else []
    return any(o.lstrip("+~").partition("=")[0] == key for o in overrides)


def validate_with_data(cfg: DictConfig, datamodule: Any, total_steps: int) -> None:
    """What needs the loaded data: init batch vs train size, model vs dataset shapes, schedule vs run length."""
    import torch
    from hydra.utils import instantiate

    choice = _data_choice(cfg)
    train_size = len(datamodule.train_data.y)
    limit = f" with data.limit_train={cfg.data.limit_train}" if cfg.data.get("limit_train") else ""
    problems = []
    if cfg.init_batch_size > train_size and _given("init_batch_size"):
        allowed = f"must be <= {train_size}: data={choice}{limit} has {train_size} training samples"
        problems.append(schema.problem("init_batch_size", cfg.init_batch_size, allowed))
    elif cfg.init_batch_size > train_size:  # the default asks for at most its count: a small split gives what it has
        log.info("init_batch_size: %d -> %d, the training samples of data=%s%s", cfg.init_batch_size, train_size, choice, limit)
        cfg.init_batch_size = train_size
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
            raise ConfigError(schema.problem("sched", _choice(cfg, "sched"), f"{_reason(err)} (the run has {total_steps} optimizer steps)")) from None
