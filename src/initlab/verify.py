"""Reproduce and verify: does this workspace's claims report agree with the published one?

    dvc pull && dvc repro && python -m initlab.verify     # (or initlab-verify)

The published report is the ``reports/claims.json`` that the committed ``dvc.lock`` records (``--rev``, default
HEAD), read from the DVC cache or remote; the reproduced one is the workspace's. A rerun on another machine changes
``dvc.lock``'s hashes (float kernels sum in another order: losses differ at 1e-8, chaotic runs amplify it) but must
not change a verdict. Per report row (any object with a ``verdict``, sub-rows included) it prints published vs
reproduced with the tolerance the row can honestly claim: the published 95% interval for empirical rows, a relative
:data:`FLOAT_RTOL` for deterministic ones, numbers rounded to that tolerance. Exit 0 when every verdict agrees,
1 when one differs (or a row is missing on one side), 2 on bad input.
"""

import argparse
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPORT = "reports/claims.json"
# Deterministic rows (derivations: closed forms, bisections, float64 linear algebra) reproduce to this relative
# tolerance across CPUs; finer digits are summation order, not the claim.
FLOAT_RTOL = 1e-6
FLOAT_ATOL = 1e-12  # for rows whose value is 0 (an exact identity)
DIGITS = 6  # significant digits a relative FLOAT_RTOL supports
VERDICT_KEYS = ("verdict", "adjusted")  # raw and Holm-adjusted verdicts: both must agree
Key = tuple[str, ...]


class BadInput(Exception):
    """A report that cannot be read or has no rows: exit 2 with one line."""


def report_rows(node: Any, key: Key = (), position: str = "") -> Iterator[tuple[Key, dict[str, Any]]]:
    """Every row (an object with a ``verdict``) anywhere in the report, keyed by the chain of labels (``id``, else
    ``init`` or ``name``, else its position) of it and its ancestor rows or claims: claims and init sub-rows alike."""
    if isinstance(node, dict):
        if "verdict" in node or "id" in node:
            key = (*key, str(next((node[k] for k in ("id", "init", "name") if node.get(k) is not None), position)))
        if "verdict" in node:
            yield key, node
        for name, child in node.items():
            yield from report_rows(child, key, name)
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from report_rows(child, key, f"{position}[{index}]")


def rows_by_key(report: Any, source: str) -> dict[Key, dict[str, Any]]:
    rows: dict[Key, dict[str, Any]] = {}
    for key, row in report_rows(report):
        if key in rows:
            raise BadInput(f"{source}: two rows named {'/'.join(key)}")
        rows[key] = row
    if not rows:
        raise BadInput(f"{source}: no report rows (objects with a 'verdict')")
    return rows


def interval_of(row: dict[str, Any]) -> tuple[float, float] | None:
    interval = row.get("interval")
    if isinstance(interval, dict) and all(_is_number(interval.get(k)) for k in ("low", "high")):
        return float(interval["low"]), float(interval["high"])
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _decimals(scale: float) -> int:
    """Decimals that show two significant digits of ``scale`` (a tolerance): no finer than the number reproduces."""
    return max(0, 1 - math.floor(math.log10(scale))) if scale > 0 else 6


def _shown(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}" if abs(value) < 1e6 else f"{value:.3g}"


def compare_values(published: dict[str, Any], reproduced: dict[str, Any]) -> tuple[str, str, str, bool | None]:
    """Published and reproduced value as text, the tolerance used, and whether the reproduction is within it."""
    old, new = published.get("value"), reproduced.get("value")
    if not (_is_number(old) and _is_number(new)):
        return str(old), str(new), "-", None
    interval = interval_of(published)
    if interval is not None:
        low, high = interval
        decimals = _decimals((high - low) / 2)
        text = f"{_shown(old, decimals)} [{_shown(low, decimals)}, {_shown(high, decimals)}]"
        return text, _shown(new, decimals), "95% interval", low <= new <= high
    within = math.isclose(old, new, rel_tol=FLOAT_RTOL, abs_tol=FLOAT_ATOL)
    return f"{old:.{DIGITS}g}", f"{new:.{DIGITS}g}", f"rel {FLOAT_RTOL:g}", within


def verdicts(row: dict[str, Any] | None) -> str:
    if row is None:
        return "(missing)"
    return " / ".join(str(row[k]) for k in VERDICT_KEYS if row.get(k) is not None)


def verify(published: Any, reproduced: Any, sources: tuple[str, str] = ("published", "reproduced")) -> tuple[list[str], int]:
    """The comparison table's lines and the number of rows whose verdicts differ (a missing row counts)."""
    old_rows, new_rows = rows_by_key(published, sources[0]), rows_by_key(reproduced, sources[1])
    keys = list(old_rows) + [k for k in new_rows if k not in old_rows]
    lines = [f"{'row':<44} {'verdict published -> reproduced':<36} {'value published':<34} {'reproduced':<12} tolerance"]
    differ = outside = 0
    for key in keys:
        old, new = old_rows.get(key), new_rows.get(key)
        same = old is not None and new is not None and all(old.get(k) == new.get(k) for k in VERDICT_KEYS)
        differ += not same
        old_v, new_v, tolerance, within = compare_values(old or {}, new or {})
        outside += within is False
        mark = "" if same else "   <- VERDICT DIFFERS"
        mark += "   (value outside tolerance)" if within is False else ""
        change = f"{verdicts(old)} -> {verdicts(new)}" if not same else f"{verdicts(old)} (same)"
        lines.append(f"{'/'.join(key):<44} {change:<36} {old_v:<34} {new_v:<12} {tolerance}{mark}")
    lines.append(f"{len(keys)} rows: {len(keys) - differ} verdicts agree, {differ} differ; "
                 f"{outside} values outside their tolerance (informational: the verdict is what the report claims)")
    return lines, differ


def read_json(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as err:
        raise BadInput(f"{source}: not JSON ({err})") from None


def read_file(path: Path) -> Any:
    try:
        return read_json(path.read_text(), str(path))
    except (OSError, UnicodeDecodeError) as err:
        raise BadInput(f"{path}: cannot read ({err.__class__.__name__}: {err})") from None


def read_published(path: str, rev: str) -> Any:
    """``path`` as the ``dvc.lock`` of git revision ``rev`` records it, from the DVC cache or the default remote."""
    import dvc.api
    from dvc.exceptions import DvcException
    from scmrepo.exceptions import SCMError

    try:
        text = dvc.api.read(path, rev=rev)
    except (DvcException, SCMError, OSError) as err:
        raise BadInput(f"published {path} at {rev}: cannot read ({err}); run `dvc pull` or pass --published FILE") from None
    return read_json(text, f"published {path} at {rev}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m initlab.verify", description=__doc__.splitlines()[0])
    parser.add_argument("--reproduced", type=Path, default=Path(REPORT), help=f"the reproduced report (default: {REPORT})")
    parser.add_argument("--published", type=Path, default=None,
                        help=f"the published report as a file (default: {REPORT} as dvc.lock at --rev records it)")
    parser.add_argument("--rev", default="HEAD", help="git revision whose dvc.lock names the published report (default: HEAD)")
    args = parser.parse_args(argv)
    try:
        published = read_file(args.published) if args.published else read_published(REPORT, args.rev)
        source = str(args.published) if args.published else f"{REPORT} at {args.rev}"
        lines, differ = verify(published, read_file(args.reproduced), (source, str(args.reproduced)))
    except BadInput as err:
        parser.exit(2, f"initlab.verify: {err}\n")
    print("\n".join(lines))
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
