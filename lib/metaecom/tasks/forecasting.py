"""Forecasting tasks: sliding windows per product, and an old/new split of products by launch date."""

from __future__ import annotations

import numpy as np
import pandas as pd

from numpy.lib.stride_tricks import sliding_window_view

from metaecom.checks import check_count, check_fraction, latest, plain, require_columns
from metaecom.tasks.feasibility import TaskDict, checked_by, refuse_infeasible, unit_report


def _check_series(series: pd.DataFrame) -> None:
    """Check that ``series`` has product/period/value columns and one row per product and period."""
    require_columns(series, ["product", "period", "value"], "series")
    if len(series) == 0:
        raise ValueError("series is empty")
    repeated = series.duplicated(["product", "period"])
    if repeated.any():
        first = series.loc[repeated, ["product", "period"]].iloc[0]
        raise ValueError(f"series has more than one row for product {plain(first['product'])!r} "
                         f"and period {first['period']}; expected one row per product and period")


def _short_products(series: pd.DataFrame, history, horizon, min_length) -> tuple[int, int, pd.DataFrame, np.ndarray]:
    """Check the arguments; returns ``(history, horizon, report, by_filter)``.

    The report lists, in product order, the products shorter than ``min_length`` (the
    caller's own filter; ``by_filter`` marks them) and the other products shorter than
    ``history + horizon``, which cannot give a single window.
    """
    _check_series(series)
    history = check_count("history", history, 1)
    horizon = check_count("horizon", horizon, 1)
    window, rows = history + horizon, []
    for product, n in series.groupby("product", sort=True).size().items():   # one row per period
        if min_length is not None and n < min_length:
            rows.append((plain(product), n, min_length, True,
                         f"product {plain(product)!r} has {n} periods, fewer than min_length = {min_length}"))
        elif n < window:
            rows.append((plain(product), n, window, False, f"product {plain(product)!r} has {n} periods, fewer "
                         f"than history + horizon = {window} ({history} history + {horizon} horizon)"))
    units, available, needed, by_filter, reasons = zip(*rows) if rows else ((),) * 5
    return history, horizon, unit_report(units, available, needed, reasons), np.array(by_filter, dtype=bool)


def _infeasible_products(series: pd.DataFrame, history: int, horizon: int, min_length: int | None = None,
                         drop_infeasible: bool = False) -> pd.DataFrame:
    """The products :func:`forecast_windows` leaves out or rejects, as the feasibility report
    (``unit`` is the product); takes its arguments and builds nothing."""
    return _short_products(series, history, horizon, min_length)[2]


@checked_by(_infeasible_products)
def forecast_windows(series: pd.DataFrame, history: int, horizon: int, min_length: int | None = None,
                     drop_infeasible: bool = False) -> dict[object, tuple[np.ndarray, np.ndarray]]:
    """Cut each product's series into (past ``history`` values -> next ``horizon`` values) pairs.

    Each product is one forecasting task; its windows are its examples. ``series`` has one
    row per product and period (the caller fills missing periods with zeros). Windows
    slide by one period and come in time order. Returns ``{product: (X, Y)}`` with ``X``
    of shape ``[n_windows, history]`` and ``Y`` of shape ``[n_windows, horizon]``, products
    in sorted order.

    A product shorter than ``min_length`` is left out (the caller's filter). Any other
    product shorter than ``history + horizon`` has no window: all products are checked
    first, and by default such products are one error listing them; with
    ``drop_infeasible=True`` they are left out. The returned dict's ``.dropped`` holds the
    feasibility report of every product left out, for either reason.
    """
    history, horizon, dropped, by_filter = _short_products(series, history, horizon, min_length)
    window = history + horizon
    rows_by_product = series.groupby("product", sort=True).indices
    if not drop_infeasible:
        refuse_infeasible(dropped[~by_filter], f"{(~by_filter).sum()} of {len(rows_by_product)} products are "
                          f"shorter than history + horizon = {window} periods", "forecast_windows")
    shortest = max(window, min_length or 0)

    periods = series["period"].to_numpy()
    values = series["value"].to_numpy(dtype=float)
    windows = TaskDict(dropped=dropped)
    for product in sorted(rows_by_product):
        rows = rows_by_product[product]
        if len(rows) < shortest:
            continue                                    # listed in `dropped`
        ordered = values[rows[np.argsort(periods[rows], kind="stable")]]
        pairs = sliding_window_view(ordered, window)    # [n_windows, history + horizon], a view
        windows[plain(product)] = (pairs[:, :history].copy(), pairs[:, history:].copy())
    return windows


def split_products_by_launch(series: pd.DataFrame, test_fraction: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Split products into old (meta-train) and newly launched (meta-test); returns ``(old, new)``.

    A product's launch is its first period with a value above zero. The products launched
    last, ``test_fraction`` of them, are new, which mimics forecasting for products that
    arrive after the model was trained. Ties are broken by product key, so the split is
    deterministic. Products that never sell have no launch and are in neither array.
    """
    _check_series(series)
    test_fraction = check_fraction("test_fraction", test_fraction)
    sold = series[series["value"] > 0]
    launch = sold.groupby("product", sort=True)["period"].min()
    new = latest(launch, test_fraction, "products that sell")
    old = np.sort(launch.index.to_numpy()[~launch.index.isin(new)])
    return old, new
