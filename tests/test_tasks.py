import time

import numpy as np
import pandas as pd
import pytest

from metaecom.tasks import (
    Episode,
    FewShotSampler,
    forecast_windows,
    group_tasks,
    rating_scenarios,
    split_classes,
    split_products_by_launch,
    split_users_items_by_time,
)


def labelled_rows(n_classes=10, per_class=20, seed=0):
    """Labels 100, 101, ... with ``per_class`` rows each, in shuffled row order."""
    labels = np.repeat(np.arange(100, 100 + n_classes), per_class)
    return np.random.default_rng(seed).permutation(labels)


def same_episode(a: Episode, b: Episode) -> bool:
    return (a.classes == b.classes and a.task == b.task
            and all(np.array_equal(getattr(a, f), getattr(b, f)) for f in ("support", "query", "support_y", "query_y")))


# ---------------------------------------------------------------------------------------
# split_classes
# ---------------------------------------------------------------------------------------

def test_split_classes_is_class_disjoint_and_complete():
    labels = labelled_rows(n_classes=50)
    split = split_classes(labels, seed=3)
    train, val, test = (set(split[k].tolist()) for k in ("train", "val", "test"))
    assert not (train & val or train & test or val & test)
    assert train | val | test == set(labels.tolist())
    assert (len(train), len(val), len(test)) == (30, 10, 10)


def test_split_classes_is_deterministic_and_seed_dependent():
    labels = labelled_rows(n_classes=50)
    a, b, c = split_classes(labels, seed=1), split_classes(labels, seed=1), split_classes(labels, seed=2)
    for key in ("train", "val", "test"):
        np.testing.assert_array_equal(a[key], b[key])
    assert any(not np.array_equal(a[k], c[k]) for k in ("train", "val", "test"))


def test_split_classes_gives_every_split_a_class():
    split = split_classes(["a", "b", "c"], fractions=(0.9, 0.05, 0.05))
    assert all(len(split[k]) == 1 for k in ("train", "val", "test"))


def test_split_classes_errors():
    with pytest.raises(ValueError, match="at least 3 classes"):
        split_classes([1, 1, 2])
    with pytest.raises(ValueError, match="sum to 1"):
        split_classes(labelled_rows(), fractions=(0.5, 0.2, 0.2))
    with pytest.raises(ValueError, match="three positive numbers"):
        split_classes(labelled_rows(), fractions=(1.0, 0.0, 0.0))


# ---------------------------------------------------------------------------------------
# FewShotSampler
# ---------------------------------------------------------------------------------------

def test_episode_shapes_order_and_label_mapping():
    labels = labelled_rows()
    episode = FewShotSampler(labels, n_way=5, k_shot=3, n_query=4, seed=0).sample()
    assert episode.support.shape == (15,) and episode.query.shape == (20,)
    np.testing.assert_array_equal(episode.support_y, np.repeat(np.arange(5), 3))   # class-major
    np.testing.assert_array_equal(episode.query_y, np.repeat(np.arange(5), 4))
    assert len(episode.classes) == 5 and len(set(episode.classes)) == 5
    assert all(isinstance(c, int) for c in episode.classes)
    np.testing.assert_array_equal(labels[episode.support], np.array(episode.classes)[episode.support_y])
    np.testing.assert_array_equal(labels[episode.query], np.array(episode.classes)[episode.query_y])
    assert episode.task is None


def test_support_and_query_are_disjoint():
    sampler = FewShotSampler(labelled_rows(), n_way=4, k_shot=5, n_query=15, seed=1)
    for episode in sampler.episodes(50):
        rows = np.concatenate([episode.support, episode.query])
        assert len(np.unique(rows)) == len(rows)


