"""Customer profiling: features known when an order is placed, a hypothetical next order,
spend in a window after a moment, and the value a list of customers holds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from metaecom.cases.profiling import (FEATURES, first_orders_split, future_spend, next_order_features,
                                      order_features, value_at_budget)


def _orders():
    return pd.DataFrame({
        "customer": [7, 9, 7, 7],
        "time": pd.to_datetime(["2011-01-03 10:00", "2011-02-01 12:00", "2011-01-13 10:00",
                                "2011-03-14 15:00"]),
        "country": ["United Kingdom", "France", "United Kingdom", "United Kingdom"],
        "value": [100.0, 40.0, 60.0, 10.0],
    })


def test_order_features_on_a_hand_computed_customer():
    x = order_features(_orders())
    assert x.shape == (4, len(FEATURES)) and x.dtype == np.float32
    first, other, second, third = x
    assert first[:3].tolist() == [0, 0, 0] and other[:3].tolist() == [0, 0, 0]
    np.testing.assert_allclose(second[:3], np.log1p([10, 10, 1]), rtol=1e-6)
    np.testing.assert_allclose(third[:3], np.log1p([70 + 5 / 24, 60 + 5 / 24, 2]), rtol=1e-6)
    np.testing.assert_allclose(first[3:5], [0, 1], atol=1e-6)  # January
    assert first[5] == pytest.approx(0 / 6) and first[6] == pytest.approx(10 / 24)  # Monday, 10:00
    assert first[7] == 1 and other[7] == 0


def test_features_ignore_what_the_order_contains_and_the_row_order():
    orders = _orders()
    changed = orders.assign(value=[1.0, 2.0, 3.0, 4.0])
    assert np.array_equal(order_features(orders), order_features(changed))
    shuffled = orders.iloc[[3, 1, 0, 2]]
    assert np.array_equal(order_features(shuffled), order_features(orders)[[3, 1, 0, 2]])


def test_the_next_order_is_scored_as_a_real_order_at_that_moment_would_be():
    orders = _orders()
    seven = orders[orders["customer"] == 7].iloc[:2]
    nominal = next_order_features(seven, gap_days=60)
    real = pd.concat([seven, pd.DataFrame({"customer": [7], "time": [pd.Timestamp("2011-03-14 10:00")],
                                           "country": ["United Kingdom"], "value": [5.0]})])
    np.testing.assert_allclose(nominal, order_features(real)[-1:], rtol=1e-6)
    with pytest.raises(ValueError, match="one customer"):
        next_order_features(orders)
    with pytest.raises(ValueError, match="empty"):
        next_order_features(orders.iloc[:0])
    with pytest.raises(ValueError, match="lacks column"):
        order_features(orders.drop(columns="country"))


def test_future_spend_counts_the_window_after_the_start_only():
    orders = _orders()
    start = pd.Series(pd.to_datetime(["2011-01-03 10:00", "2011-02-01 12:00"]), index=[7, 9])
    spend = future_spend(orders, start, 10, data_end="2011-12-09")
    assert spend.to_dict() == {7: 60.0, 9: 0.0}  # the start is excluded, the end (day 10) included
    assert future_spend(orders, start, 70, "2011-12-09")[7] == 60.0  # 15:00 on day 70 is after the end
    assert future_spend(orders, start, 71, "2011-12-09")[7] == 70.0
    with pytest.raises(ValueError, match="1 customer.s. have a window ending after the data.*9"):
        future_spend(orders, start, 300, data_end="2011-11-01")


def test_value_at_budget_on_known_rankings():
    values = np.array([0.0, 10.0, 30.0, 60.0])
    assert value_at_budget(values, values, 0.25) == pytest.approx(0.6)  # the oracle
    assert value_at_budget(-values, values, 0.5) == pytest.approx(0.1)
    assert value_at_budget(np.ones(4), values, 0.5) == pytest.approx(0.1)  # ties count against
    assert value_at_budget([3, 2, 1, 0], values, 0.3) == pytest.approx(0.1)  # ceil(1.2) = 2 customers
    assert np.isnan(value_at_budget([1, 2], [0, 0], 0.5))
    with pytest.raises(ValueError, match=">= 0"):
        value_at_budget([1, 2], [1, -1], 0.5)
    with pytest.raises(ValueError, match="budget"):
        value_at_budget([1, 2], [1, 1], 0)
    with pytest.raises(ValueError, match="one length"):
        value_at_budget([1, 2, 3], [1, 1], 0.5)


def test_first_orders_split_takes_k_orders_and_the_horizon_after_the_kth():
    times = pd.to_datetime(["2011-01-01", "2011-01-10", "2011-02-01", "2011-07-10", "2011-07-12"])
    support, query = first_orders_split(times, 2, horizon_days=182)
    assert support.tolist() == [0, 1] and query.tolist() == [2, 3]  # 07-12 is 183 days after 01-10
    assert first_orders_split(times, 2, 182, most=1)[1].tolist() == [2]
    assert first_orders_split(times, 5, 30)[1].tolist() == []  # no later order: no query
    with pytest.raises(ValueError, match="5 orders, fewer than k = 6"):
        first_orders_split(times, 6, 30)
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        first_orders_split(times, 0, 30)
    with pytest.raises(ValueError, match="in time order"):
        first_orders_split(times[::-1], 1, 30)
