"""End to end: ``dvc repro`` of a tiny pipeline in a scratch git repo (slow: a few minutes on 2 cores).

Checks the report's two sections, byte-identical outputs on a forced rerun (git stays clean),
``dvc push`` then ``dvc pull`` (no target) in a fresh clone giving a complete workspace (``dvc status``
clean, ``dvc repro`` a no-op, git clean),
a failed ``dvc exp run --temp`` leaving the workspace as it was, and a ``-S seeds=...`` override
reaching the report.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from initlab.config import PROJECT_ROOT

pytestmark = pytest.mark.slow

TINY = {
    "data": "digits",
    "seeds": [1, 2],
    "inits": ["xavier_normal", "spectral"],
    "workers": 2,
    "study": {"budgets": [1, 2], "eval_samples": 128, "curvature_samples": 128, "init_samples": 32,
              "lr_grid": {"sgd": [0.1, 0.3, 1.0], "adam": [1.0e-3, 1.0e-2]}},
    "spectra": {"samples": 128, "chunk": 128, "trace_probes": 4, "density_probes": 2, "density_steps": 10, "grid": 50, "every": 4},
    "depth": {"depths": [2, 3], "width": 16, "inits": ["xavier_normal", "kaiming_normal", "spectral"], "train_depths": [3],
              "train_inits": ["xavier_normal", "spectral"], "lr_factors": [0.5, 1.0, 2.0], "budgets": [1, 2], "eval_samples": 128,
              "curvature_samples": 64, "curvature_seeds": 1, "init_samples": 16, "jacobian_samples": 8},
    "demos": {"rmt": {"shapes": [[64, 64], [256, 256], [256, 64]], "trials": 2},
              "elbow": {"samples": 5000, "keep": 2000},
              "canyon": {"steps": 400, "num_lrs": 8, "alphas": [0.5, 0.8]}},
    "data_demos": {"symmetry": {"steps": 20, "every": 10},
                   "variance_flow": {"depth": 3, "width": 32, "num_samples": 64, "jacobian_samples": 8},
                   "curvature": {"train_steps": 5, "num_samples": 32},
                   "lr_stability": {"factors": [0.5, 2, 8], "steps": 5, "num_samples": 64},
                   "edge_of_stability": {"factors": [1.9], "steps": 10, "every": 5, "num_samples": 64}},
}


def _merge(base: dict, update: dict) -> dict:
    return {key: _merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
            for key, value in update.items()} | {key: value for key, value in base.items() if key not in update}


def _run(args: list[str], cwd: Path, ok: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=1500)
    if ok:
        assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def _dvc(*args: str, cwd: Path, ok: bool = True) -> subprocess.CompletedProcess:
    return _run([sys.executable, "-m", "dvc", *args], cwd, ok)


def _git(*args: str, cwd: Path) -> str:
    return _run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd).stdout


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A scratch repo holding the project with tiny params, after one committed ``dvc repro`` and ``dvc push``."""
    root = tmp_path_factory.mktemp("repo")
    for name in ("dvc.yaml", ".dvcignore", ".gitignore"):
        shutil.copy(PROJECT_ROOT / name, root / name)
    for name in ("conf", "src", "reports", ".dvc"):
        shutil.copytree(PROJECT_ROOT / name, root / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "cache", "tmp", "storage", "figures", "plots",
                                                      "*.md", "claims.json", "figures.json", "metrics.json"))
    shutil.copy(PROJECT_ROOT / "reports" / ".gitignore", root / "reports" / ".gitignore")
    (root / "docs").mkdir()
    shutil.copy(PROJECT_ROOT / "docs" / "methods.md", root / "docs" / "methods.md")  # the report reads its protocol changelog
    params = _merge(yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text()), TINY)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _git("init", "-q", cwd=root)
    _dvc("repro", cwd=root)
    _dvc("push", cwd=root)
    _git("add", "-A", cwd=root)
    _git("commit", "-q", "-m", "tiny pipeline", cwd=root)
    return root


