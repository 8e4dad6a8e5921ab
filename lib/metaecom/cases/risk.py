"""Scoring orders for risk when a team can check only some of them.

A risk team reviews a fixed share of orders -- its *review budget* -- and a risk score is
worth the bad orders it puts inside that share. ROC-AUC and PR-AUC summarise a ranking
over every possible budget; the team lives at one of them, and acts on the score as a
probability only if the score is calibrated.

- :func:`caught_at_budget` -- the share of bad orders among the top ``budget`` of scores
- :func:`calibration_table` -- mean score against the observed rate, per score bin
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _scores_and_labels(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    scores, labels = np.asarray(scores, dtype=float), np.asarray(labels)
    if scores.ndim != 1 or scores.shape != labels.shape:
        raise ValueError(f"scores and labels must be 1-D of the same length, got {scores.shape} and {labels.shape}")
    if len(scores) == 0:
        raise ValueError("scores is empty")
    if not np.isfinite(scores).all():
        raise ValueError(f"scores holds {int((~np.isfinite(scores)).sum())} non-finite values")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0 (good) or 1 (bad)")
    return scores, labels.astype(int)


def caught_at_budget(scores, labels, budget: float) -> float:
    """The share of all bad orders (``labels == 1``) that fall among the ``budget`` share
    of orders with the highest scores (the orders the team reviews).

    ``ceil(budget * n)`` orders are reviewed. Ties at the threshold are broken in favour
    of *no* bad order (the pessimistic count), so a constant score catches no more than
    its share by luck. A random ranking catches about ``budget``; a perfect one catches
    ``min(1, budget * n / bad)``. Returns nan when there is no bad order.
    """
    scores, labels = _scores_and_labels(scores, labels)
    if not 0 < budget <= 1:
        raise ValueError(f"budget must be in (0, 1], got {budget}")
    bad = labels.sum()
    if bad == 0:
        return float("nan")
    reviewed = int(np.ceil(budget * len(scores)))
    order = np.lexsort((labels, -scores))  # highest score first; within a tie, good orders first
    return float(labels[order[:reviewed]].sum() / bad)


def calibration_table(scores, labels, bins: int = 10) -> pd.DataFrame:
    """Orders grouped into ``bins`` equal-count bins of score: per bin the number of
    orders, the mean score and the observed rate of bad orders. A calibrated score has
    mean score close to the observed rate in every bin."""
    scores, labels = _scores_and_labels(scores, labels)
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be an integer >= 1, got {bins!r}")
    order = np.argsort(scores, kind="stable")
    groups = np.array_split(order, min(bins, len(scores)))
    return pd.DataFrame({"orders": [len(g) for g in groups],
                         "mean score": [scores[g].mean() for g in groups],
                         "observed rate": [labels[g].mean() for g in groups]})
