"""The shared pieces of every format reader: reading tables in any packaging, finding
columns by role, one schema error naming every problem, and problem reports."""

from __future__ import annotations

import gzip
import json
import zipfile

import pandas as pd
import pytest

from metaecom.data.problems import Problem, data_problems, examples_of, record
from metaecom.data.schema import SchemaError, check_schema, json_records, read_table, resolve_columns

ROLES = {"invoice": ("InvoiceNo", "Invoice"), "price": ("UnitPrice", "Price"), "customer": ("CustomerID", "Customer ID")}


@pytest.fixture
def frame():
    return pd.DataFrame({"Invoice": ["1", "2"], "Price": [1.5, 2.0], "Customer ID": [7, 8]})


def test_read_table_reads_every_packaging_to_the_same_frame(tmp_path, frame):
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet", index=False)
    (tmp_path / "t.jsonl").write_text("\n".join(json.dumps(r) for r in frame.to_dict("records")))
    (tmp_path / "t.jsonl.gz").write_bytes(gzip.compress((tmp_path / "t.jsonl").read_bytes()))
    with zipfile.ZipFile(tmp_path / "t.zip", "w") as archive:
        archive.write(tmp_path / "t.jsonl", "inside/t.json")
    for name in ["t.csv", "t.parquet", "t.jsonl", "t.jsonl.gz", "t.zip"]:
        read = read_table(tmp_path / name)
        assert read.astype({"Invoice": str}).equals(frame), name
    assert read_table(frame) is frame


def test_read_table_refuses_unknown_suffixes_and_missing_files(tmp_path):
    (tmp_path / "t.bin").write_bytes(b"x")
    with pytest.raises(ValueError, match="cannot tell the format"):
        read_table(tmp_path / "t.bin")
    with pytest.raises(FileNotFoundError):
        read_table(tmp_path / "absent.csv")


def test_zip_with_several_members_is_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "two.zip", "w") as archive:
        archive.writestr("a.csv", "x\n1\n")
        archive.writestr("b.csv", "x\n2\n")
    with pytest.raises(ValueError, match="expected one data file"):
        read_table(tmp_path / "two.zip")


def test_json_records_reads_arrays_json_lines_and_python_literals():
    assert json_records(b'[{"a": 1}, {"a": 2}]') == [{"a": 1}, {"a": 2}]
    assert json_records(b'{"a": 1}\n\n{"a": 2}\n') == [{"a": 1}, {"a": 2}]
    assert json_records(b"{'asin': 'B1', 'categories': [['Books']]}\n") == [{"asin": "B1", "categories": [["Books"]]}]
    with pytest.raises(ValueError, match="line 2"):
        json_records(b'{"a": 1}\nnot a record\n')


def test_resolve_columns_finds_official_aliases_and_honours_a_mapping(frame):
    assert resolve_columns(frame, ROLES, None, "t") == {"invoice": "Invoice", "price": "Price", "customer": "Customer ID"}
    renamed = frame.rename(columns={"Price": "cost"})
    assert resolve_columns(renamed, ROLES, {"price": "cost"}, "t")["price"] == "cost"


def test_resolve_columns_names_every_missing_role_and_what_was_found(frame):
    with pytest.raises(SchemaError) as error:
        resolve_columns(frame[["Invoice"]], ROLES, None, "Online Retail")
    message = str(error.value)
    assert "price" in message and "customer" in message and "['Invoice']" in message and "columns=" in message
    assert resolve_columns(frame[["Invoice"]], ROLES, None, "t", optional=("price", "customer")) == {"invoice": "Invoice"}
    with pytest.raises(SchemaError, match="no column 'cost'"):
        resolve_columns(frame, ROLES, {"price": "cost"}, "t")
    with pytest.raises(ValueError, match="unknown roles"):
        resolve_columns(frame, ROLES, {"colour": "Price"}, "t")


def test_check_schema_names_missing_and_ill_typed_columns_at_once():
    table = pd.DataFrame({"q": ["a", "b", "3"], "d": ["2011-01-01", "x", "2011-02-01"], "n": [1.5, 2, 3]})
    with pytest.raises(SchemaError) as error:
        check_schema(table, {"q": "number", "d": "datetime", "n": "integer", "gone": "text"}, "t")
    message = str(error.value)
    assert "'q'" in message and "2 of 3" in message and "'gone'" in message
    assert "'d'" not in message.split("Found")[0]           # one bad date in three is a data problem, not a schema error
    check_schema(table, {"d": "datetime", "n": "number"}, "t")


def test_problems_are_counted_recorded_and_survive_filtering_and_parquet(tmp_path):
    table = pd.DataFrame({"a": [1, 2, 3]})
    record(table, Problem("duplicate rows", 2, "kept", examples_of(["x", "y", "x", "z", "w"])), Problem("none", 0, "r"))
    report = data_problems(table)
    assert report.to_dict("records") == [{"problem": "duplicate rows", "count": 2, "rule": "kept", "examples": "x, y, z"}]
    assert len(data_problems(table[table.a > 1])) == 1
    table.to_parquet(tmp_path / "t.parquet")
    assert data_problems(pd.read_parquet(tmp_path / "t.parquet")).equals(report)
    assert data_problems(pd.DataFrame()).empty
    with pytest.raises(ValueError):
        Problem("x", -1, "r")
