"""UCI Online Retail read from any file of its official formats (both releases' column
names, XLSX with one or two sheets, CSV, Parquet, a DataFrame), its data problems counted
and recorded, and the per-country tasks of :mod:`metaecom.cases.markets` checked for
feasibility before training. Fixtures are made here; the real data only where marked."""

from __future__ import annotations

import itertools
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from metaecom.cases import markets
from metaecom.cases.markets import CountryTasks, infeasible_countries, split_countries
from metaecom.data import read_online_retail, retail
from metaecom.data.problems import data_problems
from metaecom.data.schema import SchemaError

from mirror import MIRROR, needs_mirror, use_private_cache
SCHEMA = {"invoice": "string", "stock_code": "string", "description": "string", "quantity": "int32",
          "invoice_date": "datetime64[s]", "unit_price": "float64", "customer_id": "Int32", "country": "category"}
II_NAMES = ["Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price", "Customer ID", "Country"]
OLD_NAMES = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"]


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """Parsed tables go to a cache shared by this test module, never the reader's."""
    use_private_cache(tmp_path_factory, monkeypatch, "data-cache")


def _lines(rows, names=II_NAMES) -> pd.DataFrame:
    """Invoice lines from tuples (invoice, stock code, description, quantity, date, price, customer, country)."""
    return pd.DataFrame(rows, columns=names)


def _problems(frame) -> dict[str, int]:
    table = data_problems(frame)
    return dict(zip(table["problem"], table["count"]))


def _count(frame, words: str) -> int:
    """The count of the one recorded problem whose name contains ``words`` (0 if none)."""
    found = {name: n for name, n in _problems(frame).items() if words in name}
    assert len(found) <= 1, found
    return sum(found.values())


def _rule(frame, words: str) -> str:
    table = data_problems(frame)
    return table.loc[table["problem"].str.contains(words), "rule"].item()


def _check_schema(frame):
    assert {c: str(t) for c, t in frame.dtypes.items()} == SCHEMA


# Online Retail II: the two sheets overlap in early December 2010 (the same lines in both).
SHEET_2009 = [
    ("489434", "85048", "15CM CHRISTMAS GLASS BALL", 12, pd.Timestamp("2009-12-01 07:45"), 6.95, 13085.0,
     "United Kingdom"),
    ("489434", "79323P", "PINK CHERRY LIGHTS", 12, pd.Timestamp("2009-12-01 07:45"), 6.75, 13085.0, "United Kingdom"),
    ("536365", "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 6, pd.Timestamp("2010-12-01 08:26"), 2.55, 17850.0,
     "United Kingdom"),
    ("536365", "71053", "WHITE METAL LANTERN", 6, pd.Timestamp("2010-12-01 08:26"), 3.39, 17850.0, "United Kingdom"),
]
SHEET_2010 = [
    SHEET_2009[2], SHEET_2009[3],                 # the overlap: read twice when both sheets are stacked
    SHEET_2009[3],                                # a duplicate within this sheet: an exact duplicate, not overlap
    ("C536379", "D", "Discount", -1, pd.Timestamp("2010-12-01 09:41"), 27.5, 14527.0, "United Kingdom"),
    ("536544", "21773", "DECORATIVE ROSE BATHROOM BOTTLE", 1, pd.Timestamp("2010-12-01 14:32"), 2.51, np.nan,
     "United Kingdom"),
    ("536596", "84926A", "WASH BAG VINTAGE ROSE PAISLEY", 6, pd.Timestamp("2011-12-09 12:50"), 2.55, 12680.0, "France"),
]


@pytest.fixture
def workbook_ii(tmp_path) -> Path:
    pytest.importorskip("openpyxl")
    path = tmp_path / "online_retail_II.xlsx"
    with pd.ExcelWriter(path) as writer:
        _lines(SHEET_2009).to_excel(writer, sheet_name="Year 2009-2010", index=False)
        _lines(SHEET_2010).to_excel(writer, sheet_name="Year 2010-2011", index=False)
    return path


