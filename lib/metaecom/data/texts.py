"""Labelled texts of any file: customer utterances with their intent, queries with a class.

A few-shot text classifier learns from (text, label) pairs, and the book's intent
datasets (BANKING77, Bitext) are two files of that shape. :func:`read_labelled_texts`
reads any other -- CSV, TSV, JSON, JSON lines, Parquet, Excel, optionally ``.gz`` or
zipped, or a DataFrame -- whose text and label columns have a common name (text:
text, utterance, instruction, sentence, query; label: label, intent, category, class)
or are named by the caller.

Schema: text string, label category (the labels found, sorted).

:func:`check_labelled_texts` counts and handles the data problems, one stated rule
each, and records them (see :func:`~metaecom.data.problems.data_problems`). Texts
are compared after trimming surrounding whitespace (case is kept):

- an empty text or a missing label -- the row is dropped;
- one text with different labels -- every copy is dropped: a text cannot teach two
  answers, and whichever label were kept, the other would be scored as an error;
- one text repeated with the same label -- by ``repeated``: "drop" keeps its first
  copy (default: a repeat could sit in both the support and the query set of a task,
  and be "recognised" rather than generalised to), "keep" keeps every copy;
- a label with a single example -- kept, reported: it cannot supply both a support and
  a query example, so an episode sampler cannot draw it.
"""

from __future__ import annotations

import pandas as pd

from metaecom.data.problems import Problem, examples_of, record
from metaecom.data.schema import read_table, resolve_columns

TEXT_NAMES = ("utterance", "instruction", "sentence", "query")
LABEL_NAMES = ("intent", "category", "class")
REPEAT_RULES = ("drop", "keep")


def check_labelled_texts(frame: pd.DataFrame, text: str = "text", label: str = "label",
                         repeated: str = "drop") -> pd.DataFrame:
    """The rows of ``frame`` that pass the checks of the module doc, in file order, with
    the problems found recorded. ``text`` and ``label`` name its columns; others ride
    along unchanged (so an official split column keeps its values)."""
    if repeated not in REPEAT_RULES:
        raise ValueError(f"repeated must be one of {REPEAT_RULES}, got {repeated!r}")
    frame = frame.reset_index(drop=True)
    key = frame[text].astype("string").str.strip()
    empty = key.isna() | (key == "")
    no_label = (frame[label].isna() | (frame[label].astype("string").str.strip() == "").fillna(True)) & ~empty
    problems = [Problem("empty text", int(empty.sum()), "dropped", examples_of(f"row {i}" for i in frame.index[empty])),
                Problem("missing label", int(no_label.sum()), "dropped", examples_of(key[no_label]))]
    keep = ~empty & ~no_label
    frame, key = frame[keep], key[keep]

    labels_per_text = frame[label].astype("string").groupby(key).transform("nunique")
    conflicting = labels_per_text > 1
    problems.append(Problem("same text with different labels: rows", int(conflicting.sum()),
                            "dropped every copy: a text cannot teach two answers", examples_of(key[conflicting])))
    frame, key = frame[~conflicting], key[~conflicting]

    again = key.duplicated(keep="first")
    rule = "kept the first copy of each text" if repeated == "drop" else "kept every copy (repeated='keep')"
    problems.append(Problem("text repeated with the same label: extra copies", int(again.sum()), rule,
                            examples_of(key[again])))
    if repeated == "drop":
        frame = frame[~again]

    counts = frame[label].value_counts()
    single = counts[counts == 1]
    problems.append(Problem("label with a single example", len(single),
                            "kept: it cannot supply both a support and a query example",
                            examples_of(sorted(map(str, single.index)))))
    return record(frame.reset_index(drop=True), *problems)


def read_labelled_texts(source, text: str | None = None, label: str | None = None,
                        repeated: str = "drop") -> pd.DataFrame:
    """Texts and labels from ``source`` (any table format of the module doc, or a
    DataFrame), one row per example, in file order, checked (module doc).

    ``text`` / ``label`` name the columns when their names are not the common ones;
    ``repeated`` is the rule for a text repeated with the same label ("drop" or "keep").
    """
    if repeated not in REPEAT_RULES:
        raise ValueError(f"repeated must be one of {REPEAT_RULES}, got {repeated!r}")
    table = read_table(source)
    columns = {role: name for role, name in (("text", text), ("label", label)) if name is not None}
    found = resolve_columns(table, {"text": TEXT_NAMES, "label": LABEL_NAMES}, columns, "labelled texts")
    frame = pd.DataFrame({"text": table[found["text"]].astype("string"), "label": table[found["label"]]})
    return check_labelled_texts(frame, "text", "label", repeated).astype({"label": "category"})
