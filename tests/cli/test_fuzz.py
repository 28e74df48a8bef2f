"""Random override sets, as a hostile user would type them: a clean one-line error or a valid run.

Each override in the pool is tagged good (valid alone and with any other good one) or bad. In
process (default suite): every set composes and validates to either one ConfigError line or a
pass, a set with a bad override never passes, a set of good ones always does. As subprocesses
(``-m slow``): ``python train.py <set> debug=fast logger=none`` exits 0 with a finished
metrics.json or exits 2 with one line on stderr, never a traceback; statistics print with ``-s``.
"""

import json
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from initlab.config import PROJECT_ROOT, ConfigError, check_overrides
from tests.cli.test_schema import rejection

GOOD = [
    "model=mlp", "model=deep_linear", "model=cnn", "init=spectral", "init=xavier_uniform", "init=lecun", "init=orthogonal",
    "init=lsuv", "init=zeros", "init=kaiming_normal", "init=metainit", "init=jacobian_calibrated", "init/bias=relu_0.1",
    "init/bias=small_random", "optim=sgd", "optim=adam", "optim=momentum", "optim=nesterov", "optim=rmsprop", "optim=adagrad",
    "sched=cosine", "sched=step", "sched=linear_decay", "sched=exponential", "callbacks=none", "data=mnist_t10k",
    "optim.lr=0.01", "optim.lr=1e4", "optim.lr=auto", "seed=0", "seed=4294967295", "data.batch_size=64", "init_batch_size=64",
    "trainer.limit_train_batches=2", "trainer.limit_val_batches=1.0", "trainer.gradient_clip_val=1.0", "sched.warmup_steps=1",
    "test=false", "tags=[a,b]", "trainer.log_every_n_steps=1", "trainer.check_val_every_n_epoch=1", "lr_auto_scale=0.5",
    "trainer.precision=bf16-mixed", "model.activation=tanh", "data.limit_train=600",
]
BAD = [
    "optim.lr=0", "optim.lr=-1", "optim.lr=1e-300", "optim.lr=nan", "optim.lr=inf", "optim.lr=fast", "optim.lr=''",
    "seed=-1", "seed=4294967296", "seed=1.5", "seed=null", "trainer.max_epochs=0", "trainer.max_epochs=null",
    "trainer.max_epochs=-3", "trainer.max_epochs=1e300", "data.batch_size=0", "data.batch_size=true", "model.widths=[]",
    "model.widths=[0]", "model.widths=[-1,4]", "model.widths=abc", "init_batch_size=0", "trainer.limit_train_batches=0",
    "trainer.limit_val_batches=0", "trainer.limit_train_batches=1.5", "trainer.gradient_clip_val=-1",
    "trainer.gradient_clip_val=nan", "trainer.log_every_n_steps=-1", "trainer.check_val_every_n_epoch=0", "test=maybe",
    "tags=5", f"tags=[{'t' * 300}]", "init=constant init.value=nan", "init=constant init.value=-inf",
    "init.bias=output_marginals model.bias=false init=lsuv", "model.bias=false init/bias=output_marginals",
    "model.activation=swish", f"model.activation={'a' * 1000}", "lr_auto_scale=0", "ckpt_path=/nonexistent/last.ckpt",
    "+lr=0.1", "+sed=3", "+optimizer.lr=0.1", "+model.widht=3", "+trainer.max_epoch=3", "+init.sdt=0.1", "init=nope",
    "optim=nope", "foo=3", "optim.lr==", "+seed=3", f"+{'k' * 2000}=1", "trainer.precision=64-bit", "model.num_classes=5",
    "sched.warmup_steps=-1", "sched.warmup_steps=50", "data.limit_train=10 init_batch_size=64", "trainer.limit_val_batches=0.5", "trainer.max_epochs=???",
]
# Issue 23's edges as single overrides (the replay below has them all, with the ones that need several words).
BAD += [
    "sched=null", "task_name=a/b", "hydra.job.name=a/b", "hydra.job_logging.root.level=NOPE", "paths.data_dir=/dev/null/x",
    "hydra.run.dir=/etc/hostname", "data.num_classes=3", "data.input_shape=[1,8]", "optim=[sgd,adam]", "data=[digits,mnist_t10k]",
    "+trainer.max_time=00:00:00:00", "callbacks.model_checkpoint.filename=../../X", "+callbacks.x._target_=this.x", "lr_auto_scale=1e300",
]
OVERRIDES = [(o, False) for o in GOOD] + [(o, True) for o in BAD]

