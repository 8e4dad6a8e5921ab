"""Metrics and their uncertainty.

A meta-learner is judged on many test tasks, never one. :func:`mean_ci` turns per-task
scores into a mean and the half-width of its 95% confidence interval (Student's t), the
"± x" printed in every table of the book.
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def mean_ci(values, confidence: float = 0.95) -> tuple[float, float]:
    """Mean of ``values`` and the half-width of its ``confidence`` interval.

    Uses Student's t with n-1 degrees of freedom, so it is right for small numbers of
    tasks too. With a single value the half-width is ``nan`` (no spread to estimate).
    """
    values = np.asarray(values, dtype=float).ravel()
    if values.size == 0:
        raise ValueError("mean_ci needs at least one value, got an empty array")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"mean_ci got {np.count_nonzero(~np.isfinite(values))} non-finite values")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    mean = float(values.mean())
    if values.size == 1:
        return mean, float("nan")
    sem = values.std(ddof=1) / np.sqrt(values.size)
    return mean, float(stats.t.ppf(0.5 + confidence / 2, df=values.size - 1) * sem)


def rmse(predicted, target, axis=-1) -> np.ndarray:
    """Root mean squared error along ``axis`` (one value per task by default)."""
    predicted = np.asarray(predicted, dtype=float)
    target = np.asarray(target, dtype=float)
    if predicted.shape != target.shape:
        raise ValueError(f"rmse: shapes differ, predicted {predicted.shape} vs target {target.shape}")
    return np.sqrt(np.mean((predicted - target) ** 2, axis=axis))


def format_ci(mean: float, half_width: float, digits: int = 2) -> str:
    """``'12.34 ± 0.56'`` — how a mean and its interval are printed in tables."""
    return f"{mean:.{digits}f} ± {half_width:.{digits}f}"


def ci_table(results, index: str, columns: str, digits: int = 2, order=None):
    """Pivot a long table of ``mean``/``ci`` rows into the book's ``mean ± ci`` layout.

    ``results`` has one row per (``index``, ``columns``) pair with columns ``mean`` and
    ``ci``; ``order`` optionally fixes the column order (e.g. baselines first).
    """
    missing = {index, columns, "mean", "ci"} - set(results.columns)
    if missing:
        raise ValueError(f"results lacks columns {sorted(missing)}")
    cells = [format_ci(m, c, digits) for m, c in zip(results["mean"], results["ci"])]
    table = results.assign(_cell=cells).pivot(index=index, columns=columns, values="_cell")
    table.columns.name = None
    return table[list(order)] if order is not None else table
