"""Readers of text *formats*: labelled texts (intents, classes) and product offers, on
small fixture files made here; and the catalogue files checked by the same rules
(marked ``data``)."""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from metaecom.data import intents, products, read_labelled_texts, read_product_offers
from metaecom.data.problems import data_problems
from metaecom.data.schema import SchemaError

from mirror import MIRROR, needs_mirror, use_private_cache


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """Parsed tables go to a cache of this test module, never the reader's."""
    use_private_cache(tmp_path_factory, monkeypatch, "formats-texts-cache")


def problem_counts(frame: pd.DataFrame) -> dict[str, int]:
    table = data_problems(frame)
    return dict(zip(table["problem"], table["count"]))


# --- labelled texts ---------------------------------------------------------------------

UTTERANCES = pd.DataFrame({
    "utterance": ["Where is my order?", "where is my refund", "Where is my order? ", "Cancel it",
                  "Cancel it", "  ", None, "Change my address", "Track parcel", "Track parcel please"],
    "intent": ["track_order", "get_refund", "track_order", "cancel_order",
               "get_refund", "track_order", "track_order", "change_address", "track_order", "track_order"],
    "channel": ["app"] * 10,
})


def test_labelled_texts_csv_with_common_names(tmp_path):
    path = tmp_path / "intents.csv"
    UTTERANCES.to_csv(path, index=False)
    frame = read_labelled_texts(path)
    assert list(frame.columns) == ["text", "label"] and str(frame["text"].dtype) == "string"
    assert frame["label"].dtype == "category"
    assert list(frame["label"].cat.categories) == ["change_address", "get_refund", "track_order"]  # sorted, used
    # "Cancel it" has two labels: both copies go; "Where is my order? " repeats row 0 (after trimming): dropped
    assert frame["text"].tolist() == ["Where is my order?", "where is my refund", "Change my address",
                                      "Track parcel", "Track parcel please"]
    assert problem_counts(frame) == {"empty text": 2, "same text with different labels: rows": 2,
                                     "text repeated with the same label: extra copies": 1,
                                     "label with a single example": 2}
    single = data_problems(frame).set_index("problem").loc["label with a single example"]
    assert single["examples"] == "change_address, get_refund" and single["rule"].startswith("kept")


def test_repeated_keep_keeps_every_copy_but_conflicts_still_go(tmp_path):
    frame = read_labelled_texts(UTTERANCES, repeated="keep")
    assert frame["text"].tolist()[:3] == ["Where is my order?", "where is my refund", "Where is my order? "]
    assert "Cancel it" not in frame["text"].tolist()
    assert problem_counts(frame)["text repeated with the same label: extra copies"] == 1
    with pytest.raises(ValueError, match="repeated must be one of"):
        read_labelled_texts(UTTERANCES, repeated="first")


def test_labelled_texts_jsonl_gz_and_parquet_read_alike(tmp_path):
    pairs = [("hi there", "greet"), ("bye now", "leave"), ("hello", "greet")]
    records = [{"text": t, "label": lab} for t, lab in pairs]
    jsonl = tmp_path / "texts.jsonl.gz"
    jsonl.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in records).encode()))
    parquet = tmp_path / "texts.parquet"
    pd.DataFrame(records).to_parquet(parquet)
    zipped = tmp_path / "texts.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("texts.json", json.dumps(records))
    first = read_labelled_texts(jsonl)
    assert first["text"].tolist() == ["hi there", "bye now", "hello"] and first["label"].tolist()[2] == "greet"
    assert problem_counts(first) == {"label with a single example": 1}
    for other in (parquet, zipped):
        pd.testing.assert_frame_equal(read_labelled_texts(other), first)


def test_text_and_label_arguments_name_other_columns():
    table = pd.DataFrame({"body": ["a b", "c d", "e f"], "tag": [3, 3, 7], "intent": ["x", "y", "z"]})
    frame = read_labelled_texts(table, text="body", label="tag")
    assert frame["label"].tolist() == [3, 3, 7] and frame["text"].tolist() == ["a b", "c d", "e f"]


def test_missing_text_column_names_the_role_and_the_columns_found():
    with pytest.raises(SchemaError,
                       match=r"lacks columns for: text \(any of 'utterance'.*Found columns \['body', 'tag'\]"):
        read_labelled_texts(pd.DataFrame({"body": ["a"], "tag": ["x"]}))
    with pytest.raises(SchemaError, match="no column 'label_typo'"):
        read_labelled_texts(UTTERANCES, label="label_typo")


# --- product offers ------------------------------------------------------------------------