# Issue 23's replay, as typed (each a list of arguments): every one exits 2 with one line in the
# ``<key>: got <value>, <allowed>`` form, before data and Lightning; the valid ones run.
REPLAY_BAD = {
    "sched=null": ["sched=null"],
    "+=1": ["+=1"],
    "=0.1": ["=0.1"],
    "task_name=a/b": ["task_name=a/b"],
    "hydra.job.name=a/b": ["hydra.job.name=a/b"],
    "log level NOPE": ["hydra.job_logging.root.level=NOPE"],
    "max_epochs a dict": ["trainer.max_epochs={a: 1}"],
    "wandb project a/b": ["logger=wandb", "logger.wandb.project=a/b"],
    "data_dir under /dev/null": ["paths.data_dir=/dev/null/x"],
    "run dir a file": ["hydra.run.dir=/etc/hostname"],
    "run dir empty": ["hydra.run.dir="],
    "lr_auto_scale=1e300": ["lr_auto_scale=1e300", "optim.lr=auto"],
    "n_trials=0": ["hparams_search=optuna", "hydra.sweeper.n_trials=0"],
    "n_trials on the basic sweeper": ["hydra.sweeper.n_trials=0"],
    "data.num_classes=3": ["data.num_classes=3"],
    "data.input_shape=[1,8]": ["data.input_shape=[1,8]"],
    "optim list": ["optim=[sgd,adam]"],
    "data list": ["data=[digits,mnist_t10k]"],
    "max_time zero": ["+trainer.max_time=00:00:00:00"],
    "csv name climbs out": ["logger=csv", "logger.csv.name=../../.."],
    "checkpoint name climbs out": ["callbacks.model_checkpoint.filename=../../X"],
    "checkpoint dir outside the run": ["callbacks.model_checkpoint.dirpath=/tmp"],
    "empty sweep": ["-m", "seed=range(0,-3)"],
    "target imported by the validator": ["+callbacks.x._target_=this.x"],
    "hydra.callbacks target": ["+hydra.callbacks.x={_target_: os.system, command: 'touch PWNED'}"],
    "chain: download": ["+callbacks.a={_target_: urllib.request.urlretrieve, url: 'file:///etc/hostname', filename: PWNED.py}",
                        "+callbacks.b={_target_: runpy.run_path, path_name: PWNED.py}"],
    "a function as a callback": ["+callbacks.a={_target_: initlab.training.callbacks.append_csv_row, path: PWNED, row: {a: 1}, key: a}"],
    "a target hidden in a list": ["+callbacks.progress_bar.theme=[{_target_: os.system, command: 'touch PWNED'}]"],
    "torch.hub": ["+callbacks.a={_target_: torch.hub.load, repo_or_dir: x/y, model: z}"],
}
REPLAY_GOOD = {"int rho1": ["optim.rho1=0"], "README's limit_train": ["data.limit_train=100"]}
FORM = re.compile(r"^[^\s:]+(?: \([^)]*\))?: got .+, .+$")


def replay_rejection(args: list[str]) -> str | None:
    """The one line a command line is rejected with, as train.py decides it before composing and after."""
    try:
        check_overrides(args)
    except ConfigError as err:
        return str(err)
    return None if "-m" in args else rejection(args)


