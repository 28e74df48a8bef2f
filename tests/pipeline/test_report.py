"""The report's rendering and metrics, and the consistency of dvc.yaml with params.yaml and the stage modules."""

import importlib
import re

import yaml

from initlab.config import PROJECT_ROOT
from initlab.pipeline import report
from initlab.pipeline.claims import FAILS, HOLDS, Claim
from initlab.pipeline.demos import DEMOS

PARAMS = {"data": "digits", "inits": ["spectral", "xavier_normal"], "optimizers": ["sgd"], "seeds": [1, 2]}


def _claims():
    return [Claim(id="a", claim="x | y", source="paper", measured="1.0", value=1.0, expected="1", verdict=HOLDS, figure="f1"),
            Claim(id="b", claim="z", source="seeds", measured="2", value=None, expected="1", verdict=FAILS, correction="use 2")]


def test_markdown_has_one_row_per_claim_and_every_figure():
    outcome = [{"init": "spectral", "optim": "sgd", "runs": 2, "done": 2, "diverged": 0, "failed": 0, "test_acc": 0.9,
                "test_acc_std": 0.01, "test_loss": 0.3, "train_loss": 0.2}]
    figures = [{"name": "f1", "file": "figures/f1.png", "title": "One", "caption": "Caption one."}]
    text = report.render_markdown(_claims(), outcome, figures, PARAMS)
    rows = [line for line in text.splitlines() if re.match(r"\| \d+ \|", line)]
    assert len(rows) == 2
    assert "x \\| y" in rows[0] and "**holds**" in rows[0] and "**fails**" in rows[1] and "use 2" in rows[1]
    assert "![One](figures/f1.png)" in text and "*Caption one.* Claims: a." in text
    assert "1 hold, 0 partially, 1 fail" in text
    assert "| spectral | sgd | 2 | 2 | 0 | 0 | 0.9 +- 0.01 |" in text


def test_metrics_count_verdicts_and_keep_values():
    metrics = report.metrics(_claims(), [{"init": "spectral", "optim": "sgd", "test_acc": 0.9}], {"extra": 1})
    assert metrics["claims"] == {"total": 2, "holds": 1, "partially": 0, "fails": 1}
    assert metrics["values"] == {"a": 1.0, "b": None} and metrics["test_acc"] == {"spectral/sgd": 0.9} and metrics["extra"] == 1


def _select(tree: dict, dotted: str):
    for part in dotted.split("."):
        tree = tree[part]
    return tree


def test_dvc_yaml_matches_params_and_modules():
    dvc = yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())
    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    for name, stage in dvc["stages"].items():
        body = stage.get("do", stage)
        for module in re.findall(r"python -m (initlab[\w.]+)", body["cmd"]):
            importlib.import_module(module)
        for key in body.get("params", []):
            if "${" not in key:
                _select(params, key)
        for dep in body.get("deps", []):
            if "${" not in dep and not dep.startswith(("results/", "reports/")):
                assert (PROJECT_ROOT / dep).exists(), f"{name}: missing dependency {dep}"
    assert set(params["demos"]) | set(params["data_demos"]) == set(DEMOS)
    assert not set(params["demos"]) & set(params["data_demos"])
    for template in {plot[next(iter(plot))].get("template") for plot in dvc["plots"] if isinstance(plot, dict)} - {None}:
        assert (PROJECT_ROOT / ".dvc" / "plots" / f"{template}.json").is_file()
