"""Stacking rating logs of several sources, and the ids they share.

Several Amazon categories (or shops, or markets) are several sources of one kind of
log. Stacked, one user id may appear in more than one of them. For Amazon that is the
same account reviewing in two categories; elsewhere the same number may be two
different people. Either way it matters for meta-learning: a user seen in a
meta-training source and again in a meta-test source is not a new user, and treating
two people as one merges their tasks. So the ids shared between sources are found,
counted and handled by a stated rule, never silently:

- :func:`shared_ids` -- which ids appear in more than one source, and where;
- :func:`combine_reviews` -- the stacked table with a ``source`` column and the rule
  ``shared_users``: "keep" (ids as they are: one user across sources; reported),
  "drop" (remove every row of a shared user, so sources share no user) or "prefix"
  (every id becomes ``"<source>:<id>"``, so each source's users are its own).
"""

from __future__ import annotations

from typing import Mapping

import pandas as pd

from metaecom.data.problems import ATTRS_KEY, Problem, examples_of, record

SHARED_RULES = ("keep", "drop", "prefix")


def _check_frames(frames: Mapping[str, pd.DataFrame], column: str) -> None:
    if not frames:
        raise ValueError("need at least one source: frames is empty")
    for name, frame in frames.items():
        if column not in frame.columns:
            raise ValueError(f"source {name!r} lacks column {column!r}; it has {list(frame.columns)}")


def shared_ids(frames: Mapping[str, pd.DataFrame], column: str = "user_id") -> pd.DataFrame:
    """The ids of ``column`` found in more than one of ``frames`` (source name -> table).

    Columns: id, n_sources (int), sources (the source names, joined by ", ", in the
    order of ``frames``); one row per shared id, sorted by id.
    """
    _check_frames(frames, column)
    names = list(frames)
    where = pd.concat([pd.DataFrame({"id": frame[column].dropna().unique(), "order": k})
                       for k, frame in enumerate(frames.values())], ignore_index=True)
    counts = where.groupby("id")["order"].agg(["size", lambda o: ", ".join(names[k] for k in sorted(o))])
    counts.columns = ["n_sources", "sources"]
    shared = counts[counts["n_sources"] > 1].sort_index().reset_index()
    return shared.astype({"n_sources": "int64"})


def combine_reviews(frames: Mapping[str, pd.DataFrame], shared_users: str = "keep",
                    source_column: str = "source") -> pd.DataFrame:
    """The rows of every table in ``frames`` (source name -> rating log with a user_id
    column), stacked in order, with ``source_column`` (category) naming each row's source.

    User ids found in more than one source are handled by ``shared_users`` (module doc)
    and reported; each source's own recorded problems are carried over, prefixed with
    its name, so :func:`~metaecom.data.problems.data_problems` of the result shows all.
    """
    if shared_users not in SHARED_RULES:
        raise ValueError(f"shared_users must be one of {SHARED_RULES}, got {shared_users!r}")
    _check_frames(frames, "user_id")
    for name, frame in frames.items():
        if source_column in frame.columns:
            raise ValueError(f"source {name!r} already has a column {source_column!r}; pass another source_column")
    shared = shared_ids(frames, "user_id")
    combined = pd.concat([frame.assign(**{source_column: name}) for name, frame in frames.items()],
                         ignore_index=True)
    combined[source_column] = pd.Categorical(combined[source_column], categories=list(frames))
    in_several = combined["user_id"].isin(shared["id"])
    rows = int(in_several.sum())
    if shared_users == "drop":
        combined = combined[~in_several].reset_index(drop=True)
        rule = f"dropped every row of these users ({rows:,} rows), so no user is in two sources"
    elif shared_users == "prefix":
        combined["user_id"] = (combined[source_column].astype("string") + ":"
                               + combined["user_id"].astype("string"))
        rule = f"each id prefixed with its source ('<source>:<id>'), so each source's users are its own ({rows:,} rows)"
    else:
        rule = f"kept as they are: one user across sources ({rows:,} rows; shared_users='keep')"
    combined.attrs = {}
    carried = [Problem(f"{name}: {p['problem']}", p["count"], p["rule"], tuple(p["examples"]))
               for name, frame in frames.items() for p in frame.attrs.get(ATTRS_KEY, [])]
    found = Problem("user id in more than one source (count: ids)", len(shared), rule,
                    examples_of(f"{i} ({s})" for i, s in zip(shared["id"], shared["sources"])))
    return record(combined, *carried, found)
