"""What the study's grid-search columns say about a selection (``grid_edge``: none | low | high, ``edge_reason``:
interior | next_diverges | bound; :data:`initlab.pipeline.tables.SEARCH_COLUMNS`), read the same way by the report
and the figures."""

import math
from collections.abc import Iterable
from typing import Any

EDGE_WORDS = {"bound": "at every lr tried", "next_diverges": "the next lr diverged for every seed"}


def on_grid_edge(row: dict[str, Any]) -> bool:
    """Whether the search that selected this row's lr ended on an edge of its (extended) grid."""
    return row.get("grid_edge") in ("low", "high")


def edge_words(row: dict[str, Any]) -> str:
    """Where a selection on the grid's edge sits, in words: 'highest lr tried; the next lr diverged for every seed'."""
    side = {"low": "lowest", "high": "highest"}[row["grid_edge"]]
    return f"{side} lr tried; {EDGE_WORDS.get(row.get('edge_reason'), row.get('edge_reason') or 'no reason recorded')}"


def next_grid_value(value: float, grid: Iterable[float]) -> float:
    """The smallest grid value above ``value`` (inf past the grid's top): a value read off a grid (the largest value that
    passed) lies in [value, next grid value)."""
    return min((g for g in grid if g > value), default=math.inf)
