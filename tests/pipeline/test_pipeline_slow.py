"""`dvc repro` end to end on a tiny params.yaml, in a fresh git repo with no commits (slow).

The repo's dvc.yaml, conf/, train.py, sources and DVC plot templates are copied into tmp_path
next to a tiny params.yaml; the stages import the installed initlab, so this checks the
pipeline wiring, the report's structure and that a second `dvc repro` does nothing.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from initlab.config import PROJECT_ROOT
from initlab.pipeline.claims import FAILS, HOLDS, PARTIALLY
from initlab.pipeline.figures import FIGURES

pytestmark = pytest.mark.slow

TINY = {
    "seeds": [1],
    "inits": ["xavier_normal", "spectral"],
    "optimizers": ["sgd", "adam"],
    "train": {"max_epochs": 2, "curvature_every": 10},
    "analysis": {"num_samples": 64, "trace_probes": 4, "slq_probes": 1, "slq_steps": 16},
    "demos": {"rmt": {"shapes": [[64, 64], [256, 256], [256, 64]], "trials": 1},
              "elbow": {"samples": 5000, "keep": 2000},
              "canyon": {"steps": 400, "num_lrs": 8, "alphas": [0.5, 0.8]}},
    "data_demos": {"symmetry": {"steps": 20, "every": 10},
                   "variance_flow": {"depth": 3, "width": 32, "num_samples": 64, "jacobian_samples": 8},
                   "curvature": {"train_steps": 5, "num_samples": 32},
                   "lr_stability": {"factors": [0.5, 2, 8], "steps": 5, "num_samples": 64},
                   "edge_of_stability": {"factors": [1.9], "steps": 10, "every": 5, "num_samples": 64}},
}


def _merge(base: dict, update: dict) -> dict:
    return {key: _merge(base[key], value) if isinstance(value, dict) else value for key, value in update.items()} | {
        key: value for key, value in base.items() if key not in update}


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def test_dvc_repro_tiny_pipeline(tmp_path):
    for name in ("dvc.yaml", "train.py", ".dvcignore"):
        shutil.copy(PROJECT_ROOT / name, tmp_path / name)
    for name in ("conf", "src", ".dvc/plots"):
        shutil.copytree(PROJECT_ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (tmp_path / ".dvc" / "config").write_text("")
    params = _merge(yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text()), TINY)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _run(["git", "init", "-q"], tmp_path)
    _run([sys.executable, "-m", "dvc", "repro"], tmp_path)

    claims = json.loads((tmp_path / "reports" / "claims.json").read_text())["claims"]
    assert len(claims) >= 14
    for claim in claims:
        assert claim["verdict"] in (HOLDS, FAILS, PARTIALLY)
        assert claim["claim"] and claim["source"] and claim["measured"] and claim["expected"]
        assert claim["value"] is None or isinstance(claim["value"], (int, float, str))
    assert sum(claim["value"] is not None for claim in claims) >= 14
    markdown = (tmp_path / "reports" / "claims.md").read_text()
    assert markdown.count("**holds**") + markdown.count("**fails**") + markdown.count("**partially**") == len(claims)
    for name in FIGURES:
        assert (tmp_path / "reports" / "figures" / f"{name}.png").stat().st_size > 10_000
        assert f"figures/{name}.png" in markdown
    metrics = json.loads((tmp_path / "reports" / "metrics.json").read_text())
    assert metrics["claims"]["total"] == len(claims)

    second = _run([sys.executable, "-m", "dvc", "repro"], tmp_path)
    assert "Running stage" not in second.stdout
    shown = _run([sys.executable, "-m", "dvc", "metrics", "show", "--json"], tmp_path)
    assert "claims.total" in shown.stdout or '"total"' in shown.stdout
    _run([sys.executable, "-m", "dvc", "plots", "show", "-o", str(tmp_path / "plots_html")], tmp_path)
    assert (tmp_path / "plots_html" / "index.html").is_file()
