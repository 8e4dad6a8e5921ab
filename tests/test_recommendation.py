"""Cold-start recommendation: ranking metrics, feature rows, the MeLU-style model and its baselines."""

import copy
import math

import numpy as np
import pandas as pd
import pytest
import torch

from metaecom.cases.coldstart import RatingFeatures, movielens_features, prior_item_statistics
from metaecom.cases.recommendation import BiasedMF, ItemMean, evaluate_episodes, fit_global, truncate_support
from metaecom.methods import ANIL, RegressionAdapted, squared_error
from metaecom.models import MeLU
from metaecom.ranking import ndcg_at_k, pair_accuracy, user_metrics
from metaecom.tasks import Episode, rating_scenarios


# --- nDCG on hand-computed examples --------------------------------------------------

def test_ndcg_perfect_ranking_is_one():
    assert ndcg_at_k([5, 4, 3], [5, 4, 3], 3) == pytest.approx(1.0)


def test_ndcg_hand_computed():
    # ranked by prediction: true ratings 3, 5, 4 -> DCG@2 = 3/log2(2) + 5/log2(3)
    dcg = 3 / 1 + 5 / math.log2(3)
    ideal = 5 / 1 + 4 / math.log2(3)
    assert ndcg_at_k([0.9, 0.5, 0.1], [3, 5, 4], 2) == pytest.approx(dcg / ideal)
    assert ndcg_at_k([0.9, 0.5, 0.1], [3, 5, 4], 1) == pytest.approx(3 / 5)


def test_ndcg_ties_take_the_expected_value_over_orders():
    # all predictions tied: top-1 is a uniformly random item -> expected gain (1+5)/2
    assert ndcg_at_k([2.0, 2.0], [1, 5], 1) == pytest.approx(3 / 5)
    # tie between the last two only: the first position is decided
    value = ndcg_at_k([3.0, 1.0, 1.0], [5, 1, 4], 2)
    expected = (5 + (1 + 4) / 2 / math.log2(3)) / (5 + 4 / math.log2(3))
    assert value == pytest.approx(expected)


def test_ndcg_k_larger_than_list_and_bad_input():
    assert ndcg_at_k([1, 2], [4, 5], 10) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="k must be"):
        ndcg_at_k([1], [1], 0)
    with pytest.raises(ValueError, match="2 values"):
        ndcg_at_k([1, 2], [1], 1)
    with pytest.raises(ValueError, match="non-negative"):
        ndcg_at_k([1, 2], [-1, 1], 1)


def test_pair_accuracy_counts_only_pairs_rated_differently():
    # true 5, 5, 3: two informative pairs (5 vs 3, twice); the 5-5 pair does not count
    assert pair_accuracy([3.0, 2.0, 1.0], [5, 5, 3]) == pytest.approx(1.0)
    assert pair_accuracy([1.0, 2.0, 3.0], [5, 5, 3]) == pytest.approx(0.0)
    assert pair_accuracy([2.0, 0.0, 1.0], [5, 5, 3]) == pytest.approx(0.5)
    # a tied prediction is a coin toss: one half per tied pair
    assert pair_accuracy([1.0, 1.0, 1.0], [5, 4, 3]) == pytest.approx(0.5)
    # nothing to order: NaN, not a perfect score
    assert math.isnan(pair_accuracy([1.0, 2.0, 3.0], [4, 4, 4]))
    with pytest.raises(ValueError):
        pair_accuracy([1.0, 2.0], [1.0])


def test_pair_accuracy_tells_apart_what_ndcg_cannot():
    # three items, two of them 5 stars: every order has nDCG@3 >= 0.9, pairs ordered 0 or 1
    true = [5, 5, 4]
    best, worst = [3.0, 2.0, 1.0], [1.0, 2.0, 3.0]
    assert ndcg_at_k(worst, true, 3) > 0.9
    assert pair_accuracy(best, true) == 1.0 and pair_accuracy(worst, true) == 0.0
    assert "pairs ordered" in user_metrics(best, true)


