"""A sweep folder someone handed over is data: ``initlab.aggregate`` reads it without a traceback, a hang, an overflow or
a silent acceptance, and what it writes into aggregate.md cannot add a row."""

import json
import os
import random
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from initlab.aggregate import aggregate, main
from initlab.files import LinkRefused

GOOD = {"status": "done", "seed": 0, "overrides": ["optim.lr=0.1"], "train": {"loss": 0.5, "acc": 0.9},
        "val": {"loss": 0.4, "acc": 0.9}, "test": {"loss": 0.45, "acc": 0.88}}


def _within(seconds: float, call, *args):
    """``call(*args)`` in a daemon thread: a hang fails the test instead of stopping the suite."""
    outcome: dict = {}

    def target():
        try:
            outcome["value"] = call(*args)
        except BaseException as err:  # noqa: BLE001  (reported to the test)
            outcome["error"] = err

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"{call.__name__} hung for {seconds} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _sweep(root: Path) -> Path:
    (root / "0").mkdir(parents=True)
    (root / "0" / "metrics.json").write_text(json.dumps(GOOD))
    return root


def _plant(job: Path, kind: str, outside: Path) -> None:
    """One hostile metrics.json in ``job``."""
    job.mkdir(parents=True, exist_ok=True)
    target = job / "metrics.json"
    text = {
        "deep": "[" * 100_000 + "]" * 100_000,
        "deep_object": '{"status": "done", "val": ' + '{"a": ' * 50 + "1" + "}" * 50 + "}",
        "huge_float": '{"status": "done", "val": {"loss": 1e999}}',
        "huge_int": '{"status": "done", "val": {"loss": ' + "9" * 400 + "}}",
        "huge_int_5000": '{"status": "done", "val": {"loss": ' + "9" * 5000 + "}}",
        "big_finite": json.dumps(GOOD | {"val": {"loss": 1.7e308}}),
        "nan_literal": '{"status": "done", "val": {"loss": NaN}}',
        "status_int": json.dumps(GOOD | {"status": 5}),
        "status_unknown": json.dumps(GOOD | {"status": "great"}),
        "overrides_str": json.dumps(GOOD | {"overrides": "optim.lr=9"}),
        "overrides_nested": json.dumps(GOOD | {"overrides": [["x"]]}),
        "val_list": json.dumps(GOOD | {"val": [1, 2]}),
        "loss_bool": json.dumps(GOOD | {"val": {"loss": True}}),
        "loss_text": json.dumps(GOOD | {"val": {"loss": "0.1"}}),
        "seed_text": json.dumps(GOOD | {"seed": "x"}),
        "not_utf8": b"\xff\xfe{\x00",
        "list": "[1, 2]",
        "cut": '{"status": "do',
        "large": '{"status": "done", "pad": "' + "x" * (2 << 20) + '"}',
    }.get(kind)
    if text is not None:
        target.write_bytes(text if isinstance(text, bytes) else text.encode())
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "dev_zero":
        target.symlink_to("/dev/zero")
    elif kind == "link_out":
        outside.write_text(json.dumps(GOOD | {"overrides": ["stolen=1"]}))
        target.symlink_to(outside)
    elif kind == "folder":
        target.mkdir()
    else:
        raise AssertionError(kind)


HOSTILE = ["deep", "deep_object", "huge_float", "huge_int", "huge_int_5000", "big_finite", "nan_literal", "status_int",
           "status_unknown", "overrides_str", "overrides_nested", "val_list", "loss_bool", "loss_text", "seed_text",
           "not_utf8", "list", "cut", "large", "fifo", "dev_zero", "link_out", "folder"]


@pytest.mark.parametrize("kind", HOSTILE)
def test_a_hostile_record_is_unreadable_and_hides_nothing(tmp_path, kind):
    sweep = _sweep(tmp_path / "sweep")
    _plant(sweep / "bad", kind, tmp_path / "outside.json")
    result = _within(30, aggregate, sweep)
    statuses = {row["run"]: row["status"] for row in result["rows"]}
    assert statuses == {"0": "done", "bad": "unreadable"}, "a hostile record passed for a run"
    assert "`optim.lr=0.1`, val/loss = 0.4000 (n = 1)" in result["markdown"]
    assert "stolen" not in result["markdown"]


def test_a_linked_job_folder_is_not_followed(tmp_path):
    sweep = _sweep(tmp_path / "sweep")
    elsewhere = _sweep(tmp_path / "elsewhere")
    (sweep / "1").symlink_to(elsewhere / "0", target_is_directory=True)
    assert [row["run"] for row in aggregate(sweep)["rows"]] == ["0"]


@pytest.mark.parametrize("name", ["aggregate.md", "aggregate.csv"])
def test_aggregate_never_writes_through_a_link(tmp_path, name):
    sweep = _sweep(tmp_path / "sweep")
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (sweep / name).symlink_to(victim)
    with pytest.raises(LinkRefused):
        aggregate(sweep)
    assert victim.read_text() == "keep me"


