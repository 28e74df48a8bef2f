"""The README cannot rot: its config table agrees with the composed defaults, and its commands run.

Fast checks (default suite): every command of every fenced ``bash`` block is a known app or a
skipped tool, every app command composes with Hydra, and the "Config groups" section's bold
defaults, option lists and ``key=value`` defaults equal the composed config. Slow: every command
runs as a subprocess in a fresh project folder, with fast overrides appended where it trains.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

CHECKOUT = Path(__file__).resolve().parents[1]
CONFIG_DIR = CHECKOUT / "conf"
README = (CHECKOUT / "README.md").read_text()

# How each command prefix maps to an app (its Hydra root config, or None for plain argparse apps).
MODULES = {"initlab.train": "train", "initlab.analyze": "analyze", "initlab.lr_find": "lr_find", "initlab.aggregate": None}
SCRIPTS = {"train.py": "initlab.train", **{"initlab-" + m.split(".")[1].replace("_", "-"): m for m in MODULES}}
SKIPPED_TOOLS = {"pip", "dvc", "wandb"}
SKIPPED_MODULES = {"pytest", "initlab.verify"}  # the test command itself; verify needs the pulled study (tests/test_verify.py)
# Appended where a command trains or measures, unless the command sets the key itself.
FAST = {
    "train": ["debug=fast", "logger=none", "trainer.max_epochs=1"],
    "lr_find": ["debug=fast", "lr_find.num_steps=20"],
    "analyze": ["num_samples=128", "analysis.trace_probes=4", "analysis.slq_probes=1", "analysis.slq_steps=16"],
}
MAX_SWEEP_JOBS = 4
NOT_IN_TABLE = {"hydra", "paths"}  # groups users do not choose
ABSENT = object()
ASSIGNMENT = re.compile(r"`'?([A-Za-z_][\w./]*)=([^`']+)'?`")


def section(title: str) -> str:
    """The README text under ``## title`` up to the next ``## `` heading."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, flags=re.M | re.S)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def bash_lines() -> list[str]:
    blocks = re.findall(r"^```bash\n(.*?)^```", README, flags=re.M | re.S)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def commands(line: str) -> list[list[str]]:
    """The argv of each ``&&``-joined command of ``line``, without comments and ``VAR=value`` prefixes."""
    argvs, current = [], []
    for token in [*shlex.split(line, comments=True), "&&"]:
        if token != "&&":
            current.append(token)
            continue
        while current and re.fullmatch(r"[A-Z_]+=\S*", current[0]):
            current.pop(0)
        argvs.append(current)
        current = []
    return [argv for argv in argvs if argv]


def app_of(argv: list[str]) -> tuple[str, list[str]] | None:
    """``(module, args)`` of an initlab command; None for tools the test skips; fails on anything else."""
    head = argv[0]
    if head in SKIPPED_TOOLS or (head == "python" and argv[1] == "-m" and argv[2] in SKIPPED_MODULES):
        return None
    if head == "python" and argv[1] == "-m" and argv[2] in MODULES:
        return argv[2], argv[3:]
    if head == "python" and argv[1] in SCRIPTS:
        return SCRIPTS[argv[1]], argv[2:]
    if head in SCRIPTS:
        return SCRIPTS[head], argv[1:]
    raise AssertionError(f"README command not covered by tests/test_readme.py: {shlex.join(argv)}")


def app_commands() -> list[tuple[str, list[str]]]:
    found = [app_of(argv) for line in bash_lines() for argv in commands(line)]
    return [command for command in found if command is not None]


def hydra_commands() -> list[tuple[str, list[str]]]:
    return [(MODULES[module], args) for module, args in app_commands() if MODULES[module]]


def is_sweep_value(value: str) -> bool:
    return "," in value and not value.startswith(("[", "{", "'", '"'))


def composable(args: list[str]) -> list[str]:
    """The overrides of one job: no ``-m``, the first value of each sweep list, placeholders filled."""
    overrides = []
    for arg in args:
        if arg == "-m":
            continue
        key, _, value = arg.partition("=")
        value = value.split(",")[0] if is_sweep_value(value) else value
        overrides.append(f"{key}={value}".replace("<time>", "TIME"))
    return overrides


