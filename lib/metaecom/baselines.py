"""The simple baselines every meta-learner for per-unit regression has to beat.

A *unit* is whatever a task is about -- a country, a store, a user, a product -- with
its own rows ``(x, y)``. At test time a new unit comes with a few labelled rows (the
support set) and we predict its other rows (the query). Before reaching for a
meta-learner, the chapters compare it with these, which take seconds and are hard to
beat when units differ little (pool) or when the support set is large (fit per unit):

- :class:`PerUnitRidge` -- ridge regression fitted on the unit's support set alone (no
  transfer at all); its penalty ``alpha`` is given, or chosen on validation units.
- :class:`PooledRidge` -- one ridge regression fitted on every meta-training row,
  ignoring which unit a row came from; the support set is not used (complete pooling).
- :class:`PartialPooling` -- empirical Bayes for per-unit means: a unit's support mean
  shrunk towards the mean of the meta-training units by the weight
  ``n / (n + sigma^2 / tau^2)``, with the within-unit variance ``sigma^2`` and the
  between-unit variance ``tau^2`` estimated from the meta-training units. It is the
  middle ground between the pooled mean (weight 0) and the support mean (weight 1),
  chosen by how much units really differ -- the simplest model of "learning to adapt".
- :class:`ItemMean` -- the rating baseline: the item's mean rating (shrunk towards the
  global mean), optionally plus the user's mean residual on their support ratings
  (``user_offset=True``, see :func:`user_offset`).

All share one small interface (:class:`UnitBaseline`): ``fit(units)`` on the
meta-training units (a sequence of ``(x, y)`` pairs, or of tasks ``(support_x,
support_y, query_x, query_y)`` whose two halves are joined), then
``predict(support_x, support_y, query_x)`` for a new unit -- or, as the methods of
:mod:`metaecom.methods` do, ``adapt(support_x, support_y).predict(query_x)``. Each has a
``name``, the label the book's tables print.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge

from metaecom.checks import check_positive


def _rows(x, what: str, features: bool) -> np.ndarray:
    x = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    if features and x.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array [rows, features], got shape {x.shape}")
    if not features and x.ndim != 1:
        raise ValueError(f"{what} must be a 1-D array of ids, got shape {x.shape}")
    return x


def _targets(y, n: int, what: str) -> np.ndarray:
    y = y.detach().cpu().numpy() if hasattr(y, "detach") else np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"{what} must be 1-D with one target per row; got shape {y.shape} for {n} rows")
    if not np.issubdtype(y.dtype, np.number):
        raise ValueError(f"{what} must be numbers, got dtype {y.dtype}")
    y = y.astype(float)
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{what} has {np.count_nonzero(~np.isfinite(y))} non-finite values")
    return y


def unit_rows(units, features: bool = True) -> list[tuple[np.ndarray, np.ndarray]]:
    """The meta-training units as a list of ``(x, y)`` arrays.

    A unit is an ``(x, y)`` pair, or a task ``(support_x, support_y, query_x, query_y)``
    whose support and query rows are joined (every row of a meta-training unit is
    training data). ``x`` is ``[rows, features]`` (``features=True``) or 1-D ids.
    """
    if isinstance(units, tuple) and len(units) in (2, 4) and not isinstance(units[0], tuple):
        raise ValueError("units must be a sequence of units ((x, y) pairs or 4-tuples), not a single unit; "
                         "wrap it in a list")
    out = []
    for i, unit in enumerate(units):
        if not isinstance(unit, (tuple, list)) or len(unit) not in (2, 4):
            raise ValueError(f"unit {i} must be an (x, y) pair or a task (support_x, support_y, query_x, query_y), "
                             f"got a {type(unit).__name__}")
        if len(unit) == 4:
            parts = [(unit[0], unit[1]), (unit[2], unit[3])]
        else:
            parts = [tuple(unit)]
        xs, ys = [], []
        for x, y in parts:
            x = _rows(x, f"x of unit {i}", features)
            xs.append(x)
            ys.append(_targets(y, len(x), f"y of unit {i}"))
        out.append((np.concatenate(xs), np.concatenate(ys)))
    if not out:
        raise ValueError("no meta-training units were given")
    return out


class FittedUnit:
    """A baseline adapted to one unit's support set: ``predict(query_x)`` gives one value per row."""

    def __init__(self, predict: Callable[[np.ndarray], np.ndarray], n_features: int | None):
        self._predict, self.n_features = predict, n_features

    def predict(self, query_x) -> np.ndarray:
        x = _rows(query_x, "query_x", self.n_features is not None)
        if self.n_features is not None and x.shape[1] != self.n_features:
            raise ValueError(f"query_x has {x.shape[1]} features but the baseline was fitted with {self.n_features}")
        return np.asarray(self._predict(x), dtype=float).reshape(len(x))


