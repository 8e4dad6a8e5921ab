"""New products as forecasting tasks: left-censored launches dropped, a split in time that
leaks no week after the cutoff into meta-training, and tasks of the right shape."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from metaecom.cases.launches import launch_curves, launch_tasks, launch_weeks, split_at

START = pd.Timestamp("2011-01-03")  # a Monday


def _weekly() -> pd.DataFrame:
    # product -> (first week index, units from then on); week 0 is START
    plans = {"old": (0, [5, 5, 5, 5, 5, 5, 5, 5, 5, 5]), "a": (2, [3, 0, 4, 1, 2, 2]),
             "b": (3, [0, 0, 7, 1, 1, 1, 1]), "c": (6, [2, 2, 2, 2]), "d": (8, [9, 1])}
    rows = []
    for product, (first, units) in plans.items():
        for i, value in enumerate(units):
            rows.append({"product": product, "period": START + pd.Timedelta(weeks=first + i),
                         "value": float(value)})
    return pd.DataFrame(rows)


def test_launch_is_the_first_week_with_a_sale():
    launch = launch_weeks(_weekly())
    assert launch["b"] == START + pd.Timedelta(weeks=5)  # two weeks listed without a sale
    assert list(launch.index) == ["a", "b", "c", "d", "old"]


def test_curves_drop_left_censored_and_unfinished_products():
    weekly = _weekly()
    curves = launch_curves(weekly, weeks=3, launched_from=START + pd.Timedelta(weeks=1),
                           observed_until=START + pd.Timedelta(weeks=10))
    # "old" sells from the first week (may be older than the data); "d" has 2 weeks only
    assert list(curves.index) == ["a", "b", "c"]
    np.testing.assert_array_equal(curves.loc["a"], [3, 0, 4])
    np.testing.assert_array_equal(curves.loc["b"], [7, 1, 1])  # from its first sale
    with pytest.raises(ValueError, match="no product launched"):
        launch_curves(weekly, weeks=30, launched_from=START, observed_until=START + pd.Timedelta(weeks=10))


def test_split_at_a_cutoff_sees_no_week_after_it():
    launch = launch_weeks(_weekly())
    cutoff = START + pd.Timedelta(weeks=6)
    before, after = split_at(launch, cutoff, weeks=3)
    assert list(before) == ["a", "old"] and list(after) == ["c", "d"]  # b: still in its first weeks
    last_seen = launch[before] + pd.Timedelta(weeks=2)
    assert (last_seen < cutoff).all() and (launch[after] >= cutoff).all()
    with pytest.raises(ValueError, match="no launch on or after"):
        split_at(launch, START + pd.Timedelta(weeks=40), weeks=3)


def test_tasks_take_the_first_weeks_as_support_and_the_next_as_query():
    curves = pd.DataFrame([[3.0, 0.0, 4.0, 1.0], [0.0, 8.0, 1.0, 1.0]], index=["a", "b"])
    features = np.array([[0.5], [-1.0]])
    sx, sy, qx, qy = launch_tasks(curves, features, shots=1, horizon=2)[0]
    assert sx.shape == (1, 2) and qx.shape == (2, 2)
    np.testing.assert_allclose(sy, np.log1p([3.0]))
    np.testing.assert_allclose(qy, np.log1p([0.0, 4.0]))
    np.testing.assert_allclose(qx[:, 0], [0.5, 1.0])   # week since launch / horizon
    np.testing.assert_allclose(qx[:, 1], [0.5, 0.5])   # the product's own features
    empty = launch_tasks(curves, features, shots=0, horizon=4)[1]
    assert empty[0].shape == (0, 2) and len(empty[3]) == 4
    with pytest.raises(ValueError, match="shots \\+ horizon = 5 weeks"):
        launch_tasks(curves, features, shots=1, horizon=4)
    with pytest.raises(ValueError, match="one row per row of curves"):
        launch_tasks(curves, features[:1], shots=1, horizon=2)


def test_neighbour_curves_average_the_most_similar_earlier_products():
    from metaecom.cases.launches import neighbour_curves
    old = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    curves = np.array([[1.0, 1.0], [3.0, 3.0], [10.0, 10.0]])
    np.testing.assert_allclose(neighbour_curves([[1.0, 0.05]], old, curves, k=2), [[2.0, 2.0]])
    np.testing.assert_allclose(neighbour_curves([[0.0, 2.0]], old, curves, k=1), [[10.0, 10.0]])
    # scoring the old products themselves: none is its own neighbour
    np.testing.assert_allclose(neighbour_curves(old, old, curves, k=1, exclude_self=True)[0], [3.0, 3.0])
    with pytest.raises(ValueError, match="only 2 earlier products"):
        neighbour_curves(old, old, curves, k=3, exclude_self=True)
    with pytest.raises(ValueError, match="same d"):
        neighbour_curves([[1.0]], old, curves, k=1)


def test_split_at_keeps_test_windows_apart_and_refuses_a_cutoff_inside_a_week():
    launch = launch_weeks(_weekly())
    cutoff = START + pd.Timedelta(weeks=6)
    _, after = split_at(launch, cutoff, weeks=3, until=START + pd.Timedelta(weeks=8))
    assert list(after) == ["c"]  # "d" launches at week 8, in the next window
    with pytest.raises(ValueError, match="is a Wednesday, but the weeks start on Monday"):
        split_at(launch, cutoff + pd.Timedelta(days=2), weeks=3)
