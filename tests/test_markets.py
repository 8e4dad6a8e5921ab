"""Per-country regression tasks from Online Retail: cleaning, the country split, and
episodes whose support and query lines never share an invoice."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from metaecom.cases.markets import CountryTasks, order_lines, split_countries


def _retail(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    countries = ["United Kingdom", "France", "Germany", "Spain", "Norway", "Japan"]
    for number in range(600):
        country = countries[number % len(countries)]
        for _ in range(rng.integers(1, 6)):
            rows.append({"invoice": f"{number:06d}", "quantity": int(rng.integers(1, 50)),
                         "unit_price": float(rng.uniform(0.5, 20)), "country": country})
    rows += [{"invoice": "C000001", "quantity": -3, "unit_price": 2.0, "country": "France"},
             {"invoice": "000601", "quantity": 5, "unit_price": 0.0, "country": "France"},
             {"invoice": "000602", "quantity": 5, "unit_price": 1.0, "country": "Unspecified"}]
    return pd.DataFrame(rows)


def test_order_lines_drop_cancellations_free_items_and_unknown_countries():
    retail = _retail()
    lines = order_lines(retail)
    assert len(lines) == len(retail) - 3
    assert not lines["invoice"].str.startswith("C").any() and (lines["unit_price"] > 0).all()
    assert "Unspecified" not in set(lines["country"])
    first = lines[lines["invoice"] == lines["invoice"][0]]
    np.testing.assert_allclose(first["log_basket"], np.log(len(first)))
    np.testing.assert_allclose(lines["log_quantity"], np.log(lines["quantity"]))
    with pytest.raises(ValueError, match="lacks columns"):
        order_lines(retail.drop(columns="country"))


def test_split_keeps_the_home_market_for_training_and_holds_half_the_others_out():
    lines = order_lines(_retail())
    train, test = split_countries(lines, min_lines=70, seed=0)
    assert "United Kingdom" in train and len(test) == 2 and not set(train) & set(test)
    assert split_countries(lines, min_lines=70, seed=0) == (train, test)
    with pytest.raises(ValueError, match="need at least 3"):
        split_countries(lines, min_lines=10_000)


def test_episodes_split_invoices_and_use_training_statistics_only():
    lines = order_lines(_retail())
    train, test = split_countries(lines, seed=0)
    tasks = CountryTasks(lines, train, test)
    is_train = lines["country"].isin(train).to_numpy()
    np.testing.assert_allclose(tasks.x[is_train].mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(tasks.x[is_train].std(axis=0, ddof=1), 1, atol=1e-4)
    rng = np.random.default_rng(1)
    for country in test:
        support, query = tasks.episode_rows(country, 10, 30, rng)
        assert len(support) == 10 and len(query) == 30 and len(set(support) | set(query)) == 40
        assert set(lines["country"][np.concatenate([support, query])]) == {country}
        assert not set(lines["invoice"][support]) & set(lines["invoice"][query])
    sx, sy, qx, qy = tasks.episode(test[0], 5, 30, rng)
    assert sx.shape == (5, 2) and qy.shape == (30,) and sx.dtype == np.float32
    sx, sy, qx, qy = next(tasks.stream([7], 30, rng, batch=2))
    assert len(sx) == 7 and len(qx) == 30
    with pytest.raises(ValueError, match="no split of its invoices"):
        tasks.episode(test[0], 500, 30, rng)
    with pytest.raises(ValueError, match="neither a meta-training nor a meta-test"):
        tasks.episode("Atlantis", 5, 30, rng)
    with pytest.raises(ValueError, match="have no lines"):
        CountryTasks(lines, train, ["Atlantis"])


def test_validation_countries_come_from_training_never_the_home_market():
    from metaecom.cases.markets import validation_countries
    train = ["United Kingdom", "France", "Germany", "Spain", "Norway", "Japan", "Italy", "Peru"]
    fit, val = validation_countries(train, fraction=0.25, seed=3)
    assert len(val) == 1 and "United Kingdom" in fit and "United Kingdom" not in val
    assert sorted(fit + val) == sorted(train) and fit == sorted(fit)
    assert validation_countries(train, 0.25, seed=3) == (fit, val)
    assert {tuple(validation_countries(train, 0.5, seed=s)[1]) for s in range(6)}.__len__() > 1
    with pytest.raises(ValueError, match="no country would validate"):
        validation_countries(["United Kingdom", "France"], 0.25)
    with pytest.raises(ValueError, match="more than once"):
        validation_countries(["France", "France", "Spain"])
