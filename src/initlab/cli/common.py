"""The one main of every Hydra app: compose -> validate -> print and save the config tree -> task.

Any bad input, Hydra's own composition errors included, ends as one line on stderr and exit
code 2, before Lightning is imported. In a ``-m`` sweep a rejected job is recorded as
``status: failed`` and the other jobs go on.
"""

import errno
import io
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import hydra
import yaml
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from initlab.config import CONFIG_DIR, ConfigError, check_composed, check_overrides, hydra_error, register_resolvers, validate_config
from initlab.schema import problem
from initlab.files import LinkRefused, atomic_write
from initlab.training.records import (RunDirBusy, RunDirTaken, check_run_dir, holds, interrupted_record, lock_run_dir,
                                      metrics_record, release_run_dir, sweep_id, write_json)
from initlab.training.signals import Interrupted, interruptible
from initlab.training.noise import quiet_third_party

log = logging.getLogger(__name__)
TREE_ORDER = ("data", "model", "init", "optim", "sched", "trainer", "callbacks", "logger", "paths")
EXIT_CONFIG_ERROR = 2
# A disk that refuses a write (full, over quota, read-only, no permission): the user's machine, not a bug.
DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


def print_config_tree(cfg: DictConfig, save_dir: str | Path | None = None, show: bool = True) -> None:
    """The composed config as a rich tree (groups first): an unwrapped copy in the run dir, on the console if ``show``
    (``print_config=true``; the apps keep the console for what the run finds)."""
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
    if show:
        rich.print(tree)
    if save_dir is not None:
        console = rich.console.Console(width=100_000, color_system=None, record=True, file=io.StringIO())
        console.print(tree)
        atomic_write(Path(save_dir) / "config_tree.log", console.export_text())


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
    log.error("job rejected (sweep continues): %s", err)
    record = metrics_record("failed", {}, error=f"ConfigError: {err}", sweep=sweep_id(hydra_cfg.sweep.dir))
    write_json(Path(hydra_cfg.runtime.output_dir) / "metrics.json", record)


def disk_error(err: OSError) -> ConfigError | None:
    """A write the disk refused as one line, None for any other OSError."""
    if err.errno not in DISK_ERRORS:
        return None
    return ConfigError(problem(str(err.filename or "output"), err.strerror, "needs a writable folder with free space (paths.log_dir, hydra.run.dir)"))


def lock(output_dir: str | Path, key: str = "hydra.run.dir", resume: bool = False, overwrite: bool = False) -> None:
    """One writer per run (or sweep) dir, never over a finished one nor through a link: else exit 2 in one line."""
    try:
        lock_run_dir(Path(output_dir).resolve())
        check_run_dir(Path(output_dir).resolve(), sweep=key == "hydra.sweep.dir", resume=resume, overwrite=overwrite)
    except (RunDirBusy, RunDirTaken) as err:
        exit_config_error(ConfigError(problem(key, str(output_dir), str(err))))


def _reuse(args: list[str]) -> dict[str, bool]:
    """Whether the command line resumes (``ckpt_path=last``) or overwrites (``overwrite=true``) what a dir holds."""
    values = {arg.lstrip("+").partition("=")[0]: arg.partition("=")[2] for arg in args}
    return {"resume": values.get("ckpt_path") == "last", "overwrite": values.get("overwrite", "").lower() == "true"}


def _named_output_dir(args: list[str]) -> tuple[str, str] | None:
    """(key, dir) of a run or sweep dir named on the command line; None when Hydra picks a fresh timestamped one."""
    key = "hydra.sweep.dir" if {"-m", "--multirun"} & set(args) else "hydra.run.dir"
    values = [arg.lstrip("+").partition("=")[2] for arg in args if arg.lstrip("+").partition("=")[0] == key]
    return (key, values[-1]) if values and values[-1] and "${" not in values[-1] else None


def _stopped(output_dir: Path, err: Interrupted) -> NoReturn:
    """A signal before the run's own bookkeeping started (validation, imports): recorded in a dir this process holds,
    exit 128 + the signal."""
    if holds(Path(output_dir).resolve()):
        write_json(output_dir / "metrics.json", interrupted_record(output_dir, f"{err!r} while the run was starting"))
    raise SystemExit(128 + err.signum) from None


