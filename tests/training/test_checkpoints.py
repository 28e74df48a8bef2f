"""Nothing lost silently: verified and hashed checkpoints, refused corrupt ones, an unwritable checkpoint dir fails the run."""

import csv
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from initlab.config import ConfigError
from initlab.training.checkpoints import commit_checkpoint, part_path, verified_checkpoint
from initlab.training.run import run_training
from tests.conftest import FAST, run_cli


def _ckpt_dir(cfg) -> Path:
    return Path(cfg.paths.output_dir) / "checkpoints"


def _history(cfg) -> list[dict]:
    with (Path(cfg.paths.output_dir) / "history.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_one_hashed_checkpoint_file_and_clear_history_columns(compose_cfg):
    cfg = compose_cfg([*FAST, "trainer.max_epochs=2"])
    run_training(cfg)
    files = sorted(p.name for p in _ckpt_dir(cfg).iterdir())
    assert files == ["last.ckpt", "last.ckpt.sha256"]
    ckpt = _ckpt_dir(cfg) / "last.ckpt"
    digest, name = (_ckpt_dir(cfg) / "last.ckpt.sha256").read_text().split()
    assert name == "last.ckpt" and digest == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    rows = _history(cfg)
    assert [r["epoch"] for r in rows] == ["0", "1"]
    assert "train/lr" in rows[0] and "lr" not in rows[0] and "val/loss" in rows[0]


def _save(path: Path, value: int) -> None:
    import torch

    torch.save({"a": torch.full((1000,), value)}, part_path(path))


def test_commit_refuses_a_truncated_checkpoint(tmp_path):
    path = tmp_path / "x.ckpt"
    _save(path, 1)
    part_path(path).write_bytes(part_path(path).read_bytes()[:-200])
    with pytest.raises(RuntimeError, match="incomplete|corrupted"):
        commit_checkpoint(path)
    assert not path.exists() and not (tmp_path / "x.ckpt.sha256").exists()


@pytest.mark.parametrize("killed_at", [1, 2, 3])
def test_a_kill_while_committing_leaves_a_checkpoint_that_verifies(tmp_path, monkeypatch, killed_at):
    """Commit renames three times (digest listing both hashes, the checkpoint, the trimmed digest): die at each."""
    path = tmp_path / "last.ckpt"
    _save(path, 1)
    commit_checkpoint(path)
    old = hashlib.sha256(path.read_bytes()).hexdigest()
    _save(path, 2)
    new = hashlib.sha256(part_path(path).read_bytes()).hexdigest()
    replace, calls = os.replace, []

    def dying_replace(source, target, **dir_fds):
        calls.append(source)
        if len(calls) == killed_at:
            raise KeyboardInterrupt("killed")
        return replace(source, target, **dir_fds)

    monkeypatch.setattr(os, "replace", dying_replace)
    with pytest.raises(KeyboardInterrupt):
        commit_checkpoint(path)
    monkeypatch.undo()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == (new if killed_at == 3 else old)
    assert verified_checkpoint(path) == path
    path.write_bytes(path.read_bytes()[:-1] + b"x")
    with pytest.raises(ConfigError):
        verified_checkpoint(path)


@pytest.mark.parametrize("damage", ["flip", "no_hash"])
def test_resume_refuses_an_unverifiable_checkpoint(compose_cfg, tmp_path, damage):
    first = compose_cfg([*FAST])
    run_training(first)
    ckpt = tmp_path / "kept" / "last.ckpt"
    ckpt.parent.mkdir()
    shutil.copy(_ckpt_dir(first) / "last.ckpt", ckpt)
    if damage == "flip":
        shutil.copy(_ckpt_dir(first) / "last.ckpt.sha256", ckpt.parent)
        data = bytearray(ckpt.read_bytes())
        data[len(data) // 2: len(data) // 2 + 64] = bytes(b ^ 0xFF for b in data[len(data) // 2: len(data) // 2 + 64])
        ckpt.write_bytes(bytes(data))
    cfg = compose_cfg([*FAST, "trainer.max_epochs=2", f"ckpt_path={ckpt}"])
    with pytest.raises(ConfigError, match=str(ckpt)):
        run_training(cfg)


def test_unwritable_checkpoint_dir_fails_the_run(compose_cfg):
    cfg = compose_cfg([*FAST])
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True)
    (output_dir / "checkpoints").write_text("a file where the checkpoint folder should be")
    with pytest.raises(Exception):
        run_training(cfg)
    record = json.loads((output_dir / "metrics.json").read_text())
    assert record["status"] == "failed" and "checkpoints" in record["error"]


def test_history_never_repeats_an_epoch_after_resume(compose_cfg):
    """The kill window: history.csv got epoch 1's row, then the process died before last.ckpt of epoch 1."""
    cfg = compose_cfg([*FAST, "trainer.max_epochs=1"])
    run_training(cfg)
    history = Path(cfg.paths.output_dir) / "history.csv"
    with history.open("a") as handle:
        handle.write("1,10,0.5,0.5,9.0,0.001,0.5,9.0\n")
    resumed = compose_cfg([*FAST, "trainer.max_epochs=2", "ckpt_path=last"])
    run_training(resumed)
    rows = _history(resumed)
    assert [r["epoch"] for r in rows] == ["0", "1"]
    assert float(rows[1]["train/loss"]) != 9.0 and rows[1]["step"] == "10"


@pytest.mark.slow
def test_corrupted_checkpoint_exits_2_with_one_line(tmp_path):
    first = run_cli(["train.py", "debug=fast", f"paths.log_dir={tmp_path}"], cwd=tmp_path, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    (ckpt,) = tmp_path.glob("train/runs/*/checkpoints/last.ckpt")
    data = bytearray(ckpt.read_bytes())
    data[-500:-436] = bytes(b ^ 0xFF for b in data[-500:-436])
    ckpt.write_bytes(bytes(data))
    result = run_cli(["train.py", "debug=fast", "trainer.max_epochs=2", f"ckpt_path={ckpt}", f"paths.log_dir={tmp_path}"],
                     cwd=tmp_path, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(ckpt) in lines[0] and "sha256" in lines[0]
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.slow
def test_sigkill_then_resume_gives_each_epoch_once(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from initlab.config import PROJECT_ROOT

    env = {k: v for k, v in os.environ.items() if k != "WANDB_MODE"} | {"OMP_NUM_THREADS": "1"}
    args = [sys.executable, str(PROJECT_ROOT / "train.py"), "logger=none", "trainer.max_epochs=40", "test=false"]
    process = subprocess.Popen([*args, f"paths.log_dir={tmp_path}"], cwd=tmp_path, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    history = None
    while time.monotonic() < deadline:
        found = list(tmp_path.glob("train/runs/*/history.csv"))
        if found and len(found[0].read_text().splitlines()) >= 4:
            history = found[0]
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert history is not None
    run_dir = history.parent
    resumed = subprocess.run([*args, "ckpt_path=last", f"hydra.run.dir={run_dir}", f"paths.log_dir={tmp_path}"], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    with history.open() as handle:
        epochs = [int(row["epoch"]) for row in csv.DictReader(handle)]
    assert epochs == list(range(40))
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "done"


def _trained(compose_cfg, *overrides: str):
    """A finished FAST run and its config (its checkpoint at <run dir>/checkpoints/last.ckpt)."""
    cfg = compose_cfg([*FAST, *overrides])
    run_training(cfg)
    return cfg


@pytest.mark.parametrize(("overrides", "start"), [
    (["model.widths=[32]"], "holds another model than model= of this config (hidden1.bias: (256,) in the checkpoint, (32,) in this model)"),
    (["model=cnn"], "holds another model"),
    (["optim=sgd"], "was saved by another optimizer"),
    (["optim=momentum"], "was saved by another optimizer"),
])
def test_a_checkpoint_that_does_not_fit_is_refused_before_anything_loads(compose_cfg, tmp_path, overrides, start):
    from initlab.config import validate_config

    ckpt = _ckpt_dir(_trained(compose_cfg)) / "last.ckpt"
    cfg = compose_cfg([*FAST, "trainer.max_epochs=2", f"ckpt_path={ckpt}", *overrides])
    with pytest.raises(ConfigError) as info:
        validate_config(cfg)
    message = str(info.value)
    assert message.startswith(f"ckpt_path: got '{ckpt}', ") and start in message and "\n" not in message


def _sealed(path: Path, content: bytes) -> Path:
    """``content`` at ``path`` with a matching sha256 beside it: passes the hash, so only the content check can refuse it."""
    path.write_bytes(content)
    (path.parent / f"{path.name}.sha256").write_text(f"{hashlib.sha256(content).hexdigest()}  {path.name}\n")
    return path


@pytest.mark.parametrize("kind", ["empty", "truncated", "pickle of objects", "a system file", "non-utf8 digest"])
def test_checkpoints_that_pass_their_hash_but_are_no_checkpoint_are_one_line(compose_cfg, tmp_path, kind):
    import pickle

    from initlab.models import instantiate_model
    from initlab.training.checkpoints import check_fit

    cfg = _trained(compose_cfg)
    good = (_ckpt_dir(cfg) / "last.ckpt").read_bytes()
    path = tmp_path / "x.ckpt"
    if kind == "empty":
        _sealed(path, b"")
    elif kind == "truncated":
        _sealed(path, good[: len(good) // 2])
    elif kind == "pickle of objects":
        _sealed(path, pickle.dumps({"state_dict": {}, "x": ConfigError("planted")}))
    elif kind == "a system file":
        path.symlink_to("/etc/hostname")
        _sealed(tmp_path / "hostname.ckpt", Path("/etc/hostname").read_bytes())
        (tmp_path / "x.ckpt.sha256").write_text((tmp_path / "hostname.ckpt.sha256").read_text())
    else:
        path.write_bytes(good)
        (tmp_path / "x.ckpt.sha256").write_bytes(b"\xff\xfe not utf-8 \x80\n")
    with pytest.raises(ConfigError) as info:
        check_fit(verified_checkpoint(path), instantiate_model(cfg.model))
    assert str(info.value).startswith(f"ckpt_path: got '{path}', ") and "\n" not in str(info.value)


def test_a_first_save_killed_restarts_the_run_cleanly(compose_cfg):
    """SIGKILL during the first save leaves history.csv and last.ckpt.part only: ckpt_path=last starts over, ends done."""
    from initlab.training.checkpoints import resume_path

    cfg = compose_cfg([*FAST, "ckpt_path=last"])
    output_dir = Path(cfg.paths.output_dir)
    (output_dir / "checkpoints").mkdir(parents=True)
    (output_dir / "history.csv").write_text("epoch,step,train/loss\n0,5,2.0\n")
    (output_dir / "checkpoints" / "last.ckpt.part").write_bytes(b"PK\x03\x04 half a zip")
    assert resume_path("last", output_dir) is None
    run_training(cfg)
    record = json.loads((output_dir / "metrics.json").read_text())
    assert record["status"] == "done" and record["epochs"] == 1
    assert sorted(p.name for p in (output_dir / "checkpoints").iterdir()) == ["last.ckpt", "last.ckpt.sha256"]
    assert [r["epoch"] for r in _history(cfg)] == ["0"]


def test_last_in_a_dir_where_no_run_started_is_still_an_error(tmp_path):
    from initlab.training.checkpoints import resume_path

    with pytest.raises(ConfigError, match="no checkpoint there"):
        resume_path("last", tmp_path)


def test_resume_after_training_ended_reports_the_same_train_and_val(compose_cfg):
    """Killed during test: last.ckpt holds the finished training; the resumed run trains nothing, tests, and reports
    the train/val metrics of its last epoch (history.csv) like the uninterrupted run."""
    cfg = _trained(compose_cfg, "trainer.max_epochs=2")
    output_dir = Path(cfg.paths.output_dir)
    straight = json.loads((output_dir / "metrics.json").read_text())
    run_training(compose_cfg([*FAST, "trainer.max_epochs=2", "ckpt_path=last"]))
    resumed = json.loads((output_dir / "metrics.json").read_text())
    assert resumed["status"] == "done" and resumed["epochs"] == 2
    assert resumed["train"] and resumed["val"] and resumed["test"]
    for stage in ("train", "val", "test"):
        assert resumed[stage] == pytest.approx(straight[stage], rel=1e-6), stage


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_checkpoint_with_non_finite_weights_is_one_line_for_resume_and_analyze(compose_cfg, tmp_path, bad):
    import torch

    from initlab.models import instantiate_model
    from initlab.training.build import load_model_weights

    cfg = compose_cfg([*FAST])
    model = instantiate_model(cfg.model)
    state = {f"model.{k}": v.clone() for k, v in model.state_dict().items()}
    state["model.hidden1.weight"][0, 0] = bad
    buffer = tmp_path / "buffer.pt"
    torch.save({"state_dict": state}, buffer)
    path = _sealed(tmp_path / "x.ckpt", buffer.read_bytes())
    with pytest.raises(ConfigError) as info:
        load_model_weights(model, path)
    assert str(info.value).startswith(f"ckpt_path: got '{path}', holds non-finite weights (model.hidden1.weight")
    assert "\n" not in str(info.value) and bool(torch.isfinite(model.hidden1.weight).all()), "nothing was loaded"


def test_the_first_record_is_enough_to_resume_a_run_stopped_while_starting(tmp_path, caplog):
    """A signal before any checkpoint leaves only metrics.json (interrupted): ckpt_path=last starts over and says so."""
    from initlab.training.checkpoints import resume_path
    from initlab.training.records import interrupted_record, write_json

    write_json(tmp_path / "metrics.json", interrupted_record(tmp_path, "Interrupted('received SIGTERM') while the run was starting"))
    with caplog.at_level("WARNING"):
        assert resume_path("last", tmp_path) is None
    (line,) = [r.getMessage() for r in caplog.records]
    assert "holds no saved checkpoint" in line and "starting it over" in line


def test_atomic_write_never_follows_a_link_and_leaves_no_temporary_file(tmp_path):
    from initlab.files import LinkRefused, atomic_write

    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").symlink_to(victim)
    (run / "checkpoints").symlink_to(tmp_path, target_is_directory=True)
    for target in (run / "metrics.json", run / "checkpoints" / "last.ckpt.sha256"):
        with pytest.raises(LinkRefused, match="symbolic link"):
            atomic_write(target, "planted")
    assert victim.read_text() == "keep" and not (tmp_path / "last.ckpt.sha256").exists()
    atomic_write(run / "history.csv", "a\n1\n")
    assert (run / "history.csv").read_text() == "a\n1\n"
    assert sorted(p.name for p in run.iterdir()) == ["checkpoints", "history.csv", "metrics.json"]
