"""Tasks: how a data set is cut into the many small tasks a meta-learner trains on.

One task type runs through the package: a task is ``(support_x, support_y, query_x,
query_y)`` (:class:`Task`, or any 4-tuple), and an :class:`Episode` is the same task as
row indices into a table, so one data set in memory serves any number of tasks.

- :mod:`metaecom.tasks.episodes`    -- episodes, class-disjoint splits, the N-way K-shot
  sampler, the all-classes split (:func:`all_way_split`), and :func:`task_batches`, the
  one rule for drawing tasks per meta-step
- :mod:`metaecom.tasks.ratings`     -- per-user rating tasks (MeLU's cold-start scenarios)
- :mod:`metaecom.tasks.units`       -- per-unit regression tasks (a country, a store)
- :mod:`metaecom.tasks.forecasting` -- per-product forecasting windows, split by launch
- :mod:`metaecom.tasks.feasibility` -- :func:`infeasible_units`: which units (classes, users,
  groups, products) cannot supply the requested task shape, and why, asked before training

Every builder checks its whole pool of units at construction: an infeasible unit is one
ValueError listing them, or, with ``drop_infeasible=True``, is left out and listed in the
result's ``.dropped`` (columns ``unit``, ``available``, ``needed``, ``reason``). Units a
builder's own arguments filter out (``min_ratings``/``max_ratings``, ``min_length``) are left
out without an error, as they always were, and are listed in ``.dropped`` too.
"""

from metaecom.tasks.episodes import Episode, FewShotSampler, Task, all_way_split, split_classes, task_batches
from metaecom.tasks.feasibility import infeasible_units
from metaecom.tasks.forecasting import forecast_windows, split_products_by_launch
from metaecom.tasks.ratings import RATING_SCENARIOS, rating_scenarios, split_users_items_by_time
from metaecom.tasks.units import group_tasks

__all__ = ["Episode", "FewShotSampler", "RATING_SCENARIOS", "Task", "all_way_split", "forecast_windows", "group_tasks",
           "infeasible_units", "rating_scenarios", "split_classes", "split_products_by_launch",
           "split_users_items_by_time", "task_batches"]
