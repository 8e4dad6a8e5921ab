"""Every path of the page "Using this book on your own data", end to end on small files
of the official formats that the tests write themselves (no third-party data): read the
file, look at its problem report, build the chapter's tasks with their feasibility
check, and run a baseline on them."""

from __future__ import annotations

import gzip
import json
import zipfile

import numpy as np
import pandas as pd
import pytest

from metaecom import data, tasks
from metaecom.baselines import ItemMean
from metaecom.cases import markets
from metaecom.data.problems import data_problems


def _reviews(n_users=30, n_items=12, per_user=8, seed=0):
    """Review records of the 2014 release (no 'verified'), with one repeated pair."""
    rng = np.random.default_rng(seed)
    records = []
    for u in range(n_users):
        for i in rng.choice(n_items, per_user, replace=False):
            records.append({"reviewerID": f"U{u}", "asin": f"B{i:03d}", "overall": float(rng.integers(1, 6)),
                            "unixReviewTime": int(1_300_000_000 + 86_400 * (u + int(i))), "reviewText": "ok",
                            "summary": "fine", "helpful": [0, 0], "reviewTime": "01 1, 2011"})
    records.append(dict(records[0], overall=1.0, unixReviewTime=records[0]["unixReviewTime"] + 10))
    return records


def test_reviews_path_zipped_2014_json_lines_to_new_user_tasks_and_a_baseline(tmp_path):
    lines = "\n".join(json.dumps(r) for r in _reviews())
    path = tmp_path / "reviews_Beauty_5.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("reviews_Beauty_5.json", lines)
    reviews = data.read_amazon_reviews(path)
    report = data_problems(reviews)
    assert report["count"].tolist() == [1] and "latest" in report["rule"].iloc[0]
    users_new, items_new = tasks.split_users_items_by_time(reviews, new_fraction=0.2)
    scenarios = tasks.rating_scenarios(reviews, items_new, users_new, min_ratings=4, max_ratings=100,
                                       n_query=2, seed=0)
    assert len(scenarios["warm"]) > 0 and len(scenarios["new_user"]) > 0
    warm = reviews.iloc[np.concatenate([np.r_[e.support, e.query] for e in scenarios["warm"]])]
    baseline = ItemMean(user_offset=True).fit(warm["item_id"], warm["rating"])
    e = scenarios["new_user"][0]
    s, q = reviews.iloc[e.support], reviews.iloc[e.query]
    predicted = baseline.predict(s["item_id"], s["rating"], q["item_id"])
    assert predicted.shape == (len(e.query),) and np.all((predicted >= 0) & (predicted <= 6))


def test_repeated_pair_keeps_its_latest_review(tmp_path):
    path = tmp_path / "Beauty_5.json.gz"
    path.write_bytes(gzip.compress("\n".join(json.dumps(r) for r in _reviews()).encode()))
    reviews = data.read_amazon_reviews(path)
    first = _reviews()[0]
    kept = reviews[(reviews["user_id"] == first["reviewerID"]) & (reviews["item_id"] == first["asin"])]
    assert len(kept) == 1 and kept["rating"].iloc[0] == 1.0          # the later copy's rating


def test_movielens_csv_release_in_a_zip_to_rating_tasks(tmp_path):
    rng = np.random.default_rng(1)
    rows = [(u, m, float(rng.integers(1, 11)) / 2, 1_000_000_000 + 60 * (u * 50 + m))
            for u in range(1, 21) for m in rng.choice(np.arange(1, 31), 10, replace=False)]
    ratings = "userId,movieId,rating,timestamp\n" + "\n".join(f"{u},{m},{r},{t}" for u, m, r, t in rows)
    movies = "movieId,title,genres\n" + "\n".join(f"{m},Film {m} (1999),Drama|Comedy" for m in range(1, 31))
    path = tmp_path / "ml-latest-small.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("ml-latest-small/ratings.csv", ratings)
        archive.writestr("ml-latest-small/movies.csv", movies)
    ml = data.read_movielens(path)
    assert len(ml.ratings) == len(rows) and ml.users.empty and ml.ratings["rating"].dtype == np.float32
    users_new, items_new = tasks.split_users_items_by_time(ml.ratings, new_fraction=0.2)
    scenarios = tasks.rating_scenarios(ml.ratings, items_new, users_new, min_ratings=4, n_query=2)
    assert sum(len(v) for v in scenarios.values()) > 0


