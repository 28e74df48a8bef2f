"""initlab bench: the leaderboard's statistics against independent oracles (scipy's paired t test, Holm by hand),
val-only selection, the user's own init, the figure; slow: adding a fixture init to a tiny bench in a scratch repo
runs only its stage, and its verdicts follow from its numbers."""

import csv
import math
import os
import re
import shutil
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
import torch
import yaml
from scipy import stats as scipy_stats
from torch import nn

from initlab.config import PROJECT_ROOT
from initlab.init import Initializer
from initlab.pipeline import bench, bench_report, figure_checks
from initlab.schema import TRUSTED_ENV

KEY = ("test_acc", 2, "sgd", "best_lr", 3)
CURVATURE = ("lambda_max", 2, "", bench.AT_INIT, 0)


def holm_by_hand(p: list[float]) -> list[float]:
    """Holm-Bonferroni step-down, written out: sort, multiply by (m - rank), running max, cap at 1."""
    order = sorted(range(len(p)), key=p.__getitem__)
    adjusted, running = [0.0] * len(p), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def values_of(table: dict[str, list[float]], key=KEY, activation="relu") -> dict:
    """Plain (not grid-valued) samples: each seed's value is where its true value lies."""
    return {(activation, init, key): {s: (x, x) for s, x in enumerate(xs, start=1)} for init, xs in table.items()}


LR_GRID = [0.01, 0.0316, 0.1, 0.316, 1.0]
STABLE = ("max_stable_sgd_lr", 2, "sgd", "grid", 1)


def test_a_grid_valued_quantity_gets_no_finer_interval_than_its_grid():
    settings = {"lr_grid": {"sgd": LR_GRID}, "stability": {"factors": [0.5, 1.0, 2.0]}}
    rows = [{"activation": "relu", "init": init, "quantity": STABLE[0], "depth": 2, "optim": "sgd", "setting": "grid", "epochs": 1,
             "seed": seed, "value": value} for init, value in (("ref", 0.316), ("top", 1.0), ("low", 0.0316)) for seed in range(1, 6)]
    values = bench_report.per_seed(rows, settings)
    ref = bench_report.estimate(values[("relu", "ref", STABLE)])
    assert (ref.mean, ref.low, ref.high) == (0.316, 0.316, 1.0)  # every seed at 0.316: the true lr lies in [0.316, 1.0)
    assert bench_report.estimate(values[("relu", "top", STABLE)]).high == math.inf  # past the grid's top: unbounded
    same, p_same = bench_report.difference(values[("relu", "ref", STABLE)], values[("relu", "ref", STABLE)])
    assert same.low == pytest.approx(0.316 - 1.0) and same.high == pytest.approx(1.0 - 0.316) and p_same == 1.0
    apart, p_apart = bench_report.difference(values[("relu", "ref", STABLE)], values[("relu", "low", STABLE)])
    assert apart.low == pytest.approx(0.316 - 0.1) and p_apart == pytest.approx(2 / 2**5)  # two grid steps: exact sign-flip floor
    plain = bench_report.per_seed([r | {"quantity": "test_acc", "setting": "best_lr"} for r in rows], settings)
    assert bench_report.estimate(plain[("relu", "ref", ("test_acc", 2, "sgd", "best_lr", 1))]).high == 0.316  # not grid-valued


def test_comparisons_are_paired_t_tests_with_holm_and_directional_verdicts():
    ref = [0.90, 0.91, 0.92, 0.90, 0.93]
    table = {"ref": ref, "good": [r + d for r, d in zip(ref, (0.05, 0.06, 0.04, 0.05, 0.055))],
             "bad": [r - d for r, d in zip(ref, (0.05, 0.06, 0.04, 0.05, 0.055))],
             "same": [r + d for r, d in zip(ref, (0.01, -0.01, 0.005, -0.004, 0.0))]}
    rows = bench_report.comparisons(values_of(table), "relu", "ref", alpha=0.05)
    raw = {r["init"]: scipy_stats.ttest_rel(table[r["init"]], ref).pvalue for r in rows}
    assert all(math.isclose(r["p"], raw[r["init"]], rel_tol=1e-9) for r in rows)
    expected = dict(zip([r["init"] for r in rows], holm_by_hand([raw[r["init"]] for r in rows]), strict=True))
    assert all(math.isclose(r["p_holm"], expected[r["init"]], rel_tol=1e-9) for r in rows)
    assert {r["init"]: r["verdict"] for r in rows} == {"good": "better", "bad": "worse", "same": "no different"}