def test_sampler_is_deterministic_and_seed_dependent():
    labels = labelled_rows()
    a = FewShotSampler(labels, 5, 2, 3, seed=7).episodes(20)
    b = FewShotSampler(labels, 5, 2, 3, seed=7).episodes(20)
    c = FewShotSampler(labels, 5, 2, 3, seed=8).episodes(20)
    assert all(same_episode(x, y) for x, y in zip(a, b))
    assert not all(same_episode(x, y) for x, y in zip(a, c))


def test_sampler_restricted_to_classes():
    labels = labelled_rows()
    split = split_classes(labels, seed=0)
    sampler = FewShotSampler(labels, n_way=2, k_shot=1, n_query=1, classes=split["test"])
    for episode in sampler.episodes(30):
        assert set(episode.classes) <= set(split["test"].tolist())
        assert set(labels[episode.support].tolist()) <= set(split["test"].tolist())


def test_sampler_works_with_string_labels():
    labels = np.array(["shoe", "hat", "bag"] * 6)
    episode = FewShotSampler(labels, n_way=3, k_shot=2, n_query=1, classes=["bag", "hat", "shoe"]).sample()
    np.testing.assert_array_equal(labels[episode.support], np.array(episode.classes)[episode.support_y])


def test_sampler_errors():
    labels = labelled_rows(n_classes=5, per_class=20)
    with pytest.raises(ValueError, match="asked for 20-way episodes but only 5 classes are available"):
        FewShotSampler(labels, n_way=20, k_shot=1, n_query=1)
    uneven = np.concatenate([labels, [7] * 8, [8] * 12])
    with pytest.raises(ValueError, match=r"= 20 rows per class, but class 7 has only 8 rows \(2 of 7"):
        FewShotSampler(uneven, n_way=2, k_shot=5, n_query=15)
    with pytest.raises(ValueError, match="n_way must be an integer >= 1"):
        FewShotSampler(labels, n_way=0, k_shot=1, n_query=1)
    with pytest.raises(ValueError, match="k_shot must be an integer >= 1"):
        FewShotSampler(labels, n_way=2, k_shot=0, n_query=1)
    with pytest.raises(ValueError, match="n_query must be an integer >= 0"):
        FewShotSampler(labels, n_way=2, k_shot=1, n_query=-1)
    with pytest.raises(ValueError, match=r"classes \[999\] do not occur in labels"):
        FewShotSampler(labels, n_way=2, k_shot=1, n_query=1, classes=[100, 999])
    with pytest.raises(ValueError, match="more than once"):
        FewShotSampler(labels, n_way=2, k_shot=1, n_query=1, classes=[100, 100])
    with pytest.raises(ValueError, match="labels is empty"):
        FewShotSampler([], n_way=2, k_shot=1, n_query=1)
    with pytest.raises(ValueError, match="1-D"):
        FewShotSampler(np.zeros((4, 2)), n_way=2, k_shot=1, n_query=1)


def test_episode_checks_lengths():
    with pytest.raises(ValueError, match="support has 2 rows but support_y has 1"):
        Episode(support=np.array([0, 1]), query=np.array([2]), support_y=np.array([0]), query_y=np.array([0]))


def test_sampling_is_fast_on_an_omniglot_sized_table():
    labels = np.repeat(np.arange(1623 * 4), 20)   # 6,492 classes of 20 rows, like rotated Omniglot
    start = time.perf_counter()
    sampler = FewShotSampler(labels, n_way=20, k_shot=5, n_query=15, seed=0)
    episodes = sampler.episodes(200)
    assert time.perf_counter() - start < 10.0      # a loose sanity bound, not a benchmark
    assert len(episodes) == 200 and episodes[-1].support.shape == (100,)


# ---------------------------------------------------------------------------------------
# Rating scenarios
# ---------------------------------------------------------------------------------------

@pytest.fixture
def ratings():
    """60 users x 80 items, each user rating a random 5 to 60 items, in shuffled row order."""
    rng = np.random.default_rng(0)
    rows = []
    for user in range(60):
        items = rng.choice(80, size=rng.integers(5, 61), replace=False)
        for item in items:
            rows.append((user, item, int(rng.integers(1, 6)), int(rng.integers(0, 10_000))))
    table = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    table = table.sample(frac=1.0, random_state=1)
    table.index = table.index + 1000        # a non-default index: episodes use positions, not labels
    return table