OFFERS_CSV = (  # the PriceRunner header, with its stray spaces
    "Product ID, Product Title, Merchant ID, Cluster ID, Cluster Label, Category ID, Category Label\n"
    "1,apple iphone 8 plus 64gb silver,1,1,Apple iPhone 8 Plus 64GB,2612,Mobile Phones\n"
    "2,apple iphone 8 plus 64 gb spacegrau,2,1,Apple iPhone 8 Plus 64GB,2612,Mobile Phones\n"
    "3,iphone 8 64gb,3,1,Apple iPhone 8 Plus 64GB,2612,Mobile Phones\n"
    "4,iphone 8 64gb,4,2,Apple iPhone 8 64GB,2612,Mobile Phones\n"
    "5,,4,2,Apple iPhone 8 64GB,2612,Mobile Phones\n"
    "6,bosch serie 4 dishwasher,5,3,Bosch SMS46,2618,Dishwashers\n"
    "7,bosch dishwasher,5,,Bosch SMS46,2618,Dishwashers\n"
)


def test_pricerunner_format_with_spaced_headers(tmp_path):
    path = tmp_path / "pricerunner_aggregate.csv"
    path.write_text(OFFERS_CSV)
    frame = read_product_offers(path)
    assert dict(frame.dtypes.astype(str)) == {
        "product_id": "int32", "title": "string", "merchant_id": "int32", "cluster_id": "int32", "cluster": "string",
        "category_id": "int32", "category": "category"}
    assert frame["product_id"].tolist() == [1, 2, 3, 4, 6]  # 5: empty title; 7: no product
    assert frame["cluster_id"].tolist() == [1, 1, 1, 2, 3] and frame["category"].tolist()[-1] == "Dishwashers"
    assert problem_counts(frame) == {"empty title": 1, "missing product or category": 1,
                                     "same title under different products: offers": 2}
    shared = data_problems(frame).set_index("problem").loc["same title under different products: offers"]
    assert shared["examples"] == "iphone 8 64gb" and shared["rule"].startswith("kept")


def test_any_offer_table_with_title_product_and_category(tmp_path):
    table = pd.DataFrame({"name": ["red mug 300ml", "blue mug", "mug red 300 ml"],
                          "product": ["MUG-R", "MUG-B", "MUG-R"], "category": ["Kitchen", "Kitchen", "Kitchen"]})
    frame = read_product_offers(table)
    assert list(frame.columns) == ["title", "cluster_id", "category"]
    assert str(frame["cluster_id"].dtype) == "string" and frame["cluster_id"].tolist() == ["MUG-R", "MUG-B", "MUG-R"]
    assert data_problems(frame).empty
    renamed = table.rename(columns={"product": "sku_group", "category": "dept"})
    pd.testing.assert_frame_equal(read_product_offers(renamed, columns={"cluster_id": "sku_group", "category": "dept"}),
                                  frame)
    with pytest.raises(SchemaError, match=r"lacks columns for: category \(any of 'Category Label'.*'sku_group'"):
        read_product_offers(renamed, columns={"cluster_id": "sku_group"})


# --- the catalogue files, checked by the same rules --------------------------------------


@needs_mirror
def test_banking77_keeps_its_numbers_and_reports_repeats_and_split_overlap():
    frame = intents.load_banking77()
    assert len(frame) == 13_083 and (frame["split"] == "test").sum() == 3_080 and frame["intent"].nunique() == 77
    assert problem_counts(frame) == {"text repeated with the same label: extra copies": 11,
                                     "test text also in the training split: test rows": 6}
    assert problem_counts(intents.load_banking77()) == problem_counts(frame)  # from the parse cache too


@needs_mirror
def test_bitext_keeps_its_numbers_and_the_generic_reader_agrees():
    bitext = intents.load_bitext()
    assert len(bitext) == 6_480 and bitext["intent"].nunique() == 27 and data_problems(bitext).empty
    path = Path(MIRROR) / "bitext-customer-support-sample" / "Bitext_Sample_Customer_Support_Training_Dataset.csv"
    frame = read_labelled_texts(path)  # text: "instruction", label: "intent" (before "category")
    assert frame["text"].tolist() == bitext["text"].tolist()
    assert frame["label"].astype(str).tolist() == bitext["intent"].astype(str).tolist()


@needs_mirror
def test_pricerunner_keeps_its_numbers_and_reports_shared_titles():
    frame = products.load_pricerunner()
    assert len(frame) == 35_311 and frame["cluster_id"].nunique() == 13_233 and frame["category"].nunique() == 10
    assert problem_counts(frame) == {"same title under different products: offers": 2_072}
    titles = frame.groupby("title")["cluster_id"].nunique()
    assert frame["title"].isin(titles[titles > 1].index).sum() == 2_072
