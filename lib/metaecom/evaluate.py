"""Metrics and their uncertainty.

A meta-learner is judged on many test tasks, never one. :func:`mean_ci` turns per-task
scores into a mean and the half-width of its 95% confidence interval (Student's t), the
"± x" printed in every table of the book.

Comparing methods: :func:`episode_accuracies` scores one method on reproducible test
episodes (the same episodes for every method with the same arguments), and
:func:`episode_scores` does so for several methods at once, labelled by their ``name``,
as a long table (one row per episode and method). :func:`method_summary` turns such a
table into a mean and interval per method, :func:`paired_table` into the paired
differences between methods (mean, interval, units won/tied/lost); both refuse tables in
which the methods were scored on different units, naming the units each one lacks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats


def mean_ci(values, confidence: float = 0.95) -> tuple[float, float]:
    """Mean of ``values`` and the half-width of its ``confidence`` interval.

    Uses Student's t with n-1 degrees of freedom, so it is right for small numbers of
    tasks too. With a single value the half-width is ``nan`` (no spread to estimate).
    """
    values = np.asarray(values, dtype=float).ravel()
    if values.size == 0:
        raise ValueError("mean_ci needs at least one value, got an empty array")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"mean_ci got {np.count_nonzero(~np.isfinite(values))} non-finite values")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    mean = float(values.mean())
    if values.size == 1:
        return mean, float("nan")
    sem = values.std(ddof=1) / np.sqrt(values.size)
    return mean, float(stats.t.ppf(0.5 + confidence / 2, df=values.size - 1) * sem)


def rmse(predicted, target, axis=-1) -> np.ndarray:
    """Root mean squared error along ``axis`` (one value per task by default)."""
    predicted = np.asarray(predicted, dtype=float)
    target = np.asarray(target, dtype=float)
    if predicted.shape != target.shape:
        raise ValueError(f"rmse: shapes differ, predicted {predicted.shape} vs target {target.shape}")
    return np.sqrt(np.mean((predicted - target) ** 2, axis=axis))


def format_ci(mean: float, half_width: float, digits: int = 2, signed: bool = False) -> str:
    """``'12.34 ± 0.56'`` — how a mean and its interval are printed in tables; with
    ``signed`` the mean always carries its sign (``'+1.2 ± 0.3'``, for differences)."""
    return f"{mean:{'+' if signed else ''}.{digits}f} ± {half_width:.{digits}f}"


def ci_table(results, index: str, columns: str, digits: int = 2, order=None, signed: bool = False):
    """Pivot a long table of ``mean``/``ci`` rows into the book's ``mean ± ci`` layout.

    ``results`` has one row per (``index``, ``columns``) pair with columns ``mean`` and
    ``ci`` (e.g. from :func:`method_summary` or :func:`paired_table`); ``order``
    optionally fixes the column order (e.g. baselines first); ``signed`` prints the sign
    of every mean (for differences).
    """
    missing = {index, columns, "mean", "ci"} - set(results.columns)
    if missing:
        raise ValueError(f"results lacks columns {sorted(missing)}")
    cells = [format_ci(m, c, digits, signed) for m, c in zip(results["mean"], results["ci"])]
    table = results.assign(_cell=cells).pivot(index=index, columns=columns, values="_cell")
    table.columns.name = None
    return table[list(order)] if order is not None else table


# --- many methods on the same units ----------------------------------------------------
#
# A comparison in the book is always *paired*: every method is scored on the same units
# (test episodes, users, countries), so a method's score minus another's on each unit
# removes what makes one unit harder than another. The functions below take the scores
# as a long table, one row per (unit, method), plus optional grouping columns (``by``,
# e.g. the number of shots or the scenario), and refuse a comparison in which a method
# lacks a unit another has, instead of silently comparing different sets.


def episode_accuracies(method, x, labels, n_way: int, k_shot: int, n_query: int = 15,
                       episodes: int = 1000, seed: int = 0, desc: str | None = None) -> np.ndarray:
    """Accuracy (%) of ``method`` on each of ``episodes`` test episodes drawn from ``labels``.

    The episodes depend only on ``labels``, the setting and ``seed``, so every method
    evaluated with the same arguments sees exactly the same tasks (paired comparison).
    """
    from metaecom.methods.base import accuracy
    from metaecom.progress import progress
    from metaecom.tasks.episodes import FewShotSampler

    sampler = FewShotSampler(labels, n_way, k_shot, n_query, seed=seed)
    scores = np.empty(episodes)
    for i in progress(range(episodes), desc=desc, disable=desc is None):
        e = sampler.sample()
        adapted = method.adapt(x[e.support], e.support_y)
        scores[i] = 100.0 * accuracy(adapted, x[e.query], e.query_y)
    return scores


def episode_scores(methods, x, labels, n_way: int, shots, n_query: int = 15, episodes: int = 1000,
                   seed=0, desc: str | None = None) -> pd.DataFrame:
    """Accuracy (%) of several methods on the same test episodes: the long table that
    :func:`method_summary` and :func:`paired_table` read.

    ``methods`` is a list of methods (each labelled by its ``name``, the name the book's
    tables print) or a dict ``{label: method}``. For each number of shots in ``shots`` the
    same ``episodes`` episodes are drawn for every method (see :func:`episode_accuracies`);
    ``seed`` is one seed for every number of shots or a dict ``{shots: seed}``. Returns one
    row per (shots, episode, method) with columns ``shots``, ``episode``, ``method``,
    ``score``.
    """
    if isinstance(methods, dict):
        labelled = list(methods.items())
    else:
        labelled = [(m.name, m) for m in methods]
    names = [name for name, _ in labelled]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"several methods are named {repeated}: give each a distinct name (its table label)")
    if not labelled:
        raise ValueError("episode_scores needs at least one method")
    shots = [int(k) for k in np.atleast_1d(shots)]
    rows = []
    for k in shots:
        if isinstance(seed, dict) and k not in seed:
            raise ValueError(f"seed has no entry for {k} shots; it has {sorted(seed)}")
        k_seed = seed[k] if isinstance(seed, dict) else seed
        for name, method in labelled:
            step_desc = f"{desc}: {name}, {k}-shot" if desc else None
            scores = episode_accuracies(method, x, labels, n_way, k, n_query, episodes, k_seed, step_desc)
            rows.append(pd.DataFrame({"shots": k, "episode": np.arange(episodes), "method": name,
                                      "score": scores}))
    return pd.concat(rows, ignore_index=True)


def _as_list(by) -> list:
    if by is None:
        return []
    return [by] if isinstance(by, str) else list(by)


def _short(values, limit: int = 10) -> str:
    values = list(values)
    shown = ", ".join(repr(v) for v in values[:limit])
    return shown + (f", … ({len(values)} in all)" if len(values) > limit else "")


def _check_long(scores: pd.DataFrame, unit: str, method: str, score: str, by: list) -> None:
    missing = [c for c in [*by, unit, method, score] if c not in scores.columns]
    if missing:
        raise ValueError(f"the scores table lacks column(s) {missing}; it has {list(scores.columns)}")
    if len(scores) == 0:
        raise ValueError("the scores table is empty")
    values = pd.to_numeric(scores[score], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        where = scores.loc[bad, [*by, unit, method]].head(5).to_dict("records")
        raise ValueError(f"{bad.sum()} score(s) in column {score!r} are missing or not finite, e.g. {where}")
    duplicated = scores.duplicated([*by, unit, method], keep=False)
    if duplicated.any():
        where = scores.loc[duplicated, [*by, unit, method]].drop_duplicates().head(5).to_dict("records")
        raise ValueError(f"{duplicated.sum()} rows repeat a ({', '.join([*by, unit, method])}) combination, e.g. "
                         f"{where}: average repeated runs (seeds) per unit first")


def _groups(scores: pd.DataFrame, by: list):
    if not by:
        yield (), scores
        return
    for key, group in scores.groupby(by, sort=False, observed=True):
        yield (key if isinstance(key, tuple) else (key,)), group


def _check_same_units(group: pd.DataFrame, unit: str, method: str, key: tuple, by: list, methods=None) -> None:
    """A ValueError naming, for each method, the units other methods have and it lacks."""
    units_of = {m: set(g[unit]) for m, g in group.groupby(method, sort=False, observed=True)}
    if methods is not None:
        units_of = {m: units_of[m] for m in methods}
    every = set().union(*units_of.values())
    problems = [f"{m!r} lacks {len(every - u)} unit(s): {_short(sorted(every - u, key=str))}"
                for m, u in units_of.items() if u != every]
    if problems:
        where = f" for {dict(zip(by, key))}" if by else ""
        raise ValueError(f"the methods were not scored on the same units{where}; " + "; ".join(problems)
                         + ". Score every method on every unit, or select the shared units explicitly.")


def _interval(values: np.ndarray, confidence: float) -> dict:
    mean, half = mean_ci(values, confidence)
    return {"units": len(values), "mean": mean, "ci": half, "low": mean - half, "high": mean + half}


def method_summary(scores: pd.DataFrame, *, unit: str = "episode", method: str = "method", score: str = "score",
                   by=None, confidence: float = 0.95, same_units: bool = True) -> pd.DataFrame:
    """Per method (and per ``by`` group): the mean score over units and its ``confidence``
    interval (Student's t, as :func:`mean_ci`).

    ``scores`` is a long table with one row per (``by``..., ``unit``, ``method``) and the
    score in column ``score``. Returns one row per (``by``..., method), methods in the order
    they first appear, with columns ``units``, ``mean``, ``ci`` (the half-width), ``low``
    and ``high``; :func:`ci_table` turns it into the book's ``mean ± ci`` layout.

    A table whose methods were scored on different units is refused (the error names the
    units each method lacks), since their means would not be comparable; pass
    ``same_units=False`` to summarise each method on its own units anyway (``units`` then
    says how many each has). Repeated rows for a (unit, method) — several seeds — must be
    averaged first: they are refused too.
    """
    by = _as_list(by)
    _check_long(scores, unit, method, score, by)
    rows = []
    for key, group in _groups(scores, by):
        if same_units:
            _check_same_units(group, unit, method, key, by)
        for name, rows_of_method in group.groupby(method, sort=False, observed=True):
            values = rows_of_method[score].to_numpy(dtype=float)
            rows.append({**dict(zip(by, key)), "method": name, **_interval(values, confidence)})
    return pd.DataFrame(rows)


def paired_table(scores: pd.DataFrame, reference=None, *, unit: str = "episode", method: str = "method",
                 score: str = "score", by=None, higher_is_better: bool = True, confidence: float = 0.95,
                 tolerance: float = 0.0, methods=None) -> pd.DataFrame:
    """Every method against ``reference`` (or, with ``reference=None``, every pair of
    methods) on the same units: the mean paired difference, its ``confidence`` interval,
    and on how many units each method wins, ties and loses.

    ``scores`` is a long table as for :func:`method_summary`. For each (``by``...) group
    and each compared pair, the difference ``method − reference`` is taken unit by unit
    (for all pairs: the earlier-listed method minus the later one, the later one named in
    column ``reference``). Returns one row per pair with columns ``method``,
    ``reference``, ``units``, ``mean``, ``ci``, ``low``, ``high`` (of the difference),
    ``wins``, ``ties``, ``losses`` (units where ``method`` scores better than
    ``reference`` by more than ``tolerance``, within it, or worse; "better" is higher
    unless ``higher_is_better=False``, e.g. for an error) and ``verdict``: ``"beats"``,
    ``"loses to"`` or ``"ties with"`` according as the interval lies wholly on the better
    side of zero, wholly on the worse side, or covers it (``"n/a"`` with a single unit).

    ``methods`` restricts the comparison to those methods (and fixes their order). Every
    compared method must have exactly the units the others have in each group; otherwise
    a ValueError names the units each method lacks — nothing is dropped silently.
    """
    by = _as_list(by)
    _check_long(scores, unit, method, score, by)
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    sign = 1.0 if higher_is_better else -1.0
    rows = []
    for key, group in _groups(scores, by):
        present = list(dict.fromkeys(group[method]))
        wanted = present if methods is None else list(methods)
        unknown = [m for m in wanted + ([reference] if reference is not None else []) if m not in present]
        if unknown:
            where = f" for {dict(zip(by, key))}" if by else ""
            raise ValueError(f"method(s) {unknown} have no scores{where}; the table has {present}")
        compared = wanted if reference is None or reference in wanted else wanted + [reference]
        _check_same_units(group, unit, method, key, by, compared)
        wide = group.pivot(index=unit, columns=method, values=score)
        if reference is None:
            pairs = [(a, b) for i, a in enumerate(wanted) for b in wanted[i + 1:]]
        else:
            pairs = [(m, reference) for m in wanted if m != reference]
        for a, b in pairs:
            diff = (wide[a] - wide[b]).to_numpy(dtype=float)
            better = sign * diff
            row = {**dict(zip(by, key)), "method": a, "reference": b, **_interval(diff, confidence),
                   "wins": int(np.sum(better > tolerance)), "ties": int(np.sum(np.abs(diff) <= tolerance)),
                   "losses": int(np.sum(better < -tolerance))}
            low, high = sign * row["low"], sign * row["high"]
            if not np.isfinite(row["ci"]):
                row["verdict"] = "n/a"
            else:
                row["verdict"] = ("beats" if min(low, high) > 0 else
                                  "loses to" if max(low, high) < 0 else "ties with")
            rows.append(row)
    columns = [*by, "method", "reference", "units", "mean", "ci", "low", "high", "wins", "ties", "losses",
               "verdict"]
    return pd.DataFrame(rows, columns=columns)
