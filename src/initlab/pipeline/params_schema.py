"""The schema of ``params.yaml``: every DVC stage checks it first, so a bad knob is one line and exit 2.

``python -m initlab.pipeline.params_schema [params.yaml]`` checks the file alone. Each knob is
checked by the rule whose glob pattern names it (the same rule builders as the Hydra schema,
:mod:`initlab.schema`); the names of inits, optimizers and datasets must be options of ``conf/``.
Knobs no rule names are left to the stage that reads them. No value of this file is ever pasted
into a shell command unchecked: ``threads`` is an integer here, and the stages read it themselves.
"""

import math
import sys
from collections.abc import Callable, Iterator
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml

from initlab.locations import CONFIG_DIR
from initlab.schema import BOOL, LR, POSITIVE, SEED, Rule, choice, integer, list_of, number, problem, text

PARAMS_FILE = "params.yaml"
REQUIRED = ("data", "seeds", "inits", "optimizers", "threads")


def options(group: str) -> tuple[str, ...]:
    """The option names of a config group (``conf/<group>/*.yaml``)."""
    return tuple(sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml")))


# A repository file named by a knob (bench.inits: an init's code, a DVC dependency): relative, inside the checkout.
CODE_FILE: Rule = (lambda v: isinstance(v, str) and v.endswith(".py") and not v.startswith("/") and ".." not in v.split("/")
                   and all(c.isalnum() or c in "_./-" for c in v), "a relative path of a .py file inside the repository")
# Knobs whose keys are names too: the key must be an option of this conf/ group.
NAMED_KEYS = {"bench.inits.*": "init"}


def _unique(rule: Rule) -> Rule:
    return (lambda v: rule[0](v) and len(set(v)) == len(v)), f"{rule[1]}, without repeats"


def rules() -> dict[str, Rule]:
    """Glob pattern of a dotted knob -> (predicate, what is allowed); the first pattern that matches decides."""
    inits, optims = choice(*options("init")), choice(*options("optim"))
    count = integer(1)
    return {
        "data": choice(*options("data")),
        "seeds": _unique(list_of(SEED)),
        "inits": _unique(list_of(inits)),
        "optimizers": _unique(list_of(optims)),
        "device": choice("cpu", "cuda", "auto"),
        "threads": integer(1, 1024),
        "workers": integer(1, 1024),
        "bench.inits.*": CODE_FILE,
        "*.inits": list_of(inits),
        "*.train_inits": list_of(inits),
        "*.init": inits,
        "*.optim": optims,
        "*.lr_grid": list_of(LR),
        "*.lr_grid.*": list_of(LR),
        "*.budgets": _unique(list_of(count)),
        "*.depths": list_of(count),
        "*.train_depths": list_of(count),
        "*.activations": list_of(text(64)),
        "*.factors": list_of(POSITIVE),
        "*.lr_factors": list_of(POSITIVE),
        "*.eta": integer(2),
        "*.edge_extensions": integer(0),
        "*.refine.optims": list_of(optims),
        "*.points_per_octave": count,
        "*.diverge_factor": number(1),
        "*.tol": POSITIVE,
        "*.rel_tol": POSITIVE,
        "*.per_seed": BOOL,
        "*.seed": SEED,
        "*.probe_seed": SEED,
        "*seeds": count,
        "*steps": count,
        "*samples": count,
        "*probes": count,
        "*.batch_size": count,
        "*.width": count,
        "*.depth": count,
        "*.min_keep": count,
        "*.every": count,
        "*.trials": count,
        "*.chunk": count,
        "*.grid": integer(2),
        "*.keep": count,
    }


def params_problems(params: Any) -> list[str]:
    """One line per knob that breaks its rule, in the ``<knob> (params.yaml): got <value>, <allowed>`` form."""
    if not isinstance(params, dict):
        return [problem("params.yaml", params, "must be a mapping of knobs (data: ..., seeds: [...], ...)")]
    table = rules()
    found = [problem(f"{key} (params.yaml)", None, "must be given") for key in REQUIRED if key not in params]
    for key, value in _nodes(params):
        rule = next((r for pattern, r in table.items() if fnmatchcase(key, pattern)), None)
        group = next((g for pattern, g in NAMED_KEYS.items() if fnmatchcase(key, pattern)), None)
        if group and key.rpartition(".")[2] not in options(group):
            found.append(problem(f"{key} (params.yaml)", key.rpartition(".")[2], f"must name an option of conf/{group}: "
                                                                                 f"one of {list(options(group))}"))
        if key.rpartition(".")[2].startswith("_"):
            found.append(problem(f"{key} (params.yaml)", value, "is not a knob: params.yaml holds names of conf/ options "
                                                                "and numbers, never a _target_ or other instruction"))
        elif isinstance(value, dict):
            if rule is not None and not any(fnmatchcase(f"{key}.\0", pattern) for pattern in table):
                found.append(problem(f"{key} (params.yaml)", value, f"must be {rule[1]}, not a mapping"))
        elif isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value) and rule is None:
            continue  # a list of records (report.claims, demos shapes): their entries are walked one by one
        elif not _finite(value):
            found.append(problem(f"{key} (params.yaml)", value, "must be finite"))
        elif rule is not None and not rule[0](value):
            found.append(problem(f"{key} (params.yaml)", value, f"must be {rule[1]}"))
    return found


def _finite(value: Any) -> bool:
    return all(_finite(v) for v in value) if isinstance(value, list) else not (isinstance(value, float) and not math.isfinite(value))


def _nodes(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every node, mappings and the entries of lists of records included (``report.claims.3``)."""
    if path:
        yield path, node
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) and any(
        isinstance(v, (dict, list)) for v in node) else ()
    for key, child in children:
        yield from _nodes(child, f"{path}.{key}" if path else str(key))


def check_params(path: str | Path = PARAMS_FILE, exit: Callable[[int], Any] = sys.exit) -> dict[str, Any]:
    """``params.yaml`` as plain data if every knob passes its rule; else its first problem on stderr and exit 2."""
    path = Path(path)
    try:
        params = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        reason = " ".join(str(err).split())[:200]
        print(f"initlab: {path}: got an unreadable file, must be YAML ({reason})", file=sys.stderr, flush=True)
        return exit(2)
    problems = params_problems(params)
    if problems:
        print(f"initlab: {problems[0]}", file=sys.stderr, flush=True)
        return exit(2)
    return params


if __name__ == "__main__":
    check_params(sys.argv[1] if len(sys.argv) > 1 else PARAMS_FILE)
