"""The config schema: what every key may be, so a bad value fails before anything is built.

A key's type comes from the signature of its node's ``_target_`` (the type hints); ``RULES``
is the one registry of ranges, and of the types of the keys no target takes (run-level keys,
``paths``, ``lr_find``, ``model.compile``). A key that a rule names is checked by the rule,
not by its type hint (``optim.lr`` may be ``auto``). Every check returns one-line problems
``<key>: got <value>, <what is allowed>``; :mod:`initlab.config` raises the first one.
"""

import ast
import difflib
import functools
import importlib
import importlib.util
import inspect
import math
import os
import re
import sys
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

Rule = tuple[Callable[[Any], bool], str]

UINT32_MAX = 2**32 - 1  # numpy and torch seeds
# The smallest learning rate accepted. Far below any useful rate: with a unit gradient, a float32
# weight of magnitude >= 4e-5 cannot move (its spacing is about 1e-7 x the weight), and 1e-300 is 0 in
# float32, so smaller values only make runs that silently do not train.
LR_FLOOR = 1e-12
MAX_NAME = 255  # file-name limit: names, tags and path components end up in file names
MAX_PATH = 4096
PATH_SHOWN = 240  # characters of a path a one-line message keeps (400 in all)
# The largest learning rate accepted: past any rate that trains (the divergence monitor stops far below it),
# and far from float32's overflow (3.4e38), where a larger one crashes a step instead of diverging.
LR_CEIL = 1e6
# What a `_target_` may name (README "Threat model"): the objects initlab's configs instantiate, and everything
# under them (add an entry to allow more). Checked on the text and the source before anything is imported (exact
# module path: exact_path_problem), and on the imported object right before the build (defined_where_named).
# Narrower than whole packages on purpose: torch.hub.load, torch.load and initlab's file writers are callables too.
# Container entries (callbacks, loggers) must be classes.
TARGETS = (
    "initlab.data", "initlab.models", "initlab.init", "initlab.optim", "initlab.training.callbacks", "initlab.training.loggers",
    "initlab.analysis.report.AnalysisSettings", "initlab.cli.sweep.SweepSummary",
    "torch.nn", "torch.optim",
    *(f"{lightning}.{part}" for lightning in ("pytorch_lightning", "lightning.pytorch")
      for part in ("Trainer", "callbacks", "loggers", "strategies", "plugins", "profilers", "accelerators")),
    "hydra._internal.core_plugins", "hydra_plugins.hydra_joblib_launcher", "hydra_plugins.hydra_submitit_launcher",
    "hydra_plugins.hydra_optuna_sweeper", "optuna.samplers", "dvclive.lightning.DVCLiveLogger",
)
DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")
LOG_LEVELS = ("CRITICAL", "FATAL", "ERROR", "WARN", "WARNING", "INFO", "DEBUG", "NOTSET", 50, 40, 30, 20, 10, 0)

# Resolvers an interpolation may call: each gives a plain value or a node already in the config (checked where it
# stands), never new config built from a string (``oc.decode``, ``oc.create``: a `_target_` no check has seen).
RESOLVERS = ("now", "hydra", "project_root", "oc.env", "oc.select")
RESOLVER_CALL = re.compile(r"\$\{\s*([^${}:\s]+)\s*:")
# What Hydra's logging configs (``hydra.job_logging``, ``hydra.hydra_logging``; handed to logging.config.dictConfig,
# which imports and calls what they name) may name: these classes, these streams, no ``()`` factories.
LOG_CLASSES = ("logging.StreamHandler", "logging.FileHandler", "logging.NullHandler", "logging.Formatter")
LOG_STREAMS = ("ext://sys.stdout", "ext://sys.stderr")
# ``hydra.job.env_set``: what a run may set in its own environment. Names from this list of globs only (threads, devices,
# W&B and Hydra switches); never the loader's or the interpreter's (LD_PRELOAD, PYTHONPATH, PATH: code from a file).
ENV_NAMES = ("*_NUM_THREADS", "CUDA_VISIBLE_DEVICES", "CUDA_LAUNCH_BLOCKING", "CUBLAS_WORKSPACE_CONFIG",
             "PYTORCH_CUDA_ALLOC_CONF", "WANDB_MODE", "WANDB_SILENT", "WANDB_PROJECT", "WANDB_ENTITY", "HYDRA_FULL_ERROR")
ENV_VALUE = re.compile(r"[A-Za-z0-9_.,:=+-]{0,256}")
# The smallest value of a knob that scales a step or a weight (lr_auto_scale, gradient_clip_val, sched.gamma, init.gain,
# init.std): a millionth of the defaults (1.0). Below it steps or weights are too small to move a float32 weight, and a
# run that did not train would end `done` (a zero init is init=zeros).
SCALE_FLOOR = 1e-6
# The largest analysis knobs: far past any useful setting, small enough that a run ends in minutes, not hours.
ANALYSIS_MAX = {"k_top": 256, "trace_probes": 10_000, "slq_probes": 256, "slq_steps": 1024, "grid": 100_000}

