"""Scoring orders for risk when a team can check only some of them.

A risk team reviews a fixed share of orders -- its *review budget* -- and a risk score is
worth the bad orders it puts inside that share. ROC-AUC and PR-AUC summarise a ranking
over every possible budget; the team lives at one of them, and acts on the score as a
probability only if the score is calibrated.

- :func:`order_table`      -- one row per order of a known customer, with what is known
  when it is placed and whether a later cancellation undid it
- :func:`caught_at_budget` -- the share of bad orders among the top ``budget`` of scores
- :func:`calibration_table` -- mean score against the observed rate, per score bin
- :func:`bootstrap_by_group` -- any metric's spread when whole customers are resampled,
  the same resamples for every method (paired)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from metaecom.data.retail import cancellation_lines, undone_at


def order_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per sale invoice of a known customer, in time order.

    ``frame``: invoice lines as :func:`metaecom.data.read_online_retail` returns them.
    Columns: invoice, customer, country, time (of the invoice), lines, value (sum of
    quantity x unit price), mean_price (mean unit price of its lines), bulk_share (share
    of lines of 12 units or more), order_number (0 for a customer's first order in the
    data), days_since_previous (NaN for the first), **cancelled**: whether a later
    cancellation undid at least one of its lines (:func:`~metaecom.data.undone_at`: same
    customer, product and quantity), and **cancelled_at**: when the first such
    cancellation came (NaT if none). A model that scores an order at time *t* may only
    know the cancellations with ``cancelled_at < t``. A cancellation of part of a line's
    quantity is not matched, so ``cancelled`` counts the clear cases only. Lines without
    a customer id, cancellations and lines with quantity <= 0 are not orders and are
    left out.
    """
    when = undone_at(frame)
    undone = ~np.isnat(when)
    cancelled = cancellation_lines(frame)
    keep = ~cancelled & (frame["quantity"] > 0).to_numpy(dtype=bool) & frame["customer_id"].notna().to_numpy()
    lines = frame[keep].assign(undone=undone[keep], undone_at=when[keep],
                               amount=lambda t: t["quantity"] * t["unit_price"],
                               bulk=lambda t: t["quantity"] >= 12)
    if lines.empty:
        raise ValueError("no sale line with a customer id: there are no orders to score")
    orders = lines.groupby("invoice", sort=False).agg(
        customer=("customer_id", "first"), country=("country", "first"), time=("invoice_date", "min"),
        lines=("stock_code", "size"), value=("amount", "sum"), mean_price=("unit_price", "mean"),
        bulk_share=("bulk", "mean"), cancelled=("undone", "any"),
        cancelled_at=("undone_at", "min")).reset_index()
    orders["country"] = orders["country"].astype(str)
    orders = orders.sort_values(["time", "invoice"], kind="stable").reset_index(drop=True)
    by_customer = orders.groupby("customer", sort=False)
    orders["order_number"] = by_customer.cumcount()
    orders["days_since_previous"] = by_customer["time"].diff().dt.total_seconds() / 86400
    return orders


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
    of *no* bad order (the pessimistic count), so tied scores never catch by luck (a
    constant score catches nothing; ROC-AUC, by contrast, counts ties as half). A random ranking catches about ``budget``; a perfect one catches
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


def bootstrap_by_group(metric, labels, scores: dict, groups, resamples: int = 200, seed: int = 0) -> pd.DataFrame:
    """``metric(labels, scores)`` for every method in ``scores`` on ``resamples`` resamples
    of whole groups (e.g. customers) drawn with replacement: ``[resamples, methods]``.

    Orders of one customer are not independent, so the customers, not the orders, are
    resampled (the cluster bootstrap). Every method is scored on the *same* resamples, so
    the difference of two columns is the paired bootstrap distribution of their
    difference. A resample whose labels are all one class is drawn again (so the draws
    are conditional on both classes being present).
    """
    labels, groups = np.asarray(labels), np.asarray(groups)
    scores = {name: np.asarray(s, dtype=float) for name, s in scores.items()}
    if any(s.shape != labels.shape for s in scores.values()) or groups.shape != labels.shape:
        raise ValueError("labels, groups and every method's scores must have the same length")
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 1:
        raise ValueError(f"resamples must be an integer >= 1, got {resamples!r}")
    if len(np.unique(labels)) < 2:
        raise ValueError("labels hold one class only: the metric is undefined")
    names, index = np.unique(groups, return_inverse=True)
    rows_of = [np.flatnonzero(index == g) for g in range(len(names))]
    rng = np.random.default_rng(seed)
    out = np.empty((resamples, len(scores)))
    done = 0
    while done < resamples:
        rows = np.concatenate([rows_of[g] for g in rng.integers(len(names), size=len(names))])
        if len(np.unique(labels[rows])) < 2:
            continue
        out[done] = [metric(labels[rows], s[rows]) for s in scores.values()]
        done += 1
    return pd.DataFrame(out, columns=list(scores))