class UnitBaseline:
    """The interface of the baselines: ``fit(units)``, then ``adapt``/``predict`` per new unit.

    Subclasses define :meth:`adapt`; :meth:`fit` learns what they share across units
    (the default learns nothing) and returns the baseline.
    """

    name = "baseline"
    features = True  # x is [rows, features] (False: 1-D ids, as item ids)

    def fit(self, units) -> "UnitBaseline":
        """Learn from the meta-training units; the default learns nothing."""
        unit_rows(units, self.features)
        return self

    def adapt(self, support_x, support_y) -> FittedUnit:
        raise NotImplementedError

    def predict(self, support_x, support_y, query_x) -> np.ndarray:
        """Predictions for ``query_x`` of a unit whose support set is ``(support_x, support_y)``."""
        return self.adapt(support_x, support_y).predict(query_x)

    def _support(self, support_x, support_y, allow_empty: bool) -> tuple[np.ndarray, np.ndarray]:
        x = _rows(support_x, "support_x", self.features)
        y = _targets(support_y, len(x), "support_y")
        if len(x) == 0 and not allow_empty:
            raise ValueError(f"{self.name} needs at least one support row")
        return x, y

    def __repr__(self) -> str:
        return self.name


class PerUnitRidge(UnitBaseline):
    """Ridge regression fitted on the new unit's support rows alone (scikit-learn ``Ridge``).

    It uses no other unit: the reference point that says what transfer adds. The intercept
    is not penalised, so a single support row predicts its own target everywhere. The
    penalty is ``alpha``; with a grid ``alphas``, :meth:`fit` chooses the one with the lowest
    mean query error on the units it is given, which must then be tasks ``(support_x,
    support_y, query_x, query_y)`` with the support size of the test units (validation
    units, not the test units).
    """

    name = "ridge on the support set"

    def __init__(self, alpha: float = 1.0, alphas=None):
        self.alpha = check_positive("alpha", alpha)
        self.alphas = None if alphas is None else [check_positive("alphas", a) for a in alphas]
        if self.alphas is not None and not self.alphas:
            raise ValueError("alphas must list at least one penalty, or be None")
        self.validation_: pd.DataFrame | None = None

    def fit(self, units) -> "PerUnitRidge":
        """With ``alphas``: set ``alpha`` to the penalty with the lowest mean squared query
        error over ``units`` (tasks); ``validation_`` keeps the error of every penalty."""
        if self.alphas is None:
            return super().fit(units)
        tasks = list(units)
        if not tasks or any(not isinstance(t, (tuple, list)) or len(t) != 4 for t in tasks):
            raise ValueError("choosing alpha needs validation tasks (support_x, support_y, query_x, query_y)")
        errors = []
        for alpha in self.alphas:
            per_unit = []
            for sx, sy, qx, qy in tasks:
                predicted = self._fit_one(*self._support(sx, sy, False), alpha).predict(qx)
                per_unit.append(np.mean((predicted - _targets(qy, len(predicted), "query_y")) ** 2))
            errors.append(float(np.mean(per_unit)))
        self.validation_ = pd.DataFrame({"alpha": self.alphas, "mse": errors})
        self.alpha = self.alphas[int(np.argmin(errors))]
        return self

    def _fit_one(self, x, y, alpha: float) -> FittedUnit:
        model = Ridge(alpha=alpha).fit(x, y)
        return FittedUnit(model.predict, x.shape[1])

    def adapt(self, support_x, support_y) -> FittedUnit:
        x, y = self._support(support_x, support_y, allow_empty=False)
        return self._fit_one(x, y, self.alpha)


