"""Matching merchants' offers to catalogue products: the retrieval task, its scores and metrics.

A price-comparison site holds a catalogue of products. Merchants send offers -- a title,
a price -- and each offer must be attached to the right product before its price can be
shown. When a new category opens, the catalogue has a few offers per product (the ones
matched by hand); every later offer is a query against *all* products of the category,
not a 5-way episode.

- :func:`catalogue_tasks` turns one category of an offer table into that task for several
  numbers K of indexed offers per product, with the same queries at every K, so the
  results against K are paired.
- :func:`product_scores` scores every query against every product from the indexed
  offers' vectors (dense embeddings or sparse TF-IDF rows), by the nearest indexed offer
  or by the product's prototype (the mean of its offers).
- :func:`retrieval_metrics` turns scores into Recall@k and the reciprocal rank of the
  true product, counting ties at their expected value (a method that cannot tell two
  products apart gets half the credit, not all of it or none).
- :func:`lexical_vectors` is the search team's first baseline: TF-IDF from scikit-learn
  (:func:`lexical_vectorizer`), fitted on the indexed titles.
- :func:`margin_threshold` chooses how sure the top match must be before an offer is
  matched without a person looking at it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse


@dataclass(frozen=True)
class CatalogueTask:
    """One category as a matching task.

    ``index[k]`` holds the rows (of the offer table) indexed when each product has up to
    ``k`` matched offers; ``query`` the rows matched afterwards (the same at every k);
    ``products`` every product of the category, in the column order of the scores.
    """

    category: str
    products: np.ndarray
    index: dict
    query: np.ndarray

    def index_products(self, offers: pd.DataFrame, k: int) -> np.ndarray:
        """The column (position in ``products``) of each indexed offer at ``k`` shots."""
        return np.searchsorted(self.products, offers["cluster_id"].to_numpy()[self.index[k]])

    def query_products(self, offers: pd.DataFrame) -> np.ndarray:
        """The column of each query's true product."""
        return np.searchsorted(self.products, offers["cluster_id"].to_numpy()[self.query])


def catalogue_tasks(offers: pd.DataFrame, category: str, shots=(1, 2, 4), seed: int = 0) -> CatalogueTask:
    """The products of ``category``, each with its offers in a random order (``seed``).

    At K shots a product's first ``min(K, n)`` offers are indexed. Products with more than
    ``max(shots)`` offers give their remaining offers as queries, so every K is scored on
    the same queries; products with fewer offers stay in the index as candidates, as they
    would in a real catalogue.
    """
    shots = sorted({int(k) for k in shots})
    if not shots or shots[0] < 1:
        raise ValueError(f"shots must be positive numbers of offers per product, got {shots}")
    for column in ("cluster_id", "category", "title"):
        if column not in offers.columns:
            raise ValueError(f"the offer table needs a {column!r} column (see data.read_product_offers)")
    rows = np.flatnonzero((offers["category"].astype(str) == str(category)).to_numpy())
    if len(rows) == 0:
        known = sorted(offers["category"].astype(str).unique())
        raise ValueError(f"no offers in category {category!r}; the table has {known}")
    rng = np.random.default_rng(seed)
    rows = rows[rng.permutation(len(rows))]
    product = offers["cluster_id"].to_numpy()[rows]
    order = np.argsort(product, kind="stable")
    rows, product = rows[order], product[order]
    position = np.arange(len(rows)) - np.searchsorted(product, product)  # 0, 1, ... within product
    most = shots[-1]
    sizes = pd.Series(product).map(pd.Series(product).value_counts()).to_numpy()
    query = np.sort(rows[(position >= most) & (sizes > most)])
    if len(query) == 0:
        raise ValueError(f"category {category!r} has no product with more than {most} offers, "
                         "so nothing is left to query at that many shots")
    index = {k: np.sort(rows[position < k]) for k in shots}
    return CatalogueTask(str(category), np.unique(product), index, query)


def _normalised_rows(vectors):
    if sparse.issparse(vectors):
        norms = np.sqrt(np.asarray(vectors.multiply(vectors).sum(axis=1))).ravel()
        return sparse.diags(1.0 / np.maximum(norms, 1e-12)) @ vectors
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def product_scores(query_vectors, index_vectors, index_product, n_products: int, how: str = "nearest"):
    """Cosine scores ``[queries, n_products]`` of each query against each product.

    ``index_product`` gives the column of each indexed offer. ``how="nearest"`` scores a
    product by its most similar indexed offer; ``how="prototype"`` by the product's mean
    (normalised) offer vector, as a prototypical network does. A product with no indexed
    offer scores ``-inf``. Vectors may be dense arrays or scipy sparse rows (TF-IDF).
    """
    if how not in ("nearest", "prototype"):
        raise ValueError(f"how must be 'nearest' or 'prototype', got {how!r}")
    index_product = np.asarray(index_product)
    if index_vectors.shape[0] != len(index_product):
        raise ValueError(f"{index_vectors.shape[0]} indexed vectors but {len(index_product)} products for them")
    if query_vectors.shape[0] == 0:
        raise ValueError("no queries to score")
    if index_product.size and (index_product.min() < 0 or index_product.max() >= n_products):
        raise ValueError(f"index_product must lie in [0, {n_products})")
    query = _normalised_rows(query_vectors)
    index = _normalised_rows(index_vectors)
    scores = np.full((query.shape[0], n_products), -np.inf, dtype=np.float32)
    present = np.unique(index_product)
    if how == "prototype":
        member = sparse.csr_matrix((np.ones(len(index_product)), (index_product, np.arange(len(index_product)))),
                                   shape=(n_products, len(index_product)))
        means = _normalised_rows(member[present] @ index)
        similarity = query @ means.T
        scores[:, present] = similarity.toarray() if sparse.issparse(similarity) else similarity
        return scores
    order = np.argsort(index_product, kind="stable")
    similarity = query @ index[order].T
    similarity = similarity.toarray() if sparse.issparse(similarity) else np.asarray(similarity)
    starts = np.searchsorted(index_product[order], present)
    scores[:, present] = np.maximum.reduceat(similarity, starts, axis=1)
    return scores


