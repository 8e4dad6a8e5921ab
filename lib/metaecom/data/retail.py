"""UCI Online Retail: every line of every invoice of a UK online gift shop, 1 Dec 2010 -
9 Dec 2011 (Chen, Sain & Guo 2012; UCI, CC BY 4.0). 541,909 lines, 38 countries.

:func:`read_online_retail` reads *any* file of the dataset's official formats: the
2010–11 release (``Online Retail.xlsx``, one sheet; columns InvoiceNo, StockCode,
Description, Quantity, InvoiceDate, UnitPrice, CustomerID, Country), **Online Retail II**
(``online_retail_II.xlsx``, sheets "Year 2009-2010" and "Year 2010-2011"; columns Invoice,
StockCode, Description, Quantity, InvoiceDate, Price, Customer ID, Country), CSV or
Parquet exports of either, or a DataFrame; ``columns={role: name}`` names columns that
neither release uses. It checks the columns first (one :class:`~metaecom.data.schema.SchemaError`
naming every missing or ill-typed column), then counts each data problem, handles it by
the rule stated in :func:`read_online_retail`, and records it in the table (see
:func:`metaecom.data.problems.data_problems`).

:func:`load_online_retail` is the catalogue's copy: the offline mirror's Parquet
conversion, else the official XLSX, read by the same reader and checked against the
dataset's published counts.

Schema: invoice string ("C..." = cancellation), stock_code string, description string,
quantity int32 (negative for returns), invoice_date datetime64[s] (shop's local time),
unit_price float64 (GBP), customer_id Int32 (NA when unknown), country category
"""

from __future__ import annotations

import gzip
import io
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from metaecom.data import catalog
from metaecom.data.parsed import cached_frame
from metaecom.data.problems import ATTRS_KEY, Problem, examples_of, record
from metaecom.data.registry import DataUnavailableError, fetch
from metaecom.data.schema import SchemaError, check_schema, read_table, resolve_columns

_VERSION = 2  # 2: the table carries its data-problem report
PUBLISHED_ROWS = 541_909
PUBLISHED_QUANTITY = 5_176_450
# role -> the names the official releases use (2010-11 first, then Online Retail II)
ROLES = {
    "invoice": ("InvoiceNo", "Invoice"), "stock_code": ("StockCode",), "description": ("Description",),
    "quantity": ("Quantity",), "invoice_date": ("InvoiceDate",), "unit_price": ("UnitPrice", "Price"),
    "customer_id": ("CustomerID", "Customer ID"), "country": ("Country",),
}
_KINDS = {"invoice": "text", "stock_code": "text", "description": "text", "quantity": "integer",
          "invoice_date": "datetime", "unit_price": "number", "customer_id": "integer", "country": "text"}
_OPTIONAL = ("description", "customer_id")  # absent: all NA (reported)
DUPLICATE_RULES = ("keep", "drop")
CANCELLATION_RULE = "kept; marked by the C prefix; weekly_sales and order_lines leave them out"
_INT32 = 2**31 - 1


