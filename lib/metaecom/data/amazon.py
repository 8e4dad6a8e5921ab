"""Amazon Review Data (2018), 5-core subsets of small categories, and item metadata.

"5-core" means every user and every item has at least five reviews. Published by Ni, Li
and McAuley (EMNLP 2019) for research use; the book downloads it, never ships it.

``load_amazon_reviews(category)`` schema:
    user_id string (reviewerID), item_id string (asin), rating float32 (1-5 stars),
    timestamp datetime64[s, UTC], verified bool, summary string, text string
``load_amazon_metadata(category)`` schema (categories in ``METADATA_CATEGORIES``):
    item_id string, title string, brand string, main_cat string,
    category string (the category path joined with " > "; empty when absent)
"""

from __future__ import annotations

import gzip
import json

import pandas as pd

from metaecom.data import catalog
from metaecom.data.parsed import cached_frame
from metaecom.data.registry import fetch

_VERSION = 1
CATEGORIES = tuple(catalog.AMAZON_REVIEWS)
METADATA_CATEGORIES = tuple(catalog.AMAZON_METADATA)


def _lines(path):
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def parse_reviews(path) -> pd.DataFrame:
    """Parse a ``<Category>_5.json.gz`` file (one JSON object per line)."""
    rows = [
        (r.get("reviewerID"), r.get("asin"), r.get("overall"), r.get("unixReviewTime"), bool(r.get("verified", False)),
         r.get("summary", ""), r.get("reviewText", ""))
        for r in _lines(path)
    ]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp", "verified", "summary", "text"])
    return frame.astype({"user_id": "string", "item_id": "string", "rating": "float32", "summary": "string",
                         "text": "string"}).assign(
        timestamp=pd.to_datetime(frame["timestamp"], unit="s", utc=True).astype("datetime64[s, UTC]"))


def parse_metadata(path) -> pd.DataFrame:
    """Parse a ``meta_<Category>.json.gz`` file, keeping the first record of each item."""
    rows = [
        (r.get("asin"), r.get("title", ""), r.get("brand", ""), r.get("main_cat", ""),
         " > ".join(c for c in r.get("category", []) if c))
        for r in _lines(path)
    ]
    frame = pd.DataFrame(rows, columns=["item_id", "title", "brand", "main_cat", "category"]).astype("string")
    return frame.drop_duplicates("item_id", keep="first").reset_index(drop=True)


def _check(category: str, known: tuple[str, ...], what: str) -> None:
    if category not in known:
        raise ValueError(f"no Amazon 2018 {what} for category {category!r}; available: {', '.join(known)}")


def load_amazon_reviews(category: str) -> pd.DataFrame:
    """The 5-core reviews of one category (``CATEGORIES``), one row per review."""
    _check(category, CATEGORIES, "5-core reviews")
    file = catalog.AMAZON_REVIEWS[category]
    return cached_frame(f"amazon-{category}", [_VERSION, file.checksum], lambda: parse_reviews(fetch(file)))


def load_amazon_metadata(category: str) -> pd.DataFrame:
    """Item metadata (title, brand, category path) for the categories that have it."""
    _check(category, METADATA_CATEGORIES, "item metadata in this book's registry")
    file = catalog.AMAZON_METADATA[category]
    return cached_frame(f"amazon-meta-{category}", [_VERSION, file.checksum], lambda: parse_metadata(fetch(file)))