def retrieval_metrics(scores, true_column, ks=(1, 5)) -> pd.DataFrame:
    """Per query: Recall@k for each k and the reciprocal rank of the true product.

    Products scoring exactly as the true one are ties; the true product is taken to be
    equally likely at any of the tied positions, and each metric is its expected value.
    """
    scores = np.asarray(scores, dtype=float)
    true_column = np.asarray(true_column)
    if scores.ndim != 2 or len(true_column) != scores.shape[0]:
        raise ValueError(f"scores must be [queries, products] with one true column per query; got "
                         f"{scores.shape} and {true_column.shape}")
    if true_column.min() < 0 or true_column.max() >= scores.shape[1]:
        raise ValueError(f"true columns must lie in [0, {scores.shape[1]})")
    true = scores[np.arange(len(scores)), true_column][:, None]
    if not np.isfinite(true).all():
        raise ValueError("a query's true product has no score (is it in the index?)")
    above = (scores > true).sum(axis=1)
    tied = (scores == true).sum(axis=1)  # includes the true product itself
    result = {}
    for k in ks:
        result[f"recall@{k}"] = np.clip(k - above, 0, tied) / tied
    positions = above[:, None] + 1 + np.arange(tied.max())[None, :]
    reciprocal = np.where(np.arange(tied.max())[None, :] < tied[:, None], 1.0 / positions, 0.0)
    result["reciprocal rank"] = reciprocal.sum(axis=1) / tied
    return pd.DataFrame(result)


def lexical_vectorizer(analyzer: str = "char_wb"):
    """An unfitted scikit-learn TF-IDF vectorizer for titles: character 3-5-grams within
    words (``"char_wb"``, robust to model codes written as "UE55" or "UE-55") or words
    and word pairs (``"word"``), both with sublinear term frequencies."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    if analyzer == "char_wb":
        return TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True)
    if analyzer == "word":
        return TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True,
                               token_pattern=r"(?u)\b\w+\b")
    raise ValueError(f"analyzer must be 'char_wb' or 'word', got {analyzer!r}")


def lexical_vectors(index_titles, query_titles, analyzer: str = "char_wb"):
    """TF-IDF rows of the indexed and the query titles, fitted on the indexed titles only
    (what the catalogue knows); see :func:`lexical_vectorizer`."""
    vectorizer = lexical_vectorizer(analyzer)
    index_titles, query_titles = list(map(str, index_titles)), list(map(str, query_titles))
    if not index_titles or not query_titles:
        raise ValueError("lexical_vectors needs at least one indexed and one query title")
    index = vectorizer.fit_transform(index_titles)
    return index, vectorizer.transform(query_titles)


def top_margin(scores) -> np.ndarray:
    """How far the best product's score lies above the second best's, per query."""
    scores = np.asarray(scores, dtype=float)
    if scores.shape[1] < 2:
        raise ValueError("a margin needs at least two products")
    top_two = -np.partition(-scores, 1, axis=1)[:, :2]
    return top_two[:, 0] - top_two[:, 1]


def margin_threshold(margin, correct, precision: float = 0.98) -> float:
    """The smallest margin at which the offers matched automatically (margin >= it) are
    right at least ``precision`` of the time, on data not used for testing (``inf`` when
    no threshold reaches it: every offer goes to a person)."""
    margin, correct = np.asarray(margin, dtype=float), np.asarray(correct, dtype=float)
    if margin.shape != correct.shape or margin.size == 0:
        raise ValueError("margin and correct need the same, non-zero length")
    if not 0 < precision <= 1:
        raise ValueError(f"precision must lie in (0, 1], got {precision}")
    order = np.argsort(-margin, kind="stable")
    margin, correct = margin[order], correct[order]
    running = np.cumsum(correct) / np.arange(1, len(correct) + 1)
    last = np.flatnonzero(margin[:-1] > margin[1:])  # cut only between different margins
    cuts = np.append(last, len(margin) - 1)
    good = cuts[running[cuts] >= precision]
    return float(margin[good.max()]) if good.size else float("inf")
