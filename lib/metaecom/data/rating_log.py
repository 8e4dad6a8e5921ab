"""Checks every rating log needs: ids present, ratings valid, one rating per (user, item).

Amazon reviews and MovieLens ratings are both logs of (user, item, rating, time), and
their files carry the same kinds of problems. :func:`check_rating_log` finds them,
handles each by one stated rule, and returns the rules applied as
:class:`~metaecom.data.problems.Problem` rows, so both readers behave alike:

- a missing (or blank) user or item id -- the row is dropped;
- a rating that is missing or not a number -- dropped;
- a rating outside the scale (or off its step, e.g. 3.3 stars) -- dropped;
- a missing or unreadable time -- kept, with ``NaT`` as its time;
- a (user, item) pair rated more than once -- by the ``duplicates`` rule:
  ``"latest"`` keeps each pair's latest rating (ties: the later row in the file; an
  unknown time counts as the earliest), ``"keep"`` keeps them all, ``"error"`` raises
  :class:`DuplicateRatingsError`. Each is reported.

A pair rated twice is one opinion counted twice: in a per-user task it can sit in both
the support and the query set, so the model is scored on what it was shown.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from metaecom.data.problems import Problem, examples_of

DUPLICATE_RULES = ("latest", "keep", "error")


class DuplicateRatingsError(ValueError):
    """A rating log rates some (user, item) pair more than once, and the rule was ``"error"``."""


def check_duplicates_rule(duplicates: str) -> str:
    """``duplicates`` itself, or a ValueError naming the rules there are."""
    if duplicates not in DUPLICATE_RULES:
        raise ValueError(f"duplicates must be one of {DUPLICATE_RULES}, got {duplicates!r}")
    return duplicates


def _rows(frame: pd.DataFrame, mask) -> tuple[str, ...]:
    return examples_of(f"row {i}" for i in frame.index[mask])


def _blank(ids: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(ids):
        return ids.isna()
    return ids.isna() | (ids.astype("string").str.strip() == "").fillna(True)


def check_rating_log(frame: pd.DataFrame, what: str, low: float, high: float, step: float | None = None,
                     duplicates: str = "latest") -> tuple[pd.DataFrame, list[Problem]]:
    """The rows of ``frame`` that pass, in file order, and the problems found.

    ``frame`` has columns user_id, item_id, rating (any values: they are coerced to
    numbers here) and timestamp (datetime64, ``NaT`` where unknown); other columns ride
    along. Valid ratings lie in ``[low, high]`` and, when ``step`` is given, are a
    multiple of it. The rules are in the module doc; ``what`` names the log in messages.
    Row numbers in the examples count the rows of ``frame`` from 0.
    """
    check_duplicates_rule(duplicates)
    frame = frame.reset_index(drop=True)
    problems = []

    no_id = _blank(frame["user_id"]) | _blank(frame["item_id"])
    problems.append(Problem("missing user or item id", int(no_id.sum()), "dropped", _rows(frame, no_id)))
    frame = frame[~no_id]

    rating = pd.to_numeric(frame["rating"], errors="coerce")
    not_number = rating.isna()
    problems.append(Problem("rating missing or not a number", int(not_number.sum()), "dropped",
                            examples_of(frame["rating"][not_number])))
    off_scale = ~not_number & ~rating.between(low, high)
    scale = f"{low:g}-{high:g}"
    if step is not None:
        off_scale |= ~not_number & ~np.isclose(rating / step, np.round(rating / step))
        scale += f" in steps of {step:g}"
    problems.append(Problem(f"rating outside {scale}", int(off_scale.sum()), "dropped",
                            examples_of(rating[off_scale])))
    frame = frame[~not_number & ~off_scale].assign(rating=rating[~not_number & ~off_scale])

    no_time = frame["timestamp"].isna()
    problems.append(Problem("rating time missing or unreadable", int(no_time.sum()),
                            "kept, with time NaT (the earliest, for duplicates='latest')", _rows(frame, no_time)))

    pairs = ["user_id", "item_id"]
    repeated = frame.duplicated(pairs, keep="first")
    count = int(repeated.sum())
    shown = examples_of(f"{u}/{i}" for u, i in frame.loc[repeated, pairs].itertuples(index=False))
    if count and duplicates == "error":
        raise DuplicateRatingsError(
            f"{what}: {count:,} rows rate a (user, item) pair already rated earlier in the file (e.g. user/item "
            f"{', '.join(shown)}). Pass duplicates='latest' to keep each pair's latest rating, or 'keep' to keep all.")
    if duplicates == "latest":
        by_time = frame.sort_values("timestamp", kind="stable", na_position="first")
        latest = by_time.index[~by_time.duplicated(pairs, keep="last")]
        frame = frame.loc[np.sort(latest)]
        rule = "kept the latest rating of each pair (ties: the later row in the file); removed the others"
    else:
        rule = "kept every rating (duplicates='keep')"
    problems.append(Problem("(user, item) pair rated more than once: extra rows", count, rule, shown))
    return frame.reset_index(drop=True), problems