def read_online_retail(source, columns: dict | None = None, sheet=None, duplicate_lines: str = "keep") -> pd.DataFrame:
    """Invoice lines of Online Retail from any file of its official formats, in the schema above.

    ``source``: a path -- ``.xlsx`` (either release; ``.gz`` or zipped too), ``.csv``,
    ``.parquet``, ... (see :func:`~metaecom.data.schema.read_table`) -- or a DataFrame.
    Either release's column names are recognised; ``columns`` maps a role (``invoice``,
    ``stock_code``, ``description``, ``quantity``, ``invoice_date``, ``unit_price``,
    ``customer_id``, ``country``) to another name. ``sheet`` (workbooks only): a sheet
    name or index; None (default) reads every sheet, stacked in workbook order.

    Before any work, one :class:`~metaecom.data.schema.SchemaError` names every required
    column that is missing or whose values are mostly not of its kind (``description`` and
    ``customer_id`` may be absent: then all NA, reported). Then each problem is counted,
    handled by its rule and recorded (:func:`~metaecom.data.problems.data_problems`):

    - lines without invoice number, stock code or country: dropped;
    - quantity empty, non-numeric or not a whole number: line dropped;
    - unit price empty or non-numeric: line dropped;
    - invoice date empty or unparseable: line dropped;
    - customer id present but not a number: set to NA;
    - lines repeated across sheets (only when several sheets are read): Online Retail II's
      two sheets overlap (1-9 Dec 2010), so stacking them reads those lines twice; a line
      of a later sheet that an earlier sheet already holds (as many times) is dropped and
      the earlier copy kept. Exact duplicates *within* a sheet are left to the next rule;
    - exact duplicate lines (all eight columns equal): ``duplicate_lines="keep"``
      (default; the published counts include them) keeps them, ``"drop"`` keeps the
      first copy only; reported either way;
    - cancellations (invoice starting with "C"): kept; marked by the C prefix;
      :func:`weekly_sales` and :func:`metaecom.cases.markets.order_lines` leave them out;
    - missing customer id: kept as NA.
    """
    if duplicate_lines not in DUPLICATE_RULES:
        raise ValueError(f"duplicate_lines must be one of {DUPLICATE_RULES}, got {duplicate_lines!r}")
    if isinstance(source, pd.DataFrame):
        if sheet is not None:
            raise ValueError("sheet= applies to Excel workbooks only; source is a DataFrame")
        return _normalise([("table", source)], columns, duplicate_lines)
    name = Path(source).name
    sheets = _workbook_sheets(source)
    if sheets is None:
        if sheet is not None:
            raise ValueError(f"sheet= applies to Excel workbooks only; {name} is not one")
        return _normalise([(name, read_table(source))], columns, duplicate_lines)
    if sheet is None:
        chosen = sheets
    elif isinstance(sheet, str) and sheet in sheets:
        chosen = [sheet]
    elif isinstance(sheet, (int, np.integer)) and not isinstance(sheet, bool) and -len(sheets) <= sheet < len(sheets):
        chosen = [sheets[sheet]]
    else:
        raise ValueError(f"{name} has no sheet {sheet!r}; its sheets are {sheets}")
    return _normalise([(f"{name} sheet {s!r}", read_table(source, sheet=s)) for s in chosen], columns, duplicate_lines)


def normalise(frame: pd.DataFrame, columns: dict | None = None, duplicate_lines: str = "keep") -> pd.DataFrame:
    """One table with the official (or ``columns``-mapped) column names -> the schema above,
    with its data problems handled and recorded as :func:`read_online_retail` says."""
    if duplicate_lines not in DUPLICATE_RULES:
        raise ValueError(f"duplicate_lines must be one of {DUPLICATE_RULES}, got {duplicate_lines!r}")
    return _normalise([("table", frame)], columns, duplicate_lines)


def _is_workbook(name: str) -> bool:
    return name.lower().removesuffix(".gz").endswith((".xlsx", ".xls"))


def _workbook_sheets(source) -> list | None:
    """The sheet names when ``source`` is a path to an Excel workbook (plain, ``.gz`` or the
    only member of a ``.zip``), else None (``read_table`` reports missing or odd files)."""
    path = Path(source)
    if not path.is_file():
        return None
    name = path.name.lower()
    if name.endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            members = [n for n in archive.namelist() if not n.endswith("/") and not n.startswith("__MACOSX")]
            if len(members) != 1 or not _is_workbook(members[0]):
                return None
            raw, name = archive.read(members[0]), members[0].lower()
    elif _is_workbook(name):
        raw = path.read_bytes()
    else:
        return None
    if name.endswith(".gz"):
        raw = gzip.decompress(raw)
    with pd.ExcelFile(io.BytesIO(raw)) as workbook:
        return list(workbook.sheet_names)


def _checked(table: pd.DataFrame, columns, what: str) -> tuple[pd.DataFrame, list[str]]:
    """(``table``'s columns renamed to the roles, absent optional ones all NA; those absent
    roles), after one SchemaError naming every missing or mostly ill-typed column."""
    found = resolve_columns(table, ROLES, columns, what, optional=tuple(ROLES))
    missing = [f"{role} (any of {', '.join(repr(n) for n in ROLES[role])})"
               for role in ROLES if role not in found and role not in _OPTIONAL]
    besides = ""
    try:
        check_schema(table, {found[role]: _KINDS[role] for role in found}, what)
    except SchemaError as error:
        if not missing:
            raise
        besides = f" Besides, {error}"
    if missing:
        raise SchemaError(f"{what} lacks columns for: {'; '.join(missing)}. Found columns {list(table.columns)}. "
                          f"Pass columns={{role: your_column}} to name them.{besides}")
    renamed = table[list(found.values())].set_axis(list(found), axis=1)
    absent = [role for role in ROLES if role not in found]
    for role in absent:
        renamed[role] = pd.Series(pd.NA, index=renamed.index, dtype=object)
    return renamed[list(ROLES)], absent


def _text(values: pd.Series) -> pd.Series:
    """Stripped strings, NA for empty; whole floats (Excel ids read as numbers) without '.0'."""
    if values.dtype == object or pd.api.types.is_float_dtype(values):
        values = values.map(lambda v: int(v) if isinstance(v, float) and v.is_integer() else v)
    text = values.astype("string").str.strip()
    return text.mask(text == "")


def _dates(values: pd.Series) -> pd.Series:
    """Timestamps (NaT where unparseable): the format is inferred from the first value, and
    the values it does not fit are parsed one by one."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_localize(None)  # the clock time where it was recorded
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "could not infer format": parsed one by one
        parsed = pd.to_datetime(values, errors="coerce")
        retry = parsed.isna() & values.notna()
        if retry.any():
            parsed = parsed.copy()
            parsed[retry] = pd.to_datetime(values[retry].astype(str), errors="coerce", format="mixed")
    return parsed


def _blank(values: pd.Series) -> pd.Series:
    blank = values.isna()
    if values.dtype == object or pd.api.types.is_string_dtype(values):
        blank |= values.map(lambda v: isinstance(v, str) and not v.strip()).astype(bool)
    return blank


def _normalise(parts: list[tuple[str, pd.DataFrame]], columns, duplicate_lines: str) -> pd.DataFrame:
    checked, absent = [], set()
    for what, table in parts:  # every check before any work
        renamed, missing = _checked(table, columns, f"Online Retail {what}")
        checked.append(renamed)
        absent.update(missing)
    raw = pd.concat(checked, ignore_index=True) if len(checked) > 1 else checked[0].reset_index(drop=True)
    sheet = np.repeat(np.arange(len(checked)), [len(t) for t in checked])
    problems = []

    invoice, stock_code, country = _text(raw["invoice"]), _text(raw["stock_code"]), _text(raw["country"])
    no_key = (invoice.isna() | stock_code.isna() | country.isna()).to_numpy()
    problems.append(Problem("line without invoice number, stock code or country", int(no_key.sum()),
                            "line dropped", examples_of(f"line {i}" for i in np.flatnonzero(no_key))))
    quantity = pd.to_numeric(raw["quantity"], errors="coerce")
    bad = (quantity.isna() | (quantity != quantity.round()) | (quantity.abs() > _INT32)).to_numpy()
    problems.append(Problem("quantity empty, non-numeric or not a whole number", int(bad.sum()), "line dropped",
                            examples_of(raw["quantity"][bad])))
    dropped = no_key | bad
    price = pd.to_numeric(raw["unit_price"], errors="coerce")
    bad = (price.isna() | ~np.isfinite(price.astype(float))).to_numpy()
    problems.append(Problem("unit price empty or non-numeric", int(bad.sum()), "line dropped",
                            examples_of(raw["unit_price"][bad])))
    dropped |= bad
    date = _dates(raw["invoice_date"])
    bad = date.isna().to_numpy()
    problems.append(Problem("invoice date empty or unparseable", int(bad.sum()), "line dropped",
                            examples_of(raw["invoice_date"][bad])))
    dropped |= bad
    customer = pd.to_numeric(raw["customer_id"], errors="coerce")
    bad = (customer.isna() & ~_blank(raw["customer_id"])).to_numpy() & ~dropped
    problems.append(Problem("customer id not a number", int(bad.sum()), "set to NA",
                            examples_of(raw["customer_id"][bad])))

    keep = ~dropped
    frame = pd.DataFrame({
        "invoice": invoice[keep],
        "stock_code": stock_code[keep],
        "description": raw["description"][keep].astype("string"),
        "quantity": quantity[keep].astype("int32"),
        "invoice_date": date[keep].astype("datetime64[s]"),
        "unit_price": price[keep].astype("float64"),
        "customer_id": customer[keep].round().astype("Int32"),
        "country": country[keep].astype(str).astype("category"),
    }).reset_index(drop=True)
    sheet = sheet[keep]

    if len(checked) > 1:
        line = frame.groupby(list(frame.columns), dropna=False, observed=True, sort=False).ngroup().to_numpy()
        occurrence = pd.DataFrame({"line": line, "sheet": sheet}).groupby(["line", "sheet"]).cumcount().to_numpy()
        repeated = pd.DataFrame({"line": line, "occurrence": occurrence}).duplicated().to_numpy()
        problems.append(Problem(
            "line repeated across sheets", int(repeated.sum()),
            "dropped, the earlier sheet's copy kept: a line of a later sheet that an earlier sheet already "
            "holds (as many times) was read twice -- Online Retail II's sheets overlap on 1-9 Dec 2010",
            examples_of(f"invoice {i}" for i in frame["invoice"][repeated])))
        frame = frame[~repeated].reset_index(drop=True)

    duplicate = frame.duplicated().to_numpy()
    rule = ("kept (duplicate_lines='keep'; the published counts include them; 'drop' keeps the first copy only)"
            if duplicate_lines == "keep" else "dropped, the first copy kept (duplicate_lines='drop')")
    problems.append(Problem("exact duplicate line (all columns equal to an earlier line's)", int(duplicate.sum()),
                            rule, examples_of(f"invoice {i}" for i in frame["invoice"][duplicate])))
    if duplicate_lines == "drop":
        frame = frame[~duplicate].reset_index(drop=True)

    cancelled = frame["invoice"].str.startswith("C").to_numpy(dtype=bool)
    problems.append(Problem("cancellation line (invoice starting with 'C')", int(cancelled.sum()), CANCELLATION_RULE,
                            examples_of(frame["invoice"][cancelled])))
    no_customer = frame["customer_id"].isna().to_numpy()
    no_column = " (the table has no customer id column)" if "customer_id" in absent else ""
    problems.append(Problem("missing customer id", int(no_customer.sum()), "kept as NA" + no_column,
                            examples_of(f"invoice {i}" for i in frame["invoice"][no_customer])))
    if "description" in absent:
        problems.append(Problem("no description column", len(frame), "description is NA on every line"))
    frame.attrs.clear()
    return record(frame, *problems)


def parse_online_retail_xlsx(path) -> pd.DataFrame:
    """Parse the official ``Online Retail.xlsx`` workbook (its first sheet; needs openpyxl)."""
    return read_online_retail(path, sheet=0)


def _read() -> pd.DataFrame:
    try:
        return read_online_retail(fetch(catalog.ONLINE_RETAIL_PARQUET))
    except DataUnavailableError:
        return parse_online_retail_xlsx(fetch(catalog.ONLINE_RETAIL_XLSX))


def check_published_counts(frame: pd.DataFrame) -> None:
    """Raise if the table is not the published one (row count and total quantity)."""
    rows, quantity = len(frame), int(frame["quantity"].sum())
    if (rows, quantity) != (PUBLISHED_ROWS, PUBLISHED_QUANTITY):
        raise ValueError(f"Online Retail has {rows:,} rows and total quantity {quantity:,}; "
                         f"the published dataset has {PUBLISHED_ROWS:,} and {PUBLISHED_QUANTITY:,}")


def load_online_retail() -> pd.DataFrame:
    """All invoice lines of UCI Online Retail, checked against the published counts.

    Read by :func:`read_online_retail` with its default rules (exact duplicate lines kept,
    as the published counts include them), so the table carries the same problem report
    (:func:`~metaecom.data.problems.data_problems`): 5,268 exact duplicate lines, 9,288
    cancellation lines, 135,080 lines without customer id.
    """
    frame = cached_frame("online-retail", [_VERSION, catalog.ONLINE_RETAIL_PARQUET.checksum,
                                           catalog.ONLINE_RETAIL_XLSX.checksum], _read)
    check_published_counts(frame)
    return frame


WEEKLY_COLUMNS = {"invoice": "text", "stock_code": "text", "quantity": "number", "invoice_date": "datetime"}


def _check_lines(frame: pd.DataFrame, what: str) -> None:
    """A SchemaError unless ``frame`` has the columns of :data:`WEEKLY_COLUMNS` in read_online_retail's schema."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{what} needs a DataFrame of invoice lines, got {type(frame).__name__}")
    missing = [c for c in WEEKLY_COLUMNS if c not in frame.columns]
    wrong = []
    if "quantity" in frame.columns and (not pd.api.types.is_numeric_dtype(frame["quantity"])
                                        or pd.api.types.is_bool_dtype(frame["quantity"])):
        wrong.append(f"quantity is {frame['quantity'].dtype}, not numbers")
    if "invoice_date" in frame.columns and not pd.api.types.is_datetime64_any_dtype(frame["invoice_date"]):
        wrong.append(f"invoice_date is {frame['invoice_date'].dtype}, not datetime64")
    if missing or wrong:
        said = "; ".join(([f"lacks columns {missing}"] if missing else []) + wrong)
        raise SchemaError(f"{what} needs invoice lines in read_online_retail's schema (columns "
                          f"{list(WEEKLY_COLUMNS)}): the table {said}; found columns {list(frame.columns)}. "
                          "Read the file or frame with metaecom.data.read_online_retail(source), which "
                          "recognises the official column names (InvoiceNo/Invoice, StockCode, Quantity, "
                          "InvoiceDate, ...) and converts the types.")


def cancellation_lines(frame: pd.DataFrame) -> np.ndarray:
    """A mask of the cancellation lines: invoice numbers starting with "C" (NA: not one)."""
    return frame["invoice"].astype("string").str.startswith("C").fillna(False).to_numpy(dtype=bool)


def undone_at(frame: pd.DataFrame) -> np.ndarray:
    """For each line, the time of the cancellation that undid it (NaT if none): a later
    "C..." line of the same customer and product with the same quantity negated.

    Each cancellation undoes one sale line: the latest one before it with that customer,
    product and quantity that no other cancellation has undone (lines without a customer
    id are never matched). In Online Retail such pairs include orders of tens of thousands
    of units cancelled within minutes: they were never demand. The time tells a pipeline
    that must not look ahead which of them it could have known at a given date.
    """
    _check_lines(frame, "undone_at")
    if "customer_id" not in frame.columns:
        raise SchemaError("undone_at needs the customer_id column to match cancellations to sales")
    cancelled = cancellation_lines(frame)
    known = frame["customer_id"].notna().to_numpy(dtype=bool)
    lines = pd.DataFrame({"customer": frame["customer_id"].to_numpy(), "product": frame["stock_code"].to_numpy(),
                          "size": frame["quantity"].abs().to_numpy(), "time": frame["invoice_date"].to_numpy(),
                          "row": np.arange(len(frame))})
    sale = ~cancelled & (frame["quantity"] > 0).to_numpy(dtype=bool) & known
    undo = cancelled & (frame["quantity"] < 0).to_numpy(dtype=bool) & known
    keys = ["customer", "product", "size"]
    cancellations = lines[undo].sort_values(["time", "row"])
    matchable = lines[sale].merge(cancellations[keys].drop_duplicates(), on=keys)  # only keys ever cancelled
    sales_by_key = {k: g.sort_values(["time", "row"]) for k, g in matchable.groupby(keys, sort=False)}
    when = np.full(len(frame), np.datetime64("NaT"), dtype="datetime64[ns]")
    for key, group in cancellations.groupby(keys, sort=False):
        same = sales_by_key.get(key)
        if same is None:
            continue
        times, rows = same["time"].to_numpy(), same["row"].to_numpy()
        for moment in group["time"].to_numpy():
            earlier = np.flatnonzero((times <= moment) & np.isnat(when[rows]))
            if len(earlier):
                when[rows[earlier[-1]]] = moment
    return when


def undone_sales(frame: pd.DataFrame) -> np.ndarray:
    """A mask of the sale lines a later cancellation undid (see :func:`undone_at`)."""
    return ~np.isnat(undone_at(frame))


def weekly_sales(frame: pd.DataFrame, undone: str = "keep") -> pd.DataFrame:
    """Units sold per product and week, from each product's first sale to the last week.

    ``frame``: invoice lines as :func:`read_online_retail` returns them (at least invoice,
    stock_code, quantity, invoice_date); checked first. Cancellations (invoice "C...") and
    lines with quantity <= 0 are left out, and how many is recorded in the result's
    problem report, after the input's own problems. Weeks start on Monday. Weeks without a
    sale after a product's launch are filled with 0, so each product's series is complete.
    Returns columns product (stock code), period (week start, datetime64), value (float
    units), weeks_since_launch (int, 0 = launch week).

    ``undone="drop"`` also leaves out the sale lines a later cancellation undid (see
    :func:`undone_sales`; needs customer_id), so that the weekly values are demand that
    stayed; the default ``"keep"`` counts every sale line as it was invoiced.
    """
    _check_lines(frame, "weekly_sales")
    if undone not in ("keep", "drop"):
        raise ValueError(f'undone must be "keep" or "drop", got {undone!r}')
    cancelled = cancellation_lines(frame)
    positive = (frame["quantity"] > 0).to_numpy(dtype=bool)
    reversed_ = undone_sales(frame) if undone == "drop" else np.zeros(len(frame), dtype=bool)
    sales = frame[~cancelled & positive & ~reversed_]
    sales.attrs = {}  # the report is carried below, not through every step
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
    result = result.astype({"product": "string", "weeks_since_launch": "int32"})
    result.attrs = {ATTRS_KEY: list(frame.attrs.get(ATTRS_KEY, []))}
    return record(
        result,
        Problem("cancellation line left out", int(cancelled.sum()),
                "left out of the weekly sales: a cancellation is not a sale", examples_of(frame["invoice"][cancelled])),
        Problem("line with quantity <= 0 (not a cancellation) left out", int((~cancelled & ~positive).sum()),
                "left out of the weekly sales: returns and adjustments are not sales",
                examples_of(frame["invoice"][~cancelled & ~positive])),
        *([Problem("sale line undone by a later cancellation left out", int(reversed_.sum()),
                   "left out of the weekly sales (undone='drop'): the order did not stay",
                   examples_of(frame["invoice"][reversed_]))] if undone == "drop" else []))
