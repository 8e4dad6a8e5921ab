"""Few-shot intent routing: support sets, query intents the support lacks, out-of-scope
rejection and the cost of routing decisions."""

from __future__ import annotations

import numpy as np
import pytest

from metaecom.cases.intents import check_query_intents, rejection_metrics, routing_cost, routing_task
from metaecom.tasks import all_way_split


def test_all_way_split_takes_k_of_every_intent_and_leaves_the_rest_as_queries():
    labels = np.array(["refund"] * 5 + ["delivery"] * 3 + ["invoice"] * 4)
    task = all_way_split(labels, 2, seed=1)
    support, query = task.support, task.query
    assert len(support) == 6 and len(query) == 6
    assert not set(support) & set(query) and set(support) | set(query) == set(range(12))
    assert sorted(labels[support].tolist()) == ["delivery"] * 2 + ["invoice"] * 2 + ["refund"] * 2
    assert [task.classes[y] for y in task.query_y] == labels[query].tolist()
    assert np.array_equal(all_way_split(labels, 2, seed=1).support, support)  # seeded


def test_all_way_split_names_the_intents_too_small_for_k():
    labels = ["refund"] * 5 + ["delivery"] * 3 + ["invoice"] * 2
    with pytest.raises(ValueError, match=r"2 of 3 classes are too small.*'delivery' has 3 rows.*'invoice' has 2"):
        all_way_split(labels, 3)
    with pytest.raises(ValueError, match="k_shot"):
        all_way_split(labels, 0)


def test_a_shared_support_pool_gives_nested_supports_and_the_same_queries_at_every_k():
    labels = np.repeat(["refund", "delivery", "invoice"], [9, 7, 12])
    tasks = {k: all_way_split(labels, k, seed=3, support_pool=4, n_query=2) for k in (1, 2, 4)}
    assert all(np.array_equal(tasks[k].query, tasks[1].query) for k in (2, 4))
    assert set(tasks[1].support) < set(tasks[2].support) < set(tasks[4].support)
    assert not set(tasks[4].support) & set(tasks[1].query)
    assert len(tasks[1].query) == 6 and np.bincount(tasks[1].query_y).tolist() == [2, 2, 2]
    with pytest.raises(ValueError, match=r"support_pool \(2\) must be at least k_shot \(4\)"):
        all_way_split(labels, 4, support_pool=2)
    with pytest.raises(ValueError, match="1 of 3 classes are too small.*'delivery' has 7 rows"):
        all_way_split(labels, 1, support_pool=7)


def test_a_routing_task_keeps_out_of_scope_intents_out_of_the_support():
    labels = np.repeat(["refund", "delivery", "invoice", "newsletter"], [9, 7, 12, 5])
    tasks = {k: routing_task(labels, ["refund", "delivery", "invoice"], ["newsletter"], k, support_pool=4,
                             n_query=3, seed=2) for k in (1, 4)}
    one, four = tasks[1], tasks[4]
    assert list(one.intents) == ["delivery", "invoice", "refund"]
    assert set(labels[four.support]) == {"refund", "delivery", "invoice"} and len(four.support) == 12
    assert np.array_equal(one.query, four.query) and set(one.support) < set(four.support)
    assert [one.intents[y] for y in one.query_y] == labels[one.query].tolist()
    assert set(labels[one.outside]) == {"newsletter"} and len(one.outside) == 3
    assert not set(four.support) & (set(four.query) | set(four.outside))
    with pytest.raises(ValueError, match="both in and out of scope: refund"):
        routing_task(labels, ["refund", "invoice"], ["refund"], 1)
    with pytest.raises(ValueError, match="1 intent.s. have no messages: returns"):
        routing_task(labels, ["refund"], ["returns"], 1)


def test_a_query_intent_missing_from_the_support_is_refused_unless_out_of_scope():
    check_query_intents(["a", "b"], ["a", "b", "c"], out_of_scope=[False, False, True])
    with pytest.raises(ValueError, match="1 query intent.*: c"):
        check_query_intents(["a", "b"], ["a", "b", "c"])
    with pytest.raises(ValueError, match="2 flags for 3 queries"):
        check_query_intents(["a"], ["a", "a", "a"], out_of_scope=[True, False])


def test_rejection_metrics_on_a_known_case():
    inside = np.arange(1, 21) / 20  # 0.05 ... 1.0
    outside = np.array([0.02, 0.04, 0.3, 0.6])
    result = rejection_metrics(inside, outside, true_accept=0.95)
    assert result["threshold"] == pytest.approx(0.1)  # accepts 19 of 20 in-scope messages
    assert result["true_accept"] == pytest.approx(0.95)
    assert result["false_accept"] == pytest.approx(0.5)  # 0.3 and 0.6 get through
    # ROC-AUC: of the 80 (in, out) pairs, those the in-scope message wins
    wins = sum((i > o) + 0.5 * (i == o) for i in inside for o in outside)
    assert result["roc_auc"] == pytest.approx(wins / 80)
    with pytest.raises(ValueError, match="at least one in-scope and one out-of-scope"):
        rejection_metrics(inside, [])


def test_routing_cost_counts_each_outcome_once():
    result = routing_cost(predicted=["a", "b", "a", "b", "a"], true=["a", "a", "x", "b", "b"],
                          accepted=[True, True, True, False, True], out_of_scope=[False, False, True, False, False],
                          wrong_queue=5.0, accepted_out_of_scope=3.0, to_person=1.0)
    assert (result["routed right"], result["wrong queue"], result["out of scope accepted"],
            result["to a person"]) == (1, 2, 1, 1)
    assert result["cost"] == 2 * 5 + 3 + 1 and result["cost per message"] == pytest.approx(14 / 5)
