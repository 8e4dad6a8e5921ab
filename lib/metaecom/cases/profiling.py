"""Profiling a new customer from their first few orders.

After a new customer's first K orders, marketing wants to know what kind of customer
this is -- here, how large their orders will be -- to decide who gets an account manager
or a credit line. Each customer is a few-shot task: the first K orders are the support
set, the later orders the query set. The pieces a chapter or a user's own order log
reuses:

- :func:`first_orders_split` -- one customer's task: the first K orders as support, the
  orders within a horizon after the K-th as query;
- :func:`order_features` -- what is known about an order *when it is placed*, without
  its content (when it comes, how long after the customer's first and previous orders,
  the how-many-th it is, the market): a model of the order's value may use these;
- :func:`next_order_features` -- the same features for a hypothetical next order, so a
  customer can be scored before that order exists (built by the same code path);
- :func:`future_spend` -- a customer's spend in a window after a moment, refusing
  windows the data does not cover (a short window would read as low spend);
- :func:`value_at_budget` -- the share of a cohort's value held by the customers a
  list of the given size picks, ties counted against the ranking.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FEATURES = ["log days since first order", "log days since previous", "log order number",
            "month (sine)", "month (cosine)", "weekday", "hour", "home market"]


def first_orders_split(times, k: int, horizon_days: float, most: int | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """One customer's few-shot task from the times of their orders (in time order):
    positions of the support orders (the first ``k``) and of the query orders (those
    after the k-th within ``horizon_days`` of it, at most ``most`` of them; possibly
    none: a customer who has not ordered again has no query)."""
    times = pd.to_datetime(pd.Series(np.asarray(times))).to_numpy()
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    if k > len(times):
        raise ValueError(f"the customer has {len(times)} orders, fewer than k = {k}")
    if horizon_days <= 0:
        raise ValueError(f"horizon_days must be > 0, got {horizon_days}")
    if np.isnat(times).any() or (np.diff(times) < np.timedelta64(0)).any():
        raise ValueError("order times must be known and in time order")
    end = times[k - 1] + np.timedelta64(int(round(horizon_days * 86400)), "s")
    later = np.arange(k, len(times))[times[k:] <= end][:most]
    return np.arange(k), later


def _check_orders(orders: pd.DataFrame) -> None:
    missing = [c for c in ("customer", "time", "country") if c not in orders.columns]
    if missing:
        raise ValueError(f"orders lacks column(s) {missing}; it needs customer, time and country")
    if orders["time"].isna().any():
        raise ValueError(f"{int(orders['time'].isna().sum())} orders have no time")


def order_features(orders: pd.DataFrame, home: str = "United Kingdom") -> np.ndarray:
    """``[orders, 8]`` float32 features of each order, in :data:`FEATURES` order, from its
    time, the customer's earlier orders *in this table* and its country -- never from
    what the order contains, so they may be used to predict its value.

    ``orders``: columns customer, time, country (as :func:`metaecom.cases.risk.order_table`
    gives them), any row order. A customer's first order gets 0 for the days since first,
    days since previous and order number features.
    """
    _check_orders(orders)
    time = pd.to_datetime(orders["time"])
    by_customer = time.groupby(orders["customer"].to_numpy())
    first = by_customer.transform("min")
    rank = time.groupby(orders["customer"].to_numpy()).rank(method="first") - 1
    ordered = orders.assign(_time=time).sort_values(["customer", "_time"], kind="stable")
    previous = ordered.groupby("customer")["_time"].shift().reindex(orders.index)
    days = lambda delta: delta.dt.total_seconds().to_numpy() / 86400  # noqa: E731
    since_previous = np.nan_to_num(days(time - previous), nan=0.0)
    month = time.dt.month.to_numpy() - 1
    return np.column_stack([
        np.log1p(days(time - first)), np.log1p(since_previous), np.log1p(rank.to_numpy()),
        np.sin(2 * np.pi * month / 12), np.cos(2 * np.pi * month / 12),
        time.dt.day_of_week.to_numpy() / 6, time.dt.hour.to_numpy() / 24,
        (orders["country"].astype(str) == home).to_numpy(),
    ]).astype(np.float32)


def next_order_features(orders_so_far: pd.DataFrame, gap_days: float = 30.0,
                        home: str = "United Kingdom") -> np.ndarray:
    """Features ``[1, 8]`` of a hypothetical next order of one customer, placed
    ``gap_days`` after their last order in ``orders_so_far``, at the same hour and in the
    same country as that last order: a customer's score before the order exists."""
    _check_orders(orders_so_far)
    if orders_so_far.empty:
        raise ValueError("orders_so_far is empty: there is no customer to score")
    if orders_so_far["customer"].nunique() != 1:
        raise ValueError("orders_so_far must hold the orders of one customer")
    if gap_days <= 0:
        raise ValueError(f"gap_days must be > 0, got {gap_days}")
    last = orders_so_far.loc[pd.to_datetime(orders_so_far["time"]).idxmax()]
    nominal = pd.DataFrame({"customer": [last["customer"]], "country": [last["country"]],
                            "time": [pd.Timestamp(last["time"]) + pd.Timedelta(days=gap_days)]})
    frame = pd.concat([orders_so_far[["customer", "time", "country"]], nominal], ignore_index=True)
    return order_features(frame, home)[-1:]


