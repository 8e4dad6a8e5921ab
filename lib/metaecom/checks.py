"""Argument checks with clear errors, shared by the whole package.

Every public function and class checks its inputs before any work starts, so a typo or
an impossible request fails at once with a message naming the argument, not minutes
into a training run with a bare ``KeyError``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def check_count(name: str, value, minimum: int) -> int:
    """``value`` as an int, or a ValueError if it is not an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_positive(name: str, value) -> float:
    """``value`` as a float, or a ValueError if it is not a finite number > 0."""
    if not (isinstance(value, (int, float, np.floating)) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def check_fraction(name: str, value) -> float:
    """``value`` as a float strictly between 0 and 1, or a ValueError."""
    if not 0 < value < 1:
        raise ValueError(f"{name} must be between 0 and 1 (exclusive), got {value!r}")
    return float(value)


def require_columns(table: pd.DataFrame, columns, what: str) -> None:
    """Raise a ValueError naming the columns of ``columns`` that ``table`` lacks."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}; it has {list(table.columns)}")


def plain(value):
    """A NumPy scalar as the matching Python value (``np.int64(3)`` -> ``3``); others unchanged."""
    return value.item() if isinstance(value, np.generic) else value


def latest(first_time: pd.Series, fraction: float, what: str) -> np.ndarray:
    """The keys of ``first_time`` (key -> time) in the latest ``fraction``, sorted.

    Ties in time are broken by key, so the result does not depend on row order. At least
    one key is new and at least one is old.
    """
    n = len(first_time)
    if n < 2:
        raise ValueError(f"need at least 2 {what} to split into old and new, got {n}")
    n_new = min(max(1, round(fraction * n)), n - 1)
    by_time = first_time.sort_index(kind="stable").sort_values(kind="stable")
    return np.sort(by_time.index.to_numpy()[-n_new:])
