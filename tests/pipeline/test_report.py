"""The report's rendering and metrics, and the consistency of dvc.yaml with params.yaml and the stage modules."""

import importlib
import re

import yaml

from initlab.config import PROJECT_ROOT
from initlab.pipeline import claims, report, timed
from initlab.pipeline.claims import CONTRADICTED, DERIVATION, EMPIRICAL, FAILS, HOLDS, INCONCLUSIVE, Claim
from initlab.pipeline.demos import DEMOS

PROTOCOL = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())["report"]
PARAMS = {"data": "mnist_t10k", "seeds": [11, 12, 13, 14, 15],
          "report": PROTOCOL | {"claims": [{"why": "one point"}, {"why": "a tenth"}, {}, {}, {}]},
          "study": {"budgets": [1, 3], "batch_size": 8, "lr_grid": {"sgd": [0.1, 1.0]}, "curvature_c": 1.0},
          "depth": {"budgets": [2], "batch_size": 8}, "data_demos": {"lr_stability": {"steps": 50, "num_samples": 256}}}
INTERVAL = {"n": 5, "mean": 0.5, "std": 0.1, "low": 0.4, "high": 0.6, "method": "t", "level": 0.95, "resolution": None}
SUB = {"label": "init spectral", "verdict": HOLDS, "value": 0.5, "interval": INTERVAL, "p_in": 0.001, "p_out": 1.0, "measured": "m",
       "expected": ">= 0", "note": None}


def _claims():
    return [Claim(EMPIRICAL, "a", "x | y", "paper Remark 9", "a quoted $\\|H\\|$ phrase", "q", ">= 0", HOLDS, 0.5, interval=INTERVAL,
                  p=0.001, mdd=0.12, figure="f1", adjusted=HOLDS, p_adjusted=0.003, robustness="robust (4 alternatives)",
                  power="flips: 2 of the seeds left out -> inconclusive", h1=HOLDS, sub_rows=(SUB, SUB | {"label": "init lecun"})),
            Claim(EMPIRICAL, "b", "z", None, None, "q", ">= 1", FAILS, 0.5, interval=INTERVAL | {"resolution": "grid step 0.25"}, p=0.04,
                  mdd=0.2, correction="use 2", figure="f1", adjusted=INCONCLUSIVE, p_adjusted=0.08, robustness="flips: margin x0.5 -> holds",
                  h1=FAILS, finding="plain words"),
            Claim(DERIVATION, "c", "w", "paper eq. 1", "another phrase", "0.5", "0.25", CONTRADICTED, 0.5, 0.25, correction="it is 1/4"),
            Claim(DERIVATION, "d", "v", None, None, "1", "1", "verified", 1.0, 1.0),
            Claim(EMPIRICAL, "e", "s", "paper section 3.4", "a typo", "q", "in [1, 2]", FAILS, 90.0, interval=INTERVAL | {"n": 0}, p=0.001,
                  adjusted=FAILS, p_adjusted=0.004, h1=FAILS, kind=claims.TYPO)]


FAIRNESS = [{"init": "spectral", "optim": "sgd", "setting": "best_lr", "epochs": e, "lr": 0.3, "n": 5, "test_loss_mean": 0.3 + e,
             "test_loss_low": 0.2, "test_loss_high": 0.4, "test_acc_mean": 0.91, "test_acc_low": 0.9, "test_acc_high": 0.92} for e in (1, 3)]
FAIRNESS += [FAIRNESS[-1] | {"init": "lecun", "n": 0, "test_acc_low": float("nan")}]


def test_markdown_opens_with_the_tally_and_summary_then_details():
    figures = [{"name": "f1", "file": "figures/f1.png", "title": "One", "caption": "Caption one."}]
    status = {"hash": "ab" * 32, "row": {"version": "v3", "commit": "1234abc"}, "designed_on": [1, 2, 3, 4, 5], "seeds": [11, 12, 13, 14, 15],
              "confirmatory": True}
    text = report.render_markdown(_claims(), FAIRNESS, figures, PARAMS, [2048], "tanh", status)
    head, rest = text.split("## Summary")
    assert "protocol v3 (sha256 `abababababababab`, frozen in commit `1234abc`) on seeds 11, 12, 13, 14, 15, **confirmatory**" in head
    assert "Seeds 1, 2, 3, 4, 5 were exploratory" in head
    assert "| paper | 3 | 1 | 1 | 0 | 1 |" in head and "| book | 0 | 0 | 0 | 0 | 0 |" in head  # typo counted as a correction
    summary, rest = rest.split("## Practical findings")
    assert "| C1 | x \\| y | paper Remark 9 | **holds** | 0.5 [0.4, 0.6] (t, n = 5) | E1 |" in summary
    assert "| C3 | s | paper section 3.4 | **typo** | no data | E2 |" in summary  # n = 0: no interval beside it
    findings, rest = rest.split("## Sources, quoted verbatim")
    assert "- plain words" in findings
    quotes, rest = rest.split("## Empirical rows of the sources")
    assert "- C1, paper Remark 9: `a quoted $\\|H\\|$ phrase`" in quotes  # verbatim in a code span, no table escaping
    empirical, rest = rest.split("## Derivations of the sources")
    assert "| E1.1 | init spectral |" in empirical and "| E1.2 | init lecun |" in empirical
    assert "holds (H1 holds; p = 0.003)" in empirical and "robust (4 alternatives) | flips: 2 of the seeds left out" in empirical
    assert "| D1 | w | paper eq. 1 |" in rest and "it is 1/4" in rest
    assert "test is evaluated at every budget, never used to select" in rest
    assert "| - | lecun | sgd | best_lr | 0.3 | 0 | no finished run | no finished run |" in rest
    assert "![One](figures/f1.png)" in rest and "*Caption one.* Rows: E1, Q1." in rest
    for forbidden in ("[-inf, inf]", "p = 0 ", "p = 0)", "nan"):
        assert forbidden not in text