def test_user_metrics_mae_rmse():
    scores = user_metrics([1.0, 3.0], [2.0, 5.0])
    assert scores["MAE"] == pytest.approx(1.5)
    assert scores["RMSE"] == pytest.approx(math.sqrt(2.5))
    assert set(scores) == {"MAE", "RMSE", "nDCG@1", "nDCG@3", "pairs ordered"}
    assert scores["pairs ordered"] == 1.0  # 2 < 5 and 1 < 3: the one pair is in order


# --- feature rows --------------------------------------------------------------------

def _tables():
    users = pd.DataFrame({"user_id": [1, 2, 3], "age": [20, 40, 60], "gender": ["F", "M", "F"],
                          "occupation": ["a", "b", "a"], "zip": ["12345", "90210", "1x"]})
    items = pd.DataFrame({"item_id": [10, 11], "title": ["x", "y"], "year": pd.array([1995, pd.NA], dtype="Int16"),
                          "genre_A": [True, False], "genre_B": [True, True]})
    return users, items


def test_rating_features_layout_and_unknown_codes():
    users, items = _tables()
    features = movielens_features(users, items)
    ratings = pd.DataFrame({"user_id": [1, 2, 99], "item_id": [10, 11, 10]})
    x = features.encode(ratings)
    layout = features.layout
    assert x.shape == (3, layout.width) and x.dtype == np.float32
    assert layout.categorical == ("gender", "age_group", "occupation", "zip_region", "decade")
    assert layout.multi_hot == ("genre_A", "genre_B")
    assert np.all(x[2, :4] == 0)                     # user 99 is unknown: code 0 everywhere
    assert x[1, 4] == 0                              # item 11 has no year: unknown decade
    np.testing.assert_array_equal(x[:, 5:], [[1, 1], [0, 1], [1, 1]])
    assert np.all(x[:2, :4] >= 1)


def test_rating_features_clear_errors():
    users, items = _tables()
    with pytest.raises(ValueError, match="lacks columns"):
        RatingFeatures(users, None, user_categorical=("nope",))
    with pytest.raises(ValueError, match="table is None"):
        RatingFeatures(None, None, item_categorical=("decade",))
    features = RatingFeatures(None, None, numeric=("v",))
    with pytest.raises(ValueError, match="lacks columns"):
        features.encode(pd.DataFrame({"user_id": [1], "item_id": [1]}))


def test_prior_item_statistics_use_only_earlier_ratings():
    t = pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-02", "2020-01-03", "2020-01-01"], utc=True)
    ratings = pd.DataFrame({"item_id": [1, 1, 1, 1, 2], "rating": [5.0, 1.0, 3.0, 2.0, 4.0], "timestamp": t})
    stats = prior_item_statistics(ratings, prior_weight=0.0)
    # row 0: nothing earlier; rows 1 and 2 (same day) see only row 0; row 3 sees rows 0-2
    np.testing.assert_allclose(np.expm1(stats["item_prior_log_count"]), [0, 1, 1, 3, 0])
    assert stats["item_prior_mean"].iloc[1] == pytest.approx(5.0)
    assert stats["item_prior_mean"].iloc[3] == pytest.approx(3.0)
    # the rating itself never enters its own feature: changing it leaves its row unchanged
    changed = prior_item_statistics(ratings.assign(rating=[5.0, 1.0, 3.0, 5.0, 4.0]), prior_weight=0.0)
    assert changed["item_prior_mean"].iloc[3] == stats["item_prior_mean"].iloc[3]


# --- the scenario splits leak nothing --------------------------------------------------