def test_online_retail_ii_both_sheets_stacked_without_the_overlap(workbook_ii):
    frame = read_online_retail(workbook_ii)
    _check_schema(frame)
    # 4 + 6 lines read, the 2 overlapping lines of the second sheet dropped; its own duplicate kept
    assert len(frame) == 8
    assert _count(frame, "across sheets") == 2 and "1-9 Dec 2010" in _rule(frame, "across sheets")
    assert _count(frame, "exact duplicate") == 1
    assert _count(frame, "cancellation") == 1 and _rule(frame, "cancellation") == retail.CANCELLATION_RULE
    assert _count(frame, "missing customer id") == 1
    assert frame["invoice"].tolist()[:4] == ["489434", "489434", "536365", "536365"]
    assert frame["customer_id"].iloc[0] == 13085 and frame["invoice_date"].min() == pd.Timestamp("2009-12-01 07:45")
    dropped = read_online_retail(workbook_ii, duplicate_lines="drop")
    assert len(dropped) == 7 and _count(dropped, "exact duplicate") == 1
    assert "dropped" in _rule(dropped, "exact duplicate") and "kept" in _rule(frame, "exact duplicate")


def test_online_retail_ii_one_sheet_by_name_or_index(workbook_ii):
    second = read_online_retail(workbook_ii, sheet="Year 2010-2011")
    assert len(second) == 6 and _count(second, "across sheets") == 0 and _count(second, "exact duplicate") == 1
    pd.testing.assert_frame_equal(read_online_retail(workbook_ii, sheet=1), second)
    first = read_online_retail(workbook_ii, sheet=0)
    assert first["invoice"].tolist() == ["489434", "489434", "536365", "536365"] and data_problems(first).empty
    with pytest.raises(ValueError, match=r"no sheet 'Year 2011'.*'Year 2009-2010', 'Year 2010-2011'"):
        read_online_retail(workbook_ii, sheet="Year 2011")


def test_zipped_workbook_and_the_2010_11_single_sheet_release(tmp_path, workbook_ii):
    archive = tmp_path / "online+retail+ii.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.write(workbook_ii, "online_retail_II.xlsx")
    assert len(read_online_retail(archive)) == 8
    old = tmp_path / "Online Retail.xlsx"
    _lines(SHEET_2010, OLD_NAMES).to_excel(old, sheet_name="Online Retail", index=False)
    frame = read_online_retail(old)
    _check_schema(frame)
    assert len(frame) == 6 and _count(frame, "exact duplicate") == 1 and _count(frame, "across sheets") == 0
    pd.testing.assert_frame_equal(retail.parse_online_retail_xlsx(old), frame)