def test_tally_counts_each_distinct_claim_once_per_source():
    """Two rows quoting one passage are one claim (fails when one part fails); duplicating a row changes no count."""
    base = _claims()
    part = Claim(DERIVATION, "a2", "x again", "paper Remark 9", "a quoted $\\|H\\|$ phrase", "q", "1", CONTRADICTED, 1.0, 1.0)
    book = Claim(EMPIRICAL, "k", "b", "book ch. 8.4", "q8", "q", "r", INCONCLUSIVE, 1.0, interval=INTERVAL, adjusted=INCONCLUSIVE)
    got = report.tally([*base, part, book])
    assert got["paper"] == {HOLDS: 0, FAILS: 2, INCONCLUSIVE: 0, claims.TYPO: 1}
    assert got["book"] == {HOLDS: 0, FAILS: 0, INCONCLUSIVE: 1, claims.TYPO: 0}
    assert report.tally([*base, part, book, book]) == got
    assert report.metrics([*base, part, book]) == {"paper_holds": 0, "paper_fails": 2, "paper_inconclusive": 0, "paper_typo": 1,
                                                   "book_claims": 1, "book_holds": 0, "notes_claims": 0, "notes_holds": 0, "own_questions": 2}


def test_protocol_hash_ignores_execution_keys_and_covers_everything_else():
    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    digest = report.protocol_hash(params)
    assert len(digest) == 64 and report.protocol_hash(params | {"device": "cpu", "workers": 7}) == digest
    assert report.protocol_hash(params | {"seeds": [1, 2, 3, 4, 5]}) != digest
    changed = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    changed["report"]["claims"][0]["region"] = [0.5, 1.0]
    assert report.protocol_hash(changed) != digest


def test_changelog_logs_the_current_protocol_and_its_confirmatory_seeds():
    """docs/methods.md's last changelog row carries the hash of params.yaml as it is: a protocol change without a new
    changelog row (or a stale hash) fails here, so the report's 'protocol vN' cannot silently become false."""
    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    log = report.changelog(report.CHANGELOG.read_text())
    assert [r["version"] for r in log][-1] == "v3" and len(log) >= 3
    assert log[-1]["hash"] == report.protocol_hash(params), "params.yaml changed: add a changelog row with its hash"
    assert not set(params["seeds"]) & report._seeds(" ".join(r["seeds"] for r in log)), "the headline seeds were used in design"
    status = report.protocol_status(params, log)
    assert status["row"] == log[-1] and status["designed_on"] == [1, 2, 3, 4, 5]
    assert status["confirmatory"] == (log[-1]["commit"] not in ("", "-", "pending"))
    assert report.protocol_status(params | {"seeds": [1, 2, 3, 4, 5]}, log)["confirmatory"] is False
    assert report.protocol_status(params, log, data_seeds=[1, 2, 3, 4, 5])["confirmatory"] is False  # results of other seeds


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
    listed = {stage: dvc["stages"][stage]["cmd"].split("initlab.pipeline.demos")[1].split() for stage in ("demos", "data_demos")}
    assert sorted(listed["demos"] + listed["data_demos"]) == sorted(DEMOS)  # every demo run by exactly one stage
    for stage, names in listed.items():
        outs = [next(iter(out)) if isinstance(out, dict) else out for out in dvc["stages"][stage]["outs"]]
        assert sorted(outs) == sorted(f"results/demos/{name}" for name in names)
        for name in names:  # the stage reruns when the settings of any demo it runs change
            section = "data_demos" if name in params["data_demos"] else "demos"
            assert {section, f"{section}.{name}"} & set(dvc["stages"][stage]["params"]), f"{stage} runs {name} without {section}"
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