def _orders(seed=0):
    """Invoice lines of 4 countries under Online Retail II's column names."""
    rng = np.random.default_rng(seed)
    rows, invoice = [], 500_000
    plan = {"France": (12, 6), "Spain": (10, 6), "Italy": (9, 5),   # invoices, lines each
            "Japan": (1, 40), "Norway": (3, 3)}
    for country, (n_invoices, lines_each) in plan.items():
        for _ in range(n_invoices):
            invoice += 1
            day = pd.Timestamp("2010-12-01") + pd.Timedelta(days=int(rng.integers(0, 200)))
            for _ in range(lines_each):
                rows.append({"Invoice": str(invoice), "StockCode": f"P{rng.integers(0, 15)}",
                             "Description": "item", "Quantity": int(rng.integers(1, 24)), "InvoiceDate": day,
                             "Price": float(rng.choice([0.85, 1.65, 2.95])), "Customer ID": 12_000.0,
                             "Country": country})
    return pd.DataFrame(rows)


def test_transactions_path_two_sheet_workbook_to_product_and_country_tasks(tmp_path):
    orders = _orders()
    path = tmp_path / "online_retail_II.xlsx"
    overlap = orders.iloc[:5]                           # the two official sheets share some lines
    with pd.ExcelWriter(path) as writer:
        orders.to_excel(writer, sheet_name="Year 2009-2010", index=False)
        overlap.to_excel(writer, sheet_name="Year 2010-2011", index=False)
    retail = data.read_online_retail(path)              # both sheets, shared lines dropped once
    assert len(retail) == len(orders)
    assert data_problems(retail)["count"].sum() >= 5
    weekly = data.weekly_sales(retail)
    short = tasks.infeasible_units(tasks.forecast_windows, weekly, history=4, horizon=4)
    assert set(short["unit"]) <= set(weekly["product"])
    lines = markets.order_lines(retail)
    report = markets.infeasible_countries(lines, [2, 5], n_query=10)
    assert set(report["country"]) == {"Japan", "Norway"}    # one invoice; too few lines
    with pytest.raises(ValueError, match="Japan"):
        markets.split_countries(lines, min_lines=5, shots=[2, 5], n_query=10)
    with pytest.warns(UserWarning, match="left out 2 countries"):
        train, test = markets.split_countries(lines, min_lines=5, shots=[2, 5], n_query=10,
                                              drop_infeasible=True, home="France")
    assert set(train) | set(test) == {"France", "Spain", "Italy"}


def test_labelled_texts_path_json_lines_to_episodes(tmp_path):
    texts = [{"utterance": f"please help with {topic} number {i}", "intent": topic}
             for topic in ["refund", "delivery", "invoice", "account"] for i in range(8)]
    texts.append(texts[0])                                   # a repeated text: one copy kept
    texts.append({"utterance": texts[1]["utterance"], "intent": "delivery"})   # conflicting labels
    path = tmp_path / "intents.jsonl"
    path.write_text("\n".join(json.dumps(t) for t in texts))
    frame = data.read_labelled_texts(path)
    assert len(frame) == 4 * 8 - 1 and len(data_problems(frame)) == 2
    labels = frame["label"].cat.codes.to_numpy()
    too_small = tasks.infeasible_units(tasks.FewShotSampler, labels, 3, 3, 5)
    assert len(too_small) == 1 and too_small["available"].iloc[0] == 7     # 'refund' lost its conflicting text
    sampler = tasks.FewShotSampler(labels, 3, 3, 5, drop_infeasible=True)
    episode = sampler.sample()
    assert len(episode.support) == 9 and len(sampler.dropped) == 1


def test_product_offers_path_spaced_headers_to_category_episodes(tmp_path):
    rows = [(i, f"offer {i} of product {i // 3}", 1 + i % 4, i // 3, f"product {i // 3}", i // 30,
             f"category {i // 30}") for i in range(90)]
    frame = pd.DataFrame(rows, columns=["Product ID", " Product Title", "Merchant ID", " Cluster ID",
                                        "Cluster Label", " Category ID", "Category Label"])
    path = tmp_path / "offers.csv"
    frame.to_csv(path, index=False)
    offers = data.read_product_offers(path)
    assert len(offers) == 90 and offers["cluster_id"].nunique() == 30
    labels = offers["category"].cat.codes.to_numpy()
    episode = tasks.FewShotSampler(labels, 3, 5, 5).sample()
    assert len(set(labels[episode.query])) == 3
