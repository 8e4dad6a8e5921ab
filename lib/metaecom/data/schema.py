"""Reading any file of a format: tables from paths or DataFrames, columns by role.

A loader of a *format* (not of one file) needs three things, shared here:

- :func:`read_table` -- a DataFrame from a path (CSV, TSV, JSON, JSON lines, Parquet,
  Excel; ``.gz`` / ``.zip`` packaging too) or a DataFrame passed through unchanged;
- :func:`resolve_columns` -- which of the file's columns plays each role: the caller's
  ``columns`` mapping first, then the names the official releases use;
- :func:`check_schema` -- one :class:`SchemaError` naming every missing or ill-typed
  column and what was found, before any work starts.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Mapping

import pandas as pd

KINDS = ("text", "number", "integer", "datetime", "any")


class SchemaError(ValueError):
    """A table lacks a required column, or a column's values are not of the needed kind."""


def _zip_member(path: Path) -> tuple[bytes, str]:
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if not n.endswith("/") and not n.startswith("__MACOSX")]
        if len(names) != 1:
            raise ValueError(f"{path.name}: expected one data file in the zip archive, found {names}")
        return archive.read(names[0]), names[0]


def read_table(source, sheet=0) -> pd.DataFrame:
    """A DataFrame from ``source``: a DataFrame (returned as is) or a path whose suffix
    says the format -- ``.csv``, ``.tsv``, ``.json``/``.jsonl`` (JSON lines when the file
    has one object per line), ``.parquet``, ``.xlsx``/``.xls`` (``sheet``: a name, an
    index, or None for all sheets stacked) -- optionally ``.gz``-compressed or the only
    member of a ``.zip``."""
    if isinstance(source, pd.DataFrame):
        return source
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    name = path.name.lower()
    if name.endswith(".zip"):
        raw, member = _zip_member(path)
        return _read_bytes(raw, member.lower(), sheet)
    return _read_bytes(path.read_bytes(), name, sheet)


def _read_bytes(raw: bytes, name: str, sheet) -> pd.DataFrame:
    if name.endswith(".gz"):
        import gzip
        raw, name = gzip.decompress(raw), name[:-3]
    buffer = io.BytesIO(raw)
    if name.endswith(".parquet"):
        return pd.read_parquet(buffer)
    if name.endswith((".xlsx", ".xls")):
        frames = pd.read_excel(buffer, sheet_name=sheet, dtype=object)
        if isinstance(frames, dict):
            return pd.concat(frames.values(), ignore_index=True)
        return frames
    if name.endswith((".json", ".jsonl", ".ndjson")):
        return pd.DataFrame(json_records(raw))
    if name.endswith((".tsv", ".tab")):
        return pd.read_csv(buffer, sep="\t")
    if name.endswith((".csv", ".txt")):
        return pd.read_csv(buffer)
    raise ValueError(f"cannot tell the format of {name!r}: use .csv, .tsv, .json, .jsonl, .parquet or .xlsx "
                     "(optionally .gz or inside a .zip), or pass a DataFrame")


def json_records(raw: bytes) -> list[dict]:
    """Records of a JSON array, or of JSON lines -- one object per line, where a line
    that is not strict JSON may be a Python dict literal (the 2014 Amazon metadata)."""
    text = raw.decode("utf-8-sig")
    stripped = text.lstrip()
    if stripped.startswith("["):
        return json.loads(stripped)
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            import ast
            try:
                records.append(ast.literal_eval(line))
            except (ValueError, SyntaxError) as error:
                raise ValueError(f"line {number} is neither JSON nor a Python literal: {line[:80]!r}") from error
    return records


def resolve_columns(frame: pd.DataFrame, roles: Mapping[str, tuple[str, ...]], columns: Mapping[str, str] | None,
                    what: str, optional: tuple[str, ...] = ()) -> dict[str, str]:
    """``{role: column of frame}`` for every role the frame has.

    ``roles`` lists, per role, the names official releases use for it (first match
    wins; names compare without case, spaces or underscores); ``columns`` maps a role to
    the reader's own column name and wins over them. Raises a :class:`SchemaError`
    naming every required role (those not in ``optional``) that no column fills.
    """
    columns = dict(columns or {})
    unknown = sorted(set(columns) - set(roles))
    if unknown:
        raise ValueError(f"columns= names unknown roles {unknown}; the roles of {what} are {list(roles)}")
    squash = lambda name: str(name).lower().replace(" ", "").replace("_", "")  # noqa: E731
    present = {squash(c): c for c in frame.columns}
    found, missing = {}, []
    for role, names in roles.items():
        if role in columns:
            if columns[role] not in frame.columns:
                raise SchemaError(f"{what}: columns={{{role!r}: {columns[role]!r}}} but the table has no column "
                                  f"{columns[role]!r}; found {list(frame.columns)}")
            found[role] = columns[role]
            continue
        match = next((present[squash(n)] for n in (role, *names) if squash(n) in present), None)
        if match is not None:
            found[role] = match
        elif role not in optional:
            missing.append(f"{role} (any of {', '.join(repr(n) for n in names)})" if names else role)
    if missing:
        raise SchemaError(f"{what} lacks columns for: {'; '.join(missing)}. Found columns "
                          f"{list(frame.columns)}. Pass columns={{role: your_column}} to name them.")
    return found


def _kind_failures(series: pd.Series, kind: str) -> tuple[int, list]:
    present = series.dropna()
    if kind in ("text", "any") or present.empty:
        return 0, []
    if kind == "datetime":
        if pd.api.types.is_datetime64_any_dtype(series):
            return 0, []
        parsed = pd.to_datetime(present, errors="coerce", format="mixed")
    else:
        parsed = pd.to_numeric(present, errors="coerce")
        if kind == "integer":
            parsed = parsed.where(parsed.isna() | (parsed == parsed.round()))
    bad = present[parsed.isna()]
    return len(bad), bad.head(3).tolist()


def check_schema(frame: pd.DataFrame, kinds: Mapping[str, str], what: str, max_bad_fraction: float = 0.5) -> None:
    """Raise one :class:`SchemaError` naming every column of ``kinds`` that is missing, or
    whose non-empty values are mostly (more than ``max_bad_fraction``) not of its kind.

    A few bad values are not a schema error: the readers count them as data problems.
    """
    problems = []
    for column, kind in kinds.items():
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r} for column {column!r}; kinds are {KINDS}")
        if column not in frame.columns:
            problems.append(f"missing column {column!r} ({kind})")
            continue
        bad, shown = _kind_failures(frame[column], kind)
        present = int(frame[column].notna().sum())
        if present and bad / present > max_bad_fraction:
            problems.append(f"column {column!r} should hold {kind} values but {bad:,} of {present:,} do not "
                            f"(e.g. {shown})")
    if problems:
        raise SchemaError(f"{what}: " + "; ".join(problems) + f". Found columns {list(frame.columns)} "
                          f"with types {dict(frame.dtypes.astype(str))}.")