def test_csv_of_the_2010_11_release_with_bad_lines_counted_and_dropped(tmp_path):
    path = tmp_path / "online_retail.csv"
    path.write_text(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        "536365,85123A,WHITE HANGING HEART,6,12/1/2010 8:26,2.55,17850,United Kingdom\n"
        "536365,71053,WHITE METAL LANTERN,6,12/1/2010 8:26,3.39,17850,United Kingdom\n"
        "536365,71053,WHITE METAL LANTERN,6,12/1/2010 8:26,3.39,17850,United Kingdom\n"   # exact duplicate
        "536366,22633,HAND WARMER,,12/1/2010 8:28,1.85,17850,United Kingdom\n"            # empty quantity
        "536366,22632,HAND WARMER RED,six,12/1/2010 8:28,1.85,17850,United Kingdom\n"     # non-numeric quantity
        "536366,22631,HAND WARMER BLUE,2.5,12/1/2010 8:28,1.85,17850,United Kingdom\n"    # not a whole number
        "536367,84879,BIRD ORNAMENT,32,12/1/2010 8:34,n/a,13047,United Kingdom\n"         # bad price
        "536367,22745,POPPY'S PLAYHOUSE,6,yesterday,2.1,13047,United Kingdom\n"           # bad date
        "536368,22960,JAM MAKING SET,6,12/1/2010 8:34,4.25,unknown,France\n"              # bad customer id
        "C536379,D,Discount,-1,12/1/2010 9:41,27.5,14527,United Kingdom\n"                # cancellation
        "536544,21773,ROSE BOTTLE,1,12/1/2010 14:32,2.51,,United Kingdom\n"               # no customer
        ",21774,NO INVOICE,1,12/1/2010 14:32,2.51,,United Kingdom\n"                      # no invoice number
    )
    frame = read_online_retail(path)
    _check_schema(frame)
    assert frame["invoice"].tolist() == ["536365"] * 3 + ["536368", "C536379", "536544"]
    assert frame["invoice_date"].iloc[0] == pd.Timestamp("2010-12-01 08:26")  # month first, as the release writes
    problems = _problems(frame)
    assert _count(frame, "quantity") == 3 and _count(frame, "unit price") == 1 and _count(frame, "date") == 1
    assert _count(frame, "without invoice") == 1 and _count(frame, "not a number") == 1
    assert _count(frame, "exact duplicate") == 1 and _count(frame, "cancellation") == 1
    assert _count(frame, "missing customer id") == 2  # the empty one and the one set to NA
    table = data_problems(frame).set_index("problem")
    assert "six" in table.loc["quantity empty, non-numeric or not a whole number", "examples"]
    assert table.loc["invoice date empty or unparseable", "rule"] == "line dropped"
    assert len(problems) == 8


def test_parquet_dataframe_and_a_columns_mapping(tmp_path):
    table = _lines(SHEET_2010[3:], OLD_NAMES)
    path = tmp_path / "retail.parquet"
    table.to_parquet(path)
    from_parquet = read_online_retail(path)
    _check_schema(from_parquet)
    pd.testing.assert_frame_equal(from_parquet, read_online_retail(table))
    own = table.rename(columns={"InvoiceNo": "order", "UnitPrice": "gbp", "Quantity": "units"})
    with pytest.raises(SchemaError, match=r"invoice \(any of 'InvoiceNo', 'Invoice'\).*unit_price.*'order'"):
        read_online_retail(own)
    mapped = read_online_retail(own, columns={"invoice": "order", "unit_price": "gbp", "quantity": "units"})
    pd.testing.assert_frame_equal(mapped, from_parquet)
    with pytest.raises(ValueError, match="unknown roles"):
        read_online_retail(own, columns={"order_number": "order"})
    with pytest.raises(ValueError, match="Excel workbooks only"):
        read_online_retail(path, sheet=0)


def test_schema_errors_name_every_bad_column_before_any_work():
    table = _lines(SHEET_2010, OLD_NAMES)
    with pytest.raises(SchemaError) as error:
        read_online_retail(table.drop(columns=["Quantity", "Country"]))
    message = str(error.value)
    assert "quantity" in message and "country" in message and "InvoiceNo" in message  # names them, lists found
    garbled = table.assign(Quantity="many", InvoiceDate="someday")
    with pytest.raises(SchemaError, match=r"'Quantity' should hold integer.*'InvoiceDate' should hold datetime"):
        read_online_retail(garbled)
    with pytest.raises(SchemaError, match=r"lacks columns for: country.*Besides.*'Quantity' should hold integer"):
        read_online_retail(garbled.drop(columns="Country"))
    with pytest.raises(ValueError, match="duplicate_lines must be one of"):
        read_online_retail(table, duplicate_lines="first")


def test_optional_columns_may_be_absent_and_normalise_still_works():
    table = _lines(SHEET_2010, OLD_NAMES).drop(columns=["CustomerID", "Description"])
    frame = read_online_retail(table)
    _check_schema(frame)
    assert frame["customer_id"].isna().all() and frame["description"].isna().all()
    assert _count(frame, "missing customer id") == len(frame) and "no customer id column" in _rule(frame, "customer id")
    assert _count(frame, "no description column") == len(frame)
    pd.testing.assert_frame_equal(retail.normalise(_lines(SHEET_2010, OLD_NAMES)),
                                  read_online_retail(_lines(SHEET_2010)))


