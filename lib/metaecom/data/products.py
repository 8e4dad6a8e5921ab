"""PriceRunner product offers: 35,311 product titles from 306 merchants, labelled with
10 categories and 13,233 product clusters (Akritidis et al. 2020; UCI, CC BY 4.0).

``load_pricerunner()`` schema:
    product_id int32, title string (the merchant's offer title), merchant_id int32,
    cluster_id int32, cluster string (the canonical product name), category_id int32,
    category category
"""

from __future__ import annotations

import pandas as pd

from metaecom.data import catalog
from metaecom.data.parsed import cached_frame
from metaecom.data.registry import fetch

_VERSION = 1
_COLUMNS = {
    "Product ID": "product_id", "Product Title": "title", "Merchant ID": "merchant_id", "Cluster ID": "cluster_id",
    "Cluster Label": "cluster", "Category ID": "category_id", "Category Label": "category",
}


def parse_pricerunner(path) -> pd.DataFrame:
    """Parse ``pricerunner_aggregate.csv`` (header names are stripped of stray spaces)."""
    frame = pd.read_csv(path)
    frame.columns = [c.strip() for c in frame.columns]
    missing = set(_COLUMNS) - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)}; found {list(frame.columns)}")
    frame = frame.rename(columns=_COLUMNS)[list(_COLUMNS.values())]
    return frame.astype({"product_id": "int32", "title": "string", "merchant_id": "int32", "cluster_id": "int32",
                         "cluster": "string", "category_id": "int32", "category": "category"})


def load_pricerunner() -> pd.DataFrame:
    """All PriceRunner product offers, one row per offer."""
    file = catalog.PRICERUNNER
    return cached_frame("pricerunner", [_VERSION, file.checksum], lambda: parse_pricerunner(fetch(file)))
