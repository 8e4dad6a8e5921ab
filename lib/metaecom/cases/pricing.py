"""Price response from a transaction log: weekly list prices, per-product tasks, slopes
shrunk towards the pooled slope, and the price each estimate recommends.

A shop that sets a product's price wants the *price response*: how its weekly demand
moves with its price. The log holds prices that varied, but not at random: quantity
discounts set the price of a line by its quantity, and prices change when the shop
expects demand to change. So every slope read from these data is a correlation, and the
chapter that uses this module shows how far the estimates move with the choice of what
"the price" is.

- :func:`weekly_prices`  -- per product and week: units and the *list price* in force at
  the week's start (the highest unit price of the weeks before: the price before
  quantity discounts, and not set by the week's own orders)
- :func:`price_tasks`    -- one task per product at a cutoff: support = its K weeks before
  the cutoff, query = the weeks after; ``x`` = log price relative to the last price
  before the cutoff (plus the product's own features), ``y`` = log(1 + units)
- :class:`SlopePooling`  -- empirical Bayes for per-product lines: each product's slope
  shrunk towards the pooled slope by how much slopes really differ
- :func:`best_price`     -- the price in a range that maximises expected gross profit
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from metaecom.checks import check_count, require_columns

WEEK = pd.Timedelta(days=7)


def weekly_prices(lines: pd.DataFrame, lookback: int = 4) -> pd.DataFrame:
    """Units and list price per product and week, from each product's first sale to the
    last week of ``lines``.

    ``lines``: sale lines with stock_code, quantity (> 0), unit_price (> 0) and
    invoice_date. Weeks start on Monday. Columns:

    - ``units``: units sold that week (0 without a sale); ``sold``: a sale that week;
    - ``week_high``: the highest unit price invoiced that week (NaN without a sale);
    - ``list_price``: the price *in force when the week starts*: the highest unit price
      invoiced in the ``lookback`` weeks before it, carried forward through longer gaps
      (NaN in a product's first week). The highest price is the price before quantity
      discounts; taking it from the weeks before keeps the week's own orders out of its
      price, so a forecast of a week's demand can use it.
    """
    require_columns(lines, ["stock_code", "quantity", "unit_price", "invoice_date"], "lines")
    lookback = check_count("lookback", lookback, 1)
    if lines.empty:
        raise ValueError("lines is empty")
    if (lines["quantity"] <= 0).any() or (lines["unit_price"] <= 0).any():
        raise ValueError("lines must be sales: quantity > 0 and unit_price > 0 (drop cancellations, returns and "
                         "free lines first)")
    week = lines["invoice_date"].dt.to_period("W-SUN").dt.start_time
    grouped = lines.groupby([lines["stock_code"].astype(str).rename("product"), week.rename("period")])
    table = grouped.agg(units=("quantity", "sum"), week_high=("unit_price", "max")).reset_index()
    last = table["period"].max()
    series = []
    for product, rows in table.groupby("product", sort=True):
        periods = pd.date_range(rows["period"].min(), last, freq="7D")
        full = rows.set_index("period").reindex(periods)
        before = full["week_high"].shift(1).rolling(lookback, min_periods=1).max().ffill()
        series.append(pd.DataFrame({"product": product, "period": periods,
                                    "units": full["units"].fillna(0.0).to_numpy(float),
                                    "sold": full["units"].notna().to_numpy(),
                                    "week_high": full["week_high"].to_numpy(float),
                                    "list_price": before.to_numpy(float)}))
    return pd.concat(series, ignore_index=True)


def price_tasks(prices: pd.DataFrame, products, cutoff, shots: int, horizon: int,
                features=None) -> list[tuple]:
    """One task per product: support = its ``shots`` weeks before ``cutoff``, query = the
    ``horizon`` weeks from it.

    Each week is one example with ``x = [log(list price / reference), *features]``, where
    the reference is the product's list price in its last week before the cutoff (so
    ``x[0] = 0`` means "today's price"), and ``y = log(1 + units)``. ``features``: one row
    per product (known before the cutoff), or None. Every product must have all
    ``shots + horizon`` weeks in ``prices``.
    """
    require_columns(prices, ["product", "period", "units", "list_price"], "prices")
    shots, horizon = check_count("shots", shots, 1), check_count("horizon", horizon, 1)
    cutoff = pd.Timestamp(cutoff)
    products = np.asarray(products, dtype=str)
    features = np.zeros((len(products), 0), np.float32) if features is None else np.asarray(features, np.float32)
    if features.ndim != 2 or len(features) != len(products):
        raise ValueError(f"features must be [products, d] with one row per product ({len(products)}), "
                         f"got shape {features.shape}")
    start, end = cutoff - shots * WEEK, cutoff + horizon * WEEK
    window = prices[(prices["period"] >= start) & (prices["period"] < end)]
    by_product = {p: g for p, g in window.groupby(window["product"].astype(str), sort=False)}
    tasks = []
    for product, row in zip(products, features):
        weeks = by_product.get(product)
        if weeks is not None and weeks["list_price"].isna().any():
            weeks = None  # its first week: no price was in force yet
        if weeks is None or len(weeks) != shots + horizon:
            have = 0 if weeks is None else len(weeks)
            raise ValueError(f"product {product!r} has {have} of the {shots + horizon} weeks from "
                             f"{start.date()} to {end.date()}: choose products observed over the whole window")
        weeks = weeks.sort_values("period")
        log_price = np.log(weeks["list_price"].to_numpy(float))
        relative = (log_price - log_price[shots - 1])[:, None]
        x = np.hstack([relative, np.broadcast_to(row, (len(weeks), len(row)))]).astype(np.float32)
        y = np.log1p(weeks["units"].to_numpy(np.float32))
        tasks.append((x[:shots], y[:shots], x[shots:], y[shots:]))
    return tasks


class SlopePooling:
    """Empirical Bayes for per-product lines ``y = a_u + b_u x``: the slopes ``b_u`` vary
    around ``slope_`` with variance ``between_var_``; a product's own least-squares slope
    is shrunk towards ``slope_`` by its precision.

    :meth:`fit` (on ``(x, y)`` pairs, the first column of ``x`` is the regressor):

    - ``slope_``: the pooled within-product slope (one slope, a level per product: the
      fixed-effects regression);
    - ``noise_var_``: the residual variance around each product's own line (its level,
      and its own slope where its regressor varies);
    - ``between_var_``: the variance of the true slopes, by the DerSimonian-Laird
      moment estimator of meta-analysis over the products whose regressor varies: the
      spread of their own slopes beyond what their sampling variances ``noise_var_ /
      Sxx_u`` explain, each weighted by its precision (floored at 0). The weighting
      matters here: a product whose price barely moved has a wild own slope and almost
      no weight.

    :meth:`adapt` returns ``(a, b)`` with ``b = (b_own Sxx / s^2 + slope / tau^2) /
    (Sxx / s^2 + 1 / tau^2)`` (the pooled slope when the support's price never moved)
    and ``a`` the support mean minus ``b`` times the mean regressor.
    """

    def __init__(self):
        self.slope_ = self.noise_var_ = self.between_var_ = None

    @staticmethod
    def _regressor(x, y) -> tuple[np.ndarray, np.ndarray]:
        """The regressor (the first column of ``x``) and ``y``, as checked 1-d arrays."""
        x, y = np.asarray(x, float), np.asarray(y, float)
        x = x[:, 0] if x.ndim == 2 else x
        if len(x) != len(y) or len(y) == 0:
            raise ValueError(f"need matching, non-empty x and y, got {len(x)} and {len(y)}")
        return x, y

    @classmethod
    def _centred(cls, x, y):
        x, y = cls._regressor(x, y)
        return x - x.mean(), y - y.mean()

    def fit(self, units) -> "SlopePooling":
        centred = [self._centred(x, y) for x, y in units]
        sxx = np.array([np.sum(cx * cx) for cx, _ in centred])
        sxy = np.array([np.sum(cx * cy) for cx, cy in centred])
        moved = sxx > 1e-12
        if moved.sum() < 2:
            raise ValueError(f"only {moved.sum()} units have a regressor that varies; slopes need at least 2")
        self.slope_ = float(sxy.sum() / sxx.sum())
        own_slopes = np.where(moved, sxy / np.where(moved, sxx, 1.0), 0.0)
        residual = sum(np.sum((cy - b * cx) ** 2) for (cx, cy), b in zip(centred, own_slopes))
        dof = sum(len(cy) - 1 - int(m) for (_, cy), m in zip(centred, moved))
        if dof <= 0:
            raise ValueError("too few rows to estimate the noise variance")
        self.noise_var_ = float(residual / dof)
        own, weight = sxy[moved] / sxx[moved], sxx[moved] / self.noise_var_  # weight: 1 / sampling variance
        spread = float(np.sum(weight * (own - self.slope_) ** 2))  # Cochran's Q
        scale = float(weight.sum() - np.sum(weight ** 2) / weight.sum())
        self.between_var_ = max((spread - (len(own) - 1)) / scale, 0.0)
        return self

    def adapt(self, x, y) -> tuple[float, float]:
        if self.slope_ is None:
            raise RuntimeError("SlopePooling: call fit(units) first")
        x0, y = self._regressor(x, y)
        cx, cy = x0 - x0.mean(), y - y.mean()
        sxx = float(np.sum(cx * cx))
        if sxx <= 1e-12 or self.between_var_ == 0:
            b = self.slope_
        else:
            own_precision = sxx / self.noise_var_
            b = ((np.sum(cx * cy) / sxx) * own_precision + self.slope_ / self.between_var_) / (
                own_precision + 1 / self.between_var_)
        return float(np.mean(y) - b * x0.mean()), float(b)


def best_price(demand, low, high, unit_cost, points: int = 41) -> np.ndarray:
    """For each product, the price in ``[low, high]`` that maximises ``(price - unit_cost)
    * demand(prices)``, searched on a grid of ``points`` prices spaced evenly in log.

    ``low``, ``high``, ``unit_cost``: one value per product (``low <= high``);
    ``demand(prices)`` takes ``[products, points]`` prices and returns expected units of
    the same shape. A recommendation outside the prices the product was sold at would
    rest on no data at all, hence the range.
    """
    low, high = np.atleast_1d(np.asarray(low, float)), np.atleast_1d(np.asarray(high, float))
    unit_cost = np.broadcast_to(np.asarray(unit_cost, float), low.shape)
    points = check_count("points", points, 2)
    if low.shape != high.shape or (low <= 0).any() or (low > high).any():
        raise ValueError("low and high must be positive, one per product, with low <= high")
    grid = np.exp(np.linspace(np.log(low), np.log(high), points, axis=1))  # [products, points]
    units = np.asarray(demand(grid), float)
    if units.shape != grid.shape:
        raise ValueError(f"demand returned shape {units.shape} for prices of shape {grid.shape}")
    profit = (grid - unit_cost[:, None]) * units
    return grid[np.arange(len(grid)), np.argmax(profit, axis=1)]