def test_lower_is_better_and_descriptive_quantities():
    ref = [1.0, 1.1, 0.9, 1.05]
    loss = ("train_loss", 2, "sgd", "best_lr", 3)
    lower = {"ref": ref, "low": [r - 0.5 - 0.01 * k for k, r in enumerate(ref)]}
    assert bench_report.comparisons(values_of(lower, loss), "relu", "ref", 0.05)[0]["verdict"] == "better"
    assert bench_report.comparisons(values_of(lower, CURVATURE), "relu", "ref", 0.05)[0]["verdict"] == "lower"


def test_ranking_shares_a_rank_where_the_paired_interval_contains_zero():
    table = {"a": [0.95, 0.96, 0.97], "b": [0.90, 0.91, 0.89], "c": [0.905, 0.905, 0.895], "d": [0.5, 0.52, 0.49]}
    assert bench_report.ranking(values_of(table), "relu", list(table), KEY) == [("1", "a"), ("2=", "c"), ("2=", "b"), ("4", "d")]


def test_best_lr_is_chosen_on_val_loss_not_on_test():
    def run(lr, seed, val_loss, test_acc):
        return {"lr": lr, "seed": seed, "epochs": 1.0, "default_lr": 0.1, "val_loss": val_loss, "train_loss": 0.5,
                "val_acc": 0.9, "test_acc": test_acc}

    rows = [run(0.1, s, 0.30, 0.99) for s in (1, 2)] + [run(1.0, s, 0.20, 0.10) for s in (1, 2)]
    best = [r for r in bench.trained_rows(rows, 2, "sgd", ("test_acc",)) if r["setting"] == "best_lr"]
    assert {r["lr"] for r in best} == {1.0} and [r["value"] for r in best] == [0.10, 0.10]


def test_every_step_lowers_needs_strict_finite_decrease():
    assert bench.every_step_lowers([3.0, 2.0, 1.0])
    assert not bench.every_step_lowers([3.0, 2.0, 2.5, 1.0])
    assert not bench.every_step_lowers([3.0, math.nan])


def half_glorot_(weight: torch.Tensor, fan_in: int, fan_out: int, *, scale: float = 0.5) -> None:
    """The registry's signature: N(0, scale^2 2 / (fan_in + fan_out))."""
    nn.init.normal_(weight, 0.0, scale * math.sqrt(2.0 / (fan_in + fan_out)))


def test_a_users_rule_is_a_scheme_with_its_own_hyperparameters():
    torch.manual_seed(0)
    model = Initializer(partial(half_glorot_), scale=0.25)(nn.Sequential(nn.Linear(400, 600), nn.ReLU(), nn.Linear(600, 10)))
    assert model[0].weight.std().item() == pytest.approx(0.25 * math.sqrt(2 / 1000), rel=0.02)
    assert torch.all(model[0].bias == 0)
    with pytest.raises(ValueError, match="unknown init key"):
        Initializer(partial(half_glorot_), gain=2.0)


def test_trusted_modules_come_from_the_environment_only(monkeypatch):
    from initlab.schema import target_allowed, trusted_modules

    assert not target_allowed("bench.inits.half.half_")
    monkeypatch.setenv(TRUSTED_ENV, "bench.inits, my_lab.inits, os.system; x")
    assert trusted_modules() == ("bench.inits", "my_lab.inits")
    assert target_allowed("bench.inits.half.half_") and not target_allowed("bench.initsx.half_")


def test_an_unknown_init_is_one_line_and_exit_2(capsys):
    with pytest.raises(SystemExit) as stop:
        bench.check_init("nope", {"inits": {"spectral": "src/initlab/init/weights.py"}})
    assert stop.value.code == 2 and capsys.readouterr().err.count("\n") == 1