def compose_app(config_name: str, overrides: list[str]) -> DictConfig:
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            return compose(config_name, overrides=overrides, return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()


def group_options() -> dict[str, set[str]]:
    """Every config group under conf/ (nested ones as ``init/bias``) -> its option names."""
    groups: dict[str, set[str]] = {}
    for path in CONFIG_DIR.rglob("*.yaml"):
        if path.parent != CONFIG_DIR:
            groups.setdefault(path.parent.relative_to(CONFIG_DIR).as_posix(), set()).add(path.stem)
    return groups


def table() -> dict[str, list[str]]:
    """The Config groups table: group -> option cells as written (bold marks the default)."""
    rows = {}
    for line in section("Config groups").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = [option.strip() for option in cells[1].split(",")]
    return rows


# ---------------------------------------------------------------- fast: the README agrees with conf/


def test_every_bash_command_is_an_app_or_a_skipped_tool():
    modules = [module for module, _ in app_commands()]
    assert "initlab.train" in modules and "initlab.analyze" in modules and "initlab.aggregate" in modules


@pytest.mark.parametrize(("config_name", "args"), hydra_commands(), ids=lambda v: v if isinstance(v, str) else " ".join(v))
def test_every_app_command_composes(config_name, args):
    cfg = compose_app(config_name, composable(args))
    assert cfg.hydra.job.config_name == config_name


def test_config_table_lists_every_group_and_option_with_the_composed_default():
    default_cfg = compose_app("train", [])
    choices = default_cfg.hydra.runtime.choices
    groups = group_options()
    rows = table()
    assert set(rows) == set(groups) - NOT_IN_TABLE
    for group, cells in rows.items():
        bold = [cell.strip("*") for cell in cells if cell.startswith("**")]
        default = bold[0] if bold else None
        assert len(bold) <= 1 and (default is not None or cells[0] == "(none)"), f"{group}: mark one default"
        assert choices.get(group) == default, f"{group}: README says {default}, the composed default is {choices.get(group)}"
        assert {cell.strip("*") for cell in cells} - {"(none)"} == groups[group], f"{group}: options differ from conf/{group}/"


def test_stated_defaults_equal_the_composed_config():
    cfg = compose_app("train", [])
    groups = group_options()
    checked = []
    for key, value in ASSIGNMENT.findall(section("Config groups")):
        if key in groups:  # a group selection shown as an example: its options must exist
            options = yaml.safe_load(value)
            assert set(options if isinstance(options, list) else [options]) <= groups[key], f"{key}={value}"
            continue
        node = OmegaConf.select(cfg, key, default=ABSENT)
        assert node is not ABSENT, f"README states a default for {key}, which the composed config lacks"
        composed = OmegaConf.to_container(node) if OmegaConf.is_config(node) else node
        assert composed == yaml.safe_load(value), f"README says {key}={value}, the composed default is {composed!r}"
        checked.append(key)
    assert {"model.activation", "model.bias", "model.widths", "seed", "trainer.max_epochs"} <= set(checked)


def test_python_blocks_run_on_a_small_model():
    """The ``python`` blocks use ``model``, ``inputs``, ``targets``: given here, as the README says."""
    import torch
    from torch import nn

    blocks = re.findall(r"^```python\n(.*?)^```", README, flags=re.M | re.S)
    assert blocks
    torch.manual_seed(0)
    for block in blocks:
        model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 10))
        namespace = {"model": model, "inputs": torch.randn(32, 1, 8, 8), "targets": torch.arange(32) % 10}
        exec(compile(block, "README.md", "exec"), namespace)


def test_the_readme_needs_nothing_outside_the_repository():
    sibling = "/".join(("..", "shared"))  # spelled so that a grep for the path finds no test either
    assert sibling not in README and "/work/" not in README


# ---------------------------------------------------------------- slow: every command runs


def fast_args(config_name: str | None, args: list[str]) -> list[str]:
    """``args`` with sweeps capped at MAX_SWEEP_JOBS and the app's fast overrides appended."""
    args = list(args)
    while "-m" in args and sweep_size(args) > MAX_SWEEP_JOBS:
        widest = max((i for i, a in enumerate(args) if is_sweep_value(a.partition("=")[2])),
                     key=lambda i: args[i].count(","))
        key, _, value = args[widest].partition("=")
        args[widest] = f"{key}={','.join(value.split(',')[:-1])}"
    own = {arg.partition("=")[0] for arg in args}
    return args + [extra for extra in FAST.get(config_name, []) if extra.partition("=")[0] not in own]


def sweep_size(args: list[str]) -> int:
    size = 1
    for arg in args:
        value = arg.partition("=")[2]
        size *= value.count(",") + 1 if is_sweep_value(value) else 1
    return size


def fill_placeholders(args: list[str], project: Path) -> list[str]:
    """``<time>`` -> the newest matching folder that the README's earlier commands made."""
    filled = []
    for arg in args:
        if "<time>" in arg:
            key, sep, value = arg.rpartition("=") if "=" in arg else ("", "", arg)
            matches = sorted(project.glob(value.replace("<time>", "*")))
            assert matches, f"no earlier command made {value}"
            arg = f"{key}{sep}{matches[-1]}"
        filled.append(arg)
    return filled


@pytest.mark.slow
def test_every_readme_command_runs(tmp_path: Path):
    """In README order, in a fresh project folder (its own conf/ and train.py), as a user types them."""
    project = tmp_path / "project"
    shutil.copytree(CONFIG_DIR, project / "conf")
    shutil.copy(CHECKOUT / "train.py", project / "train.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_SILENT": "true", "WANDB_MODE": "offline"}
    for module, args in app_commands():
        config_name = MODULES[module]
        argv = [sys.executable, "-m", module, *fill_placeholders(fast_args(config_name, args), project)]
        result = subprocess.run(argv, cwd=project, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"{shlex.join(argv[2:])}\n{result.stderr[-3000:]}"
        assert "Traceback" not in result.stderr, shlex.join(argv[2:])
    assert list(project.glob("logs/train/multiruns/*/aggregate.md"))
