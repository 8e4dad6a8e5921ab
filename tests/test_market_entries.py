"""Products entering a country: the (country, product) weekly series, the key, and the
counts known before an entry."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from metaecom.cases import launches
from metaecom.cases.markets import country_product_sales, split_entry, units_before


def _line(invoice, code, quantity, when, country, customer="1"):
    return {"invoice": invoice, "stock_code": code, "description": "cake cases", "quantity": quantity,
            "invoice_date": pd.Timestamp(when), "unit_price": 1.0, "customer_id": customer,
            "country": country}


def _retail() -> pd.DataFrame:
    rows = [_line("1", "22423", 10, "2011-01-04", "United Kingdom"),
            _line("2", "22423", 6, "2011-01-11", "France"),
            _line("3", "22423", 4, "2011-01-25", "France"),
            _line("4", "22423", 12, "2011-01-18", "Norway", customer="2"),
            _line("C5", "22423", -12, "2011-01-19", "Norway", customer="2"),  # undoes line 4
            _line("6", "85123A", 3, "2011-01-19", "Norway", customer="2"),
            _line("7", "22423", 2, "2011-01-12", "Unspecified")]
    return pd.DataFrame(rows).astype({"country": "category"})


def test_series_per_country_and_product_start_at_the_entry_and_drop_undone_lines():
    weekly = country_product_sales(_retail())
    assert set(weekly["product"]) == {"France|22423", "Norway|85123A"}  # no home, no Unspecified
    france = weekly[weekly["product"] == "France|22423"]
    assert france["value"].tolist() == [6.0, 0.0, 4.0]  # weeks of 10, 17 and 24 January
    assert launches.launch_weeks(weekly)["France|22423"] == pd.Timestamp("2011-01-10")
    countries, codes = split_entry(["France|22423", "Norway|85123A"])
    assert countries.tolist() == ["France", "Norway"] and codes.tolist() == ["22423", "85123A"]


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="home market"):
        country_product_sales(_retail(), home="Narnia")
    with pytest.raises(ValueError, match=r"lacks column.*customer_id"):
        country_product_sales(_retail().drop(columns="customer_id"))
    with pytest.raises(ValueError, match="country"):
        split_entry(["France-22423"])


def test_units_before_counts_only_weeks_that_ended_before_the_entry():
    weekly = pd.DataFrame({"product": ["a"] * 4 + ["b"],
                           "period": pd.to_datetime(["2011-01-03", "2011-01-10", "2011-01-17",
                                                     "2011-01-24", "2011-01-03"]),
                           "value": [1.0, 2.0, 4.0, 8.0, 5.0]})
    got = units_before(weekly, ["a", "a", "b", "c"], pd.to_datetime(
        ["2011-01-24", "2011-01-17", "2011-01-03", "2011-01-24"]), n_weeks=2)
    np.testing.assert_allclose(got, [6.0, 3.0, 0.0, 0.0])  # a: weeks 10 and 17 Jan; never the entry week
    with pytest.raises(ValueError, match="products but"):
        units_before(weekly, ["a"], pd.to_datetime(["2011-01-03", "2011-01-10"]), 2)
    with pytest.raises(ValueError, match="n_weeks"):
        units_before(weekly, ["a"], pd.to_datetime(["2011-01-03"]), 0)
