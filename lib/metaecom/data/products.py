"""Product offers: merchants' titles for products, with the product and its category.

The book's catalogue holds PriceRunner (Akritidis et al. 2020; UCI, CC BY 4.0): 35,311
offer titles from 306 merchants, labelled with 10 categories and 13,233 products
("clusters": one product, offered by several merchants under several titles).
:func:`read_product_offers` reads any other catalogue of that shape: the PriceRunner
format (Product ID, Product Title, Merchant ID, Cluster ID, Cluster Label, Category
ID, Category Label; stray spaces in headers are ignored), or any table -- CSV, JSON,
Parquet, Excel, ``.gz`` or zipped, or a DataFrame -- with at least a title, the
product it is for, and a category, named as below or with ``columns=``.

Schema (roles = columns; those marked optional only when the file has them):
    product_id (optional; PriceRunner's id of the *offer*), title string (the
    merchant's offer title), merchant_id (optional), cluster_id (the *product*:
    "Cluster ID", or a column named product), cluster string (optional: the product's
    canonical name), category_id (optional), category category.
    Ids are int32 when every value is a whole number, else string.

Data problems, counted and recorded (see :func:`~metaecom.data.problems.data_problems`):
an empty title, or a missing product or category, drops the row; one title under
different products is kept and reported -- it is the nature of offers (merchants
write short or generic titles, and variants share one), but no model of titles alone
can tell those products apart (PriceRunner: 2,072 offers, 617 titles).
"""

from __future__ import annotations

import pandas as pd

from metaecom.data import catalog
from metaecom.data.parsed import cached_frame
from metaecom.data.problems import Problem, examples_of, record
from metaecom.data.registry import fetch
from metaecom.data.schema import read_table, resolve_columns

_VERSION = 2
OFFER_ROLES = {
    "product_id": ("Product ID", "offer_id"),
    "title": ("Product Title", "offer_title", "name"),
    "merchant_id": ("Merchant ID", "merchant", "shop_id"),
    "cluster_id": ("Cluster ID", "product", "product_cluster"),
    "cluster": ("Cluster Label", "product_name"),
    "category_id": ("Category ID",),
    "category": ("Category Label", "category_name"),
}
_OPTIONAL = ("product_id", "merchant_id", "cluster", "category_id")
_IDS = ("product_id", "merchant_id", "cluster_id", "category_id")


def _ids(values: pd.Series) -> pd.Series:
    """int32 when every present value is a whole number that fits, else string."""
    numbers = pd.to_numeric(values, errors="coerce")
    whole = numbers.notna().sum() == values.notna().sum() and (numbers.dropna() == numbers.dropna().round()).all()
    if whole and numbers.notna().all() and numbers.abs().max() < 2**31:
        return numbers.astype("int32")
    return values.astype("string").str.strip()


def _missing(values: pd.Series) -> pd.Series:
    return values.isna() | (values.astype("string").str.strip() == "").fillna(True)


def read_product_offers(source, columns: dict | None = None) -> pd.DataFrame:
    """Offers from ``source`` (any table format of the module doc, or a DataFrame), one
    row per offer, in file order, with the data problems recorded.

    ``columns`` maps a role of the schema (title, cluster_id, category, ...) to your
    column's name.
    """
    table = read_table(source).reset_index(drop=True)
    table.columns = [str(c).strip() for c in table.columns]
    if columns:
        columns = {role: str(name).strip() for role, name in columns.items()}
    found = resolve_columns(table, OFFER_ROLES, columns, "product offers", optional=_OPTIONAL)

    empty_title = _missing(table[found["title"]])
    unlabelled = ~empty_title & (_missing(table[found["cluster_id"]]) | _missing(table[found["category"]]))
    problems = [
        Problem("empty title", int(empty_title.sum()), "dropped",
                examples_of(f"row {i}" for i in table.index[empty_title])),
        Problem("missing product or category", int(unlabelled.sum()), "dropped",
                examples_of(table.loc[unlabelled, found["title"]])),
    ]
    table = table[~empty_title & ~unlabelled]
    frame = pd.DataFrame(index=table.index)
    for role in OFFER_ROLES:
        if role not in found:
            continue
        values = table[found[role]]
        frame[role] = _ids(values) if role in _IDS else values.astype("category" if role == "category" else "string")

    products_per_title = frame.groupby("title")["cluster_id"].transform("nunique")
    shared = products_per_title > 1
    problems.append(Problem(
        "same title under different products: offers", int(shared.sum()),
        "kept: offers are written by merchants, and different products can share a title", examples_of(
            frame.loc[shared, "title"])))
    return record(frame.reset_index(drop=True), *problems)


def load_pricerunner() -> pd.DataFrame:
    """All PriceRunner product offers, one row per offer, read by :func:`read_product_offers`."""
    file = catalog.PRICERUNNER
    return cached_frame("pricerunner", [_VERSION, file.checksum], lambda: read_product_offers(fetch(file)))
