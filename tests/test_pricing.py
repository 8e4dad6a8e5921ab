"""Price response: weekly list prices, per-product tasks, slopes shrunk towards the pooled
slope, and the price a fitted line recommends."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from metaecom.cases.pricing import SlopePooling, best_price, price_tasks, weekly_prices


def _lines() -> pd.DataFrame:
    return pd.DataFrame({
        "stock_code": ["a", "a", "a", "b"],
        "quantity": [1, 100, 5, 3],
        "unit_price": [2.0, 1.5, 2.5, 1.0],
        "invoice_date": pd.to_datetime(["2011-01-03", "2011-01-04", "2011-01-19", "2011-01-05"]),
    })


def test_list_price_is_the_highest_price_of_the_weeks_before_not_of_the_week_itself():
    prices = weekly_prices(_lines())
    a = prices[prices["product"] == "a"]
    assert a["period"].dt.strftime("%d").tolist() == ["03", "10", "17"]
    assert a["units"].tolist() == [101.0, 0.0, 5.0]
    assert a["week_high"].tolist()[::2] == [2.0, 2.5] and np.isnan(a["week_high"].iloc[1])
    # in force at the start of each week: none yet, then 2.0 (not the discounted 1.5), carried
    assert np.isnan(a["list_price"].iloc[0]) and a["list_price"].tolist()[1:] == [2.0, 2.0]
    assert a["sold"].tolist() == [True, False, True]
    later = weekly_prices(_lines(), lookback=1)
    assert later.loc[later["product"] == "a", "list_price"].tolist()[1:] == [2.0, 2.0]
    with pytest.raises(ValueError, match="must be sales"):
        weekly_prices(_lines().assign(quantity=[1, -1, 5, 3]))


def test_price_tasks_take_k_weeks_before_the_cutoff_and_price_relative_to_the_last_one():
    lines = pd.concat([_lines(), pd.DataFrame({
        "stock_code": ["a"], "quantity": [2], "unit_price": [3.0],
        "invoice_date": pd.to_datetime(["2011-01-25"])})], ignore_index=True)
    prices = weekly_prices(lines)  # a: weeks of 3, 10, 17 and 24 Jan
    (sx, sy, qx, qy), = price_tasks(prices, ["a"], "2011-01-24", shots=2, horizon=1)
    np.testing.assert_allclose(sx[:, 0], [0.0, 0.0])  # 2.0 in force in both support weeks
    np.testing.assert_allclose(qx[:, 0], [np.log(2.5 / 2.0)], rtol=1e-6)  # 17 Jan's high, in force on 24 Jan
    np.testing.assert_allclose(sy, np.log1p([0.0, 5.0]), rtol=1e-6)
    np.testing.assert_allclose(qy, np.log1p([2.0]), rtol=1e-6)
    with pytest.raises(ValueError, match="observed over the whole window"):
        price_tasks(prices, ["a"], "2011-01-17", shots=2, horizon=1)  # its first week has no price in force
    with pytest.raises(ValueError, match="observed over the whole window"):
        price_tasks(prices, ["b"], "2011-01-17", shots=3, horizon=1)
    with pytest.raises(ValueError, match="shots"):
        price_tasks(prices, ["a"], "2011-01-17", shots=0, horizon=1)


def _units(slopes, n, rng, noise=0.3):
    units = []
    for b in slopes:
        x = rng.normal(0, 0.3, n)
        units.append((x[:, None], 1.0 + b * x + rng.normal(0, noise, n)))
    return units


def test_slope_pooling_recovers_the_mean_slope_and_its_spread_and_shrinks_a_noisy_slope():
    rng = np.random.default_rng(0)
    slopes = rng.normal(-1.0, 0.5, 400)
    model = SlopePooling().fit(_units(slopes, 40, rng))
    assert model.slope_ == pytest.approx(-1.0, abs=0.08)
    assert np.sqrt(model.between_var_) == pytest.approx(0.5, abs=0.08)
    assert model.noise_var_ == pytest.approx(0.09, rel=0.1)
    x = np.array([-0.1, 0.1])
    a, b = model.adapt(x[:, None], 1.0 + 3.0 * x)  # an extreme slope from 2 close points
    assert model.slope_ < b < 3.0  # pulled towards the pooled slope
    a, b = model.adapt(np.zeros((3, 1)), np.array([1.0, 2.0, 3.0]))  # the price never moved
    assert b == model.slope_ and a == pytest.approx(2.0)


def test_slope_pooling_with_identical_slopes_gives_everyone_the_pooled_slope():
    rng = np.random.default_rng(1)
    model = SlopePooling().fit(_units(np.full(300, -0.5), 30, rng))
    x = rng.normal(0, 0.3, 30)
    own = model.adapt(x[:, None], -2.0 * x + rng.normal(0, 0.3, 30))[1]
    assert model.between_var_ < 0.01 and abs(own - model.slope_) < abs(-2.0 - model.slope_) / 2
    with pytest.raises(ValueError, match="varies"):
        SlopePooling().fit([(np.zeros(5), np.ones(5))] * 3)
    with pytest.raises(RuntimeError, match="fit"):
        SlopePooling().adapt(np.zeros(2), np.ones(2))


def test_best_price_maximises_profit_in_the_range():
    # constant elasticity e: profit (p - c) p^e peaks at p = c e / (1 + e) when e < -1
    elasticity, cost = -3.0, 1.0
    demand = lambda prices: prices ** elasticity  # noqa: E731
    best = best_price(demand, [1.0], [3.0], cost, points=2001)
    assert best[0] == pytest.approx(cost * elasticity / (1 + elasticity), rel=1e-3)
    assert best_price(demand, [2.0], [3.0], cost)[0] == pytest.approx(2.0)  # the peak is below the range
    flat = best_price(lambda p: np.ones_like(p), [1.0, 2.0], [2.0, 4.0], [0.5, 0.5])
    np.testing.assert_allclose(flat, [2.0, 4.0])  # demand that does not fall: the highest price
    with pytest.raises(ValueError, match="low <= high"):
        best_price(demand, [3.0], [1.0], cost)
    with pytest.raises(ValueError, match="shape"):
        best_price(lambda p: p[:, :1], [1.0], [2.0], cost)


def test_slope_pooling_is_not_fooled_by_products_whose_price_barely_moved():
    rng = np.random.default_rng(2)
    units = _units(rng.normal(-1.0, 0.3, 300), 30, rng)
    for _ in range(50):  # prices that moved by a hair: own slopes in the hundreds
        x = rng.normal(0, 0.001, 30)
        units.append((x[:, None], 1.0 - x + rng.normal(0, 0.3, 30)))
    model = SlopePooling().fit(units)
    assert np.sqrt(model.between_var_) == pytest.approx(0.3, abs=0.08)
