"""Customer-service intent datasets.

BANKING77 (Casanueva et al. 2020, CC BY 4.0): 13,083 online-banking customer queries
labelled with 77 fine-grained intents. Bitext customer-support sample (CDLA-Sharing-1.0):
6,480 generated e-commerce support utterances, 27 intents in 11 categories.

``load_banking77()`` schema: text string, intent category, split category {train, test}
``load_bitext()`` schema: text string, intent category, category category
"""

from __future__ import annotations

import json

import pandas as pd

from metaecom.data import catalog
from metaecom.data.parsed import cached_frame
from metaecom.data.registry import fetch

_VERSION = 1


def parse_banking77(train_path, test_path, categories_path) -> pd.DataFrame:
    """Join the official train/test CSVs; intents ordered as in ``categories.json``."""
    intents = json.loads(open(categories_path, encoding="utf-8").read())
    parts = []
    for split, path in (("train", train_path), ("test", test_path)):
        frame = pd.read_csv(path)
        unknown = set(frame["category"]) - set(intents)
        if unknown:
            raise ValueError(f"{path}: intents not listed in categories.json: {sorted(unknown)[:5]}")
        parts.append(pd.DataFrame({"text": frame["text"], "intent": frame["category"], "split": split}))
    frame = pd.concat(parts, ignore_index=True)
    return frame.astype({"text": "string", "intent": pd.CategoricalDtype(intents),
                         "split": pd.CategoricalDtype(["train", "test"])})


def load_banking77() -> pd.DataFrame:
    """BANKING77, both official splits, one row per query."""
    files = catalog.BANKING77
    return cached_frame("banking77", [_VERSION, *(f.checksum for f in files.values())],
                        lambda: parse_banking77(*(fetch(files[n]) for n in ("train.csv", "test.csv", "categories.json"))))


def parse_bitext(path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    return pd.DataFrame({"text": frame["instruction"], "intent": frame["intent"], "category": frame["category"]}).astype(
        {"text": "string", "intent": "category", "category": "category"})


def load_bitext() -> pd.DataFrame:
    """The Bitext customer-support sample, one row per customer utterance."""
    file = catalog.BITEXT
    return cached_frame("bitext", [_VERSION, file.checksum], lambda: parse_bitext(fetch(file)))