@pytest.mark.parametrize("args", REPLAY_BAD.values(), ids=REPLAY_BAD.keys())
def test_issue_23_replay_is_refused_in_the_one_line_form(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    message = replay_rejection(args)
    assert message is not None and FORM.match(message), message
    assert not list(tmp_path.glob("PWNED*")), "a target ran"


@pytest.mark.parametrize("args", REPLAY_GOOD.values(), ids=REPLAY_GOOD.keys())
def test_issue_23_valid_runs_pass(args):
    assert replay_rejection(args) is None


def override_sets() -> st.SearchStrategy[list[tuple[str, bool]]]:
    return st.lists(st.sampled_from(OVERRIDES), min_size=1, max_size=4, unique_by=lambda o: o[0].split("=")[0])


def _split(chosen: list[tuple[str, bool]]) -> tuple[list[str], bool]:
    return [part for override, _ in chosen for part in override.split(" ")], any(bad for _, bad in chosen)


# Bad only once the data is loaded (checked by validate_with_data in the run): pass here, rejected in the subprocess.
NEEDS_DATA = ("sched.warmup_steps=50", "data.limit_train=10 init_batch_size=64", "trainer.limit_val_batches=0.5")


@settings(max_examples=100, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(override_sets())
def test_every_override_set_is_rejected_in_one_line_or_passes(chosen):
    overrides, bad = _split(chosen)
    message = rejection(overrides)
    if message is not None:
        assert "\n" not in message and 0 < len(message) <= 400 and "Traceback" not in message
    assert bad or message is None, f"good overrides rejected: {message}"
    only_data_checks = all(not b or o in NEEDS_DATA for o, b in chosen)
    assert not bad or message is not None or only_data_checks, f"bad overrides accepted: {overrides}"


def _run(overrides: list[str], run_dir: Path, times: list[float] | None = None) -> tuple[str, str]:
    """(outcome, detail) of one ``python train.py`` subprocess; the seconds to a clean error go to ``times``."""
    import subprocess

    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    command = [sys.executable, str(PROJECT_ROOT / "train.py"), *overrides, "debug=fast", "logger=none", f"hydra.run.dir={run_dir}"]
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=run_dir.parent, env=env)
    if result.returncode == 2 and times is not None:
        times.append(time.perf_counter() - start)
    stderr = result.stderr.strip().splitlines()
    if "Traceback" in result.stdout + result.stderr:
        return "traceback", result.stderr[-1500:]
    if result.returncode == 2:
        clean = len(stderr) == 1 and stderr[0].startswith("initlab: ")
        return ("clean error" if clean else "unclean error"), "\n".join(stderr[-5:])
    record = run_dir / "metrics.json"
    status = json.loads(record.read_text()).get("status") if record.exists() else None
    if result.returncode == 0 and status in ("done", "diverged"):
        return "ran", status
    return "other exit", f"rc={result.returncode} status={status} {result.stderr[-800:]}"


@pytest.mark.slow
def test_override_sets_as_commands_end_cleanly(tmp_path):
    outcomes: Counter = Counter()
    failures: list[str] = []
    times: list[float] = []

    @settings(max_examples=200, deadline=None, derandomize=True, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(override_sets())
    def one_command(chosen):
        overrides, bad = _split(chosen)
        outcome, detail = _run(overrides, tmp_path / f"run{sum(outcomes.values())}", times)
        outcomes[outcome] += 1
        silent = outcome == "ran" and bad
        outcomes["silent acceptance"] += silent
        outcomes["bad input"] += bad
        if outcome not in ("ran", "clean error") or silent:
            failures.append(f"{outcome}: train.py {' '.join(overrides)}\n{detail}")

    one_command()
    print(f"\nfuzz statistics: {sum(outcomes[k] for k in ('ran', 'clean error', 'unclean error', 'traceback', 'other exit'))} runs, "
          + ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items())) + f"; time to error: {_percentiles(times)}")
    assert not failures, "\n\n".join(failures[:10])


def _percentiles(times: list[float]) -> str:
    if not times:
        return "none"
    ordered = sorted(times)
    at = {q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] for q in (0.5, 0.9)}
    return f"median {at[0.5]:.1f} s, 90th percentile {at[0.9]:.1f} s, max {ordered[-1]:.1f} s over {len(ordered)}"


@pytest.mark.slow
def test_issue_23_replay_as_commands(tmp_path):
    """Every replay case as a user types it: exit 2 and one line (valid ones: exit 0, done); nothing a target names runs."""
    times: list[float] = []
    failures = []
    for name, args in REPLAY_BAD.items():
        outcome, detail = _run(args, tmp_path / re.sub(r"\W", "_", name) / "run", times)
        if outcome != "clean error" or not FORM.match(detail.removeprefix("initlab: ")):
            failures.append(f"{name}: {outcome}: {detail}")
    for name, args in REPLAY_GOOD.items():
        outcome, detail = _run(args, tmp_path / re.sub(r"\W", "_", name) / "run")
        if outcome != "ran":
            failures.append(f"{name}: {outcome}: {detail}")
    print(f"\nreplay: {len(REPLAY_BAD)} refused cases, time to error: {_percentiles(times)}")
    assert not list(tmp_path.rglob("PWNED*")), "a target ran"
    assert not failures, "\n".join(failures)
