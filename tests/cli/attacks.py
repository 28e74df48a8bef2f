"""The composed-config attack set (issue 27): each attack is a command line plus the files it hands over, and a
harmless payload that would create a marker file if any of it ran or wrote where it must not.

Shared by tests/cli/test_trust_boundary.py (in process and, marked slow, as subprocesses) and
benchmarks/error_latency.py (time to the one-line error).
"""

import pickle
from dataclasses import dataclass, field
from pathlib import Path

MARKER = "PWNED"  # the file a payload would create, in the attack's folder


@dataclass
class Attack:
    name: str
    args: list[str]
    files: dict[str, str] = field(default_factory=dict)  # relative path -> text ({m}: the marker's path, {d}: the folder)

    def prepare(self, folder: Path) -> list[str]:
        """Write the attack's files into ``folder``; the command line with {m}/{d} filled in."""
        marker = folder / MARKER
        for name, text in self.files.items():
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(_fill(text, marker, folder))
        (folder / "rerun.pickle").write_bytes(pickle.dumps(_Touch(str(marker))))
        return [_fill(a, marker, folder) for a in self.args]


def _fill(text: str, marker: Path, folder: Path) -> str:
    return text.replace("{m}", str(marker)).replace("{d}", str(folder))


class _Touch:
    """Unpickling it runs ``touch <marker>`` (what ``--experimental-rerun`` would do with a hostile file)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def _experiment(body: str) -> dict[str, str]:
    return {"cd/experiment/evil.yaml": "# @package _global_\n" + body}


COLLEAGUE = ["--config-dir", "{d}/cd", "experiment=evil"]
SYSTEM = "{_target_: os.system, _args_: ['touch {m}']}"
DECODED = "{_target_: os.system, _args_: [touch {m}]}"  # the same, quoted for an interpolation's grammar
ATTACKS = [
    Attack("override_target", ["+callbacks.evil._target_=os.system", "+callbacks.evil._args_=[touch {m}]"]),
    Attack("oc_decode", COLLEAGUE, _experiment(f"callbacks:\n  evil: \"${{oc.decode:'{DECODED}'}}\"\n")),
    Attack("oc_create", COLLEAGUE, _experiment(f"callbacks:\n  evil: \"${{oc.create:{DECODED}}}\"\n")),
    Attack("module_walk", COLLEAGUE, _experiment(
        "callbacks:\n  evil:\n    _target_: torch.nn.modules.module.torch.serialization.os.system\n    _args_: ['touch {m}']\n")),
    Attack("module_walk_override", ["+init.extra._target_=torch.nn.modules.module.torch.serialization.os.system",
                                    "+init.extra._args_=[touch {m}]"]),
    Attack("interpolated_target", COLLEAGUE, _experiment("callbacks:\n  evil:\n    _target_: ${oc.env:EVIL_TARGET,os.system}\n")),
    Attack("hydra_callbacks_yaml", COLLEAGUE, _experiment(f"hydra:\n  callbacks:\n    evil: {SYSTEM}\n")),
    Attack("hydra_callbacks_walk", COLLEAGUE, _experiment(
        "hydra:\n  callbacks:\n    evil:\n      _target_: torch.nn.modules.module.torch.serialization.os.system\n"
        "      _args_: ['touch {m}']\n")),
    Attack("hydra_sweeper_yaml", ["-m", *COLLEAGUE], _experiment("hydra:\n  sweeper:\n    _target_: os.system\n")),
    Attack("hydra_launcher_walk", ["-m", *COLLEAGUE], _experiment(
        "hydra:\n  launcher:\n    _target_: hydra._internal.core_plugins.basic_launcher.os.system\n")),
    Attack("experiment_dotdot", ["experiment=../../../../../../..{d}/evil"], {"evil.yaml": f"# @package _global_\ncallbacks:\n  evil: {SYSTEM}\n"}),
    Attack("experiment_absolute", ["experiment={d}/evil"], {"evil.yaml": "# @package _global_\n"}),
    Attack("searchpath_override", ["hydra.searchpath=[file://{d}/cd]", "experiment=evil"], _experiment("")),
    Attack("searchpath_yaml", COLLEAGUE, _experiment("hydra:\n  searchpath: ['file://{d}']\n")),
    Attack("config_path_flag", ["--config-path", "{d}/cd", "--config-name", "evil"], {"cd/evil.yaml": f"evil: {SYSTEM}\n"}),
    Attack("config_name_dotdot", ["--config-name", "../../../../../../..{d}/evil"], {"evil.yaml": "a: 1\n"}),
    Attack("experimental_rerun", ["--experimental-rerun", "{d}/rerun.pickle"]),
    Attack("log_file_outside", ["hydra.job_logging.handlers.file.filename={m}"]),
    Attack("log_file_relative", ["hydra.job_logging.handlers.file.filename=" + MARKER]),  # opened from the working directory
    Attack("hydra_debug_log", ["hydra/hydra_logging=hydra_debug"]),  # its log file is hydra-<job>.log in the working directory
    Attack("log_file_yaml", COLLEAGUE, _experiment("hydra:\n  job_logging:\n    handlers:\n      file:\n        filename: {m}\n")),
    Attack("log_factory", COLLEAGUE, _experiment(
        "hydra:\n  job_logging:\n    handlers:\n      file:\n        '()': os.system\n        command: 'touch {m}'\n")),
    Attack("log_class", COLLEAGUE, _experiment(
        "hydra:\n  job_logging:\n    handlers:\n      file:\n        class: logging.handlers.SysLogHandler\n")),
    Attack("log_ext_stream", COLLEAGUE, _experiment(
        "hydra:\n  job_logging:\n    handlers:\n      console:\n        stream: ext://os.system\n")),
    Attack("job_name_dotdot", COLLEAGUE, _experiment("task_name: ../../../../../../../..{d}/" + MARKER + "\n")),
    Attack("output_subdir_absolute", ["hydra.output_subdir={m}"]),
    Attack("output_subdir_dotdot", ["hydra.output_subdir=../../../../../../../..{m}"]),
    Attack("env_ld_preload", ["+hydra.job.env_set.LD_PRELOAD={m}"]),
    Attack("env_pythonpath_yaml", COLLEAGUE, _experiment("hydra:\n  job:\n    env_set:\n      PYTHONPATH: {d}\n")),
    Attack("env_value_newline", COLLEAGUE, _experiment("hydra:\n  job:\n    env_set:\n      OMP_NUM_THREADS: \"1\\nLD_PRELOAD={m}\"\n")),
    Attack("lr_auto_scale_tiny", ["lr_auto_scale=1e-300", "optim.lr=auto"]),
    Attack("gradient_clip_tiny", ["trainer.gradient_clip_val=1e-300"]),
    Attack("logger_twice", ["logger=[csv,csv]"]),
    Attack("not_yaml", COLLEAGUE, _experiment("callbacks:\n  evil: {a: 1\n")),
]
# Valid inputs that must run (the composed check must not refuse them): a colleague's YAML with plain settings,
# a log file renamed inside the run dir, an allowlisted environment variable, the shipped options.
VALID = [
    Attack("colleague_plain", COLLEAGUE, _experiment("model:\n  widths: [16]\ntrainer:\n  max_epochs: 1\n")),
    Attack("log_file_inside", ["hydra.job_logging.handlers.file.filename=${hydra.runtime.output_dir}/train_log.txt"]),
    Attack("env_threads", ["+hydra.job.env_set.OMP_NUM_THREADS=1"]),
    Attack("output_subdir_inside", ["hydra.output_subdir=config"]),
    Attack("lr_auto_scale_floor", ["lr_auto_scale=1e-6"]),
    Attack("logger_csv", ["logger=[csv]"]),
]