# Top-level nodes: a node with a _target_ each, except the containers (named nodes with a _target_
# each) and the plain nodes (every key declared in RULES).
TARGET_GROUPS = ("data", "model", "init", "optim", "sched", "trainer", "analysis")
CONTAINERS = ("callbacks", "logger")
PLAIN_GROUPS = ("paths", "lr_find")


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def integer(low: int, high: int | None = None) -> Rule:
    text = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
    return (lambda v: is_int(v) and v >= low and (high is None or v <= high)), text


def number(low: float, strict: bool = True, high: float | None = None) -> Rule:
    text = f"a number {'>' if strict else '>='} {low:g}" + ("" if high is None else f" and <= {high:g}")
    return (lambda v: _is_number(v) and (v > low if strict else v >= low) and (high is None or v <= high)), text


def choice(*options: Any) -> Rule:
    allowed = repr(options[0]) if len(options) == 1 else f"one of {list(options)}"
    return (lambda v: any(v == o and type(v) is type(o) for o in options)), allowed


def optional(rule: Rule) -> Rule:
    return (lambda v: v is None or rule[0](v)), f"null or {rule[1]}"


def either(*rules: Rule) -> Rule:
    return (lambda v: any(r[0](v) for r in rules)), " or ".join(r[1] for r in rules)


def list_of(rule: Rule, min_len: int = 1) -> Rule:
    size = "a non-empty list" if min_len else "a list"
    return (lambda v: isinstance(v, list) and len(v) >= min_len and all(rule[0](x) for x in v)), f"{size} of items each {rule[1]}"


def text(max_len: int = MAX_NAME) -> Rule:
    return (lambda v: isinstance(v, str) and 0 < len(v) <= max_len), f"a non-empty string of at most {max_len} characters"


