"""`python -m initlab.verify`: every verdict of a reproduction against the published report; exit 0 / 1 / 2."""

import copy
import json
import shutil
from pathlib import Path

import pytest

from initlab.config import PROJECT_ROOT
from initlab.verify import FLOAT_RTOL, main

REPORT = {
    "claims": [
        {"id": "empirical_claim", "section": "empirical", "verdict": "holds", "adjusted": "holds", "value": 1.0,
         "interval": {"n": 5, "low": 0.9, "high": 1.1}},
        {"id": "derivation", "section": "derivation", "verdict": "verified", "adjusted": None, "value": 2.0, "interval": None},
        {"id": "per_init_claim", "section": "empirical",
         "inits": [{"init": "spectral", "verdict": "fails", "value": 0.5, "interval": {"low": 0.4, "high": 0.6}},
                   {"init": "xavier_normal", "verdict": "holds", "value": 0.7, "interval": {"low": 0.6, "high": 0.8}}]},
    ],
    "tally": {"paper": {"holds": 2, "fails": 1}},
}


def run(tmp_path: Path, reproduced: dict, capsys, published: dict = REPORT) -> tuple[int, str]:
    paths = []
    for name, report in (("published", published), ("reproduced", reproduced)):
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(report))
    with pytest.raises(SystemExit) as exit_:
        main(["--published", str(paths[0]), "--reproduced", str(paths[1])])
    captured = capsys.readouterr()
    return exit_.value.code, captured.out + captured.err


def planted(path: tuple, key: str, value) -> dict:
    report = copy.deepcopy(REPORT)
    node = report
    for step in path:
        node = node[step]
    node[key] = value
    return report


def test_identical_reports_agree(tmp_path, capsys):
    code, out = run(tmp_path, copy.deepcopy(REPORT), capsys)
    assert code == 0 and "4 rows: 4 verdicts agree, 0 differ" in out


@pytest.mark.parametrize(("path", "key", "value", "row"), [
    (("claims", 0), "verdict", "fails", "empirical_claim"),
    (("claims", 0), "adjusted", "inconclusive", "empirical_claim"),
    (("claims", 1), "verdict", "contradicted", "derivation"),
    (("claims", 2, "inits", 1), "verdict", "inconclusive", "per_init_claim/xavier_normal"),
])
def test_a_changed_verdict_exits_1_and_names_its_row(tmp_path, capsys, path, key, value, row):
    code, out = run(tmp_path, planted(path, key, value), capsys)
    (line,) = [line for line in out.splitlines() if "VERDICT DIFFERS" in line]
    assert code == 1 and line.startswith(row + " ") and "1 differ" in out


def test_a_missing_row_counts_as_differing(tmp_path, capsys):
    report = copy.deepcopy(REPORT)
    del report["claims"][2]["inits"][0]
    code, out = run(tmp_path, report, capsys)
    assert code == 1 and "(missing)" in out


@pytest.mark.parametrize(("path", "value", "outside"), [
    (("claims", 0), 1.09, False),                      # inside the published 95% interval [0.9, 1.1]
    (("claims", 0), 1.2, True),
    (("claims", 1), 2.0 * (1 + FLOAT_RTOL / 2), False),  # a deterministic row within its float tolerance
    (("claims", 1), 2.0 * (1 + 10 * FLOAT_RTOL), True),
])
def test_values_are_judged_by_the_rows_tolerance_and_do_not_change_the_exit(tmp_path, capsys, path, value, outside):
    code, out = run(tmp_path, planted(path, "value", value), capsys)
    assert code == 0 and (f"{int(outside)} values outside" in out) and ("(value outside tolerance)" in out) is outside


def test_numbers_are_printed_no_finer_than_their_tolerance(tmp_path, capsys):
    code, out = run(tmp_path, planted(("claims", 0), "value", 1.0123456789), capsys)
    (line,) = [line for line in out.splitlines() if line.startswith("empirical_claim")]
    assert code == 0 and "1.00 [0.90, 1.10]" in line and " 1.01 " in line and "1.0123" not in line


@pytest.mark.parametrize("text", ["not json", json.dumps({"claims": []}), json.dumps([1, 2])])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, text):
    bad = tmp_path / "bad.json"
    bad.write_text(text)
    with pytest.raises(SystemExit) as exit_:
        main(["--published", str(bad), "--reproduced", str(bad)])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.strip().splitlines()) == 1 and str(bad) in err


def test_published_report_is_read_from_dvc_at_head(tmp_path, capsys, monkeypatch):
    """The default path: HEAD's dvc.lock names the published report, read from the DVC cache / remote."""
    workspace = PROJECT_ROOT / "reports" / "claims.json"
    if not workspace.is_file():
        pytest.skip("run `dvc pull` first: reports/claims.json is missing")
    reproduced = json.loads(workspace.read_text())
    row = reproduced["claims"][0]
    row["verdict"] = "fails" if row["verdict"] != "fails" else "holds"
    copy_path = tmp_path / "claims.json"
    copy_path.write_text(json.dumps(reproduced))
    monkeypatch.chdir(PROJECT_ROOT)
    with pytest.raises(SystemExit) as exit_:
        main(["--reproduced", str(copy_path)])
    assert exit_.value.code == 1, capsys.readouterr().err
    shutil.copyfile(workspace, copy_path)
    with pytest.raises(SystemExit) as exit_:
        main(["--reproduced", str(copy_path)])
    assert exit_.value.code == 0, capsys.readouterr().out[-2000:]
