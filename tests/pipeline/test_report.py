"""The report's rendering and metrics, and the consistency of dvc.yaml with params.yaml and the stage modules."""

import importlib
import re

import yaml

from initlab.config import PROJECT_ROOT
from initlab.pipeline import claims, report, timed
from initlab.pipeline.claims import CONTRADICTED, DERIVATION, EMPIRICAL, FAILS, HOLDS, INCONCLUSIVE, Claim
from initlab.pipeline.demos import DEMOS

PROTOCOL = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())["report"]
PARAMS = {"data": "mnist_t10k", "seeds": [1, 2, 3, 4, 5], "report": PROTOCOL | {"claims": [{"why": "one point"}, {"why": "a tenth"}, {}, {}]},
          "study": {"budgets": [1, 3], "batch_size": 8, "lr_grid": {"sgd": [0.1, 1.0]}, "curvature_c": 1.0},
          "depth": {"budgets": [2], "batch_size": 8}, "data_demos": {"lr_stability": {"steps": 50, "num_samples": 256}}}
INTERVAL = {"n": 5, "mean": 0.5, "std": 0.1, "low": 0.4, "high": 0.6, "method": "t", "level": 0.95, "resolution": None}


def _claims():
    return [Claim(EMPIRICAL, "a", "x | y", "paper Remark 9", "a quoted phrase", "q", ">= 0", HOLDS, 0.5, interval=INTERVAL, p=0.001,
                  mdd=0.12, figure="f1", adjusted=HOLDS, p_adjusted=0.003, robustness="robust (4 alternatives)"),
            Claim(EMPIRICAL, "b", "z", None, None, "q", ">= 1", FAILS, 0.5, interval=INTERVAL | {"resolution": "grid step 0.25"}, p=0.04,
                  mdd=0.2, correction="use 2", figure="f1", adjusted=INCONCLUSIVE, p_adjusted=0.08, robustness="flips: margin x0.5 -> holds"),
            Claim(DERIVATION, "c", "w", "paper eq. 1", "another phrase", "0.5", "0.25", CONTRADICTED, 0.5, 0.25, correction="it is 1/4"),
            Claim(DERIVATION, "d", "v", None, None, "1", "1", "verified", 1.0, 1.0)]


FAIRNESS = [{"init": "spectral", "optim": "sgd", "setting": "best_lr", "epochs": e, "lr": 0.3, "n": 5, "test_loss_mean": 0.3 + e,
             "test_loss_low": 0.2, "test_loss_high": 0.4, "test_acc_mean": 0.91, "test_acc_low": 0.9, "test_acc_high": 0.92} for e in (1, 3)]


def test_markdown_sections_quotes_holm_robustness_and_row_numbers():
    figures = [{"name": "f1", "file": "figures/f1.png", "title": "One", "caption": "Caption one."}]
    text = report.render_markdown(_claims(), FAIRNESS, figures, PARAMS, [2048], "tanh")
    empirical, rest = text.split("## Empirical claims")[1].split("## Derivations")
    derivations, rest = rest.split("## Our own questions")
    own, rest = rest.split("## Protocol")
    rows = [line for line in empirical.splitlines() if re.match(r"\| E\d+ \|", line)]
    assert len(rows) == 1 and "x \\| y" in rows[0] and 'paper Remark 9: "a quoted phrase"' in rows[0]
    assert "| 5 | 0.5 [0.4, 0.6] (t) |" in rows[0] and "**holds** | holds (p = 0.003) | 0.12 | robust (4 alternatives) |" in rows[0]
    assert "| D1 | w | paper eq. 1: \"another phrase\" |" in derivations and "**contradicted**" in derivations
    own_rows = [line for line in own.splitlines() if re.match(r"\| Q\d+ \|", line)]
    assert [r.split(" | ")[0] for r in own_rows] == ["| Q1", "| Q2"] and "(t; grid step 0.25)" in own_rows[0]
    assert "inconclusive (p = 0.08)" in own_rows[0] and "flips: margin x0.5 -> holds" in own_rows[0] and "use 2" in own_rows[0]
    assert "**The paper's claims, each quoted from its source: 1 empirical — 1 hold, 0 fail, 0 inconclusive (Holm-adjusted: 1 hold, " \
           "0 fail, 0 inconclusive); 1 derivations — 0 verified, 1 contradicted.** Our own questions (no source makes these claims; " \
           "outside the tally): 2." in text
    assert "| E1 | >= 0 | one point |" in rest and "| Q1 | >= 1 | a tenth |" in rest and "tanh: xavier_normal" in rest
    assert "| lr study | 1, 3 epochs | 8 |" in rest and "| lr_stability demo | 50 steps |" in rest
    assert "| spectral | sgd | best_lr | 0.3 | 5 | 3.3 [0.2, 0.4] |" in rest and "| 1.3 [" not in rest  # longest budget only
    assert "![One](figures/f1.png)" in rest and "*Caption one.* Rows: E1, Q1." in rest and "reports/timings.md" in rest


def test_metrics_count_the_papers_tally_only():
    assert report.metrics(_claims()) == {"holds": 1, "fails": 0, "inconclusive": 0, "holm_holds": 1, "holm_fails": 0,
                                         "holm_inconclusive": 0, "verified": 0, "contradicted": 1, "own_questions": 2}


def test_lr_study_activation_comes_from_the_pipeline_model():
    model = yaml.safe_load((PROJECT_ROOT / "conf" / "experiment" / "pipeline.yaml").read_text())["model"]
    assert report.lr_study_activation("mnist_t10k") == model["activation"]


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
        outs = [next(iter(out)) if isinstance(out, dict) else out for out in dvc["stages"][section]["outs"]]
        assert listed == list(params[section]) and outs == [f"results/demos/{name}" for name in params[section]]
    assert not set(params["demos"]) & set(params["data_demos"])
    checks = {spec["check"] for spec in params["report"]["claims"]}
    assert checks == set(claims.CLAIMS)


def test_canyon_runs_are_one_per_seed_when_the_demo_runs_per_seed(tmp_path):
    from initlab.training.records import write_json

    write_json(tmp_path / "demos" / "canyon" / "summary.json", {"steps_ratio": 6.0})
    assert report.canyon_runs(tmp_path) == [{"steps_ratio": 6.0}]
    for seed in (2, 10):
        write_json(tmp_path / "demos" / "canyon" / f"seed-{seed}" / "summary.json", {"steps_ratio": float(seed)})
    assert report.canyon_runs(tmp_path) == [{"steps_ratio": 2.0}, {"steps_ratio": 10.0}]