def test_rating_scenarios_leak_nothing(ratings):
    users_new, items_new = set(range(45, 60)), set(range(60, 80))
    scenarios = rating_scenarios(ratings, items_new, users_new, min_ratings=8, max_ratings=30, n_query=5)
    assert list(scenarios) == ["warm", "new_user", "new_item", "new_user_new_item"]
    user_of = ratings["user_id"].to_numpy()
    item_of = ratings["item_id"].to_numpy()
    rows_of = {}
    for name, episodes in scenarios.items():
        assert episodes, f"scenario {name} has no tasks"
        rows = np.concatenate([np.concatenate([e.support, e.query]) for e in episodes])
        rows_of[name] = set(rows.tolist())
        assert len(rows_of[name]) == len(rows)                      # no rating used twice
        users = set(user_of[rows].tolist())
        items = set(item_of[rows].tolist())
        if name in ("new_user", "new_user_new_item"):
            assert users <= users_new
        if name in ("warm", "new_item"):
            assert not users & users_new
        if name in ("warm", "new_user"):
            assert not items & items_new
        if name in ("new_item", "new_user_new_item"):
            assert items <= items_new
        for e in episodes:
            assert len(e.query) == 5 and e.classes is None
            assert 8 <= len(e.support) + len(e.query) <= 30
            assert not set(e.support.tolist()) & set(e.query.tolist())
            assert set(user_of[e.support].tolist()) == {e.task} == set(user_of[e.query].tolist())
            np.testing.assert_array_equal(e.support_y, ratings["rating"].to_numpy(dtype=float)[e.support])
            assert e.query_y.dtype == float
    names = list(rows_of)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not rows_of[a] & rows_of[b], f"{a} and {b} share ratings"


def test_rating_scenarios_take_every_eligible_user(ratings):
    scenarios = rating_scenarios(ratings, items_new=[], users_new=[], min_ratings=13, max_ratings=40, n_query=10)
    counts = ratings.groupby("user_id").size()
    expected = sorted(counts[(counts >= 13) & (counts <= 40)].index.tolist())
    assert [e.task for e in scenarios["warm"]] == expected
    assert scenarios["new_user"] == [] and scenarios["new_item"] == [] and scenarios["new_user_new_item"] == []


def test_rating_scenarios_are_deterministic(ratings):
    kwargs = dict(items_new=range(60, 80), users_new=range(45, 60), min_ratings=8, max_ratings=30, n_query=5)
    a = rating_scenarios(ratings, seed=4, **kwargs)
    b = rating_scenarios(ratings, seed=4, **kwargs)
    c = rating_scenarios(ratings, seed=5, **kwargs)
    assert all(same_episode(x, y) for x, y in zip(a["warm"], b["warm"]))
    assert not all(same_episode(x, y) for x, y in zip(a["warm"], c["warm"]))


def test_rating_scenarios_errors(ratings):
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['rating'\]"):
        rating_scenarios(ratings.drop(columns="rating"), [], [])
    with pytest.raises(ValueError, match="ratings is empty"):
        rating_scenarios(ratings.iloc[:0], [], [])
    with pytest.raises(ValueError, match="min_ratings must be an integer >= 11"):
        rating_scenarios(ratings, [], [], min_ratings=10, n_query=10)
    with pytest.raises(ValueError, match="max_ratings must be an integer >= 13"):
        rating_scenarios(ratings, [], [], min_ratings=13, max_ratings=12)


