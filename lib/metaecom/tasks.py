"""Episodes: how a data set is cut into the many small tasks a meta-learner trains on.

An **episode** is one few-shot task. It has two parts:

- the **support** set, the few labelled examples the learner may adapt on (for example
  5 photos of each of 20 product categories, or the first ratings of a new user), and
- the **query** set, further examples of the *same* task on which the adapted learner is
  scored. The query labels are never shown to the learner during adaptation.

Meta-training repeats "adapt on support, score on query" over thousands of episodes, so
the learner gets good at *learning from a few examples* rather than at one fixed task.

For the scores to mean anything, the tasks used for meta-testing must be new: their
classes, users, items, countries or products must not appear in meta-training. This
module therefore first **splits the task units** (classes, users and items, products)
into disjoint meta-train / meta-validation / meta-test groups, and only then samples
episodes inside each group. Splitting rows at random instead would leak the test tasks
into training and overstate how well the learner copes with something new.

Every episode stores *row indices* into the caller's table or array (not the data itself),
so one data set in memory serves any number of episodes. Every sampler takes a ``seed``:
the same arguments always give the same episodes.
"""

from __future__ import annotations

import collections.abc
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

RATING_SCENARIOS = ("warm", "new_user", "new_item", "new_user_new_item")


@dataclass(frozen=True, eq=False)
class Episode:
    """One few-shot task: what the learner may adapt on (support) and what it is scored on (query).

    ``support`` and ``query`` are integer row indices into the source table or array;
    ``support_y`` and ``query_y`` are the matching targets. For classification the targets
    are episode labels ``0..n_way-1`` and ``classes[i]`` is the original label behind
    episode label ``i``; for regression the targets are the values themselves and ``task``
    names the task (a user id, a country, a product). Episodes compare by identity
    (``eq=False``), because comparing NumPy arrays field by field has no single answer.
    """

    support: np.ndarray
    query: np.ndarray
    support_y: np.ndarray
    query_y: np.ndarray
    classes: tuple | None = None
    task: object = None

    def __post_init__(self):
        if len(self.support) != len(self.support_y):
            raise ValueError(f"support has {len(self.support)} rows but support_y has {len(self.support_y)}")
        if len(self.query) != len(self.query_y):
            raise ValueError(f"query has {len(self.query)} rows but query_y has {len(self.query_y)}")


# ---------------------------------------------------------------------------------------
# Small checks shared by the functions below
# ---------------------------------------------------------------------------------------

def _check_count(name: str, value, minimum: int) -> int:
    """``value`` as an int, or a ValueError if it is not an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_fraction(name: str, value) -> float:
    """``value`` as a float strictly between 0 and 1, or a ValueError."""
    if not 0 < value < 1:
        raise ValueError(f"{name} must be between 0 and 1 (exclusive), got {value!r}")
    return float(value)


def _require_columns(table: pd.DataFrame, columns, what: str) -> None:
    """Raise a ValueError naming the columns of ``columns`` that ``table`` lacks."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}; it has {list(table.columns)}")


def _plain(value):
    """A NumPy scalar as the matching Python value (``np.int64(3)`` -> ``3``); others unchanged."""
    return value.item() if isinstance(value, np.generic) else value


def _latest(first_time: pd.Series, fraction: float, what: str) -> np.ndarray:
    """The keys of ``first_time`` (key -> time) in the latest ``fraction``, sorted.

    Ties in time are broken by key, so the result does not depend on row order. At least
    one key is new and at least one is old.
    """
    n = len(first_time)
    if n < 2:
        raise ValueError(f"need at least 2 {what} to split into old and new, got {n}")
    n_new = min(max(1, round(fraction * n)), n - 1)
    by_time = first_time.sort_index(kind="stable").sort_values(kind="stable")
    return np.sort(by_time.index.to_numpy()[-n_new:])


# ---------------------------------------------------------------------------------------
# Classification: class-disjoint splits and N-way K-shot episodes
# ---------------------------------------------------------------------------------------

