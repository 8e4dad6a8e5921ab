"""Routing customer messages to intents a help desk has only a few examples of, and
rejecting the messages no known intent covers.

A help desk that opens a new product line writes K example messages for each new intent
and routes every incoming message to one of them, *all intents at once*; a message about
something none of them covers (out of scope) should go to a person instead of to the
wrong queue. The functions here are the parts a chapter or a user's own data reuses:

- :func:`routing_task` builds one help desk's task: K support messages of every
  in-scope intent (through :func:`metaecom.tasks.all_way_split`, which refuses up front
  an intent with too few), their queries, and messages of intents left out of scope;
- :func:`check_query_intents` refuses queries whose intent the support set lacks
  (unless they are marked out of scope), so an accuracy is never computed against
  labels the classifier could not have known;
- :func:`rejection_metrics` scores how well a confidence separates in-scope from
  out-of-scope messages: ROC-AUC, and the share of out-of-scope messages accepted
  when the threshold accepts a given share (95% by default) of in-scope ones;
- :func:`routing_cost` prices the outcome: a message routed to the wrong queue, an
  out-of-scope message accepted, and a message sent to a person.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from metaecom.tasks import all_way_split


@dataclass(frozen=True)
class RoutingTask:
    """Row numbers of one routing task: ``support`` and ``support_y`` (K messages of every
    in-scope intent, labels indexing ``intents``), ``query`` and ``query_y`` (in-scope
    messages to route), ``outside`` (messages of the out-of-scope intents)."""

    support: np.ndarray
    support_y: np.ndarray
    query: np.ndarray
    query_y: np.ndarray
    outside: np.ndarray
    intents: np.ndarray


def routing_task(labels, in_scope, out_of_scope, k_shot: int, *, support_pool: int | None = None,
                 n_query: int | None = None, seed: int = 0) -> RoutingTask:
    """One help desk's task over ``labels`` (an intent per message): ``k_shot`` support
    messages of every ``in_scope`` intent, up to ``n_query`` query messages per in-scope
    intent, and up to ``n_query`` messages of every ``out_of_scope`` intent.

    With one ``seed`` and ``support_pool`` (the largest K), tasks at different ``k_shot``
    have nested supports and the same queries (:func:`metaecom.tasks.all_way_split`).
    Intents in both lists, intents absent from ``labels``, or an in-scope intent too small
    for the pool are errors.
    """
    labels = np.asarray(labels).astype(str)
    in_scope, out_of_scope = np.asarray(in_scope).astype(str), np.asarray(out_of_scope).astype(str)
    both = sorted(set(in_scope) & set(out_of_scope))
    if both:
        raise ValueError(f"intents both in and out of scope: {', '.join(both[:10])}")
    missing = sorted((set(in_scope) | set(out_of_scope)) - set(labels))
    if missing:
        raise ValueError(f"{len(missing)} intent(s) have no messages: {', '.join(missing[:10])}")
    rows = np.flatnonzero(np.isin(labels, in_scope))
    split = all_way_split(labels[rows], k_shot, seed=seed, n_query=n_query, support_pool=support_pool)
    rng = np.random.default_rng(seed)
    outside = [rng.permutation(np.flatnonzero(labels == i))[:n_query] for i in sorted(out_of_scope)]
    return RoutingTask(support=rows[split.support], support_y=split.support_y, query=rows[split.query],
                       query_y=split.query_y, outside=np.sort(np.concatenate(outside or [np.array([], int)])),
                       intents=np.array(split.classes))


def check_query_intents(support_labels, query_labels, out_of_scope=None) -> None:
    """Raise if a query's intent is missing from the support set and the query is not
    marked out of scope (``out_of_scope``: a boolean per query, or None)."""
    known = set(np.asarray(support_labels).tolist())
    query = np.asarray(query_labels)
    marked = np.zeros(len(query), bool) if out_of_scope is None else np.asarray(out_of_scope, bool)
    if marked.shape != query.shape:
        raise ValueError(f"out_of_scope has {marked.size} flags for {query.size} queries")
    unknown = sorted({str(q) for q, m in zip(query.tolist(), marked) if not m and q not in known})
    if unknown:
        raise ValueError(f"{len(unknown)} query intent(s) are absent from the support set and not marked out "
                         f"of scope: {', '.join(unknown[:10])}")


def rejection_metrics(in_scope_confidence, out_of_scope_confidence, true_accept: float = 0.95) -> dict:
    """How well a confidence (higher = more sure the message is in scope) separates the
    two groups: ``roc_auc``; the highest ``threshold`` that accepts at least ``true_accept``
    of the in-scope messages (``true_accept`` in the result: the share it does accept);
    and ``false_accept``, the share of out-of-scope messages at or above it."""
    from sklearn.metrics import roc_auc_score

    inside = np.asarray(in_scope_confidence, dtype=float).ravel()
    outside = np.asarray(out_of_scope_confidence, dtype=float).ravel()
    if inside.size == 0 or outside.size == 0:
        raise ValueError("rejection needs at least one in-scope and one out-of-scope message")
    if not (np.isfinite(inside).all() and np.isfinite(outside).all()):
        raise ValueError("confidences must be finite")
    if not 0 < true_accept <= 1:
        raise ValueError(f"true_accept must lie in (0, 1], got {true_accept}")
    # the highest threshold that still accepts at least ``true_accept`` of the in-scope messages
    rejected = int(np.floor((1 - true_accept) * inside.size + 1e-9))
    threshold = float(np.sort(inside)[rejected])
    labels = np.r_[np.ones(inside.size), np.zeros(outside.size)]
    return {"roc_auc": float(roc_auc_score(labels, np.r_[inside, outside])), "threshold": threshold,
            "true_accept": float(np.mean(inside >= threshold)), "false_accept": float(np.mean(outside >= threshold))}


def routing_cost(predicted, true, accepted, out_of_scope, *, wrong_queue: float, accepted_out_of_scope: float,
                 to_person: float) -> dict:
    """Counts and total cost of routing decisions.

    Per message: ``predicted`` intent, ``true`` intent (ignored when ``out_of_scope``),
    ``accepted`` (routed automatically, else sent to a person). An accepted in-scope
    message in the wrong queue costs ``wrong_queue``; an accepted out-of-scope message
    ``accepted_out_of_scope``; every message sent to a person ``to_person``.
    """
    predicted, true = np.asarray(predicted), np.asarray(true)
    accepted, out_of_scope = np.asarray(accepted, bool), np.asarray(out_of_scope, bool)
    if not (predicted.shape == true.shape == accepted.shape == out_of_scope.shape):
        raise ValueError("predicted, true, accepted and out_of_scope need one entry per message")
    counts = {"routed right": int(np.sum(accepted & ~out_of_scope & (predicted == true))),
              "wrong queue": int(np.sum(accepted & ~out_of_scope & (predicted != true))),
              "out of scope accepted": int(np.sum(accepted & out_of_scope)),
              "to a person": int(np.sum(~accepted))}
    cost = (counts["wrong queue"] * wrong_queue + counts["out of scope accepted"] * accepted_out_of_scope
            + counts["to a person"] * to_person)
    return {**counts, "cost": float(cost), "cost per message": float(cost / max(len(predicted), 1))}