def synthetic_values() -> dict:
    values = {}
    for activation, shift in (("tanh", 0.0), ("relu", 0.01)):
        for k, init in enumerate(("xavier_normal", "kaiming_normal", "spectral", "orthogonal")):
            values |= values_of({init: [0.9 + shift - 0.01 * k + 0.002 * s for s in range(3)]}, KEY, activation)
            values |= values_of({init: [6.0 * 2.15**k + 0.1 * s for s in range(3)]}, CURVATURE, activation)  # 6-60: one decade, as shipped
    return values


def test_bench_figure_has_a_panel_per_activation_and_passes_the_figure_checks():
    settings = {"activations": ["tanh", "relu"], "inits": ["xavier_normal", "kaiming_normal", "spectral", "orthogonal"],
                "reference": {"tanh": "xavier_normal", "relu": "kaiming_normal"}, "depths": [2, 6], "budgets": [1, 3],
                "primary": {"quantity": "test_acc", "optim": "sgd", "setting": "best_lr"}}
    values = synthetic_values()
    compared = {a: bench_report.comparisons(values, a, settings["reference"][a], 0.05) for a in settings["activations"]}
    fig = bench_report.figure(values, compared, settings, {"data": "mnist_t10k"})
    assert len(fig.axes) == 4 and all(ax.lines for ax in fig.axes) and "test acc" in fig.get_suptitle()
    assert figure_checks.check_figure(fig) == []


# ---------------------------------------------------------------- slow: a tiny bench in a scratch repo

TINY_BENCH = {
    "inits": {"xavier_normal": "src/initlab/init/weights.py", "kaiming_normal": "src/initlab/init/weights.py",
              "spectral": "src/initlab/init/weights.py"},
    "depths": [2, 3], "width": 16, "budgets": [1],
    "lr_grid": {"sgd": [0.1, 0.316, 1.0], "adam": [1.0e-3, 1.0e-2]},
    "eval_samples": 128, "curvature_samples": 64, "init_samples": 32, "jacobian_samples": 8, "trace_probes": 2,
    "stability": {"factors": [0.5, 1.0, 2.0], "steps": 5},
}
FIXTURE = '''"""A user's init (docs/bench.md): the registry's signature, in a module of the user's own."""
import math

from torch import nn


def half_glorot_(weight, fan_in, fan_out, *, scale: float = 0.5):
    nn.init.normal_(weight, 0.0, scale * math.sqrt(2.0 / (fan_in + fan_out)))
'''
FIXTURE_YAML = """# half Glorot's std (a test's fixture init)
defaults: [bias: zeros, _self_]
_target_: initlab.init.Initializer
scheme:
  _target_: bench.inits.half_glorot.half_glorot_
  _partial_: true
scale: 0.5
"""


def _run(args: list[str], cwd: Path, ok: bool = True, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(cwd / "src"), "OMP_NUM_THREADS": "1", **env}
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=1500, env=environment)
    if ok:
        assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def _dvc(*args: str, cwd: Path, ok: bool = True, **env: str) -> subprocess.CompletedProcess:
    return _run([sys.executable, "-m", "dvc", *args], cwd, ok, **env)


@pytest.fixture(scope="module")
def bench_repo(tmp_path_factory) -> Path:
    """A scratch git repo with the project and a tiny bench (digits, 3 seeds, 3 inits), after one ``dvc repro``."""
    root = tmp_path_factory.mktemp("bench")
    for name in ("dvc.yaml", ".dvcignore", ".gitignore"):
        shutil.copy(PROJECT_ROOT / name, root / name)
    (root / "bench").mkdir()
    shutil.copy(PROJECT_ROOT / "bench" / "dvc.yaml", root / "bench" / "dvc.yaml")
    for name in ("conf", "src", ".dvc"):
        shutil.copytree(PROJECT_ROOT / name, root / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "cache", "tmp", "storage"))
    (root / "reports").mkdir()
    shutil.copy(PROJECT_ROOT / "reports" / ".gitignore", root / "reports" / ".gitignore")
    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    params |= {"data": "digits", "seeds": [1, 2, 3], "workers": 2}
    params["bench"] |= TINY_BENCH
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _run(["git", "init", "-q"], root)
    _dvc("repro", "bench/dvc.yaml", cwd=root)
    return root


def _csv(path: Path) -> list[dict]:
    with path.open() as handle:
        return list(csv.DictReader(handle))



