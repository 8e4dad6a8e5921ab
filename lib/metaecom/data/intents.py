"""Customer-service intent datasets.

BANKING77 (Casanueva et al. 2020, CC BY 4.0): 13,083 online-banking customer queries
labelled with 77 fine-grained intents. Bitext customer-support sample (CDLA-Sharing-1.0):
6,480 generated e-commerce support utterances, 27 intents in 11 categories.

``load_banking77()`` schema: text string, intent category, split category {train, test}
``load_bitext()`` schema: text string, intent category, category category

Both run the checks of :func:`metaecom.data.texts.check_labelled_texts` and carry its
report (:func:`~metaecom.data.problems.data_problems`), with repeated texts *kept*, so
the published numbers hold. Once surrounding whitespace is trimmed, BANKING77 has 11
extra copies of texts (e.g. "\\nHow do I unblock my PIN?"), and 6 test queries are also
training queries; both are reported. For any other file of labelled texts, see
:func:`metaecom.data.texts.read_labelled_texts`.
"""

from __future__ import annotations

import json

import pandas as pd

from metaecom.data import catalog
from metaecom.data.parsed import cached_frame
from metaecom.data.problems import Problem, examples_of, record
from metaecom.data.registry import fetch
from metaecom.data.texts import check_labelled_texts

_VERSION = 2


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


def checked_banking77(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` checked as labelled texts (repeats kept), plus the count of test texts
    that are also training texts (compared after trimming surrounding whitespace)."""
    frame = check_labelled_texts(frame, "text", "intent", repeated="keep")
    key = frame["text"].str.strip()
    leaked = (frame["split"] == "test") & key.isin(key[frame["split"] == "train"])
    return record(frame, Problem("test text also in the training split: test rows", int(leaked.sum()),
                                 "kept: the official splits are used as published", examples_of(key[leaked])))


def load_banking77() -> pd.DataFrame:
    """BANKING77, both official splits, one row per query, with its data report."""
    files = catalog.BANKING77
    names = ("train.csv", "test.csv", "categories.json")
    return cached_frame("banking77", [_VERSION, *(f.checksum for f in files.values())],
                        lambda: checked_banking77(parse_banking77(*(fetch(files[n]) for n in names))))


def parse_bitext(path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    table = pd.DataFrame({"text": frame["instruction"], "intent": frame["intent"], "category": frame["category"]})
    return table.astype({"text": "string", "intent": "category", "category": "category"})


def load_bitext() -> pd.DataFrame:
    """The Bitext customer-support sample, one row per customer utterance, with its data
    report (checked as labelled texts, repeats kept)."""
    file = catalog.BITEXT
    return cached_frame("bitext", [_VERSION, file.checksum],
                        lambda: check_labelled_texts(parse_bitext(fetch(file)), "text", "intent", "keep"))
