"""params.yaml is checked before any stage runs: a bad knob is one line and exit 2, the shipped file passes."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from initlab.config import PROJECT_ROOT
from initlab.pipeline.params_schema import check_params, params_problems

SHIPPED = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())


def test_the_shipped_params_pass():
    assert params_problems(SHIPPED) == []


# Issue 23's bad params.yaml files: a change -> the start of the one line.
BAD = {
    "no seeds": ({"seeds": []}, "seeds (params.yaml): got [], must be a non-empty list"),
    "seeds as text": ({"seeds": "abc"}, "seeds (params.yaml): got 'abc'"),
    "repeated seed": ({"seeds": [1, 1]}, "seeds (params.yaml): got [1, 1], must be a non-empty list of items each an integer in [0, 4294967295], without repeats"),
    "a list of data": ({"data": ["digits"]}, "data (params.yaml): got ['digits'], must be one of"),
    "unknown init": ({"inits": ["nope"]}, "inits (params.yaml): got ['nope']"),
    "unknown optimizer": ({"optimizers": ["sgd", "bogus"]}, "optimizers (params.yaml): got ['sgd', 'bogus']"),
    "a shell command as threads": ({"threads": "$(touch marker)1"}, "threads (params.yaml): got '$(touch marker)1', must be an integer"),
    "negative steps": ({"data_demos": {**SHIPPED["data_demos"], "symmetry": {**SHIPPED["data_demos"]["symmetry"], "steps": -5}}},
                       "data_demos.symmetry.steps (params.yaml): got -5, must be an integer >= 1"),
    "steps as text": ({"data_demos": {**SHIPPED["data_demos"], "symmetry": {**SHIPPED["data_demos"]["symmetry"], "steps": "many"}}},
                      "data_demos.symmetry.steps (params.yaml): got 'many'"),
    "a missing knob": ({"threads": None}, "threads (params.yaml): got None"),
}


@pytest.mark.parametrize(("change", "start"), BAD.values(), ids=BAD.keys())
def test_bad_params_are_one_line(change, start):
    problems = params_problems(SHIPPED | change)
    assert problems and start in problems[0] and problems[0].endswith(problems[0].split(", ", 1)[1]), problems[:1]


def test_a_bad_file_exits_2_with_one_line_and_runs_nothing(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text((PROJECT_ROOT / "params.yaml").read_text().replace("threads: 1", "threads: \"$(touch marker)1\"", 1))
    result = subprocess.run([sys.executable, "-m", "initlab.pipeline.params_schema", str(bad)], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and result.stderr.startswith("initlab: threads (params.yaml)")
    assert not (tmp_path / "marker").exists()
    codes = []
    assert check_params(bad, exit=codes.append) is None and codes == [2]
    shutil.copy(PROJECT_ROOT / "params.yaml", bad)
    assert check_params(bad) == yaml.safe_load(bad.read_text())


def test_an_unreadable_file_is_one_line(tmp_path, capsys):
    (tmp_path / "params.yaml").write_text("seeds: [1, 2\n")
    codes = []
    check_params(tmp_path / "params.yaml", exit=codes.append)
    assert codes == [2] and capsys.readouterr().err.startswith(f"initlab: {tmp_path / 'params.yaml'}: got an unreadable file")
    assert not Path(tmp_path / "marker").exists()


def test_no_stage_command_templates_a_param_and_every_stage_is_checked_first(tmp_path):
    """A params value cannot reach a shell: dvc.yaml commands template nothing, and every stage goes through
    ``initlab.pipeline.timed``, which refuses a bad params.yaml before the stage's command starts."""
    for pipeline in ("dvc.yaml", "bench/dvc.yaml"):
        stages = yaml.safe_load((PROJECT_ROOT / pipeline).read_text())["stages"]
        for name, stage in stages.items():
            stage = stage.get("do", stage)  # a foreach stage: its template
            assert "${" not in stage["cmd"], name
            assert stage["cmd"].startswith(f"python -m initlab.pipeline.timed {name if name != 'leaderboard' else 'bench_leaderboard'} "), name
    (tmp_path / "params.yaml").write_text((PROJECT_ROOT / "params.yaml").read_text().replace("threads: 1", "threads: \"$(touch marker)1\"", 1))
    result = subprocess.run([sys.executable, "-m", "initlab.pipeline.timed", "prepare", "touch", "ran"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.startswith("initlab: threads (params.yaml)")
    assert not (tmp_path / "marker").exists() and not (tmp_path / "ran").exists()


# Issue 27: params.yaml is data: names of conf/ options and numbers, never an instruction.
HOSTILE = {
    "a target where a name is meant": ({"depth": {**SHIPPED["depth"], "optim": {"_target_": "os.system", "_args_": ["touch m"]}}},
                                        "depth.optim (params.yaml): got {'_target_': 'os.system'"),
    "a mapping where a name is meant": ({"spectra": {**SHIPPED["spectra"], "optim": {"name": "sgd"}}},
                                         "spectra.optim (params.yaml): got {'name': 'sgd'}, must be one of"),
    "a target in a new section": ({"bench": {"extra": {"_target_": "os.system"}}}, "bench.extra._target_ (params.yaml): got 'os.system', is not a knob"),
    "a target inside a claim": ({"report": {**SHIPPED["report"], "claims": [{"check": "x", "_target_": "os.system"}]}},
                                "report.claims.0._target_ (params.yaml)"),
    "a shell word as a bench init": ({"bench": {**SHIPPED["bench"], "inits": {"x'; touch m; '": "src/initlab/init/weights.py"}}},
                                     "bench.inits.x'; touch m; ' (params.yaml): got \"x'; touch m; '\", must name an option of conf/init"),
    "a bench init's code outside the checkout": ({"bench": {**SHIPPED["bench"], "inits": {"spectral": "../../etc/x.py"}}},
                                                 "bench.inits.spectral (params.yaml): got '../../etc/x.py', must be a relative path"),
    "a name inside a claim": ({"report": {**SHIPPED["report"], "claims": [{"check": "x", "init": "nope"}]}},
                              "report.claims.0.init (params.yaml): got 'nope', must be one of"),
}


@pytest.mark.parametrize(("change", "start"), HOSTILE.values(), ids=HOSTILE.keys())
def test_params_hold_no_instruction(change, start):
    problems = params_problems(SHIPPED | change)
    assert problems and problems[0].startswith(start), problems[:1]


def test_a_target_in_params_exits_2_and_runs_nothing(tmp_path):
    hostile = tmp_path / "params.yaml"
    hostile.write_text(yaml.safe_dump(SHIPPED | {"spectra": {**SHIPPED["spectra"], "optim": {
        "_target_": "os.system", "_args_": [f"touch {tmp_path / 'marker'}"]}}}))
    codes = []
    assert check_params(hostile, exit=codes.append) is None and codes == [2]
    assert not (tmp_path / "marker").exists()
