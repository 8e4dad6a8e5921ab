"""Figures the chapters repeat."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd


def plot_error_vs_shots(results: pd.DataFrame, ax=None, ylabel: str = "error", title: str | None = None):
    """Mean error against the number of shots, one line per method, with 95% CI bands.

    ``results`` has columns ``method``, ``shots``, ``mean`` and ``ci`` (the half-width).
    The shots axis is logarithmic: 1, 2, 5, 10, 20 shots are evenly spaced.
    """
    missing = {"method", "shots", "mean", "ci"} - set(results.columns)
    if missing:
        raise ValueError(f"results lacks columns {sorted(missing)}")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.0))
    for method, rows in results.groupby("method", sort=False):
        rows = rows.sort_values("shots")
        ax.plot(rows["shots"], rows["mean"], marker="o", label=method)
        ax.fill_between(rows["shots"], rows["mean"] - rows["ci"], rows["mean"] + rows["ci"], alpha=0.2)
    ax.set_xscale("log")
    shots = sorted(results["shots"].unique())
    ax.set_xticks(shots, [str(s) for s in shots])
    ax.minorticks_off()
    ax.set_xlabel("shots K (observations of the new task)")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax
