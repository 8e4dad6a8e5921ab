"""Every task builder says, before training, which units cannot supply the requested shape.

The convention under test: ``infeasible_units(builder, *args)`` (and ``builder.infeasible``)
returns a DataFrame ``unit, available, needed, reason``; building raises one ValueError
listing the infeasible units and naming ``drop_infeasible=True``; with it they are dropped
and listed in ``.dropped``; feasible calls give exactly the episodes they gave before the
check existed (the expected indices below were recorded with the code before the change).
"""

import numpy as np
import pandas as pd
import pytest

from metaecom.tasks import (
    FewShotSampler,
    forecast_windows,
    group_tasks,
    infeasible_units,
    rating_scenarios,
    task_batches,
)
from metaecom.tasks.feasibility import REPORT_COLUMNS, TaskList


def as_rows(report: pd.DataFrame, columns=("unit", "available", "needed")) -> list[tuple]:
    return [tuple(row) for row in report[list(columns)].itertuples(index=False)]


def same_episodes(a, b) -> bool:
    return len(a) == len(b) and all(
        x.classes == y.classes and x.task == y.task
        and all(np.array_equal(getattr(x, f), getattr(y, f)) for f in ("support", "query", "support_y", "query_y"))
        for x, y in zip(a, b))


# ---------------------------------------------------------------------------------------
# FewShotSampler: classes with fewer than k_shot + n_query rows
# ---------------------------------------------------------------------------------------

@pytest.fixture
def labels():
    """Classes 10, 11, 12, 13 with 6, 7, 8, 9 rows, in shuffled row order."""
    return np.random.default_rng(0).permutation(np.repeat([10, 11, 12, 13], [6, 7, 8, 9]))


def test_sampler_reports_small_classes(labels):
    report = infeasible_units(FewShotSampler, labels, n_way=2, k_shot=3, n_query=5)
    assert tuple(report.columns) == REPORT_COLUMNS
    assert as_rows(report) == [(10, 6, 8), (11, 7, 8)]
    assert report["reason"].tolist() == ["class 10 has 6 rows, fewer than 3 support + 5 query = 8",
                                         "class 11 has 7 rows, fewer than 3 support + 5 query = 8"]
    # the same check through the class, and restricted to listed classes
    pd.testing.assert_frame_equal(FewShotSampler.infeasible(labels, 2, 3, 5), report)
    assert as_rows(FewShotSampler.infeasible(labels, 2, 3, 5, classes=[13, 11])) == [(11, 7, 8)]
    assert infeasible_units(FewShotSampler, labels, 2, 3, 3).empty          # 6 rows needed: all can
    assert as_rows(infeasible_units(FewShotSampler, labels, 2, 2, 5)) == [(10, 6, 7)]


def test_sampler_refuses_infeasible_classes_in_one_error(labels):
    with pytest.raises(ValueError) as error:
        FewShotSampler(labels, n_way=2, k_shot=3, n_query=5)
    message = str(error.value)
    assert "class 10 has 6 rows" in message and "class 11 has 7 rows" in message
    assert "(2 of 4 classes are too small)" in message and "drop_infeasible=True" in message


def test_sampler_error_lists_first_few_and_the_count():
    many = np.repeat(np.arange(12), [20, 20] + [3] * 10)
    with pytest.raises(ValueError, match=r"\(10 of 12 classes are too small\).*; and 5 more\. To go on"):
        FewShotSampler(many, n_way=2, k_shot=2, n_query=2)


def test_sampler_drops_infeasible_classes(labels):
    sampler = FewShotSampler(labels, n_way=2, k_shot=3, n_query=5, seed=4, drop_infeasible=True)
    assert sampler.classes.tolist() == [12, 13]
    pd.testing.assert_frame_equal(sampler.dropped, infeasible_units(FewShotSampler, labels, 2, 3, 5))
    # dropping is the same as asking for the feasible classes only, episode for episode
    kept = FewShotSampler(labels, n_way=2, k_shot=3, n_query=5, seed=4, classes=[12, 13])
    assert same_episodes(sampler.episodes(10), kept.episodes(10))
    assert kept.dropped.empty and tuple(kept.dropped.columns) == REPORT_COLUMNS


def test_sampler_n_way_above_feasible_classes_names_both_numbers(labels):
    with pytest.raises(ValueError, match=r"3-way episodes but only 2 of 4 classes have the 3 support \+ 5 query"):
        FewShotSampler(labels, n_way=3, k_shot=3, n_query=5, drop_infeasible=True)
    with pytest.raises(ValueError, match="dropping them would leave 2 classes, fewer than n_way = 3"):
        FewShotSampler(labels, n_way=3, k_shot=3, n_query=5)
    with pytest.raises(ValueError, match="5-way episodes but only 4 classes are available"):
        FewShotSampler(labels, n_way=5, k_shot=1, n_query=1, drop_infeasible=True)


def test_sampler_feasible_episodes_are_unchanged(labels):
    episode = FewShotSampler(labels, n_way=2, k_shot=2, n_query=3, seed=0).sample()
    assert (episode.support.tolist(), episode.query.tolist(), episode.classes) == (
        [29, 7, 8, 6], [19, 23, 10, 13, 27, 24], (12, 13))
    sampler = FewShotSampler(labels, n_way=2, k_shot=2, n_query=3, classes=[12, 13, 10], seed=0,
                             drop_infeasible=True)
    episode = sampler.sample()
    assert (episode.support.tolist(), episode.query.tolist(), episode.classes) == (
        [27, 2, 12, 5], [13, 26, 3, 21, 28, 15], (13, 10))
    assert sampler.dropped.empty


# ---------------------------------------------------------------------------------------
# rating_scenarios: users outside min_ratings..max_ratings in a scenario
# ---------------------------------------------------------------------------------------

@pytest.fixture
def ratings():
    """Users 1-5 with 7, 3, 6, 12, 5 ratings; with users 3, 4 and items 20-29 new, the
    scenario counts are warm {1: 5, 2: 2, 5: 5}, new_user {3: 3, 4: 8}, new_item {1: 2, 2: 1},
    new_user_new_item {3: 3, 4: 4}."""
    rows = [(u, (u * 7 + i * 3) % 30, (u + i) % 5 + 1) for u, n in {1: 7, 2: 3, 3: 6, 4: 12, 5: 5}.items()
            for i in range(n)]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating"])


SCENARIO_ARGS = dict(items_new=range(20, 30), users_new=[3, 4], min_ratings=3, max_ratings=6, n_query=2)


def test_rating_scenarios_report_users_out_of_range(ratings):
    report = infeasible_units(rating_scenarios, ratings, **SCENARIO_ARGS)
    assert tuple(report.columns[:4]) == REPORT_COLUMNS
    assert as_rows(report, ["scenario", "unit", "available", "needed"]) == [
        ("warm", 2, 2, 3), ("new_user", 4, 8, 6), ("new_item", 1, 2, 3), ("new_item", 2, 1, 3)]
    assert report["reason"].tolist() == [
        "user 2 has 2 ratings in scenario 'warm', fewer than min_ratings = 3",
        "user 4 has 8 ratings in scenario 'new_user', more than max_ratings = 6",
        "user 1 has 2 ratings in scenario 'new_item', fewer than min_ratings = 3",
        "user 2 has 1 ratings in scenario 'new_item', fewer than min_ratings = 3"]


def test_rating_scenarios_keep_filtering_and_show_what_they_left_out(ratings):
    scenarios = rating_scenarios(ratings, **SCENARIO_ARGS, seed=0)
    found = {name: [(e.task, e.support.tolist(), e.query.tolist()) for e in episodes]
             for name, episodes in scenarios.items()}
    assert found == {"warm": [(1, [0, 1, 3], [2, 4]), (5, [28, 30, 31], [29, 32])],
                     "new_user": [(3, [14], [13, 15])],
                     "new_item": [],
                     "new_user_new_item": [(3, [10], [11, 12]), (4, [25, 26], [16, 24])]}
    pd.testing.assert_frame_equal(scenarios.dropped, infeasible_units(rating_scenarios, ratings, **SCENARIO_ARGS))


def test_rating_scenarios_strict_mode_raises_one_error(ratings):
    with pytest.raises(ValueError) as error:
        rating_scenarios(ratings, **SCENARIO_ARGS, drop_infeasible=False)
    message = str(error.value)
    assert message.startswith("4 (scenario, user) pairs are outside min_ratings = 3 to max_ratings = 6")
    assert "user 4 has 8 ratings in scenario 'new_user'" in message and "drop_infeasible=True" in message
    # a pool with every user in range passes the strict check
    in_range = ratings[ratings["user_id"].isin([1, 5])]
    strict = rating_scenarios(in_range, [], [], min_ratings=3, max_ratings=7, n_query=2, drop_infeasible=False)
    assert [e.task for e in strict["warm"]] == [1, 5] and strict.dropped.empty


# ---------------------------------------------------------------------------------------
# group_tasks: groups with fewer than k_shot + n_query rows
# ---------------------------------------------------------------------------------------

@pytest.fixture
def countries():
    sizes = {"DE": 10, "FR": 6, "IT": 3}
    return pd.DataFrame({"country": np.repeat(list(sizes), list(sizes.values())), "sales": np.arange(19)})


def test_group_tasks_report_small_and_empty_groups(countries):
    report = infeasible_units(group_tasks, countries, "country", "sales", k_shot=2, n_query=3)
    assert tuple(report.columns) == REPORT_COLUMNS
    assert as_rows(report) == [("IT", 3, 5)]
    assert report["reason"].tolist() == ["group 'IT' has 3 rows, fewer than k_shot + n_query = 5 (2 support + 3 query)"]
    categorical = countries.assign(country=pd.Categorical(countries["country"], categories=["DE", "ES", "FR", "IT"]))
    report = infeasible_units(group_tasks, categorical, "country", "sales", 2, 3, groups=["ES", "DE", "IT"])
    assert as_rows(report) == [("ES", 0, 5), ("IT", 3, 5)]
    assert report["reason"].iloc[0] == "group 'ES' is empty (it has no rows in the table)"


def test_group_tasks_refuse_in_one_error_naming_every_group(countries):
    with pytest.raises(ValueError) as error:
        group_tasks(countries, "country", "sales", k_shot=3, n_query=4)        # FR (6) and IT (3) are short
    message = str(error.value)
    assert message.startswith("2 of 3 groups cannot supply k_shot + n_query = 7 rows")
    assert "group 'FR' has 6 rows" in message and "group 'IT' has 3 rows" in message
    assert "drop_infeasible=True" in message


def test_group_tasks_drop_exactly_the_infeasible_groups(countries):
    dropped = group_tasks(countries, "country", "sales", 2, 3, seed=0, drop_infeasible=True)
    found = [(e.task, e.support.tolist(), e.query.tolist()) for e in dropped]
    assert found == [("DE", [4, 7], [2, 3, 5]), ("FR", [11, 14], [12, 13, 15])]   # as before the change
    assert as_rows(dropped.dropped) == [("IT", 3, 5)]
    skipped = group_tasks(countries, "country", "sales", 2, 3, seed=0, skip_small=True)   # the older name
    assert same_episodes(dropped, skipped)
    pd.testing.assert_frame_equal(skipped.dropped, dropped.dropped)


def test_group_tasks_feasible_episodes_are_unchanged(countries):
    episodes = group_tasks(countries, "country", "sales", k_shot=1, n_query=2, seed=0)
    found = [(e.task, e.support.tolist(), e.query.tolist()) for e in episodes]
    assert found == [("DE", [5], [9, 6]), ("FR", [15], [14, 10]), ("IT", [16], [18, 17])]
    assert isinstance(episodes, list) and episodes.dropped.empty


# ---------------------------------------------------------------------------------------
# forecast_windows: products shorter than history + horizon
# ---------------------------------------------------------------------------------------

@pytest.fixture
def series():
    """Products a, b, c with 6, 3 and 2 weekly periods, rows in reverse order."""
    rows = [(product, t, float(10 * t + len(product))) for product, n in {"a": 6, "b": 3, "c": 2}.items()
            for t in range(n)]
    return pd.DataFrame(rows[::-1], columns=["product", "period", "value"])


def test_forecast_windows_report_short_products(series):
    report = infeasible_units(forecast_windows, series, history=3, horizon=2)
    assert tuple(report.columns) == REPORT_COLUMNS
    assert as_rows(report) == [("b", 3, 5), ("c", 2, 5)]
    assert report["reason"].iloc[0] == ("product 'b' has 3 periods, fewer than history + horizon = 5 "
                                        "(3 history + 2 horizon)")
    # a product below the caller's min_length is reported against that bound
    report = infeasible_units(forecast_windows, series, history=3, horizon=2, min_length=3)
    assert as_rows(report) == [("b", 3, 5), ("c", 2, 3)]
    assert report["reason"].iloc[1] == "product 'c' has 2 periods, fewer than min_length = 3"


def test_forecast_windows_refuse_in_one_error(series):
    with pytest.raises(ValueError) as error:
        forecast_windows(series, history=3, horizon=2)
    message = str(error.value)
    assert message.startswith("2 of 3 products are shorter than history + horizon = 5 periods")
    assert "product 'b' has 3 periods" in message and "product 'c' has 2 periods" in message
    assert "drop_infeasible=True" in message
    # products under min_length are the caller's filter, not an error: only b is refused
    with pytest.raises(ValueError, match=r"^1 of 3 products .*product 'b'") as error:
        forecast_windows(series, history=3, horizon=2, min_length=3)
    assert "product 'c'" not in str(error.value)


def test_forecast_windows_drop_and_min_length_are_inspectable(series):
    windows = forecast_windows(series, history=3, horizon=2, min_length=3, drop_infeasible=True)
    assert list(windows) == ["a"]
    pd.testing.assert_frame_equal(windows.dropped,
                                  infeasible_units(forecast_windows, series, history=3, horizon=2, min_length=3))
    filtered = forecast_windows(series, history=1, horizon=1, min_length=3)      # as before: c left out silently
    assert list(filtered) == ["a", "b"] and as_rows(filtered.dropped) == [("c", 2, 3)]


def test_forecast_windows_feasible_values_are_unchanged(series):
    windows = forecast_windows(series, history=1, horizon=1)
    assert list(windows) == ["a", "b", "c"] and windows.dropped.empty
    X, Y = windows["b"]
    np.testing.assert_array_equal(X, [[1], [11]])
    np.testing.assert_array_equal(Y, [[11], [21]])


# ---------------------------------------------------------------------------------------
# The convention itself
# ---------------------------------------------------------------------------------------

def test_infeasible_units_refuses_a_non_builder():
    with pytest.raises(TypeError, match="not a task builder"):
        infeasible_units(len, [1, 2])


def test_task_batches_says_when_every_unit_was_dropped(countries):
    empty = group_tasks(countries, "country", "sales", k_shot=20, n_query=1, drop_infeasible=True)
    assert isinstance(empty, TaskList) and len(empty) == 0 and len(empty.dropped) == 3
    with pytest.raises(ValueError, match=r"the sequence of tasks is empty \(3 units were left out"):
        task_batches(empty, 2, np.random.default_rng(0))