def test_the_cli_answers_a_hostile_folder_in_one_line_or_a_table_never_a_traceback(tmp_path):
    sweep = _sweep(tmp_path / "sweep")
    for kind in ("fifo", "dev_zero", "deep", "huge_int"):
        _plant(sweep / kind, kind, tmp_path / "outside.json")
    env = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    result = subprocess.run([sys.executable, "-m", "initlab.aggregate", str(sweep)], capture_output=True, text=True,
                            timeout=120, env=env)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "4 unreadable" in result.stdout and "1 done" in result.stdout
    (sweep / "aggregate.md").unlink()
    (sweep / "aggregate.md").symlink_to("/dev/null")
    refused = subprocess.run([sys.executable, "-m", "initlab.aggregate", str(sweep)], capture_output=True, text=True,
                             timeout=120, env=env)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "symbolic link" in refused.stderr


INJECTIONS = ["optim.lr=0.1\n| `evil` | 9/9 | 0 | 0 | 0 | 0 | 0 | 0 |", "a|b|c", "x`y``z", "```", " `lead", "\r\n\x1b[31m",
              "tab\there"]


def test_overrides_cannot_add_rows_or_cells_to_aggregate_md(tmp_path):
    sweep = tmp_path / "sweep"
    for job, override in enumerate(INJECTIONS):
        (sweep / str(job)).mkdir(parents=True)
        (sweep / str(job) / "metrics.json").write_text(json.dumps(GOOD | {"overrides": [override]}))
    markdown = aggregate(sweep)["markdown"]
    table = [line for line in markdown.splitlines() if line.startswith("|")]
    assert len(table) == 2 + len(INJECTIONS), "an override added or removed a table row"
    for row in table[2:]:
        cells = re.split(r"(?<!\\)\|", row)
        assert len(cells) == 2 + 2 + 6, row  # outer empties, configuration, done/runs, six metrics
    assert "\x1b" not in markdown and "\r" not in markdown


def test_missing_and_non_folder_sweep_dirs_exit_2_in_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    for target in (tmp_path / "nope", tmp_path / "file"):
        with pytest.raises(SystemExit) as info:
            main([str(target)])
        assert info.value.code == 2 and capsys.readouterr().err.count("\n") == 1


def _mutate(rng: random.Random) -> tuple[bytes, bool]:
    """A metrics.json and whether a run could have written it (valid: must be read as its status; invalid: unreadable)."""
    record = json.loads(json.dumps(GOOD))
    valid = True
    choice = rng.randrange(10)
    if choice == 0:
        record["status"] = rng.choice(["done", "diverged", "failed", "interrupted"])
    elif choice == 1:
        record["val"]["loss"] = rng.choice(["nan", "inf", "-inf", None, rng.uniform(-1e6, 1e6)])
    elif choice == 2:
        record["overrides"] = ["".join(rng.choice("ab=|`\n\t .x\\") for _ in range(rng.randrange(30)))]
    elif choice == 3:
        record[rng.choice(["status", "overrides", "val", "seed"])] = rng.choice([[1], {"a": 1}, 1.5, True, "zz"])
        valid = record["status"] in ("done", "diverged", "failed", "interrupted") and isinstance(record["overrides"], list) \
            and isinstance(record["val"], dict) and (isinstance(record["seed"], int) and not isinstance(record["seed"], bool))
    elif choice == 4:
        huge = rng.choice(["9" * rng.randrange(302, 6000), "1e" + str(rng.randrange(301, 400)), "-1e999"])
        return json.dumps(record).replace('"loss": 0.4', f'"loss": {huge}').encode(), False
    elif choice == 5:
        return b"[" * rng.randrange(33, 200_000), False
    elif choice == 6:
        text = json.dumps(record).encode()
        return text[: rng.randrange(len(text))], False
    elif choice == 7:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))), False
    elif choice == 8:
        record["val"] = {"loss": rng.choice([True, [0.1], {"x": 1}, "0.1"])}
        valid = False
    return json.dumps(record).encode(), valid


@pytest.mark.slow
def test_fuzz_hostile_folders_no_traceback_no_hang_no_silent_acceptance(tmp_path):
    rng = random.Random(27)
    counts = {"cases": 0, "tracebacks": 0, "hangs": 0, "silent": 0, "refused_valid": 0}
    for case in range(300):
        sweep = tmp_path / f"s{case}"
        (sweep / "0").mkdir(parents=True)
        data, valid = _mutate(rng)
        (sweep / "0" / "metrics.json").write_bytes(data)
        try:
            result = _within(30, aggregate, sweep)
        except AssertionError:
            counts["hangs"] += 1
            continue
        except Exception:  # noqa: BLE001  (counted)
            counts["tracebacks"] += 1
            continue
        finally:
            counts["cases"] += 1
        status = result["rows"][0]["status"]
        counts["silent"] += not valid and status != "unreadable"
        counts["refused_valid"] += valid and status == "unreadable"
    print(counts)
    assert counts == {"cases": 300, "tracebacks": 0, "hangs": 0, "silent": 0, "refused_valid": 0}