class PooledRidge(UnitBaseline):
    """One ridge regression on every meta-training row, ignoring the unit (complete pooling).

    The new unit's support set is not used at all: this is what a single global model
    does for a unit it knows nothing about. ``alpha`` is the penalty (the intercept is
    not penalised).
    """

    name = "pooled ridge"

    def __init__(self, alpha: float = 1.0):
        self.alpha = check_positive("alpha", alpha)
        self.model: Ridge | None = None

    def fit(self, units) -> "PooledRidge":
        rows = unit_rows(units, features=True)
        x = np.concatenate([x for x, _ in rows])
        y = np.concatenate([y for _, y in rows])
        if len(x) == 0:
            raise ValueError("the meta-training units have no rows")
        self.model = Ridge(alpha=self.alpha).fit(x, y)
        return self

    def adapt(self, support_x, support_y) -> FittedUnit:
        if self.model is None:
            raise RuntimeError(f"{self.name}: call fit(units) first")
        self._support(support_x, support_y, allow_empty=True)  # checked, then ignored
        return FittedUnit(self.model.predict, self.model.n_features_in_)


class PartialPooling(UnitBaseline):
    """Empirical-Bayes partial pooling of per-unit means (the James-Stein idea).

    Model: a unit's rows are ``y = m_unit + noise`` with noise variance ``sigma^2``, and the
    unit means ``m_unit`` vary around ``mu`` with variance ``tau^2``. The posterior mean of a
    new unit's ``m`` given ``n`` support rows with mean ``ybar`` is
    ``mu + w (ybar - mu)`` with ``w = n / (n + sigma^2 / tau^2)``: few rows or similar
    units (small ``tau^2``) pull the prediction to ``mu``; many rows or very different
    units trust the unit's own mean. :meth:`fit` estimates from the meta-training units

    - ``mean_`` (``mu``): the mean of the unit means;
    - ``within_var_`` (``sigma^2``): the pooled within-unit variance,
      ``sum (y - ybar_unit)^2 / sum (n_unit - 1)``;
    - ``between_var_`` (``tau^2``): the variance of the unit means minus the part the noise
      explains, ``var(ybar_unit) - mean(sigma^2 / n_unit)``, floored at 0 (then every unit
      gets ``mu``).

    The features ``x`` are ignored: the prediction is the same for every query row of a
    unit. :class:`ItemMean`'s user offset is the same shrinkage with the ratio
    ``sigma^2 / tau^2`` fixed by hand (its ``prior``); here it is estimated.
    """

    name = "partial pooling"

    def __init__(self):
        self.mean_ = self.within_var_ = self.between_var_ = None

    def fit(self, units) -> "PartialPooling":
        rows = [(x, y) for x, y in unit_rows(units, features=True) if len(y) > 0]
        if len(rows) < 2:
            raise ValueError(f"partial pooling needs at least 2 non-empty meta-training units, got {len(rows)}")
        n = np.array([len(y) for _, y in rows], dtype=float)
        means = np.array([y.mean() for _, y in rows])
        dof = float(np.sum(n - 1))
        if dof <= 0:
            raise ValueError("every meta-training unit has a single row: the within-unit variance cannot be "
                             "estimated (give units at least 2 rows)")
        self.within_var_ = float(sum(np.sum((y - y.mean()) ** 2) for _, y in rows) / dof)
        self.mean_ = float(means.mean())
        self.between_var_ = float(max(means.var(ddof=1) - np.mean(self.within_var_ / n), 0.0))
        return self

    def shrinkage(self, n: int) -> float:
        """The weight ``n / (n + sigma^2 / tau^2)`` a unit's support mean of ``n`` rows gets."""
        if self.mean_ is None:
            raise RuntimeError(f"{self.name}: call fit(units) first")
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if n == 0 or self.between_var_ == 0:
            return 0.0
        return float(n * self.between_var_ / (n * self.between_var_ + self.within_var_))

    def adapt(self, support_x, support_y) -> FittedUnit:
        if self.mean_ is None:
            raise RuntimeError(f"{self.name}: call fit(units) first")
        x, y = self._support(support_x, support_y, allow_empty=True)
        estimate = self.mean_ if len(y) == 0 else self.mean_ + self.shrinkage(len(y)) * (y.mean() - self.mean_)
        return FittedUnit(lambda q: np.full(len(q), estimate), x.shape[1])


