"""Forecasting tasks: sliding windows per product, and an old/new split of products by launch date."""

from __future__ import annotations

import numpy as np
import pandas as pd

from numpy.lib.stride_tricks import sliding_window_view

from metaecom.checks import check_count, check_fraction, latest, plain, require_columns


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


def forecast_windows(series: pd.DataFrame, history: int, horizon: int,
                     min_length: int | None = None) -> dict[object, tuple[np.ndarray, np.ndarray]]:
    """Cut each product's series into (past ``history`` values -> next ``horizon`` values) pairs.

    Each product is one forecasting task; its windows are its examples. ``series`` has one
    row per product and period (the caller fills missing periods with zeros). Windows
    slide by one period and come in time order. Returns ``{product: (X, Y)}`` with ``X``
    of shape ``[n_windows, history]`` and ``Y`` of shape ``[n_windows, horizon]``, products
    in sorted order. A product shorter than ``history + horizon`` periods is an error
    unless it is also shorter than ``min_length``, in which case it is left out.
    """
    _check_series(series)
    history = check_count("history", history, 1)
    horizon = check_count("horizon", horizon, 1)
    window = history + horizon

    periods = series["period"].to_numpy()
    values = series["value"].to_numpy(dtype=float)
    windows = {}
    rows_by_product = series.groupby("product", sort=True).indices
    for product in sorted(rows_by_product):
        rows = rows_by_product[product]
        ordered = values[rows[np.argsort(periods[rows], kind="stable")]]
        if min_length is not None and len(ordered) < min_length:
            continue
        if len(ordered) < window:
            raise ValueError(f"product {plain(product)!r} has {len(ordered)} periods, fewer than "
                             f"history + horizon = {window} (pass min_length={window} to skip such products)")
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
