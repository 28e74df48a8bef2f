"""The one main of every Hydra app: compose -> validate -> print and save the config tree -> task.

Any bad input, Hydra's own composition errors included, ends as one line on stderr and exit
code 2, before Lightning is imported. In a ``-m`` sweep a rejected job is recorded as
``status: failed`` and the other jobs go on.
"""

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import hydra
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from initlab.config import CONFIG_DIR, ConfigError, hydra_error, register_resolvers, validate_config
from initlab.schema import MAX_NAME, problem

log = logging.getLogger(__name__)
TREE_ORDER = ("data", "model", "init", "optim", "sched", "trainer", "callbacks", "logger", "paths")
EXIT_CONFIG_ERROR = 2


def print_config_tree(cfg: DictConfig, save_dir: str | Path | None = None) -> None:
    """Show the composed config as a rich tree (groups first); keep an unwrapped copy in the run dir."""
    import rich
    import rich.console
    import rich.syntax
    import rich.tree

    tree = rich.tree.Tree("CONFIG", guide_style="dim")
    keys = [k for k in TREE_ORDER if k in cfg] + [k for k in cfg if k not in TREE_ORDER]
    for key in keys:
        node = cfg[key]
        text = OmegaConf.to_yaml(node, resolve=True) if isinstance(node, DictConfig) else str(node)
        tree.add(str(key)).add(rich.syntax.Syntax(text.rstrip("\n"), "yaml", background_color="default"))
    rich.print(tree)
    if save_dir is not None:
        path = Path(save_dir) / "config_tree.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w") as handle:
            rich.console.Console(file=handle, width=100_000, color_system=None).print(tree)


def exit_config_error(err: ConfigError) -> NoReturn:
    print(f"initlab: {err}", file=sys.stderr, flush=True)
    sys.exit(EXIT_CONFIG_ERROR)


def _reject(err: ConfigError) -> None:
    """A single run exits 2; a sweep job is recorded as failed so the other jobs go on."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        exit_config_error(err)
    from initlab.training.records import metrics_record, write_json

    log.error("job rejected (sweep continues): %s", err)
    write_json(Path(hydra_cfg.runtime.output_dir) / "metrics.json", metrics_record("failed", {}, error=f"ConfigError: {err}"))


def check_override_keys(args: list[str]) -> None:
    """Refuse a key no config can have before Hydra looks it up as a file name (the OS caps names at 255)."""
    for arg in args:
        key, _, value = arg.partition("=")
        if value and len(key.lstrip("+~")) > MAX_NAME:
            raise ConfigError(problem(key.lstrip("+~"), value, f"unknown key (keys are at most {MAX_NAME} characters)"))


def make_main(config_name: str, task: Callable[[DictConfig], Any]) -> Callable[[], Any]:
    """The console entry point of one app: ``task(cfg)`` runs only on a config that passed validation."""
    register_resolvers()

    def job(cfg: DictConfig) -> Any:
        try:
            validate_config(cfg)
        except ConfigError as err:
            return _reject(err)
        print_config_tree(cfg, save_dir=cfg.paths.output_dir)
        from initlab.data.errors import DatasetError  # imports torch: only once the config is valid

        try:
            return task(cfg)
        except (ConfigError, DatasetError) as err:  # found with the data, or a checkpoint that cannot be resumed
            exit_config_error(err)

    app = hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name=config_name)(job)

    def main() -> Any:
        from initlab.training.noise import quiet_third_party

        quiet_third_party()
        os.environ.setdefault("HYDRA_FULL_ERROR", "1")  # Hydra raises its errors instead of printing a traceback
        try:
            check_override_keys(sys.argv[1:])
            return app()
        except ConfigError as err:
            exit_config_error(err)
        except (HydraException, OmegaConfBaseException) as err:
            exit_config_error(hydra_error(err))

    return main