def test_weekly_sales_checks_its_input_and_reports_what_it_left_out():
    raw = _lines(SHEET_2010, OLD_NAMES)
    with pytest.raises(SchemaError, match=r"lacks columns \['invoice', 'stock_code', 'quantity', 'invoice_date'\]"
                                          r".*read_online_retail"):
        retail.weekly_sales(raw)
    frame = read_online_retail(raw)
    with pytest.raises(SchemaError, match="invoice_date is .*not datetime64.*read_online_retail"):
        retail.weekly_sales(frame.assign(invoice_date=frame["invoice_date"].astype(str)))
    returned = pd.DataFrame([{**frame.iloc[0].to_dict(), "invoice": "536999", "quantity": -2}])
    with_return = pd.concat([frame, returned], ignore_index=True)
    with_return.attrs = dict(frame.attrs)
    weekly = retail.weekly_sales(with_return)
    assert weekly["value"].sum() == frame.loc[frame["quantity"] > 0, "quantity"].sum()
    assert _count(weekly, "cancellation line left out") == 1
    assert _count(weekly, "quantity <= 0") == 1
    assert _count(weekly, "exact duplicate") == 1  # the input's own report comes along


# --- per-country tasks: feasible episode shapes, checked at construction --------------------------


def _country_lines(invoices: dict[str, list[int]], seed: int = 0) -> pd.DataFrame:
    """Order lines (as order_lines returns them) for countries given as lists of invoice sizes."""
    rng = np.random.default_rng(seed)
    rows, number = [], 0
    for country, sizes in invoices.items():
        for size in sizes:
            number += 1
            for _ in range(size):
                rows.append({"invoice": f"{number:06d}", "country": country,
                             "quantity": int(rng.integers(1, 50)), "unit_price": float(rng.uniform(0.5, 20))})
    frame = pd.DataFrame(rows)
    return markets.order_lines(frame)


POOL = {
    "United Kingdom": [3, 5, 2, 8] * 20,
    "France": [4, 6] * 15,
    "Germany": [5] * 20,
    "Norway": [2, 3] * 10,
    "Spain": [4] * 15,
    "Solo": [60],             # one invoice: no second one for the query
    "Tiny": [4, 3, 5],        # 12 lines: fewer than 20 + 30
    "Lumpy": [80, 5, 5],      # 90 lines, but no invoice split gives 20 and 30
    "Skewed": [45] + [5] * 7,  # 80 lines: random halves always fail, yet 20 | 60 exists
}


def test_infeasible_countries_and_their_reasons():
    lines = _country_lines(POOL)
    report = infeasible_countries(lines, [2, 5, 20], 30).set_index("country")
    assert sorted(report.index) == ["Lumpy", "Solo", "Tiny"]
    assert "invoice" in report.loc["Solo", "reason"] and report.loc["Solo", "invoices"] == 1
    assert "too few lines: 12 < k + n_query = 50" in report.loc["Tiny", "reason"]
    assert "no split of its 3 invoices" in report.loc["Lumpy", "reason"]
    assert report.loc["Lumpy", "largest_invoice"] == 80 and (report["k"] == 20).all()
    assert infeasible_countries(lines, 2, 30, countries=["France", "Atlantis"])["reason"].tolist() == ["no lines"]
    with pytest.raises(ValueError, match="n_query must be an integer >= 1"):
        infeasible_countries(lines, 5, 0)