def test_split_users_items_by_time():
    ratings = pd.DataFrame({
        "user_id": [1, 1, 2, 3, 4, 5, 5],
        "item_id": [10, 11, 10, 12, 13, 14, 10],
        "rating": [5, 4, 3, 2, 1, 5, 4],
        "timestamp": [0, 9, 1, 2, 3, 4, 0],
    })
    users_new, items_new = split_users_items_by_time(ratings, new_fraction=0.4)
    # first ratings: user 1 at 0, 2 at 1, 3 at 2, 4 at 3, 5 at 0 -> latest two are users 3 and 4
    np.testing.assert_array_equal(users_new, [3, 4])
    # first ratings: item 10 at 0, 11 at 9, 12 at 2, 13 at 3, 14 at 4 -> latest two are 11 and 14
    np.testing.assert_array_equal(items_new, [11, 14])
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['timestamp'\]"):
        split_users_items_by_time(ratings.drop(columns="timestamp"))
    with pytest.raises(ValueError, match="ratings is empty"):
        split_users_items_by_time(ratings.iloc[:0])
    with pytest.raises(ValueError, match="new_fraction must be between 0 and 1"):
        split_users_items_by_time(ratings, new_fraction=1.0)


# ---------------------------------------------------------------------------------------
# group_tasks
# ---------------------------------------------------------------------------------------

@pytest.fixture
def countries():
    sizes = {"DE": 30, "FR": 12, "IT": 4}
    return pd.DataFrame({
        "country": np.repeat(list(sizes), list(sizes.values())),
        "sales": np.arange(sum(sizes.values()), dtype=int),
    })


def test_group_tasks_shapes_and_targets(countries):
    episodes = group_tasks(countries, "country", "sales", k_shot=3, n_query=5, skip_small=True)
    assert [e.task for e in episodes] == ["DE", "FR"]            # IT (4 rows) is skipped
    group_of = countries["country"].to_numpy()
    for e in episodes:
        assert e.support.shape == (3,) and e.query.shape == (5,) and e.classes is None
        assert not set(e.support.tolist()) & set(e.query.tolist())
        assert set(group_of[np.concatenate([e.support, e.query])].tolist()) == {e.task}
        assert e.support_y.dtype == float
        np.testing.assert_array_equal(e.query_y, countries["sales"].to_numpy(dtype=float)[e.query])


def test_group_tasks_listed_groups_and_determinism(countries):
    a = group_tasks(countries, "country", "sales", 2, 2, seed=0, groups=["IT", "DE"])
    b = group_tasks(countries, "country", "sales", 2, 2, seed=0, groups=["IT", "DE"])
    c = group_tasks(countries, "country", "sales", 2, 2, seed=1, groups=["IT", "DE"])
    assert [e.task for e in a] == ["IT", "DE"]
    assert all(same_episode(x, y) for x, y in zip(a, b))
    assert not all(same_episode(x, y) for x, y in zip(a, c))


def test_group_tasks_errors(countries):
    with pytest.raises(ValueError, match=r"group 'IT' has 4 rows, fewer than k_shot \+ n_query = 8"):
        group_tasks(countries, "country", "sales", k_shot=3, n_query=5)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['price'\]"):
        group_tasks(countries, "country", "price", k_shot=1, n_query=1)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['store'\]"):
        group_tasks(countries, "store", "sales", k_shot=1, n_query=1)
    with pytest.raises(ValueError, match=r"groups \['ES'\] do not exist in column 'country'"):
        group_tasks(countries, "country", "sales", k_shot=1, n_query=1, groups=["DE", "ES"])
    with pytest.raises(ValueError, match="k_shot must be an integer >= 1"):
        group_tasks(countries, "country", "sales", k_shot=0, n_query=1)
    categorical = countries.assign(country=pd.Categorical(countries["country"], categories=["DE", "ES", "FR", "IT"]))
    with pytest.raises(ValueError, match="group 'ES' is empty"):
        group_tasks(categorical, "country", "sales", k_shot=1, n_query=1, groups=["DE", "ES"])
    # without a list, only groups that have rows are used
    assert [e.task for e in group_tasks(categorical, "country", "sales", k_shot=1, n_query=1)] == ["DE", "FR", "IT"]


