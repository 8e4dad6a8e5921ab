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


def plot_embeddings_2d(z, labels, centres=None, ax=None, title: str | None = None):
    """Embeddings projected on their first two principal components, coloured by class.

    ``z`` is ``[n, dim]``, ``labels`` the class of each row (0..C-1); ``centres``
    (optional, ``[C, dim]``, e.g. prototypes) are projected with the same axes and drawn
    as large stars. Returns the axes.
    """
    import numpy as np
    from sklearn.decomposition import PCA

    z, labels = np.asarray(z, dtype=float), np.asarray(labels)
    if z.ndim != 2 or len(z) != len(labels):
        raise ValueError(f"z must be [n, dim] with one label per row; got {z.shape} and {labels.shape}")
    pca = PCA(n_components=2).fit(z if centres is None else np.vstack([z, centres]))
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 4.5))
    points = pca.transform(z)
    colours = plt.get_cmap("tab10")
    for c in np.unique(labels):
        ax.scatter(*points[labels == c].T, s=18, alpha=0.6, color=colours(int(c) % 10), label=f"class {c}")
    if centres is not None:
        stars = pca.transform(np.asarray(centres, dtype=float))
        for c, star in enumerate(stars):
            ax.scatter(*star, marker="*", s=320, color=colours(c % 10), edgecolor="black", linewidth=1.2, zorder=3)
    ax.set_xlabel("principal component 1")
    ax.set_ylabel("principal component 2")
    if title:
        ax.set_title(title)
    return ax