def split_classes(labels, fractions=(0.6, 0.2, 0.2), seed: int = 0) -> dict[str, np.ndarray]:
    """Split the distinct labels into class-disjoint meta-train, meta-val and meta-test sets.

    Few-shot classification is judged on classes the learner has never seen, so the split
    is over *classes*, not rows. The sorted distinct labels are shuffled with ``seed`` and
    cut by ``fractions`` (train, val, test), each split getting at least one class. Returns
    ``{"train": ..., "val": ..., "test": ...}``, each a sorted array of labels.
    """
    fractions = np.asarray(fractions, dtype=float)
    if fractions.shape != (3,) or np.any(fractions <= 0) or not np.isclose(fractions.sum(), 1.0):
        raise ValueError(f"fractions must be three positive numbers that sum to 1, got {fractions.tolist()}")
    classes = np.unique(np.asarray(labels).ravel())
    n = len(classes)
    if n < 3:
        raise ValueError(f"need at least 3 classes for a train/val/test split, got {n}")

    # Largest-remainder rounding: floor every share, then hand the leftover classes to the
    # splits whose shares were rounded down most.
    shares = fractions * n
    counts = np.floor(shares).astype(int)
    for i in np.argsort(-(shares - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    # No split may be empty: move a class over from the largest split.
    for i in range(3):
        if counts[i] == 0:
            counts[np.argmax(counts)] -= 1
            counts[i] = 1

    shuffled = classes[np.random.default_rng(seed).permutation(n)]
    train, val, test = np.split(shuffled, np.cumsum(counts)[:-1])
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


class FewShotSampler:
    """Draws N-way K-shot episodes from any labelled table, reproducibly.

    ``labels`` holds one label per row; ``classes`` optionally restricts sampling to a
    subset (for example the meta-test classes from :func:`split_classes`). Each episode
    picks ``n_way`` classes at random, then ``k_shot`` support and ``n_query`` query rows
    of each, with no row in both. Rows are ordered class by class (all shots of episode
    class 0, then class 1, ...), and the targets are episode labels ``0..n_way-1``.
    Requests the data cannot satisfy fail here, at construction, not halfway through
    training. Two samplers built with the same arguments produce the same episodes.
    """

    def __init__(self, labels, n_way: int, k_shot: int, n_query: int, classes=None, seed: int = 0):
        self.n_way = _check_count("n_way", n_way, 1)
        self.k_shot = _check_count("k_shot", k_shot, 1)
        self.n_query = _check_count("n_query", n_query, 0)
        self.seed = seed

        labels = np.asarray(labels)
        if labels.ndim != 1:
            raise ValueError(f"labels must be 1-D (one label per row), got shape {labels.shape}")
        if labels.size == 0:
            raise ValueError("labels is empty")

        # The rows of each class, computed once: sort the rows by class, cut at class ends.
        present, row_class, sizes = np.unique(labels, return_inverse=True, return_counts=True)
        rows_by_class = np.split(np.argsort(row_class, kind="stable"), np.cumsum(sizes)[:-1])

        if classes is None:
            keep = np.arange(len(present))
        else:
            position = {label: i for i, label in enumerate(present.tolist())}
            wanted = np.asarray(classes).ravel().tolist()
            if not wanted:
                raise ValueError("classes is empty")
            unknown = [c for c in wanted if c not in position]
            if unknown:
                raise ValueError(f"classes {unknown[:5]} do not occur in labels "
                                 f"({len(unknown)} unknown of {len(wanted)} asked for)")
            if len(set(wanted)) != len(wanted):
                raise ValueError("classes lists some class more than once")
            keep = np.array([position[c] for c in wanted])

        self.classes = present[keep]                      # the classes episodes are drawn from
        self._rows = [rows_by_class[i] for i in keep]     # their row indices, in the same order
        self._sizes = sizes[keep]

        if self.n_way > len(self.classes):
            raise ValueError(f"asked for {self.n_way}-way episodes but only {len(self.classes)} "
                             f"classes are available")
        per_class = self.k_shot + self.n_query
        too_small = np.flatnonzero(self._sizes < per_class)
        if too_small.size:
            smallest = too_small[np.argmin(self._sizes[too_small])]
            raise ValueError(
                f"asked for {self.k_shot} support + {self.n_query} query = {per_class} rows per class, "
                f"but class {_plain(self.classes[smallest])!r} has only {self._sizes[smallest]} rows "
                f"({too_small.size} of {len(self.classes)} classes are too small)")

        self._rng = np.random.default_rng(seed)

    def sample(self) -> Episode:
        """Draw the next episode."""
        rng, k = self._rng, self.k_shot
        chosen = rng.choice(len(self.classes), size=self.n_way, replace=False)
        # One row of `picks` per episode class: its first k entries are support, the rest query.
        picks = np.stack([rng.choice(self._rows[c], size=k + self.n_query, replace=False) for c in chosen])
        episode_labels = np.arange(self.n_way)
        return Episode(
            support=picks[:, :k].ravel(),
            query=picks[:, k:].ravel(),
            support_y=np.repeat(episode_labels, k),
            query_y=np.repeat(episode_labels, self.n_query),
            classes=tuple(self.classes[chosen].tolist()),
        )

    def episodes(self, n: int) -> list[Episode]:
        """Draw the next ``n`` episodes."""
        n = _check_count("n", n, 0)
        return [self.sample() for _ in range(n)]


def task_batches(tasks, batch_size: int, rng: np.random.Generator) -> Callable[[], list]:
    """A function returning the next ``batch_size`` tasks from any task source.

    ``tasks`` is one of: a callable ``tasks(rng) -> task``, called ``batch_size`` times with
    ``rng``; a sequence of tasks, from which ``batch_size`` are drawn at random with ``rng``
    (without replacement when there are enough); or an iterator yielding tasks (running
    out is an error). Meta-learners that train on explicit tasks share this rule.
    """
    batch_size = _check_count("batch_size", batch_size, 1)
    if callable(tasks):
        return lambda: [tasks(rng) for _ in range(batch_size)]
    if isinstance(tasks, collections.abc.Sequence):
        if len(tasks) == 0:
            raise ValueError("the sequence of tasks is empty")
        replace = len(tasks) < batch_size
        return lambda: [tasks[i] for i in rng.choice(len(tasks), size=batch_size, replace=replace)]
    if isinstance(tasks, collections.abc.Iterable):
        iterator = iter(tasks)

        def next_batch():
            try:
                return [next(iterator) for _ in range(batch_size)]
            except StopIteration:
                raise ValueError("the task iterator ran out before the last step") from None
        return next_batch
    raise ValueError(f"tasks must be a callable, a sequence or an iterator of tasks, got {type(tasks).__name__}")


# ---------------------------------------------------------------------------------------
# Recommendation: the cold-start scenarios of MeLU
# ---------------------------------------------------------------------------------------

def split_users_items_by_time(ratings: pd.DataFrame, new_fraction: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Declare the most recently arrived users and items "new"; returns ``(users_new, items_new)``.

    A user is new if their first rating is among the latest ``new_fraction`` of users
    ordered by first-rating time; an item likewise by its first rating. MeLU (Lee et al.,
    2019) split MovieLens by movie release year and user join time; the ``timestamp``
    column is the analogue available in any ratings log. Ties are broken by id, so the
    split is deterministic. Both results are sorted arrays of ids.
    """
    _require_columns(ratings, ["user_id", "item_id", "timestamp"], "ratings")
    if len(ratings) == 0:
        raise ValueError("ratings is empty")
    new_fraction = _check_fraction("new_fraction", new_fraction)
    users_new = _latest(ratings.groupby("user_id")["timestamp"].min(), new_fraction, "users")
    items_new = _latest(ratings.groupby("item_id")["timestamp"].min(), new_fraction, "items")
    return users_new, items_new


def rating_scenarios(ratings: pd.DataFrame, items_new, users_new, min_ratings: int = 13, max_ratings: int = 100,
                     n_query: int = 10, seed: int = 0) -> dict[str, list[Episode]]:
    """One task per user in each of MeLU's four cold-start scenarios (Lee et al., 2019).

    Every rating falls in exactly one scenario, by whether its user and its item are new:
    ``"warm"`` (existing user, existing item; the meta-training data), ``"new_user"``,
    ``"new_item"`` and ``"new_user_new_item"``. So a new user's ratings never reach
    ``"warm"`` or ``"new_item"``, and a new item's never reach ``"warm"`` or ``"new_user"``.
    Within a scenario, a user with ``min_ratings`` to ``max_ratings`` ratings (inclusive)
    there forms one task: ``n_query`` of those ratings, chosen at random, are the query and
    the rest the support. Other users give no task in that scenario. ``support`` and
    ``query`` are *positional* row indices (use ``ratings.iloc[episode.support]``), sorted;
    the targets are the ratings as floats and ``task`` is the user id.
    """
    _require_columns(ratings, ["user_id", "item_id", "rating"], "ratings")
    if len(ratings) == 0:
        raise ValueError("ratings is empty")
    n_query = _check_count("n_query", n_query, 1)
    min_ratings = _check_count("min_ratings", min_ratings, n_query + 1)  # leaves >= 1 support rating
    max_ratings = _check_count("max_ratings", max_ratings, min_ratings)

    user_is_new = ratings["user_id"].isin(list(users_new)).to_numpy()
    item_is_new = ratings["item_id"].isin(list(items_new)).to_numpy()
    in_scenario = {
        "warm": ~user_is_new & ~item_is_new,
        "new_user": user_is_new & ~item_is_new,
        "new_item": ~user_is_new & item_is_new,
        "new_user_new_item": user_is_new & item_is_new,
    }
    user_ids = ratings["user_id"].to_numpy()
    values = ratings["rating"].to_numpy(dtype=float)

    scenarios = {}
    for number, name in enumerate(RATING_SCENARIOS):
        rng = np.random.default_rng([seed, number])  # each scenario has its own random stream
        rows = np.flatnonzero(in_scenario[name])
        rows_by_user = pd.Series(user_ids[rows]).groupby(user_ids[rows], sort=True).indices
        episodes = []
        for user in sorted(rows_by_user):
            user_rows = rows[rows_by_user[user]]
            if not min_ratings <= len(user_rows) <= max_ratings:
                continue
            shuffled = rng.permutation(user_rows)
            support, query = np.sort(shuffled[n_query:]), np.sort(shuffled[:n_query])
            episodes.append(Episode(support=support, query=query, support_y=values[support],
                                    query_y=values[query], task=_plain(user)))
        scenarios[name] = episodes
    return scenarios


# ---------------------------------------------------------------------------------------
# Regression: one task per group (country, store, ...)
# ---------------------------------------------------------------------------------------

def group_tasks(table: pd.DataFrame, group_col: str, target_col: str, k_shot: int, n_query: int, seed: int = 0,
                groups=None, skip_small: bool = False) -> list[Episode]:
    """One regression episode per group of rows, e.g. one country per task.

    For each group (all groups in sorted order, or those listed in ``groups`` in the order
    given), ``k_shot`` support rows and ``n_query`` query rows are drawn at random without
    overlap. ``support``/``query`` are positional row indices; the targets come from
    ``target_col`` as floats and ``task`` is the group key. A group with fewer than
    ``k_shot + n_query`` rows is an error, or is left out when ``skip_small`` is true (an
    empty group, such as an unused category, is treated the same way).
    """
    _require_columns(table, [group_col, target_col], "table")
    k_shot = _check_count("k_shot", k_shot, 1)
    n_query = _check_count("n_query", n_query, 0)
    per_group = k_shot + n_query

    rows_by_group = table.groupby(group_col, sort=True, observed=True).indices
    column = table[group_col]
    known = set(column.cat.categories) if isinstance(column.dtype, pd.CategoricalDtype) else set(rows_by_group)
    if groups is None:
        wanted = sorted(rows_by_group)
    else:
        wanted = list(groups)
        unknown = [g for g in wanted if g not in known]
        if unknown:
            raise ValueError(f"groups {unknown[:5]} do not exist in column {group_col!r}")
    if not wanted:
        raise ValueError("table has no groups")

    targets = table[target_col].to_numpy(dtype=float)
    rng = np.random.default_rng(seed)
    episodes = []
    for group in wanted:
        rows = rows_by_group.get(group, np.array([], dtype=int))
        if len(rows) < per_group:
            if skip_small:
                continue
            if len(rows) == 0:
                raise ValueError(f"group {group!r} is empty (it has no rows in the table)")
            raise ValueError(f"group {group!r} has {len(rows)} rows, fewer than k_shot + n_query = {per_group} "
                             f"(pass skip_small=True to leave such groups out)")
        picked = rng.choice(rows, size=per_group, replace=False)
        support, query = picked[:k_shot], picked[k_shot:]
        episodes.append(Episode(support=support, query=query, support_y=targets[support],
                                query_y=targets[query], task=_plain(group)))
    return episodes


# ---------------------------------------------------------------------------------------
# Forecasting: sliding windows per product, and an old/new split by launch date
# ---------------------------------------------------------------------------------------

def _check_series(series: pd.DataFrame) -> None:
    """Check that ``series`` has product/period/value columns and one row per product and period."""
    _require_columns(series, ["product", "period", "value"], "series")
    if len(series) == 0:
        raise ValueError("series is empty")
    repeated = series.duplicated(["product", "period"])
    if repeated.any():
        first = series.loc[repeated, ["product", "period"]].iloc[0]
        raise ValueError(f"series has more than one row for product {_plain(first['product'])!r} "
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
    history = _check_count("history", history, 1)
    horizon = _check_count("horizon", horizon, 1)
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
            raise ValueError(f"product {_plain(product)!r} has {len(ordered)} periods, fewer than "
                             f"history + horizon = {window} (pass min_length={window} to skip such products)")
        pairs = sliding_window_view(ordered, window)    # [n_windows, history + horizon], a view
        windows[_plain(product)] = (pairs[:, :history].copy(), pairs[:, history:].copy())
    return windows


def split_products_by_launch(series: pd.DataFrame, test_fraction: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Split products into old (meta-train) and newly launched (meta-test); returns ``(old, new)``.

    A product's launch is its first period with a value above zero. The products launched
    last, ``test_fraction`` of them, are new, which mimics forecasting for products that
    arrive after the model was trained. Ties are broken by product key, so the split is
    deterministic. Products that never sell have no launch and are in neither array.
    """
    _check_series(series)
    test_fraction = _check_fraction("test_fraction", test_fraction)
    sold = series[series["value"] > 0]
    launch = sold.groupby("product", sort=True)["period"].min()
    new = _latest(launch, test_fraction, "products that sell")
    old = np.sort(launch.index.to_numpy()[~launch.index.isin(new)])
    return old, new