def _ratings(n_users=30, n_items=40, per_user=20, seed=0):
    rng = np.random.default_rng(seed)
    rows = [(u, i) for u in range(n_users) for i in rng.choice(n_items, per_user, replace=False)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id"])
    frame["rating"] = rng.integers(1, 6, len(frame))
    frame["timestamp"] = pd.to_datetime(rng.integers(0, 10**8, len(frame)), unit="s", utc=True)
    return frame


def test_new_users_and_items_never_reach_training_tasks():
    ratings = _ratings()
    users_new, items_new = [0, 1, 2, 3, 4], [0, 1, 2, 3]
    scenarios = rating_scenarios(ratings, items_new, users_new, min_ratings=5, max_ratings=100, n_query=3)
    warm_rows = np.concatenate([np.r_[e.support, e.query] for e in scenarios["warm"]])
    assert not ratings.iloc[warm_rows]["user_id"].isin(users_new).any()
    assert not ratings.iloc[warm_rows]["item_id"].isin(items_new).any()
    for name in ["new_user", "new_user_new_item"]:
        assert all(e.task in users_new for e in scenarios[name])
    for e in scenarios["new_item"] + scenarios["new_user_new_item"]:
        assert ratings.iloc[np.r_[e.support, e.query]]["item_id"].isin(items_new).all()


def test_truncate_support_states_who_is_left_out():
    episodes = [Episode(support=np.arange(n), query=np.array([100]), support_y=np.ones(n), query_y=np.ones(1), task=n)
                for n in [2, 5, 8]]
    kept = truncate_support(episodes, 5, seed=0)
    assert [e.task for e in kept] == [5, 8]            # the user with 2 support ratings is left out
    assert all(len(e.support) == 5 for e in kept)
    assert set(kept[1].support) <= set(range(8))


# --- models learn ----------------------------------------------------------------------

def _synthetic_features(seed=0):
    """Ratings that depend on a user attribute and an item attribute (plus noise)."""
    rng = np.random.default_rng(seed)
    users = pd.DataFrame({"user_id": np.arange(40), "taste": rng.choice(["x", "y"], 40)})
    items = pd.DataFrame({"item_id": np.arange(30), "kind": rng.choice(["p", "q", "r"], 30)})
    ratings = _ratings(40, 30, 20, seed)
    taste = users.set_index("user_id").loc[ratings["user_id"], "taste"].to_numpy()
    kind = items.set_index("item_id").loc[ratings["item_id"], "kind"].to_numpy()
    ratings["rating"] = 3 + np.where(taste == "x", 1, -1) * np.where(kind == "p", 1, -0.5) + 0.1 * rng.normal(size=len(ratings))
    features = RatingFeatures(users, items, user_categorical=("taste",), item_categorical=("kind",))
    return ratings, features


def test_global_model_loss_falls():
    torch.manual_seed(0)
    ratings, features = _synthetic_features()
    model = MeLU(features.layout, embedding_dim=4, hidden=(8,), rating_mean=3.0)
    losses = fit_global(model, features.encode(ratings), ratings["rating"], epochs=15, batch_size=64, lr=1e-2)
    assert losses[-1] < 0.5 * losses[0]


def test_melu_meta_training_lowers_the_query_error():
    torch.manual_seed(0)
    ratings, features = _synthetic_features()
    x, y = features.encode(ratings), ratings["rating"].to_numpy(float)
    scenarios = rating_scenarios(ratings, [], [], min_ratings=10, max_ratings=100, n_query=5)
    tasks = [(x[e.support], e.support_y, x[e.query], e.query_y) for e in scenarios["warm"]]
    model = MeLU(features.layout, embedding_dim=4, hidden=(8,), rating_mean=3.0)
    melu = ANIL(model, loss_fn=squared_error, head_names=model.decision_parameter_names(), inner_steps=2,
                inner_lr=0.05, meta_lr=1e-2, tasks_per_step=8, device="cpu")

    def error():
        return evaluate_episodes(lambda e: melu.adapt(x[e.support], e.support_y).predict(x[e.query]),
                                 scenarios["warm"])["MAE"].mean()

    before = error()
    melu.meta_train_tasks(tasks, meta_steps=60)
    assert error() < 0.6 * before
    assert isinstance(melu.adapt(x[:3], y[:3]), RegressionAdapted)
    # the local update touches the decision layers only
    assert all(name.startswith("decision.") for name in melu.adapt_names())


def test_melu_rejects_rows_of_the_wrong_width():
    _, features = _synthetic_features()
    model = MeLU(features.layout)
    with pytest.raises(ValueError, match="expects rows of 2 features"):
        model(torch.zeros(3, 5))


def test_item_mean_and_mf_baselines():
    ratings = pd.DataFrame({"user_id": [1, 1, 2, 2, 3], "item_id": [10, 11, 10, 11, 10],
                            "rating": [5.0, 1.0, 5.0, 1.0, 5.0]})
    means = ItemMean(prior=0.0).fit(ratings["item_id"], ratings["rating"])
    np.testing.assert_allclose(means.predict([10], [5.0], [10, 11, 99]), [5.0, 1.0, 17 / 5])
    shifted = ItemMean(prior=0.0, user_offset=True).fit(ratings["item_id"], ratings["rating"])
    np.testing.assert_allclose(shifted.predict([11], [2.0], [10]), [6.0])   # +1 offset from the support
    mf = BiasedMF(factors=2, epochs=300, lr=0.05, weight_decay=0.0, fold_in_l2=0.1).fit(
        ratings["user_id"], ratings["item_id"], ratings["rating"])
    assert mf.losses[-1] < 0.05
    prediction = mf.predict([10, 11], [5.0, 1.0], [10, 11])
    assert prediction[0] > 4 and prediction[1] < 2


def test_ml_1m_format_goes_through_the_same_pipeline():
    from metaecom.data import movielens
    lines = [f"{u}::{m}::{(u + m) % 5 + 1}::{978300000 + 100 * u + m}" for u in (1, 2) for m in range(1, 15)]
    ratings = movielens.parse_1m_ratings("\n".join(lines).encode() + b"\n")
    users = movielens.parse_1m_users(b"1::F::1::10::48067\n2::M::56::16::70072\n")
    movies = movielens.parse_1m_movies("".join(f"{m}::Film {m} (199{m % 10})::Comedy|Drama\n"
                                               for m in range(1, 15)).encode())
    features = movielens_features(users, movies)
    x = features.encode(ratings)
    assert x.shape == (len(ratings), features.layout.width)
    assert np.all(x[:, :5] >= 1)                     # every attribute known: no "unknown" codes
    scenarios = rating_scenarios(ratings, items_new=[], users_new=[2], min_ratings=13, n_query=10)
    assert [e.task for e in scenarios["warm"]] == [1] and [e.task for e in scenarios["new_user"]] == [2]


def test_early_stopping_restores_the_best_round():
    torch.manual_seed(0)
    ratings, features = _synthetic_features()
    x = features.encode(ratings)
    scenarios = rating_scenarios(ratings, [], [], min_ratings=10, max_ratings=100, n_query=5)
    tasks = [(x[e.support], e.support_y, x[e.query], e.query_y) for e in scenarios["warm"]]
    model = MeLU(features.layout, embedding_dim=4, hidden=(8,), rating_mean=3.0)
    melu = ANIL(model, loss_fn=squared_error, head_names=model.decision_parameter_names(), inner_steps=1,
                inner_lr=0.05, meta_lr=1e-2, tasks_per_step=4, device="cpu")
    scores = iter([5.0, 1.0, 3.0, 4.0])          # the round after 4 steps is best
    snapshots = []

    def validate():
        snapshots.append(copy.deepcopy(model.state_dict()))
        return next(scores)

    from metaecom.training import meta_train_with_early_stopping
    result = meta_train_with_early_stopping(melu, validate, max_steps=10, every=4, tasks=tasks)
    history = result.curve
    assert list(history["step"]) == [0, 4, 8, 10] and result.kept_step == 4 and result.improved
    assert len(melu.history) == 10
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, snapshots[1][name])
