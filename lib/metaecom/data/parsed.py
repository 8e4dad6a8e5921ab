"""A cache of parsed tables and arrays, so that a dataset is parsed once.

Parsing MovieLens' text files or 541,909 rows of Online Retail takes seconds; reading
the same table back from Parquet takes milliseconds. Each parsed object is keyed by the
checksums of its source files and a loader version, so a change to either re-parses.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from metaecom.data.registry import cache_dir


def _key(parts) -> str:
    return hashlib.sha256("\n".join(map(str, parts)).encode()).hexdigest()[:16]


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=".part-", suffix=path.suffix)
    os.close(handle)
    try:
        write(Path(temp))
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


_DTYPES = "metaecom_datetime_dtypes"


def cached_path(name: str, key_parts, suffix: str) -> Path:
    """Where the cache keeps the object ``name`` built from ``key_parts`` (it may not exist yet)."""
    return cache_dir() / "parsed" / f"{name}-{_key(key_parts)}{suffix}"


def cached_frame(name: str, key_parts, build: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """Return ``build()``, stored as Parquet under the cache and read from there next time.

    Parquet cannot store second-resolution timestamps (it reads them back as
    milliseconds), so the datetime columns' dtypes travel in the file's metadata and are
    restored: a first load and every later one return the same dtypes.
    """
    path = cached_path(name, key_parts, ".parquet")
    if path.exists():
        frame = pd.read_parquet(path)
        dtypes = frame.attrs.pop(_DTYPES, {})
        return frame.astype(dtypes) if dtypes else frame
    frame = build()
    stored = frame.copy(deep=False)
    stored.attrs = {**frame.attrs, _DTYPES: {c: str(t) for c, t in frame.dtypes.items()
                                             if pd.api.types.is_datetime64_any_dtype(t)}}
    _atomic_write(path, lambda temp: stored.to_parquet(temp, index=False))
    return frame


def cached_array(name: str, key_parts, build: Callable[[], np.ndarray]) -> np.ndarray:
    """Return ``build()``, stored as ``.npy`` under the cache and read from there next time."""
    path = cached_path(name, key_parts, ".npy")
    if path.exists():
        return np.load(path)
    array = build()
    _atomic_write(path, lambda temp: np.save(temp, array))
    return array
