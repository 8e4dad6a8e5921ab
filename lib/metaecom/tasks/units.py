"""Per-unit regression tasks: one task per group of rows (a country, a store, a product)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from metaecom.checks import check_count, plain, require_columns
from metaecom.tasks.episodes import Episode
from metaecom.tasks.feasibility import TaskList, checked_by, refuse_infeasible, unit_report


def _group_pool(table: pd.DataFrame, group_col: str, target_col: str, k_shot, n_query, groups):
    """Check the arguments; returns ``(k_shot, n_query, rows_by_group, wanted)``.

    ``wanted`` is every group with rows, sorted, or ``groups`` in the order given (which may
    name a group without rows, such as an unused category, but not an unknown one).
    """
    require_columns(table, [group_col, target_col], "table")
    k_shot = check_count("k_shot", k_shot, 1)
    n_query = check_count("n_query", n_query, 0)
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
    return k_shot, n_query, rows_by_group, wanted


def _small_groups(rows_by_group: dict, wanted: list, k_shot: int, n_query: int) -> pd.DataFrame:
    """The feasibility report of the groups in ``wanted`` with fewer than ``k_shot + n_query`` rows."""
    needed = k_shot + n_query
    sizes = [len(rows_by_group.get(group, ())) for group in wanted]
    small = [(plain(g), n) for g, n in zip(wanted, sizes) if n < needed]
    return unit_report([g for g, _ in small], [n for _, n in small], [needed] * len(small),
                       [f"group {g!r} is empty (it has no rows in the table)" if n == 0 else
                        f"group {g!r} has {n} rows, fewer than k_shot + n_query = {needed} "
                        f"({k_shot} support + {n_query} query)" for g, n in small])


def _infeasible_groups(table: pd.DataFrame, group_col: str, target_col: str, k_shot: int, n_query: int,
                       seed: int = 0, groups=None, skip_small: bool = False,
                       drop_infeasible: bool = False) -> pd.DataFrame:
    """The groups :func:`group_tasks` cannot draw ``k_shot + n_query`` rows from, as the
    feasibility report (``unit`` is the group key); takes its arguments and builds nothing."""
    k_shot, n_query, rows_by_group, wanted = _group_pool(table, group_col, target_col, k_shot, n_query, groups)
    return _small_groups(rows_by_group, wanted, k_shot, n_query)


@checked_by(_infeasible_groups)
def group_tasks(table: pd.DataFrame, group_col: str, target_col: str, k_shot: int, n_query: int, seed: int = 0,
                groups=None, skip_small: bool = False, drop_infeasible: bool = False) -> list[Episode]:
    """One regression episode per group of rows, e.g. one country per task.

    For each group (all groups in sorted order, or those listed in ``groups`` in the order
    given), ``k_shot`` support rows and ``n_query`` query rows are drawn at random without
    overlap. ``support``/``query`` are positional row indices; the targets come from
    ``target_col`` as floats and ``task`` is the group key.

    A group with fewer than ``k_shot + n_query`` rows (an empty group, such as an unused
    category, included) cannot give a task. All groups are checked before anything is
    drawn: by default such groups are one error listing them; with ``drop_infeasible=True``
    (``skip_small=True`` is the older name for the same) they are left out, and the
    returned list's ``.dropped`` holds the feasibility report for them. Groups left out
    draw nothing at random, so the other groups' episodes do not depend on them.
    """
    k_shot, n_query, rows_by_group, wanted = _group_pool(table, group_col, target_col, k_shot, n_query, groups)
    dropped = _small_groups(rows_by_group, wanted, k_shot, n_query)
    if not (drop_infeasible or skip_small):
        refuse_infeasible(dropped, f"{len(dropped)} of {len(wanted)} groups cannot supply "
                          f"k_shot + n_query = {k_shot + n_query} rows", "group_tasks")

    targets = table[target_col].to_numpy(dtype=float)
    rng = np.random.default_rng(seed)
    episodes = TaskList(dropped=dropped)
    for group in wanted:
        rows = rows_by_group.get(group, ())
        if len(rows) < k_shot + n_query:
            continue                                  # listed in `dropped`; draws nothing at random
        picked = rng.choice(rows, size=k_shot + n_query, replace=False)
        support, query = picked[:k_shot], picked[k_shot:]
        episodes.append(Episode(support=support, query=query, support_y=targets[support],
                                query_y=targets[query], task=plain(group)))
    return episodes