def test_report_has_both_sections_with_intervals(repo):
    report = json.loads((repo / "reports" / "claims.json").read_text())["claims"]
    empirical = [c for c in report if c["section"] == "empirical"]
    derivations = [c for c in report if c["section"] == "derivation"]
    assert len(empirical) >= 10 and len(derivations) >= 6
    assert all(c["verdict"] in ("holds", "fails", "inconclusive") and c["adjusted"] and c["robustness"] for c in empirical)
    assert all(c["verdict"] in ("verified", "contradicted") for c in derivations)
    markdown = (repo / "reports" / "claims.md").read_text()
    assert "## Tally" in markdown and "## Summary" in markdown and "## Empirical rows" in markdown and "## Our own questions" in markdown
    assert "seeds 1, 2" in markdown
    metrics = json.loads((repo / "reports" / "metrics.json").read_text())
    tally = json.loads((repo / "reports" / "claims.json").read_text())["tally"]
    assert sum(v for k, v in metrics.items() if k.startswith("paper_")) == sum(tally["paper"].values())
    shown = _dvc("metrics", "show", cwd=repo).stdout
    assert max(map(len, shown.splitlines())) <= 170, shown  # one row of 9 counts (paper's tally, book, notes, own questions): one terminal line
    for name in ("depth", "lr_grid", "lr_fairness", "lr/budgets", "depth/budgets"):
        assert (repo / "results" / "study" / f"{name}.csv").is_file()
    for name in ("hessian_spectrum", "sharpening", "budgets"):
        assert (repo / "reports" / "figures" / f"{name}.png").is_file()
    assert (repo / "reports" / "timings.md").is_file() and "timings.md" not in _git("ls-files", cwd=repo)


def test_second_repro_runs_nothing_and_forced_rerun_reproduces_bytes(repo):
    assert "Running stage" not in _dvc("repro", cwd=repo).stdout
    _dvc("repro", "--force", cwd=repo)
    assert _git("status", "--porcelain", cwd=repo) == ""


def test_pull_in_a_fresh_clone_completes_the_workspace(repo, tmp_path):
    clone = tmp_path / "clone"
    _run(["git", "clone", "-q", str(repo), str(clone)], tmp_path)
    _dvc("pull", cwd=clone)  # no target: every stage's outputs, exit 0
    assert (clone / "reports" / "claims.md").read_bytes() == (repo / "reports" / "claims.md").read_bytes()
    assert (clone / "results" / "spectra" / "density.csv").read_bytes() == (repo / "results" / "spectra" / "density.csv").read_bytes()
    assert "up to date" in _dvc("status", cwd=clone).stdout
    assert "Running stage" not in _dvc("repro", cwd=clone).stdout
    assert _git("status", "--porcelain", cwd=clone) == ""


def test_pull_of_the_documented_targets_restores_the_report_without_running_a_stage(repo, tmp_path):
    clone = tmp_path / "clone"
    _run(["git", "clone", "-q", str(repo), str(clone)], tmp_path)
    _dvc("pull", "report", "figures", cwd=clone)
    assert (clone / "reports" / "claims.md").read_bytes() == (repo / "reports" / "claims.md").read_bytes()


def test_failed_exp_run_leaves_the_workspace_as_it_was(repo):
    params = (repo / "params.yaml").read_bytes()
    failed = _dvc("exp", "run", "--temp", "-S", "data=no_such_dataset", cwd=repo, ok=False)
    assert failed.returncode != 0
    assert (repo / "params.yaml").read_bytes() == params and _git("status", "--porcelain", cwd=repo) == ""
    assert (repo / "results" / "data").is_dir()


def test_seed_override_reaches_the_report(repo):
    _dvc("exp", "run", "-S", "seeds=[1,2,3]", cwd=repo)
    report = json.loads((repo / "reports" / "claims.json").read_text())["claims"]
    trains = [c for c in report if c["section"] == "empirical" and c["id"].startswith("trains_as_well")]
    counts = {r["interval"]["n"] for c in trains for r in [c, *c.get("sub_rows", [])] if r.get("interval")}
    assert trains and counts - {0} == {3}  # every row with data has the 3 seeds (n = 0: a sub-row the tiny params leave empty)
    assert "seeds 1, 2, 3" in (repo / "reports" / "claims.md").read_text()
