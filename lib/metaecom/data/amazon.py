"""Amazon product reviews and item metadata, from any release of the official format.

The book's catalogue holds the 2018 5-core files of four small categories (Ni, Li and
McAuley, EMNLP 2019; research use: the book downloads them, never ships them). "5-core"
means every user and every item has at least five reviews. To run the book on another
category, download its file from the official pages and read it with
:func:`read_amazon_reviews` / :func:`read_amazon_metadata`:

- 2018 (https://nijianmo.github.io/amazon/): ``<Category>_5.json.gz`` (5-core) or
  ``<Category>.json.gz`` (all reviews); keys reviewerID, asin, overall, unixReviewTime,
  verified, summary, reviewText. Metadata ``meta_<Category>.json.gz``: asin, title,
  brand, main_cat, category (a list: one path).
- 2014 (https://jmcauley.ucsd.edu/data/amazon/): ``reviews_<Category>_5.json.gz``;
  the same keys without ``verified`` (then False), plus helpful and reviewTime.
  Metadata ``meta_<Category>.json.gz``, one Python dict literal per line: asin, title,
  brand, categories (a list of paths), salesRank.

Either packaged as ``.json.gz``, plain JSON lines (``.json``/``.jsonl``), or one JSON
file inside a ``.zip``; or a DataFrame. Other files of the same shape work too: columns
are found by the official names or their common aliases, or named with ``columns=``.

``read_amazon_reviews`` / ``load_amazon_reviews`` schema:
    user_id string (reviewerID), item_id string (asin), rating float32 (1-5 stars),
    timestamp datetime64[s, UTC], verified bool (False where the release lacks it),
    summary string, text string (both "" where absent)
``read_amazon_metadata`` / ``load_amazon_metadata`` schema:
    item_id string, title string, brand string, main_cat string (2014: the first level
    of the path), category string (the category path joined with " > "; 2014: the
    first of the item's paths; "" when absent)

Data problems (see :mod:`metaecom.data.rating_log` for the review rules, and
:func:`~metaecom.data.problems.data_problems` to see them): reviews with no user or item
id, or a rating that is not a number in 1-5, are dropped; a (user, item) pair reviewed
more than once is handled by ``duplicates`` (default: keep the latest review). The
catalogue files do repeat pairs (AMAZON_FASHION 134 of 3,176 rows, All_Beauty 1,177 of
5,269, Gift_Cards 7 of 2,972, Magazine_Subscriptions 73 of 2,375), and without them
the files are no longer 5-core: in All_Beauty, 810 of 991 users keep fewer than five
reviews. Metadata: an item listed more than once keeps its first record.
"""

from __future__ import annotations

import pandas as pd

from metaecom.data import catalog
from metaecom.data.parsed import cached_frame
from metaecom.data.problems import Problem, examples_of, record
from metaecom.data.rating_log import check_duplicates_rule, check_rating_log
from metaecom.data.registry import fetch
from metaecom.data.schema import check_schema, read_table, resolve_columns

_VERSION = 2
CATEGORIES = tuple(catalog.AMAZON_REVIEWS)
METADATA_CATEGORIES = tuple(catalog.AMAZON_METADATA)
OFFICIAL_PAGE = "https://nijianmo.github.io/amazon/"

# Role -> names it has in the official releases (2018, 2014) and in common conversions.
REVIEW_ROLES = {
    "user_id": ("reviewerID", "user", "customer_id"),
    "item_id": ("asin", "item", "product_id"),
    "rating": ("overall", "stars", "star_rating"),
    "timestamp": ("unixReviewTime", "time", "reviewTime", "review_date", "date"),
    "verified": ("verified", "verified_purchase"),
    "summary": ("summary", "review_headline"),
    "text": ("reviewText", "review_body", "review"),
}
METADATA_ROLES = {
    "item_id": ("asin", "item", "product_id"),
    "title": ("title", "name"),
    "brand": ("brand",),
    "main_cat": ("main_cat", "main_category"),
    "category": ("category", "categories"),
}
_TRUE = {"true", "1", "yes", "y", "t"}


def _times(values: pd.Series) -> pd.Series:
    """Unix seconds (or milliseconds), or date strings (2014's reviewTime "09 1, 2015"), or datetimes -> UTC."""
    if pd.api.types.is_datetime64_any_dtype(values):
        times = values if values.dt.tz is not None else values.dt.tz_localize("UTC")
        return times.dt.tz_convert("UTC")
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.notna().sum() >= values.notna().sum():
        unit = "ms" if numbers.median() > 1e11 else "s"  # the 2023 release counts milliseconds
        return pd.to_datetime(numbers, unit=unit, utc=True, errors="coerce")
    parsed = pd.to_datetime(values, format="%m %d, %Y", errors="coerce", utc=True)
    rest = parsed.isna() & values.notna()
    if rest.any():
        parsed[rest] = pd.to_datetime(values[rest], format="mixed", errors="coerce", utc=True)
    return parsed


