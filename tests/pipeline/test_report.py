"""The report's rendering and metrics, and the consistency of dvc.yaml with params.yaml and the stage modules."""

import importlib
import re

import yaml

from initlab.config import PROJECT_ROOT
from initlab.pipeline import claims, report, timed
from initlab.pipeline.claims import CONTRADICTED, EMPIRICAL, FAILS, HOLDS, IDENTITY, Claim
from initlab.pipeline.demos import DEMOS

PARAMS = {"data": "mnist_t10k", "seeds": [1, 2, 3, 4, 5],
          "study": {"steps": 10, "batch_size": 8, "lr_grid": {"sgd": [0.1, 1.0]}, "curvature_c": 1.0}, "depth": {"steps": 5, "curvature_samples": 64, "curvature_seeds": 2}}
INTERVAL = {"n": 5, "mean": 0.5, "std": 0.1, "low": 0.4, "high": 0.6, "method": "t", "level": 0.95}


def _claims():
    return [Claim(EMPIRICAL, "a", "x | y", "paper", "q", ">= 0", HOLDS, 0.5, interval=INTERVAL, figure="f1"),
            Claim(EMPIRICAL, "b", "z", "seeds", "q", ">= 1", FAILS, 0.5, interval=INTERVAL, correction="use 2"),
            Claim(IDENTITY, "c", "w", "paper", "0.5", "0.25", CONTRADICTED, 0.5, 0.25, correction="it is 1/4")]


FAIRNESS = [{"init": "spectral", "optim": "sgd", "setting": "best_lr", "lr": 0.3, "n": 5, "test_loss_mean": 0.3, "test_loss_low": 0.2,
             "test_loss_high": 0.4, "test_acc_mean": 0.91, "test_acc_low": 0.9, "test_acc_high": 0.92}]


def test_markdown_has_both_sections_intervals_and_every_figure():
    figures = [{"name": "f1", "file": "figures/f1.png", "title": "One", "caption": "Caption one."}]
    text = report.render_markdown(_claims(), FAIRNESS, figures, PARAMS, [2048])
    empirical, identities = text.split("## Empirical claims")[1].split("## Derivations and identities")
    rows = [line for line in empirical.splitlines() if re.match(r"\| \d+ \|", line)]
    assert len(rows) == 2 and "x \\| y" in rows[0] and "| 5 | 0.5 [0.4, 0.6] (t) |" in rows[0] and "**holds**" in rows[0]
    assert rows[0].endswith("| - |") and "use 2" in rows[1]
    assert "**contradicted**" in identities and "it is 1/4" in identities
    assert "**Empirical claims: 2 — 1 hold, 1 fail, 0 inconclusive.** Derivations and identities: 1 — 0 verified, 1 contradicted." in text
    assert "2048 training samples" in text and "| spectral | sgd | best_lr | 0.3 | 5 | 0.3 [0.2, 0.4] | 0.91 [0.9, 0.92] |" in text
    assert "![One](figures/f1.png)" in text and "*Caption one.* Claims: a." in text and "reports/timings.md" in text


def test_metrics_count_both_sections():
    assert report.metrics(_claims()) == {"holds": 1, "fails": 1, "inconclusive": 0, "verified": 0, "contradicted": 1}


def test_timings_table_keeps_other_stages(tmp_path):
    path = tmp_path / "timings.md"
    timed.record(path, "b", 2.0)
    timed.record(path, "a", 1.25)
    timed.record(path, "b", 3.0)
    assert path.read_text().splitlines()[-2:] == ["| a | 1.2 |", "| b | 3.0 |"]


def test_dvc_commands_quote_every_templated_value():
    for stage in yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())["stages"].values():
        cmd = stage.get("do", stage)["cmd"]
        assert not re.findall(r'(?<!")\$\{[^}]+\}(?!")', cmd), cmd


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
    for section in ("demos", "data_demos"):
        listed = dvc["stages"][section]["cmd"].split("initlab.pipeline.demos")[1].split()
        assert listed == list(params[section]) and dvc["stages"][section]["outs"] == [
            {f"results/demos/{name}": {"push": False}} for name in params[section]]
    assert not set(params["demos"]) & set(params["data_demos"])
    checks = {spec["check"] for spec in params["report"]["claims"]}
    assert checks == set(claims.CLAIMS)
