"""Feasibility: which units cannot supply a task of the requested shape, asked before training.

Every task builder cuts a data set along some *unit*: a class (:class:`FewShotSampler`),
a user in a cold-start scenario (:func:`rating_scenarios`), a group such as a country
(:func:`group_tasks`), a product (:func:`forecast_windows`). A unit with too few rows for
the requested shape (say 5 support + 15 query examples per class) cannot give a task. If
that surfaced only when the unit was first drawn, it would be a ValueError from inside a
generator minutes into meta-training. So every builder follows one convention:

- ``infeasible_units(builder, *args, **kwargs)`` takes the builder and the arguments of the
  call one means to make, builds nothing, and returns the units that call would reject or
  leave out: a DataFrame with one row per unit and the columns ``unit``, ``available``
  (rows the unit has), ``needed`` (rows the shape asks for, or the bound it breaks) and
  ``reason`` (the same in words). Some builders add columns (``scenario`` for ratings).
- Building checks the whole pool up front. By default an infeasible unit is an error: one
  ValueError listing the first few, the count, and how to drop them.
- With ``drop_infeasible=True`` those units are left out, and the result's ``.dropped``
  holds the same table for them (empty when nothing was dropped), so what was left out
  can always be inspected.

Where a builder's own arguments already define a filter (the ``min_ratings``/``max_ratings``
of :func:`rating_scenarios`, the ``min_length`` of :func:`forecast_windows`), the units it
filters out are left out as before, without an error, and are listed in ``.dropped`` too.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

REPORT_COLUMNS = ("unit", "available", "needed", "reason")
SHOWN = 5   # how many infeasible units an error message lists before "and N more"


def unit_report(units=(), available=(), needed=(), reasons=(), **extra) -> pd.DataFrame:
    """The table of infeasible units: ``unit``, ``available``, ``needed``, ``reason``, then ``extra``."""
    return pd.DataFrame({"unit": pd.Series(list(units), dtype=object),
                         "available": np.asarray(available, dtype=int).reshape(-1),
                         "needed": np.asarray(needed, dtype=int).reshape(-1),
                         "reason": pd.Series(list(reasons), dtype=object),
                         **{name: pd.Series(list(values), dtype=object) for name, values in extra.items()}})


def refuse_infeasible(report: pd.DataFrame, headline: str, builder: str, remedy: str | None = None) -> None:
    """Raise one ValueError for all the units in ``report`` (nothing if it is empty).

    The message is ``headline``, the reasons of the first few units and how many more there
    are, then ``remedy`` (by default: pass ``drop_infeasible=True``, or ask
    ``infeasible_units(builder, ...)`` for the full list).
    """
    if report.empty:
        return
    shown = "; ".join(report["reason"].head(SHOWN))
    more = f"; and {len(report) - SHOWN} more" if len(report) > SHOWN else ""
    if remedy is None:
        remedy = (f"pass drop_infeasible=True to leave them out "
                  f"(infeasible_units({builder}, ...) lists them all with reasons)")
    raise ValueError(f"{headline}: {shown}{more}. To go on, {remedy}")


def infeasible_units(builder, *args, **kwargs) -> pd.DataFrame:
    """The units that ``builder(*args, **kwargs)`` would reject or leave out, and why.

    Nothing is built and nothing is drawn at random, so this is cheap to ask before a long
    training run. ``builder`` is a task builder of this package (:class:`FewShotSampler`,
    :func:`rating_scenarios`, :func:`group_tasks`, :func:`forecast_windows`); the result
    has the columns ``unit``, ``available``, ``needed`` and ``reason`` and is empty when
    every unit can supply the requested shape. Invalid arguments raise as the builder would.
    """
    check = getattr(builder, "infeasible", None)
    if not callable(check):
        raise TypeError(f"{getattr(builder, '__name__', builder)!r} is not a task builder with a feasibility check")
    return check(*args, **kwargs)


def checked_by(check: Callable[..., pd.DataFrame]):
    """Decorator: attach ``check`` (same arguments, returns the report) as ``builder.infeasible``."""
    def attach(builder):
        builder.infeasible = check
        return builder
    return attach


class TaskList(list):
    """A list of episodes that also says which units were left out (``.dropped``, a report)."""

    def __init__(self, items=(), dropped: pd.DataFrame | None = None):
        super().__init__(items)
        self.dropped = unit_report() if dropped is None else dropped


class TaskDict(dict):
    """A dict of tasks that also says which units were left out (``.dropped``, a report)."""

    def __init__(self, items=(), dropped: pd.DataFrame | None = None):
        super().__init__(items)
        self.dropped = unit_report() if dropped is None else dropped
