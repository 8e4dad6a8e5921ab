"""New products as few-shot forecasting tasks: launch curves, a split in time, and tasks.

A product's *launch* is its first week with a sale. A product first seen at the start of
the data may have been on sale long before (the file is *left-censored*), so launches are
only counted from ``launched_from`` on. Each launched product is one task: its first
``shots`` weeks are the support set (what the shop has seen when it must order), the next
``horizon`` weeks the query set (the demand the order has to cover).

- :func:`launch_weeks`     -- each product's first week with a sale
- :func:`launch_curves`    -- units sold in each product's first weeks, one row per product
- :func:`split_at`         -- products launched (and fully observed) before a cutoff, and
  products launched after it: meta-train on the past, meta-test on the future
- :func:`launch_tasks`     -- ``(support_x, support_y, query_x, query_y)`` per product, with
  the week since launch and the product's own features as inputs and ``log(1 + units)`` as
  the value to forecast
- :func:`neighbour_curves` -- the mean launch curve of the most similar earlier products
  (the forecast for a product with no sales yet)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from metaecom.checks import check_count, require_columns

WEEK = pd.Timedelta(days=7)


def launch_weeks(weekly: pd.DataFrame) -> pd.Series:
    """``{product: first week with a sale}`` from :func:`metaecom.data.weekly_sales`'s table."""
    require_columns(weekly, ["product", "period", "value"], "weekly")
    sold = weekly[weekly["value"] > 0]
    if sold.empty:
        raise ValueError("weekly has no week with a sale")
    return sold.groupby("product", sort=True)["period"].min()


