"""Hyperparameter validation; every error names the config key it rejects."""

import math


def check_range(
    name: str,
    value: float,
    low: float = 0.0,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = True,
) -> float:
    """Return ``value`` if it lies in the interval, else raise ``ValueError`` naming ``name``."""
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    if not (above and below):  # also rejects NaN
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be in {interval}, got {value!r}")
    return value


def check_fraction(name: str, value: float) -> float:
    """A decay rate or momentum coefficient: 0 <= value < 1."""
    return check_range(name, value, 0.0, 1.0)


def check_positive(name: str, value: float) -> float:
    """A strictly positive value (stabilizers, durations)."""
    return check_range(name, value, 0.0, low_open=True)
