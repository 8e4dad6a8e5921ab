"""Offer matching: the catalogue task, product scores, retrieval metrics with ties, the
TF-IDF baseline and the automatic-match threshold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from metaecom.cases.search import (catalogue_tasks, lexical_vectors, margin_threshold, product_scores,
                                   retrieval_metrics, top_margin)


def _offers() -> pd.DataFrame:
    # product 10: 6 offers, 11: 3, 12: 1 (TVs); product 20 is another category
    products = [10] * 6 + [11] * 3 + [12] + [20] * 6
    categories = ["TVs"] * 10 + ["Fridges"] * 6
    titles = [f"tv {p} offer {i}" for i, p in enumerate(products)]
    return pd.DataFrame({"cluster_id": products, "category": categories, "title": titles})


def test_catalogue_task_queries_are_the_same_at_every_k_and_never_indexed():
    offers = _offers()
    task = catalogue_tasks(offers, "TVs", shots=(1, 2, 4), seed=3)
    assert task.products.tolist() == [10, 11, 12]
    # only product 10 has more than 4 offers: its 5th and 6th are the queries
    assert len(task.query) == 2 and set(offers["cluster_id"][task.query]) == {10}
    for k, size in ((1, 3), (2, 5), (4, 8)):
        assert len(task.index[k]) == size  # 10: min(k, 6), 11: min(k, 3), 12: 1
        assert not set(task.index[k]) & set(task.query)
    assert set(task.index[1]) <= set(task.index[2]) <= set(task.index[4])
    assert task.query_products(offers).tolist() == [0, 0]
    assert sorted(set(task.index_products(offers, 4))) == [0, 1, 2]


def test_catalogue_task_refuses_what_it_cannot_score():
    offers = _offers()
    with pytest.raises(ValueError, match="no offers in category 'Phones'"):
        catalogue_tasks(offers, "Phones")
    with pytest.raises(ValueError, match="no product with more than 8 offers"):
        catalogue_tasks(offers, "TVs", shots=(8,))
    with pytest.raises(ValueError, match="positive"):
        catalogue_tasks(offers, "TVs", shots=(0, 1))
    with pytest.raises(ValueError, match="'title' column"):
        catalogue_tasks(offers.drop(columns="title"), "TVs")


def test_nearest_and_prototype_scores_agree_with_a_direct_computation():
    rng = np.random.default_rng(0)
    index = rng.normal(size=(7, 5))
    owner = np.array([0, 0, 1, 2, 2, 2, 4])  # product 3 has no indexed offer
    query = rng.normal(size=(4, 5))
    unit = lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True)  # noqa: E731
    cosine = unit(query) @ unit(index).T
    nearest = product_scores(query, index, owner, 5, how="nearest")
    for product in (0, 1, 2, 4):
        np.testing.assert_allclose(nearest[:, product], cosine[:, owner == product].max(axis=1), rtol=1e-5)
    assert np.isneginf(nearest[:, 3]).all()
    prototype = product_scores(query, index, owner, 5, how="prototype")
    mean = unit(unit(index)[owner == 2].mean(axis=0))
    np.testing.assert_allclose(prototype[:, 2], unit(query) @ mean, rtol=1e-5)
    # sparse rows (TF-IDF) give the same scores as dense ones
    np.testing.assert_allclose(product_scores(sparse.csr_matrix(query), sparse.csr_matrix(index), owner, 5),
                               nearest, rtol=1e-5)


def test_retrieval_metrics_count_ties_at_their_expected_value():
    scores = np.array([[0.9, 0.1, 0.5],     # true 0: rank 1
                       [0.9, 0.1, 0.5],     # true 2: rank 2
                       [0.5, 0.5, 0.5],     # true 1: a three-way tie
                       [0.2, 0.9, 0.8]])    # true 0: rank 3
    metrics = retrieval_metrics(scores, [0, 2, 1, 0], ks=(1, 2))
    np.testing.assert_allclose(metrics["recall@1"], [1, 0, 1 / 3, 0])
    np.testing.assert_allclose(metrics["recall@2"], [1, 1, 2 / 3, 0])
    np.testing.assert_allclose(metrics["reciprocal rank"], [1, 0.5, (1 + 1 / 2 + 1 / 3) / 3, 1 / 3])
    with pytest.raises(ValueError, match="no score"):
        retrieval_metrics(np.array([[-np.inf, 1.0]]), [0])


def test_tfidf_matches_a_model_code_written_differently():
    index, query = lexical_vectors(["Samsung UE55RU7100 55 inch", "LG OLED55C9 55 inch"], ["samsung ue-55ru7100"])
    scores = product_scores(query, index, np.array([0, 1]), 2)
    assert scores[0, 0] > scores[0, 1]
    with pytest.raises(ValueError, match="analyzer"):
        lexical_vectors(["a"], ["b"], analyzer="bm25")


def test_margin_threshold_reaches_the_precision_on_the_offers_it_lets_through():
    margin = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    correct = np.array([1, 1, 1, 0, 1, 0])
    assert margin_threshold(margin, correct, precision=1.0) == 0.7
    assert margin_threshold(margin, correct, precision=0.8) == 0.5  # 4 of 5 right
    assert margin_threshold(margin, np.zeros(6), precision=0.9) == np.inf
    # equal margins are let through together or not at all
    assert margin_threshold(np.array([0.5, 0.5, 0.1]), np.array([1, 0, 1]), 1.0) == np.inf
    np.testing.assert_allclose(top_margin(np.array([[0.1, 0.7, 0.4], [2.0, 2.0, 0.0]])), [0.3, 0.0])


def test_sparse_prototypes_equal_dense_prototypes():
    rng = np.random.default_rng(1)
    index, query = rng.random((6, 4)), rng.random((3, 4))
    owner = np.array([0, 1, 1, 2, 2, 2])
    dense = product_scores(query, index, owner, 3, how="prototype")
    np.testing.assert_allclose(
        product_scores(sparse.csr_matrix(query), sparse.csr_matrix(index), owner, 3, how="prototype"), dense,
        rtol=1e-5)
    with pytest.raises(ValueError, match="'nearest' or 'prototype'"):
        product_scores(query, index, owner, 3, how="mean")
