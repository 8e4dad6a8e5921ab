"""Per-user rating and ranking metrics for recommendation: MAE, RMSE, nDCG@k and the
share of item pairs a model orders correctly.

A recommender is judged user by user: each test user has a handful of query items with
true ratings; the model predicts a rating for each. :func:`user_metrics` scores one user;
averaging over users (with :func:`metaecom.evaluate.mean_ci`) gives the book's tables.

nDCG@k follows MeLU (Lee et al., 2019): rank the user's query items by predicted rating,
and grade the top k by their *true* ratings,

    DCG@k = sum_{i=1..k} rel_(i) / log2(i + 1),    nDCG@k = DCG@k / ideal DCG@k,

where rel_(i) is the true rating of the item ranked i-th and the ideal DCG ranks by the
true ratings themselves. The gain is the rating itself (linear), as in MeLU's code.

**Ties.** A model that predicts the same value for several items (an item-mean baseline
on new items, say) has not ranked them. Breaking such ties by input order would reward or
punish it by chance, so tied items share the discounts of the positions they occupy: the
result is the *expected* nDCG over a random order of the ties.

**When nDCG cannot tell methods apart.** With a few query items whose ratings are mostly
equal (three items, two thirds of them 5 stars), every ordering scores an nDCG near 1,
a random one included. :func:`pair_accuracy` asks the sharper question: of the pairs of
query items the user rated *differently*, what share does the model put in the right
order? A random order scores 0.5 whatever the ratings, and a user whose query ratings
are all equal has no such pair and no score (NaN), rather than a perfect one.
"""

from __future__ import annotations

import numpy as np


def _vectors(predicted, true) -> tuple[np.ndarray, np.ndarray]:
    predicted = np.asarray(predicted, dtype=float).ravel()
    true = np.asarray(true, dtype=float).ravel()
    if predicted.shape != true.shape:
        raise ValueError(f"predicted has {predicted.size} values but true has {true.size}")
    if predicted.size == 0:
        raise ValueError("a user needs at least one query item to be scored")
    if not (np.all(np.isfinite(predicted)) and np.all(np.isfinite(true))):
        raise ValueError("predicted and true ratings must be finite")
    return predicted, true


def _dcg(order_keys: np.ndarray, gains: np.ndarray, k: int) -> float:
    """DCG@k of items ranked by ``order_keys`` (descending); ties share their positions' discounts."""
    discounts = np.zeros(len(gains))
    top = min(k, len(gains))
    discounts[:top] = 1.0 / np.log2(np.arange(2, top + 2))
    order = np.argsort(-order_keys, kind="stable")
    keys, ranked_gains = order_keys[order], gains[order]
    total, start = 0.0, 0
    while start < len(keys):
        end = start + 1
        while end < len(keys) and keys[end] == keys[start]:
            end += 1
        total += ranked_gains[start:end].mean() * discounts[start:end].sum()
        start = end
    return float(total)


def ndcg_at_k(predicted, true, k: int) -> float:
    """nDCG@k of one user's query items: rank by ``predicted``, grade by ``true`` ratings.

    Ratings must be non-negative (they are the gains). If every true rating is 0 the
    ideal DCG is 0 and the nDCG is defined as 1 (no ranking can be wrong).
    """
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    predicted, true = _vectors(predicted, true)
    if np.any(true < 0):
        raise ValueError("true ratings are the gains of nDCG and must be non-negative")
    ideal = _dcg(true, true, k)
    if ideal == 0:
        return 1.0
    return _dcg(predicted, true, k) / ideal


def pair_accuracy(predicted, true) -> float:
    """Share of the pairs of items with *different* true ratings that ``predicted`` orders
    the same way; a pair the prediction ties counts one half (what a coin toss would get).

    0.5 is a random order, 1 a perfect one. NaN when every true rating is equal: such a
    user has no pair to order, and is left out of an average rather than scored 1.
    """
    predicted, true = _vectors(predicted, true)
    i, j = np.triu_indices(len(true), k=1)
    different = true[i] != true[j]
    if not different.any():
        return float("nan")
    agree = np.sign(predicted[i] - predicted[j]) * np.sign(true[i] - true[j])
    return float(np.mean((agree[different] + 1) / 2))


def user_metrics(predicted, true, ks=(1, 3)) -> dict[str, float]:
    """MAE, RMSE, nDCG@k (for each k in ``ks``) and ``pairs ordered``
    (:func:`pair_accuracy`, NaN when all true ratings are equal) of one user's query
    predictions."""
    predicted, true = _vectors(predicted, true)
    error = predicted - true
    scores = {"MAE": float(np.abs(error).mean()), "RMSE": float(np.sqrt((error ** 2).mean()))}
    for k in ks:
        scores[f"nDCG@{k}"] = ndcg_at_k(predicted, true, k)
    scores["pairs ordered"] = pair_accuracy(predicted, true)
    return scores
