"""`logger=dvclive`: a training run writes DVCLive metrics in its run dir and appears in `dvc exp show`."""

import json
import subprocess
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from initlab.schema import target_problems
from tests.conftest import run_cli


def test_dvclive_logger_composes_inside_the_run_dir(compose_cfg, tmp_path):
    cfg = compose_cfg(["logger=dvclive"])
    node = cfg.logger.dvclive
    assert target_problems(OmegaConf.to_container(cfg.logger, resolve=True), "logger") == []  # allowlisted, a class
    run_dir = Path(cfg.paths.output_dir)
    assert Path(node.dir).parent == run_dir and Path(node.dvcyaml) == run_dir / "dvc.yaml"



@pytest.mark.parametrize("key", ["dir", pytest.param("dvcyaml", marks=pytest.mark.slow)])
def test_dvclive_files_outside_the_run_dir_are_refused_before_the_run(tmp_path, key):
    outside = tmp_path / "elsewhere" / ("dvc.yaml" if key == "dvcyaml" else "dvclive")
    result = run_cli(["train.py", "debug=fast", "logger=dvclive", f"logger.dvclive.{key}={outside}"], cwd=tmp_path, timeout=120)
    assert result.returncode == 2 and f"logger.dvclive.{key}: got" in result.stderr and "inside the run dir" in result.stderr
    assert not (tmp_path / "elsewhere").exists()

def _git_dvc_repo(path: Path) -> None:
    """An empty project as a user has it: git with one commit, DVC initialized, run folders ignored."""
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q"], cwd=path, check=True)
    (path / ".gitignore").write_text("/logs/\n/data/\n")
    subprocess.run(["dvc", "init", "-q"], cwd=path, check=True)
    subprocess.run([*git, "add", "-A"], cwd=path, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=path, check=True)


@pytest.mark.slow
def test_dvclive_run_is_listed_by_dvc_exp_show(tmp_path):
    _git_dvc_repo(tmp_path)
    result = run_cli(["train.py", "debug=fast", "logger=dvclive"], cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = tmp_path.glob("logs/train/runs/*")
    record = json.loads((run_dir / "metrics.json").read_text())
    live = json.loads((run_dir / "dvclive" / "metrics.json").read_text())
    assert live["test"]["acc"] == pytest.approx(record["test"]["acc"], rel=1e-6)
    assert (run_dir / "dvclive" / "plots" / "metrics" / "train" / "loss.tsv").is_file()
    shown = subprocess.run(["dvc", "exp", "show", "--json"], cwd=tmp_path, check=True, capture_output=True, text=True)
    experiments = [exp for row in json.loads(shown.stdout) for exp in row.get("experiments") or []]
    metrics = [
        m for exp in experiments for rev in exp["revs"] for m in (rev["data"].get("metrics") or {}).values()
    ]
    assert any(m["data"]["test"]["acc"] == pytest.approx(record["test"]["acc"], rel=1e-6) for m in metrics), shown.stdout