@contextmanager
def every_composition_checked(config_dirs: list[Path]) -> Iterator[None]:
    """While the app runs, every config Hydra composes (the app's, each sweep job's) passes :func:`check_composed` at
    Hydra's one composition point, before Hydra instantiates its callbacks, sweeper or launcher, sets up logging or the
    environment; Hydra's loader is restored afterwards (an app called in-process leaves no check behind)."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    load = ConfigLoaderImpl.load_configuration

    def checked(self: Any, *args: Any, **kwargs: Any) -> DictConfig:
        cfg = load(self, *args, **kwargs)
        try:
            check_composed(cfg, config_dirs)
        except ConfigError as err:  # exits here: Hydra's first composition (get_mode) swallows any Exception
            exit_config_error(err)
        return cfg

    ConfigLoaderImpl.load_configuration = checked
    try:
        yield
    finally:
        ConfigLoaderImpl.load_configuration = load


def _config_dirs(args: list[str]) -> list[Path]:
    """conf/ and the ``--config-dir`` (``-cd``) of the command line."""
    from hydra._internal.utils import get_args_parser

    known, _ = get_args_parser().parse_known_args(args)
    return [CONFIG_DIR, *([Path(known.config_dir).resolve()] if known.config_dir else [])]


def make_main(config_name: str, task: Callable[[DictConfig], Any],
              adopt: Callable[[DictConfig], None] | None = None) -> Callable[[], Any]:
    """The console entry point of one app: ``task(cfg)`` runs only on a config that passed validation; ``adopt``
    (analyze: a checkpoint's own model, init and data) completes the config first, so what it adopts is validated."""
    register_resolvers()

    def job(cfg: DictConfig) -> Any:
        output_dir = Path(cfg.paths.output_dir)
        try:
            return checked_job(cfg, output_dir)
        except Interrupted as err:
            _stopped(output_dir, err)
        except OSError as err:  # the run recorded it as failed (where the disk let it): one line, exit 1
            if (line := disk_error(err) or (err if isinstance(err, LinkRefused) else None)) is None:
                raise
            print(f"initlab: {line}", file=sys.stderr, flush=True)
            sys.exit(1)
        finally:
            release_run_dir(output_dir.resolve())  # a clean exit leaves no lock file

    def checked_job(cfg: DictConfig, output_dir: Path) -> Any:
        lock(output_dir, resume=cfg.get("ckpt_path") == "last" and config_name == "train", overwrite=bool(cfg.get("overwrite")))
        try:
            if adopt is not None:
                adopt(cfg)
            validate_config(cfg, data_files=True)
        except ConfigError as err:
            return _reject(err)
        from initlab.data.errors import DatasetError  # imports torch: only once the config is valid

        quiet_third_party()  # again: a launcher's worker process (joblib) runs only this function
        try:
            print_config_tree(cfg, save_dir=cfg.paths.output_dir, show=bool(cfg.get("print_config", False)))
            return task(cfg)
        except (ConfigError, DatasetError) as err:  # found with the data, or a checkpoint that cannot be resumed
            exit_config_error(err)

    app = hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name=config_name)(job)

    def main() -> Any:
        quiet_third_party()
        os.environ.setdefault("HYDRA_FULL_ERROR", "1")  # Hydra raises its errors instead of printing a traceback
        named = None
        try:
            with interruptible():
                check_overrides(sys.argv[1:])
                if named := _named_output_dir(sys.argv[1:]):
                    reuse = _reuse(sys.argv[1:])
                    lock(named[1], key=named[0], resume=reuse["resume"] and config_name == "train", overwrite=reuse["overwrite"])
                with every_composition_checked(_config_dirs(sys.argv[1:])):
                    return app()
        except ConfigError as err:
            exit_config_error(err)
        except (HydraException, OmegaConfBaseException) as err:
            exit_config_error(hydra_error(err))
        except yaml.YAMLError as err:  # a config file that is not YAML (a colleague's, a --config-dir's)
            exit_config_error(ConfigError(problem("config file", " ".join(str(err).split())[:200], "must be valid YAML")))
        except Interrupted as err:
            print(f"initlab: interrupted by {signal.Signals(err.signum).name} before the run started", file=sys.stderr, flush=True)
            if named and named[0] == "hydra.run.dir":
                _stopped(Path(named[1]), err)
            sys.exit(128 + err.signum)
        except OSError as err:  # Hydra could not make the run dir or its log file
            if (line := disk_error(err)) is None:
                raise
            exit_config_error(line)

    return main
