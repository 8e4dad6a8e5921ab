"""Datasets: a checksum-verified registry of files (mirror, cache, official download) and their loaders.

Every loader returns pandas objects with a documented schema (see each module's doc):

- :func:`load_movielens_100k`, :func:`load_movielens_1m` -- ratings, users, items
- :func:`load_amazon_reviews`, :func:`load_amazon_metadata` -- Amazon 2018 5-core reviews
- :func:`load_pricerunner` -- product offer titles with category and product cluster
- :func:`load_online_retail` -- invoice lines of a UK online shop, 38 countries
- :func:`load_omniglot` -- handwritten characters for the standard few-shot benchmark
- :func:`load_banking77`, :func:`load_bitext` -- customer-service utterances and intents
"""

from metaecom.data.amazon import load_amazon_metadata, load_amazon_reviews
from metaecom.data.intents import load_banking77, load_bitext
from metaecom.data.movielens import load_movielens_1m, load_movielens_100k
from metaecom.data.omniglot import load_omniglot, with_rotations
from metaecom.data.products import load_pricerunner
from metaecom.data.retail import load_online_retail, weekly_sales

__all__ = [
    "load_amazon_metadata", "load_amazon_reviews", "load_banking77", "load_bitext", "load_movielens_1m",
    "load_movielens_100k", "load_omniglot", "load_online_retail", "load_pricerunner", "weekly_sales", "with_rotations",
]