@pytest.mark.slow
def test_adding_an_init_runs_only_its_stage_and_its_verdicts_follow_from_its_numbers(bench_repo):
    root = bench_repo
    markdown = (root / "reports" / "bench.md").read_text()
    assert all(len(re.findall(rf"^\| \d+=? \| (\*\*)?{init}(\*\*)? \|", markdown, flags=re.M)) == 2 for init in TINY_BENCH["inits"])
    assert (root / "reports" / "bench.png").is_file()
    assert "Running stage" not in _dvc("repro", "bench/dvc.yaml", cwd=root).stdout

    (root / "bench" / "inits").mkdir()
    (root / "bench" / "inits" / "half_glorot.py").write_text(FIXTURE)
    (root / "conf" / "init" / "half_glorot.yaml").write_text(FIXTURE_YAML)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["bench"]["inits"]["half_glorot"] = "bench/inits/half_glorot.py"
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    status = _dvc("status", "bench/dvc.yaml", cwd=root).stdout
    stale = {line.split(":")[1] for line in status.splitlines() if line.startswith("bench/dvc.yaml:")}
    assert stale == {"bench@half_glorot", "leaderboard"}, status

    refused = _dvc("repro", "bench/dvc.yaml", cwd=root, ok=False)
    assert refused.returncode != 0 and TRUSTED_ENV in refused.stderr + refused.stdout

    ran = _dvc("repro", "bench/dvc.yaml", cwd=root, **{TRUSTED_ENV: "bench.inits"}).stdout
    assert "bench@half_glorot" in ran and not any(f"Running stage 'bench/dvc.yaml:bench@{i}'" in ran for i in TINY_BENCH["inits"])
    markdown = (root / "reports" / "bench.md").read_text()
    assert len(re.findall(r"^\| \d+=? \| half_glorot \|", markdown, flags=re.M)) == 2  # one leaderboard row per activation

    mine = _csv(root / "results" / "bench" / "inits" / "half_glorot.csv")
    board = [r for r in _csv(root / "results" / "bench" / "leaderboard.csv") if r["activation"] == "tanh" and r["verdict"]]
    reference = {(r["quantity"], r["depth"], r["optim"], r["setting"], r["epochs"], r["seed"]): float(r["value"])
                 for r in _csv(root / "results" / "bench" / "inits" / "xavier_normal.csv") if r["activation"] == "tanh"}
    adjusted = dict(zip([id(r) for r in board], holm_by_hand([float(r["p"]) for r in board]), strict=True))
    checked = 0
    for row in (r for r in board if r["init"] == "half_glorot"):
        key = (row["quantity"], row["depth"], row["optim"], row["setting"], row["epochs"])
        diffs = [float(r["value"]) - reference[(*key, r["seed"])] for r in mine if r["activation"] == "tanh"
                 and (r["quantity"], r["depth"], r["optim"], r["setting"], r["epochs"]) == key
                 and r["value"] not in ("", "nan") and (*key, r["seed"]) in reference and math.isfinite(reference[(*key, r["seed"])])]
        assert math.isclose(float(row["diff"]), sum(diffs) / len(diffs), rel_tol=1e-6, abs_tol=1e-12)
        if len(set(diffs)) > 1 and row["quantity"] not in bench_report.GRIDS:  # grid-valued: the bracket's p, tested above
            assert math.isclose(float(row["p"]), scipy_stats.ttest_1samp(diffs, 0.0).pvalue, rel_tol=1e-6)
        assert math.isclose(float(row["p_holm"]), adjusted[id(row)], rel_tol=1e-9)
        direction = bench_report.QUANTITIES[row["quantity"]].direction
        sign = 0 if adjusted[id(row)] > 0.05 else (1 if sum(diffs) > 0 else -1)
        assert row["verdict"] == bench_report.VERDICTS.get((direction, sign), "no different")
        checked += 1
    assert checked >= 10


def test_a_bench_stage_takes_its_init_from_dvc_not_from_a_shell_word():
    from initlab.pipeline.bench import stage_item

    assert stage_item("bench/dvc.yaml:bench@spectral") == "spectral"
    assert stage_item("bench/dvc.yaml:leaderboard") is None and stage_item("") is None
