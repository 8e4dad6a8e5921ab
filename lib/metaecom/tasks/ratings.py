"""Per-user rating tasks: the cold-start scenarios of MeLU (new users, new items, both)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from metaecom.checks import check_count, check_fraction, latest, plain, require_columns
from metaecom.tasks.episodes import Episode
from metaecom.tasks.feasibility import TaskDict, checked_by, refuse_infeasible, unit_report

RATING_SCENARIOS = ("warm", "new_user", "new_item", "new_user_new_item")


def split_users_items_by_time(ratings: pd.DataFrame, new_fraction: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Declare the most recently arrived users and items "new"; returns ``(users_new, items_new)``.

    A user is new if their first rating is among the latest ``new_fraction`` of users
    ordered by first-rating time; an item likewise by its first rating. MeLU (Lee et al.,
    2019) split MovieLens by movie release year and user join time; the ``timestamp``
    column is the analogue available in any ratings log. Ties are broken by id, so the
    split is deterministic. Both results are sorted arrays of ids.
    """
    require_columns(ratings, ["user_id", "item_id", "timestamp"], "ratings")
    if len(ratings) == 0:
        raise ValueError("ratings is empty")
    new_fraction = check_fraction("new_fraction", new_fraction)
    users_new = latest(ratings.groupby("user_id")["timestamp"].min(), new_fraction, "users")
    items_new = latest(ratings.groupby("item_id")["timestamp"].min(), new_fraction, "items")
    return users_new, items_new


def _scenario_users(ratings: pd.DataFrame, items_new, users_new) -> dict[str, dict]:
    """For each scenario, ``{user: positional rows}`` of its ratings, users in sorted order."""
    user_is_new = ratings["user_id"].isin(list(users_new)).to_numpy()
    item_is_new = ratings["item_id"].isin(list(items_new)).to_numpy()
    in_scenario = {
        "warm": ~user_is_new & ~item_is_new,
        "new_user": user_is_new & ~item_is_new,
        "new_item": ~user_is_new & item_is_new,
        "new_user_new_item": user_is_new & item_is_new,
    }
    user_ids = ratings["user_id"].to_numpy()
    pools = {}
    for name in RATING_SCENARIOS:
        rows = np.flatnonzero(in_scenario[name])
        rows_by_user = pd.Series(user_ids[rows]).groupby(user_ids[rows], sort=True).indices
        pools[name] = {user: rows[rows_by_user[user]] for user in sorted(rows_by_user)}
    return pools


def _check_sizes(ratings: pd.DataFrame, min_ratings, max_ratings, n_query) -> tuple[int, int, int]:
    """Check the table and the task sizes; returns ``(min_ratings, max_ratings, n_query)`` as ints."""
    require_columns(ratings, ["user_id", "item_id", "rating"], "ratings")
    if len(ratings) == 0:
        raise ValueError("ratings is empty")
    n_query = check_count("n_query", n_query, 1)
    min_ratings = check_count("min_ratings", min_ratings, n_query + 1)  # leaves >= 1 support rating
    return min_ratings, check_count("max_ratings", max_ratings, min_ratings), n_query


def _out_of_range(pools: dict, min_ratings: int, max_ratings: int) -> pd.DataFrame:
    """The feasibility report of the (scenario, user) pairs with too few or too many ratings."""
    rows = []
    for name, by_user in pools.items():
        for user, user_rows in by_user.items():
            n = len(user_rows)
            if n < min_ratings:
                rows.append((plain(user), n, min_ratings, f"user {plain(user)!r} has {n} ratings in "
                             f"scenario {name!r}, fewer than min_ratings = {min_ratings}", name))
            elif n > max_ratings:
                rows.append((plain(user), n, max_ratings, f"user {plain(user)!r} has {n} ratings in "
                             f"scenario {name!r}, more than max_ratings = {max_ratings}", name))
    units, available, needed, reasons, scenarios = zip(*rows) if rows else ((),) * 5
    return unit_report(units, available, needed, reasons, scenario=scenarios)


def _infeasible_users(ratings: pd.DataFrame, items_new, users_new, min_ratings: int = 13, max_ratings: int = 100,
                      n_query: int = 10, seed: int = 0, drop_infeasible: bool = True) -> pd.DataFrame:
    """The users :func:`rating_scenarios` leaves out of each scenario, as the feasibility report
    (columns ``unit`` (the user), ``available``, ``needed`` (the bound broken), ``reason``, ``scenario``)."""
    min_ratings, max_ratings, _ = _check_sizes(ratings, min_ratings, max_ratings, n_query)
    return _out_of_range(_scenario_users(ratings, items_new, users_new), min_ratings, max_ratings)


@checked_by(_infeasible_users)
def rating_scenarios(ratings: pd.DataFrame, items_new, users_new, min_ratings: int = 13, max_ratings: int = 100,
                     n_query: int = 10, seed: int = 0, drop_infeasible: bool = True) -> dict[str, list[Episode]]:
    """One task per user in each of MeLU's four cold-start scenarios (Lee et al., 2019).

    Every rating falls in exactly one scenario, by whether its user and its item are new:
    ``"warm"`` (existing user, existing item; the meta-training data), ``"new_user"``,
    ``"new_item"`` and ``"new_user_new_item"``. So a new user's ratings never reach
    ``"warm"`` or ``"new_item"``, and a new item's never reach ``"warm"`` or ``"new_user"``.
    Within a scenario, a user with ``min_ratings`` to ``max_ratings`` ratings (inclusive)
    there forms one task: ``n_query`` of those ratings, chosen at random, are the query and
    the rest the support. ``support`` and ``query`` are *positional* row indices (use
    ``ratings.iloc[episode.support]``), sorted; the targets are the ratings as floats and
    ``task`` is the user id.

    Other users give no task in that scenario: that range *is* MeLU's definition of a task,
    so, unlike the other builders, ``drop_infeasible`` is true by default. The users left
    out are in the result's ``.dropped`` (the feasibility report, with a ``scenario``
    column); ``infeasible_units(rating_scenarios, ...)`` lists them without building, and
    ``drop_infeasible=False`` makes any of them an error.
    """
    min_ratings, max_ratings, n_query = _check_sizes(ratings, min_ratings, max_ratings, n_query)
    pools = _scenario_users(ratings, items_new, users_new)
    dropped = _out_of_range(pools, min_ratings, max_ratings)
    if not drop_infeasible:
        refuse_infeasible(dropped, f"{len(dropped)} (scenario, user) pairs are outside min_ratings = {min_ratings} "
                          f"to max_ratings = {max_ratings}", "rating_scenarios")
    values = ratings["rating"].to_numpy(dtype=float)

    scenarios = TaskDict(dropped=dropped)
    for number, name in enumerate(RATING_SCENARIOS):
        rng = np.random.default_rng([seed, number])  # each scenario has its own random stream
        episodes = []
        for user, user_rows in pools[name].items():
            if not min_ratings <= len(user_rows) <= max_ratings:
                continue                              # listed in `dropped`; draws nothing at random
            shuffled = rng.permutation(user_rows)
            support, query = np.sort(shuffled[n_query:]), np.sort(shuffled[:n_query])
            episodes.append(Episode(support=support, query=query, support_y=values[support],
                                    query_y=values[query], task=plain(user)))
        scenarios[name] = episodes
    return scenarios
