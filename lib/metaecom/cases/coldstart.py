"""Inputs of a cold-start recommender: one numeric row per (user, item) rating.

A cold-start recommender cannot rely on user or item *ids* — a new user or a new item has
no learned id vector. MeLU (Lee et al., 2019) therefore describes each rating by the
*features* of its user and item: categorical attributes (gender, age group, occupation;
year, genres), each mapped to a learned embedding. :class:`RatingFeatures` builds that
input as one float array per rating with a fixed column layout,

    [categorical codes ... | multi-hot columns ... | numeric columns ...]

and a :class:`FeatureLayout` tells the model (:class:`metaecom.models.MeLU`) which
column is which. Code 0 of every categorical column means "unknown", so a value never
seen when the vocabulary was built still gets a (shared) embedding.

Two sources are prepared here:

- :func:`movielens_features` — MovieLens users (gender, age group, occupation, first zip
  digit) and items (release decade, genres as multi-hot).
- :func:`prior_item_statistics` — for review data without user attributes (Amazon), each
  rating's item is described by what was known *before* that rating: the item's mean
  rating and its number of earlier ratings. The rating itself and every later rating are
  excluded, so the feature never leaks the target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# ML-1M's age groups (lower bounds); ML-100K's exact ages are put into the same buckets.
AGE_GROUPS = (1, 18, 25, 35, 45, 50, 56)


@dataclass(frozen=True)
class FeatureLayout:
    """Column layout of a feature row: categorical columns first (with their number of
    codes, 0 = unknown included), then multi-hot columns, then numeric columns."""

    categorical: tuple[str, ...]
    cardinalities: tuple[int, ...]
    multi_hot: tuple[str, ...] = ()
    numeric: tuple[str, ...] = ()

    @property
    def width(self) -> int:
        return len(self.categorical) + len(self.multi_hot) + len(self.numeric)


class RatingFeatures:
    """Encode ratings ``(user_id, item_id[, numeric columns])`` as model input rows.

    ``users`` / ``items`` are attribute tables keyed by ``user_id`` / ``item_id`` (either
    may be ``None`` when there are no attributes). ``user_categorical`` and
    ``item_categorical`` name their categorical columns, ``item_multi_hot`` boolean item
    columns (e.g. genres), and ``numeric`` columns read from the *ratings* table passed to
    :meth:`encode` (per-rating values such as :func:`prior_item_statistics`). The
    vocabulary of each categorical column is every value in its attribute table, sorted;
    attributes describe users and items, not ratings, so knowing them for all users is no
    leak (a new user fills in a profile before rating anything).
    """

    def __init__(self, users: pd.DataFrame | None = None, items: pd.DataFrame | None = None,
                 user_categorical=(), item_categorical=(), item_multi_hot=(), numeric=()):
        self.users = self._table(users, "user_id", list(user_categorical), "users")
        self.items = self._table(items, "item_id", list(item_categorical) + list(item_multi_hot), "items")
        self.user_categorical, self.item_categorical = tuple(user_categorical), tuple(item_categorical)
        self.item_multi_hot, self.numeric = tuple(item_multi_hot), tuple(numeric)
        self.vocabularies = {}
        for name in self.user_categorical:
            self.vocabularies[name] = self._vocabulary(self.users[name])
        for name in self.item_categorical:
            self.vocabularies[name] = self._vocabulary(self.items[name])
        # Codes are computed once per user / item, then looked up per rating (a reindex would
        # turn integer columns into floats whose strings no longer match the vocabulary).
        self._user_codes = self._code_table(self.users, self.user_categorical)
        self._item_codes = self._code_table(self.items, self.item_categorical)
        names = self.user_categorical + self.item_categorical
        self.layout = FeatureLayout(categorical=names,
                                    cardinalities=tuple(len(self.vocabularies[n]) + 1 for n in names),
                                    multi_hot=self.item_multi_hot, numeric=self.numeric)

    @staticmethod
    def _table(table, key: str, columns: list[str], what: str) -> pd.DataFrame | None:
        if table is None:
            if columns:
                raise ValueError(f"columns {columns} were asked for but the {what} table is None")
            return None
        missing = [c for c in [key, *columns] if c not in table.columns]
        if missing:
            raise ValueError(f"the {what} table lacks columns {missing}")
        if table[key].duplicated().any():
            raise ValueError(f"the {what} table has duplicate {key} values")
        return table.set_index(key)

    @staticmethod
    def _vocabulary(column: pd.Series) -> dict:
        values = sorted(column.dropna().astype(str).unique())
        return {value: code for code, value in enumerate(values, start=1)}

    def _code_table(self, table: pd.DataFrame | None, names: tuple[str, ...]) -> pd.DataFrame | None:
        if table is None:
            return None
        return pd.DataFrame({n: table[n].astype(str).map(self.vocabularies[n]).where(table[n].notna(), 0)
                             for n in names}, index=table.index).fillna(0).astype(np.float32)

    @staticmethod
    def _lookup(codes: pd.DataFrame, ids: np.ndarray, names: tuple[str, ...]) -> list[np.ndarray]:
        found = codes.reindex(ids).fillna(0)
        return [found[n].to_numpy(dtype=np.float32) for n in names]

    def encode(self, ratings: pd.DataFrame) -> np.ndarray:
        """One float32 row per rating, columns in :attr:`layout` order. Users or items
        missing from the attribute tables get code 0 (unknown) and all-false multi-hot."""
        needed = ["user_id", "item_id", *self.numeric]
        missing = [c for c in needed if c not in ratings.columns]
        if missing:
            raise ValueError(f"the ratings table lacks columns {missing}")
        columns = []
        if self.user_categorical:
            columns += self._lookup(self._user_codes, ratings["user_id"].to_numpy(), self.user_categorical)
        if self.item_categorical or self.item_multi_hot:
            ids = ratings["item_id"].to_numpy()
            columns += self._lookup(self._item_codes, ids, self.item_categorical)
            if self.item_multi_hot:
                flags = self.items[list(self.item_multi_hot)].astype(np.float32).reindex(ids).fillna(0.0)
                columns += [flags[n].to_numpy(dtype=np.float32) for n in self.item_multi_hot]
        for name in self.numeric:
            values = ratings[name].to_numpy(dtype=np.float32)
            if not np.all(np.isfinite(values)):
                raise ValueError(f"numeric column {name!r} has non-finite values")
            columns.append(values)
        if not columns:
            raise ValueError("no feature columns: give categorical, multi-hot or numeric columns")
        return np.stack(columns, axis=1).astype(np.float32)


def movielens_features(users: pd.DataFrame, items: pd.DataFrame) -> RatingFeatures:
    """MeLU's inputs as far as MovieLens 100K/1M has them.

    Users: gender, age group (:data:`AGE_GROUPS`), occupation, first digit of the zip code
    (MeLU embeds the whole zip code, which for a thousand users is nearly an id). Items:
    release decade and the genres as a multi-hot vector. MeLU's other item features
    (MPAA rating, director, actors) are not in MovieLens itself and are left out.
    """
    users = users.assign(
        age_group=pd.cut(users["age"], bins=[*AGE_GROUPS, np.inf], right=False, labels=False),
        zip_region=users["zip"].astype(str).str[0],
    )
    decade = (items["year"].astype("Float64") // 10 * 10).astype("Int64")
    items = items.assign(decade=decade.astype(str).where(decade.notna(), None))
    genres = [c for c in items.columns if c.startswith("genre_")]
    return RatingFeatures(users, items, user_categorical=("gender", "age_group", "occupation", "zip_region"),
                          item_categorical=("decade",), item_multi_hot=tuple(genres))


def prior_item_statistics(ratings: pd.DataFrame, prior_weight: float = 5.0) -> pd.DataFrame:
    """Per rating: what was known about its item *before* it, in time order.

    Returns a frame aligned with ``ratings`` with ``item_prior_mean`` (the mean of the
    item's earlier ratings, shrunk towards the global mean of all earlier ratings with
    ``prior_weight`` pseudo-ratings) and ``item_prior_log_count`` (log(1 + number of
    earlier ratings)). Ratings at the same timestamp as this one do not count as
    earlier. The first rating of the log sees a global mean of 0 and uses 0 as its
    prior mean.
    """
    missing = [c for c in ["item_id", "rating", "timestamp"] if c not in ratings.columns]
    if missing:
        raise ValueError(f"the ratings table lacks columns {missing}")
    if prior_weight < 0:
        raise ValueError(f"prior_weight must be >= 0, got {prior_weight}")
    frame = pd.DataFrame({"item_id": ratings["item_id"].to_numpy(), "rating": ratings["rating"].to_numpy(float),
                          "timestamp": ratings["timestamp"].to_numpy(), "row": np.arange(len(ratings))})
    frame = frame.sort_values(["timestamp", "row"], kind="stable")

    def earlier(per_item: bool) -> tuple[np.ndarray, np.ndarray]:
        """Sum and count of the ratings strictly before each row's timestamp (of its item, or overall)."""
        keys = ["item_id", "timestamp"] if per_item else ["timestamp"]
        per_time = frame.groupby(keys, sort=True)["rating"].agg(["sum", "count"])
        running = per_time.groupby(level="item_id").cumsum() if per_item else per_time.cumsum()
        looked_up = (running - per_time).reindex(pd.MultiIndex.from_frame(frame[keys]) if per_item
                                                 else frame["timestamp"])
        return looked_up["sum"].to_numpy(), looked_up["count"].to_numpy()

    global_sum, global_count = earlier(per_item=False)
    item_sum, item_count = earlier(per_item=True)
    global_mean = np.divide(global_sum, global_count, out=np.zeros_like(global_sum), where=global_count > 0)
    prior_mean = (item_sum + prior_weight * global_mean) / np.maximum(item_count + prior_weight, 1e-12)
    result = pd.DataFrame({"item_prior_mean": prior_mean, "item_prior_log_count": np.log1p(item_count)},
                          index=frame["row"].to_numpy()).sort_index()
    result.index = ratings.index
    return result