def _is_path(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_PATH and all(len(p) <= MAX_NAME for p in value.split(os.sep))


def _existing_part(path: str) -> Path | None:
    """The deepest existing folder or file on ``path`` (what a mkdir would start from); None where the system refuses to
    say (``/proc/1/root/x``: permission denied), so an unreadable path is a rule's one line, not an OSError."""
    current = Path(path).absolute()
    try:
        while not current.exists() and current != current.parent:
            current = current.parent
        return current if current.is_dir() or current.exists() else None
    except OSError:
        return None


def _is_dir(value: Any) -> bool:
    """A path whose existing part is a readable folder (so mkdir can make the rest): ``/dev/null/x``, a file or
    ``/proc/1/root/x`` is not."""
    if not (_is_path(value) and "${" not in value):
        return False
    existing = _existing_part(value)
    return existing is not None and existing.is_dir() and os.access(existing, os.R_OK | os.X_OK)


def _is_writable_dir(value: Any) -> bool:
    return _is_dir(value) and os.access(_existing_part(value), os.W_OK | os.X_OK)


def _is_data_folder(value: Any) -> bool:
    """``data.path``: a folder (or one to be made), not a file: the dataset's files are looked up inside it."""
    return _is_dir(value) and not Path(value).is_file()


def _is_name(value: Any) -> bool:
    """One path component: names that end up as file or folder names must not climb out of their folder."""
    return isinstance(value, str) and 0 < len(value) <= MAX_NAME and "/" not in value and "\\" not in value \
        and value not in (".", "..") and "\0" not in value


DURATION = re.compile(r"(\d+):(\d+):(\d+):(\d+)")


def _is_duration(value: Any) -> bool:
    """Lightning's ``max_time``: ``DD:HH:MM:SS`` or a dict of timedelta fields, longer than zero."""
    if isinstance(value, str) and (match := DURATION.fullmatch(value)):
        return any(int(part) for part in match.groups())
    fields = ("days", "hours", "minutes", "seconds")
    return isinstance(value, dict) and bool(value) and set(value) <= set(fields) and all(_is_number(v) and v >= 0 for v in value.values()) \
        and sum(value.values()) > 0


BOOL: Rule = (lambda v: isinstance(v, bool), "true or false")
PATH: Rule = (_is_path, f"a path (at most {MAX_PATH} characters, {MAX_NAME} per component)")
DIR: Rule = (_is_dir, "a folder path whose existing part is a readable folder (not a file)")
WRITABLE_DIR: Rule = (_is_writable_dir, "a folder path whose existing part is a readable, writable folder")
DATA_FOLDER: Rule = (_is_data_folder, "a readable folder holding the dataset's files, not a file")
# Lightning's ModelCheckpoint wants a datetime.timedelta there, which a config cannot build (not allowlisted).
TIME_INTERVAL: Rule = (lambda v: v is None, "null (use every_n_train_steps or every_n_epochs: a config cannot build a timedelta)")
NAME: Rule = (_is_name, f"a plain name (no '/', not '.' or '..', at most {MAX_NAME} characters): it names a file or folder")
DURATION_RULE: Rule = (_is_duration, "a duration longer than zero ('DD:HH:MM:SS' or {days,hours,minutes,seconds})")
LR = number(LR_FLOOR, strict=False, high=LR_CEIL)
SEED = integer(0, UINT32_MAX)
POSITIVE = number(0)
BATCHES = optional(either(integer(1), ((lambda v: isinstance(v, float) and 0 < v <= 1), "a fraction in (0, 1]")))
PRECISIONS = ("32-true", "32", 32, "64-true", "64", 64, "bf16-mixed", "bf16-true", "bf16", "16-mixed", "16-true", "16", 16)
HALF_PRECISIONS = ("16-mixed", "16-true", "16", 16)  # float16: the CPU cannot run it (Lightning swaps in bf16)

# Glob pattern of dotted keys -> (predicate, what is allowed). Every top-level key of a root
# config (conf/train.yaml, analyze.yaml, lr_find.yaml) that is not a group is declared here.
RULES: dict[str, Rule] = {
    "task_name": NAME,
    "seed": SEED,
    "*.seed": SEED,
    "init_batch_size": integer(1),
    "lr_auto_scale": number(SCALE_FLOOR, strict=False, high=LR_CEIL),
    "ckpt_path": optional(PATH),
    "test": BOOL,
    "print_config": BOOL,
    "overwrite": BOOL,
    "tags": list_of(text(64), min_len=0),  # W&B's limit on a tag
    "num_samples": either(integer(1), choice("all")),
    "device": choice("cpu", "cuda", "auto"),
    "dtype": choice("float32", "float64"),
    "paths.*": DIR,
    "paths.log_dir": WRITABLE_DIR,
    "paths.output_dir": WRITABLE_DIR,
    "lr_find.min_lr": LR,
    "lr_find.max_lr": LR,
    "lr_find.num_steps": integer(1),
    "lr_find.mode": choice("exponential", "linear"),
    "lr_find.early_stop_threshold": optional(POSITIVE),
    "data.batch_size": integer(1),
    "data.eval_batch_size": integer(1),
    "data.limit_train": optional(integer(1)),
    "data.val_size": integer(1),
    "data.split_seed": SEED,
    "data.verify_md5": BOOL,
    "data.download": BOOL,
    "data.path": optional(DATA_FOLDER),
    "data.num_classes": integer(2),
    "data.input_shape": list_of(integer(1)),
    "model.num_classes": integer(2),
    "model.input_shape": list_of(integer(1)),
    "model.widths": list_of(integer(1)),
    "model.width": integer(1),
    "model.depth": integer(2),
    "model.hidden": integer(1),
    "model.channels": list_of(integer(1)),
    "model.kernel_size": integer(1),
    "model.compile": BOOL,
    "optim.lr": either(choice("auto"), LR),
    "optim.lr_refresh": optional(integer(1)),
    "sched.warmup_steps": integer(0),
    "sched.gamma": number(SCALE_FLOOR, strict=False, high=1),  # the decay factor: below the floor the lr is 0 in a step
    "init.gain": number(SCALE_FLOOR, strict=False, high=LR_CEIL),
    "init.std": number(SCALE_FLOOR, strict=False, high=LR_CEIL),
    "sched.tau": optional(POSITIVE),
    "sched.step_size": optional(integer(1)),
    "trainer.max_epochs": integer(1),
    "trainer.devices": either(integer(1), choice(-1, "auto"), list_of(integer(0))),
    "trainer.num_nodes": integer(1),
    "trainer.accelerator": choice("cpu", "gpu", "cuda", "auto"),
    "trainer.precision": choice(*PRECISIONS),
    "trainer.log_every_n_steps": integer(1),
    "trainer.check_val_every_n_epoch": optional(integer(1)),
    "trainer.gradient_clip_val": optional(number(SCALE_FLOOR, strict=False)),
    "trainer.limit_*_batches": BATCHES,
    "trainer.max_time": optional(DURATION_RULE),
    "callbacks.*.max_loss_ratio": number(1),
    "callbacks.*.every_n_steps": integer(1),
    "callbacks.*.check_every_n_steps": integer(1),
    "callbacks.*.refresh_rate": integer(0),
    "callbacks.*.num_samples": integer(1),
    "callbacks.*.tol": POSITIVE,
    "callbacks.*.filename": optional(NAME),
    "callbacks.*.train_time_interval": TIME_INTERVAL,
    "logger.*.mode": choice("offline", "online", "disabled"),
    "logger.*.project": NAME,
    "logger.csv.name": NAME,
    "logger.csv.version": optional(either(integer(0), NAME)),
    "analysis.k_top": integer(1, ANALYSIS_MAX["k_top"]),
    "analysis.tol": number(0, high=1),
    "analysis.trace_probes": integer(2, ANALYSIS_MAX["trace_probes"]),  # a standard error needs two probes
    "analysis.slq_probes": integer(1, ANALYSIS_MAX["slq_probes"]),
    "analysis.slq_steps": integer(2, ANALYSIS_MAX["slq_steps"]),
    "analysis.grid": integer(2, ANALYSIS_MAX["grid"]),
    "analysis.jacobian_tol": number(0, high=1),
    "analysis.batch_size": integer(1, 2**24),
    "analysis.max_device_bytes": optional(integer(0)),
    # Hydra's own node, checked on the command line before Hydra makes the run dir or sets up logging.
    "hydra.run.dir": WRITABLE_DIR,
    "hydra.sweep.dir": WRITABLE_DIR,
    "hydra.sweep.subdir": NAME,
    "hydra.job.name": NAME,
    "hydra.*_logging.*level": choice(*LOG_LEVELS),
    "hydra.sweeper.n_trials": integer(1),
    "hydra.sweeper.n_jobs": integer(1),
    "hydra.launcher.n_jobs": either(integer(1), choice(-1)),
}
# Keys whose value is a file or folder the run writes: it must lie inside the run dir (``paths.output_dir``).
CONFINED = ("callbacks.*.dirpath", "callbacks.*.path", "logger.*.save_dir", "logger.*.dir", "logger.*.dvcyaml")

Leaf = tuple[str, Any]


def show(value: Any, limit: int = 60) -> str:
    """``repr`` cut to ``limit`` characters: a message stays one short line."""
    shown = repr(value)
    return shown if len(shown) <= limit else f"{shown[:limit]}... ({len(shown)} characters)"


def problem(key: str, value: Any, allowed: str) -> str:
    """The one line of every config error: ``<key>: got <value>, <what is allowed>`` (values cut at 60 characters, paths
    at :data:`PATH_SHOWN`: the end of a path says most)."""
    key = key if len(key) <= 80 else f"{key[:80]}... ({len(key)} characters)"
    return f"{key}: got {show(value, PATH_SHOWN if isinstance(value, str) and os.sep in value else 60)}, {allowed}"


def rules_for(key: str) -> list[Rule]:
    return [rule for pattern, rule in RULES.items() if fnmatchcase(key, pattern)]


def _suggest(name: str, candidates: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def leaves(node: Any, path: str = "") -> Iterator[Leaf]:
    """(dotted key, value) of every scalar and list in a plain container, depth first."""
    if isinstance(node, dict):
        for key, child in node.items():
            yield from leaves(child, f"{path}.{key}" if path else str(key))
    else:
        yield path, node


def _has_target(node: Any) -> bool:
    return isinstance(node, dict) and "_target_" in node


def key_problems(cfg: dict[str, Any]) -> list[str]:
    """Unknown top-level keys, unknown keys of the plain groups, container entries without a target."""
    top = [*TARGET_GROUPS, *CONTAINERS, *PLAIN_GROUPS, *(p for p in RULES if p.isidentifier())]
    problems = []
    for key, value in cfg.items():
        if key not in top:
            known = [path for path, _ in leaves(cfg) if path.endswith(f".{key}")]
            hint = f" (did you mean {known[0]!r}?)" if known else _suggest(key, top)
            problems.append(problem(key, value, f"unknown key{hint}"))
        elif key in TARGET_GROUPS and not _has_target(value):
            problems.append(problem(key, value, "must be a config node with a _target_ (pick an option of the group)"))
        elif key in CONTAINERS:
            problems += [problem(f"{key}.{name}", entry, "must be a config node with a _target_ or null")
                         for name, entry in (value or {}).items() if entry is not None and not _has_target(entry)]
        elif key in PLAIN_GROUPS:
            declared = [p.split(".", 1)[1] for p in RULES if p.startswith(f"{key}.")]
            problems += [problem(path, leaf, f"unknown key{_suggest(path.split('.', 1)[1], declared)}")
                         for path, leaf in leaves(value, key) if not rules_for(path)]
    return problems


TRUSTED_ENV = "INITLAB_TRUSTED_MODULES"


def trusted_modules() -> tuple[str, ...]:
    """Modules the user admits for their own code (an init of theirs: docs/bench.md), in their own shell:
    ``INITLAB_TRUSTED_MODULES=bench.inits`` (comma-separated). An environment variable, and ``hydra.job.env_set`` may not
    set it, so no file (params.yaml, a config, a checkpoint's run folder) can widen what a ``_target_`` may name."""
    return tuple(m.strip() for m in os.environ.get(TRUSTED_ENV, "").split(",") if DOTTED.fullmatch(m.strip()))


def target_allowed(target: Any) -> bool:
    """Whether ``target`` is a dotted name under :data:`TARGETS` or a module the user trusts (text only: nothing is
    imported)."""
    return isinstance(target, str) and bool(DOTTED.fullmatch(target)) and any(
        target == t or target.startswith(f"{t}.") for t in (*TARGETS, *trusted_modules()))


def module_split(target: str) -> tuple[str, str]:
    """(the longest prefix of ``target`` that is a module file, the rest), found without importing anything."""
    parts = target.split(".")
    for end in range(len(parts) - 1, 0, -1):
        try:
            if _source(".".join(parts[:end])) is not None:
                return ".".join(parts[:end]), ".".join(parts[end:])
        except (ImportError, ValueError):
            break
    return "", target


def _binds_module(module: str, name: str) -> bool:
    """Whether ``module``'s source binds ``name`` to a module (``import torch``, ``from torch import nn``)."""
    for node in _module_body(module):
        if isinstance(node, ast.Import) and any((a.asname or a.name.partition(".")[0]) == name for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom):
            origin = _imported_module(module, node)
            if any((a.asname or a.name) == name and _source(f"{origin}.{a.name}") is not None for a in node.names):
                return True
    return False


def exact_path_problem(target: str) -> str | None:
    """Why ``target`` is not ``<module>.<name>`` with ``name`` an object of that module, from source (no import):
    ``torch.nn.modules.module.torch.<...>`` reaches another module through an allowed one's attributes."""
    module, name = module_split(target)
    if not module:
        return "names no installed module"
    if "." in name or _binds_module(module, name):
        return f"must name an object defined in the module it names: {module!r} reaches {name!r} through another module"
    return None


def defined_where_named(target: str) -> str | None:
    """The same check on the imported object (run right before anything is instantiated): it must not be a module,
    and its definition (``__module__.__qualname__``) must itself be allowlisted, or ``target`` an exact entry."""
    module, name = module_split(target)
    try:
        found = getattr(importlib.import_module(module), name)
    except Exception as err:  # an unimportable target is itself the problem
        return f"must be importable ({type(err).__name__}: {err})"
    origin = f"{getattr(found, '__module__', '')}.{getattr(found, '__qualname__', '')}"
    if inspect.ismodule(found) or not (target in TARGETS or target_allowed(origin)):
        return f"must be defined in an allowlisted module (it is {origin.strip('.') or type(found).__name__})"
    return None


def _names_class(target: str) -> bool:
    """Whether ``target`` is defined as a class, read from source (an unreadable definition counts as one)."""
    module, _, name = target.rpartition(".")
    found = _definition(module, name)
    return found is None or isinstance(found[1], ast.ClassDef | ast.Assign)


def target_problems(node: Any, path: str = "") -> list[str]:
    """Every ``_target_`` anywhere in ``node`` (nested dicts and lists) against the allowlist, before any import.

    Hydra instantiates nested targets too, so a node inside a list or under an ordinary key counts;
    an entry of ``callbacks``, ``logger`` or ``hydra.callbacks`` must name a class (a function there
    would just be called with the config's arguments).
    """
    problems = []
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    if isinstance(node, dict) and "_target_" in node:
        target, where = node["_target_"], f"{path}._target_" if path else "_target_"
        if not target_allowed(target):
            problems.append(problem(where, target, "must be under initlab, torch.nn/optim, Lightning or a shipped Hydra plugin "
                                                   "(allowlisted targets: README, Threat model)"))
        elif (walked := exact_path_problem(target)) is not None:
            problems.append(problem(where, target, walked))
        elif re.fullmatch(r"(hydra\.callbacks|callbacks|logger)\.[^.]+", path) and not _names_class(target):
            problems.append(problem(where, target, "must name a class (a callback or logger), not a function"))
    for key, child in children:
        problems += target_problems(child, f"{path}.{key}" if path else str(key))
    return problems


def _strings(node: Any, path: str = "") -> Iterator[Leaf]:
    """(dotted key, value) of every string in nested dicts and lists (keys included: Hydra resolves neither)."""
    if isinstance(node, dict):
        for key, child in node.items():
            yield from _strings(child, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _strings(child, f"{path}.{index}" if path else str(index))
    elif isinstance(node, str):
        yield path, node


def resolver_problems(node: Any) -> list[str]:
    """Interpolations that call a resolver outside :data:`RESOLVERS`, on the unresolved config (nested calls too)."""
    return [problem(path, value, f"calls the resolver {name!r}; interpolations may call only {', '.join(RESOLVERS)} "
                                 "(a resolver that builds config from a string would hide a _target_ from the allowlist)")
            for path, value in _strings(node) for name in RESOLVER_CALL.findall(value) if name not in RESOLVERS][:1]


def _logging_problems(path: str, logging_cfg: Any) -> list[str]:
    """A logging config names only :data:`LOG_CLASSES` and :data:`LOG_STREAMS`, and no ``()`` factory."""
    problems = [problem(key, "()", "a logging factory ('()') runs any callable; use a handler class of "
                                   f"{list(LOG_CLASSES)}") for key, _ in nodes(logging_cfg, path) if key.endswith(".()")]
    for key, value in _strings(logging_cfg, path):
        if key.endswith(".class") and value not in LOG_CLASSES:
            problems.append(problem(key, value, f"must be one of {list(LOG_CLASSES)}"))
        elif value.startswith(("ext://", "cfg://")) and value not in LOG_STREAMS:
            problems.append(problem(key, value, f"must be one of {list(LOG_STREAMS)}"))
    return problems


def _env_problems(env: Any) -> list[str]:
    """``hydra.job.env_set``: allowlisted names (:data:`ENV_NAMES`), short plain values."""
    if not isinstance(env, dict):
        return [] if env is None else [problem("hydra.job.env_set", env, "must be a mapping of NAME: value")]
    problems = []
    for name, value in env.items():
        if not any(fnmatchcase(str(name), pattern) for pattern in ENV_NAMES):
            problems.append(problem(f"hydra.job.env_set.{name}", value, f"sets a variable outside {list(ENV_NAMES)} "
                                                                        "(the loader's and interpreter's variables run code)"))
        elif isinstance(value, bool) or not (isinstance(value, (int, float)) or (isinstance(value, str) and ENV_VALUE.fullmatch(value))):
            problems.append(problem(f"hydra.job.env_set.{name}", value, "must be a number or a plain string "
                                                                        "(letters, digits, _.,:=+-, at most 256 characters)"))
    return problems


def hydra_problems(hydra: dict[str, Any]) -> list[str]:
    """Hydra's own node as composed (unresolved): no extra search path, what its logging configs may name, the
    environment a job sets. Paths it writes are checked by :func:`confined_problems` once resolved."""
    problems = [problem("hydra.searchpath", hydra["searchpath"], "must be empty: configs come only from conf/ and "
                                                                 "--config-dir")] if hydra.get("searchpath") else []
    for key in ("job_logging", "hydra_logging"):
        problems += _logging_problems(f"hydra.{key}", hydra.get(key) or {})
    problems += _env_problems((hydra.get("job") or {}).get("env_set"))
    for group, option in ((hydra.get("runtime") or {}).get("choices") or {}).items():
        if isinstance(option, str) and not is_option(option):
            problems.append(problem(str(group), option, OPTION_ALLOWED))
    return problems


def is_option(value: str) -> bool:
    """A config group option: a relative name inside its group's folder (``sub/name`` is fine, ``..`` and ``/x`` not)."""
    return bool(value) and not value.startswith(("/", "\\")) and ".." not in re.split(r"[/\\]", value) and "\0" not in value


OPTION_ALLOWED = "must name an option inside the group's folder (no '..', not an absolute path): configs come only from conf/ and --config-dir"


# Hydra writes these under the run dir (a relative value is relative to it); log files open from the working directory.
UNDER_RUN_DIR = ("hydra.output_subdir",)


def confined_problems(files: dict[str, Any], run_dir: str) -> list[str]:
    """Files Hydra writes (log files, ``hydra.output_subdir``), resolved with the run dir as ``run_dir``: each must lie
    inside it (``..``, paths elsewhere, log files relative to the working directory, unresolvable values are refused)."""
    problems = []
    for key, value in files.items():
        full = os.path.join(run_dir, value) if key in UNDER_RUN_DIR and isinstance(value, str) else value
        inside = isinstance(full, str) and os.path.normpath(full).startswith(run_dir + os.sep)
        if value is not None and not inside:
            problems.append(problem(key, value, "must lie inside the run dir (a file name under ${hydra.runtime.output_dir})"))
    return problems


def nodes(node: Any, path: str = "") -> Iterator[Leaf]:
    """(dotted key, value) of every node of a plain container, dicts included, depth first."""
    if path:
        yield path, node
    if isinstance(node, dict):
        for key, child in node.items():
            yield from nodes(child, f"{path}.{key}" if path else str(key))


def _finite(value: Any) -> bool:
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return not isinstance(value, float) or math.isfinite(value)


def value_problems(cfg: dict[str, Any]) -> list[str]:
    """NaN/inf anywhere, over-long strings anywhere, then every rule that names the key."""
    problems = []
    for path, value in nodes(cfg):
        if isinstance(value, dict):  # a rule names a scalar or list: a node where one is meant is wrong
            problems += [problem(path, value, f"must be {allowed}") for check, allowed in rules_for(path) if not check(value)][:1]
        elif not _finite(value):
            problems.append(problem(path, value, "must be finite (no nan or inf)"))
        elif isinstance(value, str) and len(value) > MAX_PATH:
            problems.append(problem(path, value, f"must be at most {MAX_PATH} characters"))
        else:
            problems += [problem(path, value, f"must be {allowed}") for check, allowed in rules_for(path) if not check(value)]
    return problems


# How a message names what the dataset has.
DATA_FACTS = {"input_shape": "inputs of shape {}", "num_classes": "{} classes"}


def bias_scheme(init: dict[str, Any]) -> Any:
    """The bias scheme's name: ``init.bias`` is the ``init/bias`` node or a bare name."""
    bias = init.get("bias")
    return bias.get("scheme") if isinstance(bias, dict) else bias


def cross_problems(cfg: dict[str, Any], data_choice: str) -> list[str]:
    """Keys that are fine alone but not together."""
    problems = []
    model, data = cfg.get("model") or {}, cfg.get("data") or {}
    for key, what in DATA_FACTS.items():
        if key in model and key in data and model[key] != data[key]:
            problems.append(problem(f"model.{key}", model[key], f"but data={data_choice} has {what.format(data[key])}"))
    if bias_scheme(cfg.get("init") or {}) == "output_marginals" and model.get("bias") is False:
        allowed = "needs an output layer with a bias: set model.bias=true or pick another init/bias"
        problems.append(problem("init.bias", "output_marginals", allowed))
    output_dir = (cfg.get("paths") or {}).get("output_dir")
    for path, value in leaves(cfg) if isinstance(output_dir, str) else ():
        if any(fnmatchcase(path, pattern) for pattern in CONFINED) and isinstance(value, str) and not _inside(value, output_dir):
            problems.append(problem(path, value, f"must lie inside the run dir {output_dir}"))
    optim = cfg.get("optim") or {}
    if optim.get("lr_refresh") is not None and optim.get("lr") != "auto":
        problems.append(problem("optim.lr_refresh", optim["lr_refresh"], "needs optim.lr=auto (it re-estimates the auto lr)"))
    finder = cfg.get("lr_find") or {}
    if _is_number(finder.get("min_lr")) and _is_number(finder.get("max_lr")) and finder["min_lr"] >= finder["max_lr"]:
        problems.append(problem("lr_find.min_lr", finder["min_lr"], f"must be < lr_find.max_lr ({finder['max_lr']})"))
    return problems


def _inside(path: str, folder: str) -> bool:
    """Whether ``path`` resolves (symlinks and ``..`` followed) to ``folder`` or below it."""
    return Path(path).resolve().is_relative_to(Path(folder).resolve())


def _matches(value: Any, annotation: Any) -> bool:
    """Whether a plain config value fits a type hint; anything unusual counts as a match."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(annotation))
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    checks: dict[Any, Callable[[Any], bool]] = {
        type(None): lambda v: v is None,
        bool: lambda v: isinstance(v, bool),
        int: is_int,
        float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        str: lambda v: isinstance(v, str),
        list: lambda v: isinstance(v, list),
        tuple: lambda v: isinstance(v, list),
        Sequence: lambda v: isinstance(v, list),
    }
    check = checks.get(origin or annotation)
    return check is None or check(value)


def wants_float(annotation: Any) -> bool:
    """Whether a type hint is ``float`` or ``float | None`` (an int given there is meant as that float)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return set(typing.get_args(annotation)) == {float, type(None)}
    return annotation is float


def _describe(annotation: Any) -> str:
    return annotation.__name__ if isinstance(annotation, type) else str(annotation).replace("typing.", "")


# What a type hint may name when read from source; any other name reads as Any (anything fits).
HINT_NAMES: dict[str, Any] = {
    "int": int, "float": float, "str": str, "bool": bool, "list": list, "List": list, "tuple": tuple, "Tuple": tuple,
    "None": type(None), "Optional": typing.Optional, "Union": typing.Union, "Literal": typing.Literal, "Sequence": Sequence,
}
BASE_CLASSES = ("object", "ABC", "Generic", "Protocol")  # bases that add no constructor arguments
Definition = tuple[str, ast.ClassDef | ast.FunctionDef | ast.Assign]


def _source(module: str) -> Path | None:
    """The file of ``module``, found without importing it or its packages (Lightning takes seconds)."""
    top, *rest = module.split(".")
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        return Path(spec.origin) if spec and spec.origin and not rest else None
    bases = [Path(location).joinpath(*rest) for location in spec.submodule_search_locations]  # several: a namespace package
    return next((f for base in bases for f in (base / "__init__.py", base.with_suffix(".py")) if f.is_file()), None)


@functools.cache
def _module_body(module: str) -> list[ast.stmt]:
    path = _source(module)
    return ast.parse(path.read_text()).body if path else []


def _imported_module(module: str, node: ast.ImportFrom) -> str:
    """The absolute name of a ``from ... import`` (relative ones counted from ``module``'s package)."""
    if not node.level:
        return node.module or ""
    path = _source(module)
    package = module if path and path.name == "__init__.py" else module.rpartition(".")[0]
    package = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
    return f"{package}.{node.module}" if node.module else package


def _definition(module: str, name: str, depth: int = 0) -> Definition | None:
    """Where ``module.name`` (``name`` may be ``alias.Name``) is defined, following re-exports, from source."""
    head, _, tail = name.partition(".")
    for node in _module_body(module) if depth < 12 else []:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.name == name:
            return module, node
        if isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == [name]:
            return module, node
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if (alias.asname or alias.name) == head:
                    origin = _imported_module(module, node)
                    return _definition(f"{origin}.{alias.name}" if tail else origin, tail or alias.name, depth + 1)
        if isinstance(node, ast.Import) and tail:
            for alias in node.names:
                if (alias.asname or alias.name) == head:
                    return _definition(alias.name, tail, depth + 1)
    return None


def _hint(node: ast.expr | None, module: str) -> Any:
    """A type hint from its source expression in ``module``, with no import: names it cannot follow are Any."""
    if isinstance(node, ast.Constant):
        text = node.value if isinstance(node.value, str) else None
        return type(None) if node.value is None else _hint(ast.parse(text, mode="eval").body, module) if text else Any
    if isinstance(node, ast.Name) and node.id not in HINT_NAMES:
        alias = _definition(module, node.id)
        return _hint(alias[1].value, alias[0]) if alias and isinstance(alias[1], ast.Assign) else Any
    if isinstance(node, (ast.Name, ast.Attribute)):
        return HINT_NAMES.get(node.id if isinstance(node, ast.Name) else node.attr, Any)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return typing.Union[_hint(node.left, module), _hint(node.right, module)]
    if isinstance(node, ast.Subscript):
        origin = _hint(node.value, module)
        items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if origin is typing.Literal:
            return typing.Literal[tuple(i.value for i in items if isinstance(i, ast.Constant))]
        args = tuple(_hint(i, module) for i in items)
        return origin[args if len(args) > 1 else args[0]] if origin is not Any else Any
    return Any


def _function_parameters(function: ast.FunctionDef, module: str) -> tuple[dict[str, Any], bool]:
    args = function.args
    named = [a for a in args.posonlyargs + args.args + args.kwonlyargs if a.arg != "self"]
    return {a.arg: _hint(a.annotation, module) for a in named}, args.kwarg is not None


def _source_parameters(module: str, name: str) -> tuple[dict[str, Any], bool] | None:
    """(name -> hint, forwards **kwargs) read from source; a class's ``__init__``, then its bases' while it forwards."""
    found = _definition(module, name)
    if found is None or isinstance(found[1], ast.Assign):
        return None
    where, node = found
    if isinstance(node, ast.FunctionDef):
        return _function_parameters(node, where)
    if any("dataclass" in ast.unparse(d) for d in node.decorator_list):
        fields = [f for f in node.body if isinstance(f, ast.AnnAssign) and isinstance(f.target, ast.Name)]
        return {f.target.id: _hint(f.annotation, where) for f in fields}, False
    init = next((f for f in node.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None)
    bases = [ast.unparse(b.value if isinstance(b, ast.Subscript) else b) for b in node.bases]
    bases = [b for b in bases if b.rpartition(".")[2] not in BASE_CLASSES]
    if init is None:  # the base's constructor
        return _source_parameters(where, bases[0]) if bases else ({}, False)
    params, kwargs = _function_parameters(init, where)
    if not kwargs or not bases or not _forwards_kwargs(init):
        return params, kwargs
    inherited = _source_parameters(where, bases[0])
    return None if inherited is None else (inherited[0] | params, inherited[1])


def _forwards_kwargs(init: ast.FunctionDef) -> bool:
    """Whether ``__init__`` hands its ``**kwargs`` to ``super().__init__``."""
    return any(isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "__init__"
               and isinstance(call.func.value, ast.Call) and ast.unparse(call.func.value.func) == "super"
               and any(k.arg is None for k in call.keywords) for call in ast.walk(init))


def _imported_parameters(target: Any) -> tuple[dict[str, Any], bool]:
    """The same from the imported object, for what the source reader cannot follow."""
    chain = [c.__init__ for c in inspect.getmro(target) if "__init__" in vars(c)] if inspect.isclass(target) else [target]
    params: dict[str, Any] = {}
    for function in chain:
        try:
            signature = inspect.signature(function)
            hints = typing.get_type_hints(function)
        except (TypeError, ValueError, NameError):
            return params, True
        for name, param in signature.parameters.items():
            if name != "self" and param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                params.setdefault(name, hints.get(name, Any))
        if inspect.Parameter.VAR_KEYWORD not in {p.kind for p in signature.parameters.values()}:
            return params, False
    return params, True


def parameters(target: str) -> tuple[dict[str, Any], bool]:
    """(name -> type hint, accepts any other key) of a ``_target_``: from its source, else by importing it."""
    module, _, name = target.rpartition(".")
    found = _source_parameters(module, name)
    return found if found is not None else _imported_parameters(getattr(importlib.import_module(module), name))


def target_nodes(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every node carrying a ``_target_``, with its dotted key."""
    if isinstance(node, dict):
        if "_target_" in node:
            yield path, node
        for key, child in node.items():
            yield from target_nodes(child, f"{path}.{key}" if path else str(key))


def signature_problems(path: str, node: dict[str, Any]) -> list[str]:
    """Unknown keys and wrong types of one node against its target's signature."""
    try:
        params, accepts_any = parameters(node["_target_"])
    except Exception as err:  # an unimportable target is itself the problem
        return [problem(f"{path}._target_", node["_target_"], f"must be importable ({type(err).__name__}: {err})")]
    problems = []
    for key, value in node.items():
        full = f"{path}.{key}"
        if key.startswith("_") or rules_for(full):
            continue
        if key not in params and not accepts_any:
            problems.append(problem(full, value, f"unknown key{_suggest(key, sorted(params))}"))
        elif key in params and not _matches(value, params[key]):
            problems.append(problem(full, value, f"must be {_describe(params[key])}"))
    return problems


def _select(cfg: dict[str, Any], key: str) -> Any:
    node: Any = cfg
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


# Device nodes of the GPU drivers torch.cuda can use on Linux (NVIDIA, AMD ROCm, WSL2): without any, there is no
# CUDA device, and saying so does not need the seconds of importing torch.
GPU_DEVICE_NODES = ("/dev/nvidiactl", "/dev/kfd", "/dev/dxg")


def _cuda_devices() -> int:
    if sys.platform.startswith("linux") and not any(os.path.exists(node) for node in GPU_DEVICE_NODES):
        return 0
    import torch

    return torch.cuda.device_count()


def _cuda_bf16() -> bool:
    import torch

    return torch.cuda.is_bf16_supported()


def device_problems(cfg: dict[str, Any]) -> list[str]:
    """Devices and precision the machine can run (CUDA device count; CPU processes vs cores)."""
    wants_cuda = [key for key in ("device", "data.device") if _select(cfg, key) == "cuda"]
    if wants_cuda and _cuda_devices() == 0:
        return [problem(wants_cuda[0], "cuda", "needs a CUDA device and this machine has none (use cpu or auto)")]
    trainer = cfg.get("trainer")
    if not isinstance(trainer, dict):
        return []
    accelerator, devices, precision = trainer.get("accelerator", "auto"), trainer.get("devices", "auto"), trainer.get("precision")
    gpus = 0 if accelerator == "cpu" else _cuda_devices()
    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and gpus > 0)
    if on_gpu and gpus == 0:
        return [problem("trainer.accelerator", accelerator, "needs a CUDA device and this machine has none (use trainer=cpu)")]
    available, unit = (gpus, "CUDA devices") if on_gpu else (os.cpu_count() or 1, "CPU cores")
    requested = len(devices) if isinstance(devices, list) else devices
    if is_int(requested) and requested > available:
        return [problem("trainer.devices", devices, f"must be <= {available}: this machine has {available} {unit}")]
    if not on_gpu and precision in HALF_PRECISIONS:
        return [problem("trainer.precision", precision, "must be 32-true, 64-true or bf16-mixed on the CPU (no float16 there)")]
    if on_gpu and str(precision).startswith("bf16") and not _cuda_bf16():
        return [problem("trainer.precision", precision, "needs a GPU with bfloat16 support; use 16-mixed or 32-true")]
    return []
