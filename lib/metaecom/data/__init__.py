"""Datasets: a checksum-verified registry of files (mirror, cache, official download) and their loaders.

Every loader returns pandas objects with a documented schema (see each module's doc):

- :func:`load_movielens_100k`, :func:`load_movielens_1m` -- ratings, users, items
- :func:`load_amazon_reviews`, :func:`load_amazon_metadata` -- Amazon 2018 5-core reviews
- :func:`read_amazon_reviews`, :func:`read_amazon_metadata` -- any Amazon review / metadata
  file (2014 or 2018, 5-core or all; .json.gz, JSON lines or zipped)
- :func:`combine_reviews`, :func:`shared_ids` -- several sources stacked, ids they share
- :func:`read_movielens` -- any MovieLens release (100K, 1M, 10M, CSV), folder or zip
- :func:`read_labelled_texts` -- any file of texts with labels (intents, classes)
- :func:`read_product_offers` -- any catalogue of offer titles with product and category
- :func:`load_pricerunner` -- product offer titles with category and product cluster
- :func:`load_online_retail` -- invoice lines of a UK online shop, 38 countries
- :func:`read_online_retail` -- any Online Retail file (2010-11 or II, XLSX sheets, CSV, Parquet)
- :func:`data_problems` -- what a reader found wrong with a file, and the rule it applied
- :func:`load_omniglot` -- handwritten characters for the standard few-shot benchmark
- :func:`load_banking77`, :func:`load_bitext` -- customer-service utterances and intents
"""

from metaecom.data.amazon import load_amazon_metadata, load_amazon_reviews, read_amazon_metadata, read_amazon_reviews
from metaecom.data.combine import combine_reviews, shared_ids
from metaecom.data.intents import load_banking77, load_bitext
from metaecom.data.movielens import load_movielens_1m, load_movielens_100k, read_movielens
from metaecom.data.omniglot import load_omniglot, with_rotations
from metaecom.data.problems import data_problems
from metaecom.data.products import load_pricerunner, read_product_offers
from metaecom.data.retail import load_online_retail, read_online_retail, undone_at, undone_sales, weekly_sales
from metaecom.data.texts import read_labelled_texts

__all__ = [
    "load_amazon_metadata", "load_amazon_reviews", "load_banking77", "load_bitext", "load_movielens_1m",
    "load_movielens_100k", "load_omniglot", "load_online_retail", "load_pricerunner", "undone_at", "undone_sales", "weekly_sales", "with_rotations",
    "combine_reviews", "read_amazon_metadata", "read_amazon_reviews", "read_labelled_texts", "read_movielens",
    "read_product_offers", "shared_ids",
    "read_online_retail", "data_problems",
]