def launch_curves(weekly: pd.DataFrame, weeks: int, launched_from, observed_until) -> pd.DataFrame:
    """Units sold in each product's first ``weeks`` weeks: ``[products, weeks]``, week 0 = launch.

    Kept: products launched on or after ``launched_from`` (earlier first sales may be
    older products: the left-censoring rule) whose ``weeks`` weeks all start before
    ``observed_until`` (pass the start of the last *complete* week of the data, so that a
    partial week is never read as a week of low sales). Weeks without a sale count 0.
    """
    weeks = check_count("weeks", weeks, 1)
    launched_from, observed_until = pd.Timestamp(launched_from), pd.Timestamp(observed_until)
    launch = launch_weeks(weekly)
    keep = launch[(launch >= launched_from) & (launch + (weeks - 1) * WEEK < observed_until)]
    if keep.empty:
        raise ValueError(f"no product launched from {launched_from.date()} has {weeks} weeks observed before "
                         f"{observed_until.date()}; the data's launches run from {launch.min().date()} to "
                         f"{launch.max().date()}")
    rows = weekly[weekly["product"].isin(keep.index)]
    since = ((rows["period"] - rows["product"].map(keep)) // WEEK).astype(int)
    rows = rows[(since >= 0) & (since < weeks)].assign(week=since)
    curves = rows.pivot_table(index="product", columns="week", values="value", aggfunc="sum", fill_value=0.0)
    curves = curves.reindex(index=keep.index, columns=range(weeks), fill_value=0.0).astype(float)
    curves.columns.name = "weeks since launch"
    return curves


def split_at(launch: pd.Series, cutoff, weeks: int, until=None) -> tuple[np.ndarray, np.ndarray]:
    """``(before, after)``: the products whose first ``weeks`` weeks all ended before
    ``cutoff``, and the products launched on or after it (and before ``until``, if given).

    A model meta-trained on ``before`` has seen no sale made on or after ``cutoff``, and
    every ``after`` product is new to it: the split a shop has when it meta-trains on the
    past and forecasts next season's launches. Products launched before the cutoff but
    still inside their first ``weeks`` at it are in neither array. ``until`` keeps the
    test windows of several cutoffs apart, so that replications do not share launches.
    The cutoff must fall on the weekday the weeks start on (launches are week starts):
    a cutoff inside a week would leave that week's launches in neither array.
    """
    weeks = check_count("weeks", weeks, 1)
    cutoff = pd.Timestamp(cutoff)
    starts = set(launch.dt.day_of_week.unique())
    if starts and cutoff.day_of_week not in starts:
        raise ValueError(f"cutoff {cutoff.date()} is a {cutoff.day_name()}, but the weeks start on "
                         f"{', '.join(pd.Timestamp(2024, 1, 1 + d).day_name() for d in sorted(starts))}: "
                         "products launched in the week around it would be in neither set")
    before = launch.index[launch + weeks * WEEK <= cutoff].to_numpy()
    after_mask = launch >= cutoff
    if until is not None:
        after_mask &= launch < pd.Timestamp(until)
    after = launch.index[after_mask].to_numpy()
    if len(before) == 0 or len(after) == 0:
        side = "before" if len(before) == 0 else "on or after"
        raise ValueError(f"no launch {side} the cutoff {cutoff.date()} (with {weeks} weeks observed); "
                         f"launches run from {launch.min().date()} to {launch.max().date()}")
    return np.sort(before), np.sort(after)


def launch_tasks(curves: pd.DataFrame, features: np.ndarray, shots: int, horizon: int) -> list[tuple]:
    """One task per product (row of ``curves``): support = its first ``shots`` weeks,
    query = the ``horizon`` weeks after them.

    Each week is one example: ``x = [week since launch / horizon, *features[product]]``
    (``features`` has one row per row of ``curves``, e.g. a product's description
    embedding and price, known before launch), ``y = log(1 + units)``. ``shots = 0`` gives
    an empty support set: the forecast must come from the features alone.
    """
    shots = check_count("shots", shots, 0)
    horizon = check_count("horizon", horizon, 1)
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2 or len(features) != len(curves):
        raise ValueError(f"features must be [products, d] with one row per row of curves ({len(curves)}), "
                         f"got shape {features.shape}")
    if shots + horizon > curves.shape[1]:
        raise ValueError(f"shots + horizon = {shots + horizon} weeks, but curves hold {curves.shape[1]} weeks "
                         "per product: build them with more weeks or ask for fewer")
    values = np.log1p(curves.to_numpy(dtype=np.float32)[:, : shots + horizon])
    if (values < 0).any() or not np.isfinite(values).all():
        raise ValueError("curves must hold finite, non-negative units")
    week = (np.arange(shots + horizon, dtype=np.float32) / horizon)[:, None]
    tasks = []
    for row, y in zip(features, values):
        x = np.hstack([week, np.broadcast_to(row, (len(week), len(row)))])
        tasks.append((x[:shots], y[:shots], x[shots:], y[shots:]))
    return tasks


def neighbour_curves(new_embeddings, old_embeddings, old_curves, k: int, exclude_self: bool = False) -> np.ndarray:
    """For each new product, the mean curve of the ``k`` earlier products most like it.

    Likeness is the cosine similarity of the embeddings (e.g. of the product
    descriptions), so a product with no sales yet still gets a launch curve: "products
    like this one sold this way". ``old_curves`` is ``[old products, weeks]`` (any scale;
    the book passes ``log(1 + units)``). ``exclude_self=True`` is for scoring the old
    products themselves: each leaves itself out (``new`` and ``old`` are then the same).
    """
    k = check_count("k", k, 1)
    new, old = np.asarray(new_embeddings, dtype=float), np.asarray(old_embeddings, dtype=float)
    curves = np.asarray(old_curves, dtype=float)
    if new.ndim != 2 or old.ndim != 2 or new.shape[1] != old.shape[1]:
        raise ValueError(f"embeddings must be [products, d] with the same d, got {new.shape} and {old.shape}")
    if len(curves) != len(old):
        raise ValueError(f"old_curves has {len(curves)} rows for {len(old)} old products")
    if exclude_self and len(new) != len(old):
        raise ValueError("exclude_self needs the same products on both sides")
    if k > len(old) - int(exclude_self):
        raise ValueError(f"k = {k} neighbours, but only {len(old) - int(exclude_self)} earlier products")
    unit = lambda a: a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)  # noqa: E731
    similarity = unit(new) @ unit(old).T
    if exclude_self:
        np.fill_diagonal(similarity, -np.inf)
    nearest = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    return curves[nearest].mean(axis=1)
