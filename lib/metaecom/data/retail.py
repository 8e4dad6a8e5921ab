"""UCI Online Retail: every line of every invoice of a UK online gift shop, 1 Dec 2010 -
9 Dec 2011 (Chen, Sain & Guo 2012; UCI, CC BY 4.0). 541,909 lines, 38 countries.

The official file is an Excel workbook; the offline mirror holds a Parquet conversion of
it. :func:`load_online_retail` reads whichever is available (mirror Parquet first, else
the official XLSX) and checks the result against the dataset's published counts.

Schema: invoice string ("C..." = cancellation), stock_code string, description string,
quantity int32 (negative for returns), invoice_date datetime64[s] (shop's local time),
unit_price float64 (GBP), customer_id Int32 (NA when unknown), country category
"""

from __future__ import annotations

import pandas as pd

from metaecom.data import catalog
from metaecom.data.parsed import cached_frame
from metaecom.data.registry import DataUnavailableError, fetch

_VERSION = 1
PUBLISHED_ROWS = 541_909
PUBLISHED_QUANTITY = 5_176_450
_COLUMNS = {
    "InvoiceNo": "invoice", "StockCode": "stock_code", "Description": "description", "Quantity": "quantity",
    "InvoiceDate": "invoice_date", "UnitPrice": "unit_price", "CustomerID": "customer_id", "Country": "country",
}


def normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """Official column names and mixed types (from XLSX or Parquet) -> the schema above."""
    missing = set(_COLUMNS) - set(frame.columns)
    if missing:
        raise ValueError(f"Online Retail table lacks columns {sorted(missing)}; found {list(frame.columns)}")
    frame = frame.rename(columns=_COLUMNS)[list(_COLUMNS.values())]
    text = lambda column: column.astype("string").str.strip().where(column.notna())  # noqa: E731
    return pd.DataFrame({
        "invoice": text(frame["invoice"]),
        "stock_code": text(frame["stock_code"]),
        "description": frame["description"].astype("string"),
        "quantity": frame["quantity"].astype("int32"),
        "invoice_date": pd.to_datetime(frame["invoice_date"]).astype("datetime64[s]"),
        "unit_price": frame["unit_price"].astype("float64"),
        "customer_id": pd.to_numeric(frame["customer_id"]).round().astype("Int32"),
        "country": frame["country"].astype("category"),
    })


def parse_online_retail_xlsx(path) -> pd.DataFrame:
    """Parse the official ``Online Retail.xlsx`` workbook (needs openpyxl)."""
    return normalise(pd.read_excel(path, dtype={"InvoiceNo": str, "StockCode": str}, engine="openpyxl"))


def _read() -> pd.DataFrame:
    try:
        return normalise(pd.read_parquet(fetch(catalog.ONLINE_RETAIL_PARQUET)))
    except DataUnavailableError:
        return parse_online_retail_xlsx(fetch(catalog.ONLINE_RETAIL_XLSX))


def check_published_counts(frame: pd.DataFrame) -> None:
    """Raise if the table is not the published one (row count and total quantity)."""
    rows, quantity = len(frame), int(frame["quantity"].sum())
    if (rows, quantity) != (PUBLISHED_ROWS, PUBLISHED_QUANTITY):
        raise ValueError(f"Online Retail has {rows:,} rows and total quantity {quantity:,}; "
                         f"the published dataset has {PUBLISHED_ROWS:,} and {PUBLISHED_QUANTITY:,}")


def load_online_retail() -> pd.DataFrame:
    """All invoice lines of UCI Online Retail, checked against the published counts."""
    frame = cached_frame("online-retail", [_VERSION, catalog.ONLINE_RETAIL_PARQUET.checksum,
                                           catalog.ONLINE_RETAIL_XLSX.checksum], _read)
    check_published_counts(frame)
    return frame


def weekly_sales(frame: pd.DataFrame) -> pd.DataFrame:
    """Units sold per product and week, from each product's first sale to the last week.

    Cancellations (invoice "C...") and lines with quantity <= 0 are dropped. Weeks start
    on Monday. Weeks without a sale after a product's launch are filled with 0, so each
    product's series is complete. Returns columns product (stock code), period (week
    start, datetime64), value (float units), weeks_since_launch (int, 0 = launch week).
    """
    sales = frame[~frame["invoice"].str.startswith("C") & (frame["quantity"] > 0)]
    if sales.empty:
        raise ValueError("no sales left after dropping cancellations and non-positive quantities")
    week = sales["invoice_date"].dt.to_period("W-SUN").dt.start_time
    units = sales.groupby([sales["stock_code"].rename("product"), week.rename("period")])["quantity"].sum()
    last = units.index.get_level_values("period").max()
    series = []
    for product, weekly in units.groupby(level="product"):
        weekly = weekly.droplevel("product")
        periods = pd.date_range(weekly.index.min(), last, freq="7D")
        filled = weekly.reindex(periods, fill_value=0).astype(float)
        series.append(pd.DataFrame({"product": product, "period": periods, "value": filled.to_numpy(),
                                    "weeks_since_launch": range(len(periods))}))
    result = pd.concat(series, ignore_index=True)
    return result.astype({"product": "string", "weeks_since_launch": "int32"})
