"""The newsvendor rule and the quantile loss: the order at the critical ratio minimises
the expected cost, and the pinball loss is that cost in disguise."""

from __future__ import annotations

import numpy as np
import pytest

from metaecom.cases.stock import critical_ratio, newsvendor_cost, pinball_loss


def test_the_critical_ratio_quantile_minimises_the_expected_cost():
    rng = np.random.default_rng(0)
    demand = rng.poisson(20, size=20_000).astype(float)
    underage, overage = 3.0, 1.0
    level = critical_ratio(underage, overage)
    assert level == pytest.approx(0.75)
    orders = np.arange(10, 31)
    mean_cost = [newsvendor_cost(np.full_like(demand, q), demand, underage, overage).mean() for q in orders]
    best = orders[int(np.argmin(mean_cost))]
    assert abs(best - np.quantile(demand, level)) <= 1  # the 75% quantile of Poisson(20) is 23


def test_pinball_loss_is_the_newsvendor_cost_with_costs_q_and_1_minus_q():
    rng = np.random.default_rng(1)
    demand, forecast = rng.gamma(2.0, 5.0, 500), rng.gamma(2.0, 5.0, 500)
    for q in (0.1, 0.5, 0.9):
        assert pinball_loss(demand, forecast, q) == pytest.approx(
            newsvendor_cost(forecast, demand, q, 1 - q).mean())
    # at the median it is half the mean absolute error
    assert pinball_loss(demand, forecast, 0.5) == pytest.approx(0.5 * np.abs(demand - forecast).mean())
    assert pinball_loss([10.0], [7.0], 0.9) == pytest.approx(0.9 * 3)  # short by 3
    assert pinball_loss([10.0], [13.0], 0.9) == pytest.approx(0.1 * 3)  # over by 3


def test_bad_input_is_refused_before_anything_is_computed():
    with pytest.raises(ValueError, match="same shape"):
        pinball_loss([1.0, 2.0], [1.0], 0.5)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        pinball_loss([1.0], [1.0], 1.0)
    with pytest.raises(ValueError, match="non-finite"):
        newsvendor_cost([1.0, np.nan], [1.0, 2.0], 1.0, 1.0)
    with pytest.raises(ValueError, match="negative"):
        newsvendor_cost([-1.0], [1.0], 1.0, 1.0)
    with pytest.raises(ValueError, match="empty"):
        pinball_loss([], [], 0.5)
    with pytest.raises(ValueError):
        critical_ratio(0.0, 1.0)


def test_calibrated_quantile_covers_the_stated_share_of_new_units():
    from metaecom.cases.stock import calibrated_quantile
    rng = np.random.default_rng(2)
    level = rng.gamma(2.0, 20.0, 4000)                 # each unit's expected demand
    demand = rng.poisson(level * rng.lognormal(0, 0.5, 4000)).astype(float)
    forecast = level * 0.7                             # a biased point forecast
    past, new = slice(0, 2000), slice(2000, None)
    for q in (0.2, 0.5, 0.8):
        order = calibrated_quantile(forecast[new], forecast[past], demand[past], q)
        assert abs(np.mean(demand[new] <= order) - q) < 0.03
    # a higher quantile orders more, for every unit
    low = calibrated_quantile(forecast[new], forecast[past], demand[past], 0.2)
    high = calibrated_quantile(forecast[new], forecast[past], demand[past], 0.8)
    assert (high >= low).all() and (high > low).mean() > 0.9
    with pytest.raises(ValueError, match="non-negative"):
        calibrated_quantile([1.0], [-1.0], [2.0], 0.5)
    with pytest.raises(ValueError, match="same shape"):
        calibrated_quantile([1.0], [1.0, 2.0], [2.0], 0.5)


def test_calibrated_quantile_lower_end_and_ranks():
    from metaecom.cases.stock import calibrated_quantile
    past_forecast = np.zeros(9)
    past_demand = np.expm1(np.arange(1.0, 10.0))   # log errors 1, 2, ..., 9
    # n = 9: (n + 1) q = 2 at q = 0.2 -> the 2nd error for both ends; at q = 0.25, 2.5 ->
    # ceil 3 (upper), floor 2 (lower)
    assert calibrated_quantile([0.0], past_forecast, past_demand, 0.25)[0] == pytest.approx(np.expm1(3.0))
    assert calibrated_quantile([0.0], past_forecast, past_demand, 0.25, lower=True)[0] == pytest.approx(np.expm1(2.0))
    # beyond the errors: the largest / smallest one
    assert calibrated_quantile([0.0], past_forecast, past_demand, 0.95)[0] == pytest.approx(np.expm1(9.0))
    assert calibrated_quantile([0.0], past_forecast, past_demand, 0.05, lower=True)[0] == pytest.approx(np.expm1(1.0))