def _flags(values: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(values):
        return values.fillna(False).astype(bool)
    return values.map(lambda v: str(v).strip().lower() in _TRUE if pd.notna(v) else False).astype(bool)


def _text(table: pd.DataFrame, found: dict, role: str) -> pd.Series:
    if role not in found:
        return pd.Series("", index=table.index, dtype="string")
    return table[found[role]].astype("string").fillna("")


def read_amazon_reviews(source, columns: dict | None = None, duplicates: str = "latest") -> pd.DataFrame:
    """Reviews from ``source`` (a path in any packaging of the module doc, or a DataFrame),
    one row per review, in file order, with the data problems recorded.

    ``columns`` maps a role (user_id, item_id, rating, timestamp, verified, summary,
    text) to your column's name. ``duplicates`` is the rule for a (user, item) pair
    reviewed more than once: "latest" (keep its latest review), "keep" or "error".
    """
    check_duplicates_rule(duplicates)
    table = read_table(source).reset_index(drop=True)
    found = resolve_columns(table, REVIEW_ROLES, columns, "Amazon reviews", optional=("verified", "summary", "text"))
    check_schema(table, {found["rating"]: "number"}, "Amazon reviews")
    frame = pd.DataFrame({
        "user_id": table[found["user_id"]].astype("string").str.strip(),
        "item_id": table[found["item_id"]].astype("string").str.strip(),
        "rating": table[found["rating"]],
        "timestamp": _times(table[found["timestamp"]]),
        "verified": _flags(table[found["verified"]]) if "verified" in found else False,
        "summary": _text(table, found, "summary"),
        "text": _text(table, found, "text"),
    })
    frame, problems = check_rating_log(frame, "Amazon reviews", low=1, high=5, duplicates=duplicates)
    frame = frame.astype({"user_id": "string", "item_id": "string", "rating": "float32", "verified": bool,
                          "timestamp": "datetime64[s, UTC]"})
    return record(frame, *problems)


def _category_path(value) -> str:
    """2018: a list of names (one path); 2014: a list of paths (the first is taken); or a string."""
    if isinstance(value, str):
        return value
    if value is None or not hasattr(value, "__len__") or len(value) == 0:
        return ""
    if not isinstance(value[0], str) and hasattr(value[0], "__len__"):
        value = value[0]
    return " > ".join(str(c) for c in value if c)


def read_amazon_metadata(source, columns: dict | None = None) -> pd.DataFrame:
    """Item metadata from ``source`` (2014 or 2018 ``meta_<Category>`` file, any packaging
    of the module doc, or a DataFrame), one row per item, with the data problems recorded.

    ``columns`` maps a role (item_id, title, brand, main_cat, category) to your column.
    """
    table = read_table(source).reset_index(drop=True)
    found = resolve_columns(table, METADATA_ROLES, columns, "Amazon metadata",
                            optional=("title", "brand", "main_cat", "category"))
    frame = pd.DataFrame({"item_id": table[found["item_id"]].astype("string").str.strip(),
                          "title": _text(table, found, "title"), "brand": _text(table, found, "brand")})
    paths = table[found["category"]].map(_category_path) if "category" in found else pd.Series("", index=table.index)
    frame["main_cat"] = _text(table, found, "main_cat") if "main_cat" in found else paths.str.split(" > ").str[0]
    frame["category"] = paths
    frame = frame.astype("string")
    no_id = frame["item_id"].isna() | (frame["item_id"] == "")
    repeated = frame["item_id"].duplicated(keep="first") & ~no_id
    problems = [Problem("missing item id", int(no_id.sum()), "dropped",
                        examples_of(f"row {i}" for i in frame.index[no_id])),
                Problem("item listed more than once: extra records", int(repeated.sum()),
                        "kept the first record of each item", examples_of(frame.loc[repeated, "item_id"]))]
    return record(frame[~no_id & ~repeated].reset_index(drop=True), *problems)


def _check(category: str, known: tuple[str, ...], what: str, reader: str) -> None:
    if category not in known:
        raise ValueError(f"no Amazon 2018 {what} for category {category!r}; available: {', '.join(known)}. "
                         f"To use another category, download its file from the official page ({OFFICIAL_PAGE}) "
                         f"and call {reader}(path).")


def load_amazon_reviews(category: str, duplicates: str = "latest") -> pd.DataFrame:
    """The 5-core reviews of one catalogue category (``CATEGORIES``), one row per review,
    read by :func:`read_amazon_reviews` (so ``duplicates`` applies, default "latest")."""
    _check(category, CATEGORIES, "5-core reviews in this book's catalogue", "read_amazon_reviews")
    check_duplicates_rule(duplicates)
    file = catalog.AMAZON_REVIEWS[category]
    return cached_frame(f"amazon-{category}", [_VERSION, file.checksum, duplicates],
                        lambda: read_amazon_reviews(fetch(file), duplicates=duplicates))


def load_amazon_metadata(category: str) -> pd.DataFrame:
    """Item metadata (title, brand, category path) for the catalogue categories that have it."""
    _check(category, METADATA_CATEGORIES, "item metadata in this book's registry", "read_amazon_metadata")
    file = catalog.AMAZON_METADATA[category]
    return cached_frame(f"amazon-meta-{category}", [_VERSION, file.checksum],
                        lambda: read_amazon_metadata(fetch(file)))