# ---------------------------------------------------------------------------------------
# forecast_windows and split_products_by_launch
# ---------------------------------------------------------------------------------------

def weekly(values_by_product: dict) -> pd.DataFrame:
    """A long table with one row per product and week, rows in reverse order."""
    rows = [(product, pd.Timestamp("2024-01-01") + pd.Timedelta(weeks=t), float(v))
            for product, values in values_by_product.items() for t, v in enumerate(values)]
    return pd.DataFrame(rows[::-1], columns=["product", "period", "value"])


def test_forecast_windows_by_hand():
    series = weekly({"b": [1, 2, 3, 4, 5, 6], "a": [0, 10, 20, 30, 40]})
    windows = forecast_windows(series, history=3, horizon=2)
    assert list(windows) == ["a", "b"]
    X, Y = windows["b"]
    np.testing.assert_array_equal(X, [[1, 2, 3], [2, 3, 4]])
    np.testing.assert_array_equal(Y, [[4, 5], [5, 6]])
    X, Y = windows["a"]                               # exactly history + horizon periods: one window
    np.testing.assert_array_equal(X, [[0, 10, 20]])
    np.testing.assert_array_equal(Y, [[30, 40]])
    assert X.dtype == float and X.flags.writeable


def test_forecast_windows_shapes_with_integer_periods():
    series = pd.DataFrame({"product": [7] * 10, "period": np.arange(10)[::-1], "value": np.arange(10)[::-1] * 1.0})
    X, Y = forecast_windows(series, history=4, horizon=1)[7]
    assert X.shape == (6, 4) and Y.shape == (6, 1)
    np.testing.assert_array_equal(Y[:, 0], np.arange(4, 10))   # time order, sliding by one


def test_forecast_windows_errors_and_min_length():
    series = weekly({"a": [1, 2, 3, 4, 5, 6], "short": [1, 2, 3]})
    with pytest.raises(ValueError, match=r"product 'short' has 3 periods, fewer than history \+ horizon = 5"):
        forecast_windows(series, history=3, horizon=2)
    assert list(forecast_windows(series, history=3, horizon=2, min_length=5)) == ["a"]
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['value'\]"):
        forecast_windows(series.drop(columns="value"), history=3, horizon=2)
    with pytest.raises(ValueError, match="more than one row for product 'a'"):
        forecast_windows(pd.concat([series, series[series["product"] == "a"].iloc[:1]]), history=3, horizon=2)
    with pytest.raises(ValueError, match="horizon must be an integer >= 1"):
        forecast_windows(series, history=3, horizon=0)
    with pytest.raises(ValueError, match="series is empty"):
        forecast_windows(series.iloc[:0], history=3, horizon=2)


def test_split_products_by_launch():
    series = weekly({
        "p1": [5, 5, 5, 5, 5, 5],
        "p2": [0, 3, 3, 3, 3, 3],
        "p3": [0, 0, 1, 1, 1, 1],
        "p4": [0, 0, 0, 2, 2, 2],
        "p5": [0, 0, 0, 0, 0, 7],
        "never": [0, 0, 0, 0, 0, 0],
    })
    old, new = split_products_by_launch(series, test_fraction=0.4)
    np.testing.assert_array_equal(old, ["p1", "p2", "p3"])
    np.testing.assert_array_equal(new, ["p4", "p5"])       # launched last; "never" never sells
    old_again, new_again = split_products_by_launch(series.sample(frac=1.0, random_state=3), test_fraction=0.4)
    np.testing.assert_array_equal(old, old_again)
    np.testing.assert_array_equal(new, new_again)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['period'\]"):
        split_products_by_launch(series.drop(columns="period"))
    with pytest.raises(ValueError, match="test_fraction must be between 0 and 1"):
        split_products_by_launch(series, test_fraction=0)