def test_split_countries_and_tasks_refuse_or_drop_infeasible_countries_at_construction():
    lines = _country_lines(POOL)
    plain = split_countries(lines, min_lines=10, seed=0)
    assert {"Solo", "Tiny", "Lumpy"} <= set(plain[0] + plain[1])  # no shape: as always
    with pytest.raises(ValueError) as error:
        split_countries(lines, min_lines=10, seed=0, shots=[5, 20], n_query=30)
    message = str(error.value)
    assert "3 countries" in message and all(c in message for c in ["Solo", "Tiny", "Lumpy"])
    assert "drop_infeasible=True" in message and "Skewed" not in message
    with pytest.warns(UserWarning, match="left out 3 countries"):
        train, test = split_countries(lines, min_lines=10, seed=0, shots=[5, 20], n_query=30, drop_infeasible=True)
    assert not {"Solo", "Tiny", "Lumpy"} & set(train + test) and "United Kingdom" in train
    with pytest.raises(ValueError, match="Solo.*Tiny|Tiny.*Solo"):
        CountryTasks(lines, *plain, shots=20, n_query=30)
    with pytest.warns(UserWarning, match="CountryTasks left out 3 countries"):
        tasks = CountryTasks(lines, *plain, shots=[2, 20], n_query=30, drop_infeasible=True)
    assert sorted(tasks.dropped["country"]) == ["Lumpy", "Solo", "Tiny"]
    assert not {"Solo", "Tiny", "Lumpy"} & set(tasks.train_countries + tasks.test_countries)
    assert tasks.infeasible(20, 30).empty and tasks.infeasible(40, 30)["country"].tolist() != []
    with pytest.raises(ValueError, match="neither a meta-training nor a meta-test"):
        tasks.episode("Solo", 2, 30, np.random.default_rng(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        untouched = CountryTasks(lines, *plain)  # no shape: every country, no check, no warning
    assert untouched.dropped.empty and set(untouched.train_countries + untouched.test_countries) == set(
        plain[0] + plain[1])
    assert set(untouched.infeasible(20, 30)["country"]) == {"Solo", "Tiny", "Lumpy"}
    with pytest.raises(ValueError, match="give both shots and n_query"):
        CountryTasks(lines, *plain, shots=5)
    with pytest.raises(ValueError, match="drop_infeasible=True needs the episode shape"):
        split_countries(lines, drop_infeasible=True)


def test_the_check_passes_exactly_the_countries_episodes_can_serve():
    lines = _country_lines(POOL)
    countries = sorted(set(lines["country"]))
    tasks = CountryTasks(lines, countries, [])
    bad = set(tasks.infeasible(20, 30)["country"])
    rng = np.random.default_rng(3)
    for country in countries:
        if country in bad:
            with pytest.raises(ValueError, match="no split of its invoices"):
                tasks.episode_rows(country, 20, 30, rng)
            continue
        for _ in range(5):  # "Skewed" is served by the fallback split: random halves never work
            support, query = tasks.episode_rows(country, 20, 30, rng)
            assert len(support) == 20 and len(query) == 30 and len(set(support) | set(query)) == 50
            assert set(lines["country"][np.concatenate([support, query])]) == {country}
            assert not set(lines["invoice"][support]) & set(lines["invoice"][query])


def test_the_split_search_agrees_with_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(400):
        counts = rng.integers(1, 30, size=rng.integers(1, 8))
        k, n_query = int(rng.integers(1, 60)), int(rng.integers(1, 60))
        subsets = itertools.chain.from_iterable(itertools.combinations(range(len(counts)), r)
                                                for r in range(1, len(counts)))
        possible = any(counts[list(s)].sum() >= k and counts.sum() - counts[list(s)].sum() >= n_query
                       for s in subsets)
        support = markets._support_invoices(counts, k, n_query, rng.permutation(len(counts)))
        assert (support is not None) == possible, (counts, k, n_query)
        if support is not None:
            assert len(set(support)) == len(support)
            assert counts[support].sum() >= k and counts.sum() - counts[support].sum() >= n_query


# --- the real data -----------------------------------------------------------------------------


@needs_mirror
def test_catalogue_loader_carries_the_problem_report():
    frame = retail.load_online_retail()  # checks 541,909 rows and total quantity 5,176,450
    assert len(frame) == retail.PUBLISHED_ROWS and int(frame["quantity"].sum()) == retail.PUBLISHED_QUANTITY
    assert _count(frame, "exact duplicate") == 5_268 and "kept" in _rule(frame, "exact duplicate")
    assert _count(frame, "cancellation") == 9_288 and _count(frame, "missing customer id") == 135_080
    assert len(data_problems(frame)) == 3
    assert _count(retail.load_online_retail(), "exact duplicate") == 5_268  # from the cache, report intact
    mirror = Path(MIRROR) / "uci-online-retail" / "online_retail.parquet"
    assert len(read_online_retail(mirror, duplicate_lines="drop")) == retail.PUBLISHED_ROWS - 5_268


@needs_mirror
def test_chapter_countries_can_supply_the_chapters_episodes():
    lines = markets.order_lines(retail.load_online_retail())
    for seed in (0, 1, 7):  # the chapters' call, with and without the shape they use (K <= 20, 30 query lines)
        train, test = split_countries(lines, min_lines=70, seed=seed)
        assert split_countries(lines, min_lines=70, seed=seed, shots=[2, 5, 10, 20], n_query=30) == (train, test)
    assert len(train + test) == 28 and infeasible_countries(lines, [2, 5, 10, 20], 30, train + test).empty
    tasks = CountryTasks(lines, train, test, shots=[2, 5, 10, 20], n_query=30)
    assert tasks.dropped.empty and tasks.train_countries == train and tasks.test_countries == test
    assert {"Brazil", "RSA", "Saudi Arabia"} <= set(infeasible_countries(lines, 20, 30)["country"])


def test_undone_sales_match_each_cancellation_to_one_earlier_sale():
    t = pd.Timestamp("2011-03-01 10:00")
    lines = pd.DataFrame({
        "invoice": ["1", "2", "3", "C4", "5", "C6", "7"],
        "stock_code": ["A", "A", "A", "A", "B", "B", "A"],
        "quantity": [5, 5, 7, -5, 3, -3, 5],
        "invoice_date": [t, t + pd.Timedelta(hours=1), t, t + pd.Timedelta(hours=2), t, t - pd.Timedelta(hours=1),
                         t + pd.Timedelta(hours=3)],
        "customer_id": pd.array([1, 1, 1, 1, 1, 1, 1], dtype="Int32"),
    })
    # C4 undoes the latest earlier sale of 5 x A (invoice 2); C6 precedes its sale: no match;
    # invoice 7 comes after C4 and stays
    np.testing.assert_array_equal(retail.undone_sales(lines), [False, True, False, False, False, False, False])
    weekly = retail.weekly_sales(lines, undone="drop")
    assert weekly["value"].sum() == 5 + 7 + 3 + 5
    assert _count(weekly, "undone by a later cancellation") == 1
    assert retail.weekly_sales(lines)["value"].sum() == 5 + 5 + 7 + 3 + 5
    with pytest.raises(ValueError, match='undone must be "keep" or "drop"'):
        retail.weekly_sales(lines, undone="yes")
    with pytest.raises(SchemaError, match="customer_id"):
        retail.undone_sales(lines.drop(columns="customer_id"))


def test_undone_at_gives_the_time_of_the_cancellation():
    t = pd.Timestamp("2011-03-01 10:00")
    lines = pd.DataFrame({
        "invoice": ["1", "C2", "3"], "stock_code": ["A", "A", "A"], "quantity": [5, -5, 5],
        "invoice_date": [t, t + pd.Timedelta(days=3), t + pd.Timedelta(days=4)],
        "customer_id": pd.array([1, 1, 1], dtype="Int32"),
    })
    when = retail.undone_at(lines)
    assert when[0] == np.datetime64(t + pd.Timedelta(days=3)) and np.isnat(when[1]) and np.isnat(when[2])