def future_spend(orders: pd.DataFrame, start: pd.Series, horizon_days: float, data_end,
                 value: str = "value") -> pd.Series:
    """Each customer's spend (sum of ``value``) in the window (``start``, ``start`` +
    ``horizon_days``]; ``start`` is a Series of times indexed by customer. Customers
    without an order in the window spend 0.

    A window ending after ``data_end`` (the last moment the data covers) would count a
    shorter window as low spend, so it is an error naming those customers.
    """
    start = pd.to_datetime(start)
    if horizon_days <= 0:
        raise ValueError(f"horizon_days must be > 0, got {horizon_days}")
    end = start + pd.Timedelta(days=horizon_days)
    late = end.index[end > pd.Timestamp(data_end)]
    if len(late):
        raise ValueError(f"{len(late)} customer(s) have a window ending after the data ({data_end}), e.g. "
                         f"{', '.join(map(str, late[:5]))}")
    rows = orders[orders["customer"].isin(start.index)]
    t0 = rows["customer"].map(start)
    inside = (rows["time"] > t0) & (rows["time"] <= t0 + pd.Timedelta(days=horizon_days))
    spent = rows.loc[inside].groupby("customer")[value].sum()
    return spent.reindex(start.index, fill_value=0.0).astype(float)


def value_at_budget(scores, values, budget: float) -> float:
    """The share of the total of ``values`` held by the ``ceil(budget * n)`` customers
    with the highest ``scores``. Ties at the cut are broken against the ranking (the
    lower values first), so a constant score earns the lowest values; a random ranking
    holds about ``budget``. Returns nan when every value is 0."""
    scores, values = np.asarray(scores, dtype=float), np.asarray(values, dtype=float)
    if scores.ndim != 1 or scores.shape != values.shape or len(scores) == 0:
        raise ValueError(f"scores and values must be 1-D, non-empty and of one length, got {scores.shape} "
                         f"and {values.shape}")
    if not (np.isfinite(scores).all() and np.isfinite(values).all()):
        raise ValueError("scores and values must be finite")
    if (values < 0).any():
        raise ValueError("values must be >= 0")
    if not 0 < budget <= 1:
        raise ValueError(f"budget must be in (0, 1], got {budget}")
    if values.sum() == 0:
        return float("nan")
    chosen = np.lexsort((values, -scores))[: int(np.ceil(budget * len(scores)))]
    return float(values[chosen].sum() / values.sum())