def user_offset(support_prior, support_ratings, weight: float) -> float:
    """A user's mean residual on their support ratings, shrunk towards 0 by ``weight``
    pseudo-ratings: ``sum(rating - prior) / (n + weight)``.

    ``support_prior`` is the prior prediction of each support rating (e.g. its item's mean
    rating); add the result to the prior predictions of the query items. It is the
    cheapest personalisation there is, and what :class:`ItemMean` adds with
    ``user_offset=True``.
    """
    if weight < 0:
        raise ValueError(f"weight must be >= 0, got {weight}")
    residual = np.asarray(support_ratings, dtype=float) - np.asarray(support_prior, dtype=float)
    if len(residual) + weight == 0:
        return 0.0
    return float(residual.sum() / (len(residual) + weight))


class ItemMean(UnitBaseline):
    """Item mean rating from the training ratings, shrunk towards the global mean with
    ``prior`` pseudo-ratings; unknown items get the global mean. With ``user_offset``,
    add the user's mean residual on their support ratings (shrunk the same way, see
    :func:`user_offset`).

    ``x`` is a 1-D array of item ids. :meth:`fit` takes the training ratings either as
    units (a sequence of ``(item_ids, ratings)`` per meta-training user) or, as the
    cold-start chapter does, as two arrays ``fit(item_ids, ratings)`` of all rows.
    """

    features = False

    def __init__(self, prior: float = 5.0, user_offset: bool = False):
        if prior < 0:
            raise ValueError(f"prior must be >= 0, got {prior}")
        self.prior, self.user_offset = prior, user_offset
        self.name = "item mean + user offset" if user_offset else "item mean"

    def fit(self, units, ratings=None) -> "ItemMean":
        if ratings is None:
            rows = unit_rows(units, features=False)
            item_ids = np.concatenate([x for x, _ in rows])
            ratings = np.concatenate([y for _, y in rows])
        else:
            item_ids = units
        ratings = np.asarray(ratings, dtype=float)
        if len(ratings) == 0:
            raise ValueError("ItemMean needs at least one training rating")
        self.global_mean = float(ratings.mean())
        stats = pd.DataFrame({"item": np.asarray(item_ids), "r": ratings}).groupby("item")["r"].agg(["sum", "count"])
        self.means = ((stats["sum"] + self.prior * self.global_mean) / (stats["count"] + self.prior)).to_dict()
        return self

    def item_means(self, item_ids) -> np.ndarray:
        return np.array([self.means.get(i, self.global_mean) for i in np.asarray(item_ids).tolist()])

    def adapt(self, support_x, support_y) -> FittedUnit:
        if not hasattr(self, "means"):
            raise RuntimeError(f"{self.name}: call fit first")
        items, ratings = self._support(support_x, support_y, allow_empty=True)
        offset = user_offset(self.item_means(items), ratings, self.prior) if self.user_offset else 0.0
        return FittedUnit(lambda q: self.item_means(q) + offset, None)
