"""Per-unit regression tasks: one task per group of rows (a country, a store, a product)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from metaecom.checks import check_count, plain, require_columns
from metaecom.tasks.episodes import Episode


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
    require_columns(table, [group_col, target_col], "table")
    k_shot = check_count("k_shot", k_shot, 1)
    n_query = check_count("n_query", n_query, 0)
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
                                query_y=targets[query], task=plain(group)))
    return episodes
