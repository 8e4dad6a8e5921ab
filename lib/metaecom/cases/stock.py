"""Stocking a product from a demand forecast: quantile loss and the newsvendor rule.

A forecast is only worth what the decision made from it is worth. For a product that
is ordered once per period and cannot be restocked in between, each unit short costs
``underage`` (the margin lost) and each unit left over costs ``overage`` (what it costs
to hold or write off). The order that minimises the expected cost is the
``underage / (underage + overage)`` quantile of the demand forecast -- the *critical
ratio* of the newsvendor problem -- so a forecaster for stock decisions should be judged
by its quantile (pinball) loss at that level, and in the end by the cost of its orders.

- :func:`critical_ratio`   -- the quantile level the costs call for
- :func:`pinball_loss`     -- the loss whose minimiser is that quantile
- :func:`newsvendor_cost`  -- the money an order costs once demand is known
- :func:`calibrated_quantile` -- any point forecaster's quantile, from its errors on
  past units (split conformal, on the log scale)
"""

from __future__ import annotations

import numpy as np

from metaecom.checks import check_positive


def _arrays(first, second, names: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"{names[0]} and {names[1]} must have the same shape, got {a.shape} and {b.shape}")
    if a.size == 0:
        raise ValueError(f"{names[0]} is empty")
    for name, values in zip(names, (a, b)):
        if not np.isfinite(values).all():
            raise ValueError(f"{name} holds {int((~np.isfinite(values)).sum())} non-finite values")
    return a, b


def critical_ratio(underage: float, overage: float) -> float:
    """The demand quantile to order: ``underage / (underage + overage)``.

    ``underage`` is the cost of each unit of demand not met, ``overage`` the cost of each
    unit ordered and not sold; both must be positive. Equal costs call for the median.
    """
    underage, overage = check_positive("underage", underage), check_positive("overage", overage)
    return underage / (underage + overage)


def pinball_loss(demand, forecast, quantile: float) -> float:
    """Mean quantile (pinball) loss of ``forecast`` as the ``quantile`` of ``demand``.

    Each unit the forecast falls short costs ``quantile``, each unit it overshoots
    ``1 - quantile``; at 0.5 this is half the mean absolute error. It is the newsvendor
    cost of ordering ``forecast`` with ``underage = quantile`` and ``overage = 1 -
    quantile``, which is why the best forecast at that level is the demand's quantile.
    """
    demand, forecast = _arrays(demand, forecast, ("demand", "forecast"))
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be strictly between 0 and 1, got {quantile}")
    short = demand - forecast
    return float(np.mean(np.maximum(quantile * short, (quantile - 1) * short)))


def newsvendor_cost(order, demand, underage: float, overage: float) -> np.ndarray:
    """The cost of each order once its demand is known: ``underage`` per unit short plus
    ``overage`` per unit left over (same shape as ``order``). Orders must not be negative."""
    order, demand = _arrays(order, demand, ("order", "demand"))
    underage, overage = check_positive("underage", underage), check_positive("overage", overage)
    if (order < 0).any():
        raise ValueError(f"order holds {int((order < 0).sum())} negative quantities")
    return underage * np.maximum(demand - order, 0) + overage * np.maximum(order - demand, 0)


def calibrated_quantile(forecast, past_forecast, past_demand, quantile: float, lower: bool = False) -> np.ndarray:
    """The ``quantile`` of demand from a point ``forecast``: the forecast moved by that
    quantile of the log errors the same forecaster made on past units.

    With ``e = log(1 + past_demand) - log(1 + past_forecast)`` (one error per past unit,
    e.g. validation products) sorted, the result is ``(1 + forecast) * exp(e_(r)) - 1``,
    floored at 0. For an upper bound (the default) ``r = ceil((n + 1) q)``: if new units
    are exchangeable with the ``n`` past ones, demand falls at or below it with probability
    at least ``q`` (split conformal prediction, Vovk et al. 2005). For the lower end of an
    interval, ``lower=True`` takes ``r = floor((n + 1) q)``: demand falls at or above it
    with probability at least ``1 - q``. When ``(n + 1) q`` runs past the ``n`` errors
    (too few past units for the level) the largest error is used for an upper bound and
    the smallest for a lower one, and the guarantee no longer holds. The rule turns any
    point forecaster into one that can stock at a critical ratio, so that methods are
    compared on their orders with the same calibration.
    """
    forecast = np.asarray(forecast, dtype=float)
    past_forecast, past_demand = _arrays(past_forecast, past_demand, ("past_forecast", "past_demand"))
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be strictly between 0 and 1, got {quantile}")
    for name, values in (("forecast", forecast), ("past_forecast", past_forecast), ("past_demand", past_demand)):
        if not np.isfinite(values).all() or (values < 0).any():
            raise ValueError(f"{name} must hold finite, non-negative quantities")
    errors = np.sort(np.log1p(past_demand) - np.log1p(past_forecast))
    n = len(errors)
    rank = np.floor((n + 1) * quantile) if lower else np.ceil((n + 1) * quantile)
    rank = int(min(max(rank, 1), n))  # 1-based rank of the conformal quantile, kept in range
    return np.maximum(np.expm1(np.log1p(forecast) + errors[rank - 1]), 0.0)
